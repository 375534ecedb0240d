//! `--progress=rawjson`: one JSON object per line for programs that watch a
//! build. The schema is documented on the parent module.

use super::{Event, Kind, Outcome, StepState, Summary};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// The line (ending in `\n`) that shows `event` of `step`; `time` is the
/// seconds since the build started.
pub(super) fn step_line(step: &StepState, event: &Event<'_>, time: f64, now: Instant) -> String {
    let mut obj = Map::new();
    let duration = now.saturating_duration_since(step.started).as_secs_f64();
    match event {
        Event::Log(text) => {
            obj.insert("type".into(), "log".into());
            obj.insert("id".into(), step.id.into());
            obj.insert("time".into(), micros(time).into());
            obj.insert("data".into(), (*text).into());
        }
        Event::Message(text) => {
            obj.insert("type".into(), "message".into());
            obj.insert("id".into(), step.id.into());
            obj.insert("time".into(), micros(time).into());
            obj.insert("message".into(), (*text).into());
        }
        Event::Start | Event::End(_) => {
            match &step.kind {
                Kind::Step { stage, pos } => {
                    obj.insert("type".into(), "step".into());
                    obj.insert("id".into(), step.id.into());
                    obj.insert("stage".into(), stage.as_str().into());
                    obj.insert("pos".into(), json!([pos.0, pos.1]));
                }
                Kind::Task => {
                    obj.insert("type".into(), "task".into());
                    obj.insert("id".into(), step.id.into());
                }
            }
            obj.insert("name".into(), step.name.as_str().into());
            let status = match event {
                Event::End(Outcome::Cached) => "cached",
                Event::End(Outcome::Done) => "done",
                Event::End(Outcome::Failed(_)) => "error",
                _ => "started",
            };
            obj.insert("status".into(), status.into());
            obj.insert("time".into(), micros(time).into());
            if let Event::End(outcome) = event {
                obj.insert("duration".into(), micros(duration).into());
                if let Outcome::Failed(message) = outcome {
                    obj.insert("error".into(), message.as_str().into());
                }
            }
        }
    }
    line(obj)
}

/// `{"type":"info"|"warning","time":…,"message":…}`.
pub(super) fn note_line(kind: &str, msg: &str, time: f64) -> String {
    let mut obj = Map::new();
    obj.insert("type".into(), kind.into());
    obj.insert("time".into(), micros(time).into());
    obj.insert("message".into(), msg.into());
    line(obj)
}

/// `{"type":"log","id":null,…}` for output that belongs to no step.
pub(super) fn loose_line(text: &str, time: f64) -> String {
    let mut obj = Map::new();
    obj.insert("type".into(), "log".into());
    obj.insert("id".into(), Value::Null);
    obj.insert("time".into(), micros(time).into());
    obj.insert("data".into(), text.into());
    line(obj)
}

pub(super) fn summary_line(summary: &Summary) -> String {
    let mut obj = Map::new();
    obj.insert("type".into(), "summary".into());
    obj.insert("time".into(), micros(summary.seconds).into());
    obj.insert("steps".into(), summary.steps.into());
    obj.insert("cached".into(), summary.cached.into());
    obj.insert("failed".into(), summary.failed.into());
    line(obj)
}

/// Seconds rounded to microseconds: finer digits are noise.
fn micros(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e6
}

fn line(obj: Map<String, Value>) -> String {
    // Serialising a map of strings and numbers cannot fail; NaN cannot occur
    // (times come from `Instant`), and serde_json writes it as null anyway.
    let mut text = Value::Object(obj).to_string();
    text.push('\n');
    text
}
