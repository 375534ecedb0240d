//! `--progress=plain`: numbered lines for logs that are not a terminal,
//! in the format of `docker buildx build --progress=plain`.

use super::{Event, Outcome, StepState};
use std::fmt::Write as _;
use std::time::Instant;

/// The lines (each ending in `\n`) that show `event` of `step`.
pub(super) fn step_lines(step: &StepState, event: &Event<'_>, now: Instant) -> String {
    let id = step.id;
    match event {
        Event::Start => format!("#{id} {}\n", step.label),
        Event::Log(text) | Event::Message(text) => {
            let secs = now.saturating_duration_since(step.started).as_secs_f64();
            format!("#{id} {secs:.3} {text}\n")
        }
        Event::End(Outcome::Cached) => format!("#{id} CACHED\n"),
        Event::End(Outcome::Done) => {
            let secs = now.saturating_duration_since(step.started).as_secs_f64();
            format!("#{id} DONE {secs:.1}s\n")
        }
        Event::End(Outcome::Failed(message)) => {
            let mut lines = message.lines();
            let mut out = format!("#{id} ERROR: {}\n", lines.next().unwrap_or(""));
            for line in lines {
                let _ = writeln!(out, "#{id} {line}");
            }
            out
        }
    }
}

/// A line of output that belongs to no step.
pub(super) fn loose_line(text: &str) -> String {
    format!("    {text}\n")
}

pub(super) fn info_line(msg: &str) -> String {
    format!("=> {msg}\n")
}

pub(super) fn warn_line(msg: &str) -> String {
    format!("WARNING: {msg}\n")
}

pub(super) fn summary_line(summary: &super::Summary) -> String {
    let mut line = format!(
        "Build finished in {:.2}s, {} steps, {} cached",
        summary.seconds, summary.steps, summary.cached
    );
    if summary.failed > 0 {
        let _ = write!(line, ", {} failed", summary.failed);
    }
    line
}
