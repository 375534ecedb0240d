//! A RUN step's output: split into lines, each forwarded to the progress
//! view of its step, the last few kept for the step's error message.

use super::{Inner, StepState};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Lines of a failed step's output repeated in its error.
const TAIL_LINES: usize = 10;

/// A line longer than this without a newline is shown in pieces, so a
/// process printing endless bytes without `\n` cannot exhaust memory.
const MAX_LINE: usize = 64 * 1024;

/// Where a RUN step's output goes. Clones share the same partial line and
/// tail, so stdout and stderr of one process can each hold one.
#[derive(Clone)]
pub struct RunLog {
    target: Target,
    partial: Arc<Mutex<Vec<u8>>>,
    /// The last lines, for the error message when the step fails.
    tail: Arc<Mutex<VecDeque<String>>>,
}

#[derive(Clone)]
pub(super) enum Target {
    /// Lines belong to this step.
    Step(Arc<Inner>, Arc<StepState>),
    /// Lines belong to no step (the transitional `Progress::run_output`).
    Loose(Arc<Inner>),
    /// Lines are only kept for `tail`.
    Nowhere,
}

impl RunLog {
    pub(super) fn new(target: Target) -> RunLog {
        RunLog {
            target,
            partial: Arc::new(Mutex::new(Vec::new())),
            tail: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// A log that shows nothing and only keeps the tail.
    pub fn discard() -> RunLog {
        RunLog::new(Target::Nowhere)
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        match &self.target {
            Target::Step(inner, step) => inner.step_log(step, line),
            Target::Loose(inner) => inner.loose_log(line),
            Target::Nowhere => {}
        }
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
    }

    /// The last lines the step printed (at most 10), oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Shows a last line that had no newline; call when the process ended.
    pub fn flush_partial(&self) {
        let rest = std::mem::take(&mut *self.partial.lock().unwrap_or_else(|p| p.into_inner()));
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }
}

impl Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Complete lines are taken out under the lock and shown after it, so
        // a slow view never holds up the other stream of the same process.
        let mut lines = Vec::new();
        {
            let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
            partial.extend_from_slice(buf);
            while let Some(nl) = partial.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = partial.drain(..=nl).collect();
                line.pop();
                lines.push(line);
            }
            if partial.len() > MAX_LINE {
                lines.push(std::mem::take(&mut *partial));
            }
        }
        for line in lines {
            self.emit(&line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_ten_lines_and_joins_partial_writes() {
        let mut log = RunLog::discard();
        for i in 0..12 {
            writeln!(log, "line {i}").unwrap();
        }
        log.write_all(b"par").unwrap();
        log.clone().write_all(b"tial\r\nno newline").unwrap();
        assert_eq!(log.tail().len(), 10);
        assert_eq!(log.tail()[0], "line 3");
        assert_eq!(log.tail()[9], "partial");
        log.flush_partial();
        let tail = log.tail();
        assert_eq!(tail.len(), 10);
        assert_eq!(tail[0], "line 4");
        assert_eq!(tail[8], "partial");
        assert_eq!(tail[9], "no newline");
        // Flushing twice does not repeat the last line.
        log.flush_partial();
        assert_eq!(log.tail(), tail);
    }

    #[test]
    fn an_endless_line_is_cut_instead_of_growing() {
        let mut log = RunLog::discard();
        let chunk = vec![b'x'; 1000];
        for _ in 0..70 {
            log.write_all(&chunk).unwrap();
        }
        let tail = log.tail();
        assert_eq!(tail.len(), 1);
        assert!(tail[0].len() > MAX_LINE && tail[0].len() <= MAX_LINE + chunk.len());
        assert!(log.partial.lock().unwrap().len() < MAX_LINE);
    }
}
