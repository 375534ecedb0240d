//! `--progress=tty`: a live view on a terminal. Each running step or task
//! has a spinner line with its elapsed time and latest output; finished
//! ones become permanent lines above the live area.

use super::{Event, Outcome, StepState};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::time::Duration;

/// How often spinners turn and elapsed times advance.
const TICK: Duration = Duration::from_millis(100);

/// The longest step label shown on a live line, so a long instruction does
/// not wrap and break the redraw.
const MAX_LABEL: usize = 70;

pub(super) struct Tty {
    multi: MultiProgress,
    style: ProgressStyle,
}

impl Tty {
    pub(super) fn new(target: ProgressDrawTarget) -> Tty {
        let style = ProgressStyle::with_template(
            "{spinner:.cyan} {prefix:.bold} {secs:.dim} {wide_msg:.dim}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "secs",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
            },
        );
        Tty {
            multi: MultiProgress::with_draw_target(target),
            style,
        }
    }

    /// The live line of a step that starts now.
    pub(super) fn start(&self, label: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(self.style.clone());
        bar.set_prefix(shorten(&clean(label), MAX_LABEL));
        bar.enable_steady_tick(TICK);
        bar
    }

    pub(super) fn step_event(&self, step: &StepState, event: &Event<'_>) {
        let Some(bar) = &step.bar else { return };
        match event {
            Event::Start => {}
            Event::Log(text) | Event::Message(text) => bar.set_message(clean(text)),
            Event::End(outcome) => {
                let secs = step.started.elapsed().as_secs_f64();
                let status = match outcome {
                    Outcome::Cached => "CACHED".to_string(),
                    Outcome::Done => format!("DONE {secs:.1}s"),
                    Outcome::Failed(message) => {
                        format!("ERROR: {}", clean(message.lines().next().unwrap_or("")))
                    }
                };
                bar.finish_and_clear();
                self.multi.remove(bar);
                self.println(&format!("=> {} {status}", clean(&step.label)));
            }
        }
    }

    /// A permanent line above the live area.
    pub(super) fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    /// Clears the live area, runs `f` (which may write to the terminal),
    /// then redraws.
    pub(super) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Ends the live view.
    pub(super) fn clear(&self) {
        let _ = self.multi.clear();
    }
}

/// `text` made safe for a single terminal line: output that redraws itself
/// with `\r` shows its latest state, tabs become spaces and other control
/// characters (escape sequences of the step's program) are dropped.
fn clean(text: &str) -> String {
    let latest = text
        .split('\r')
        .rev()
        .find(|part| !part.is_empty())
        .unwrap_or("");
    latest
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_the_latest_redraw_and_drops_control_characters() {
        assert_eq!(clean("10%\r50%\r"), "50%");
        assert_eq!(clean("a\tb\x1b[31mred\x07"), "a b[31mred");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
