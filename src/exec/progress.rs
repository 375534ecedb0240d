//! Build progress on stderr. `plain` (and `auto` for now) prints one line
//! per step; `quiet` prints nothing but errors. The live terminal view and
//! `rawjson` come with the cache and scheduling issue.

use super::options::Progress as Mode;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct Progress {
    mode: Mode,
    counter: AtomicUsize,
    started: Instant,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            counter: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }

    fn enabled(&self) -> bool {
        self.mode != Mode::Quiet
    }

    /// A step starts: `#N [stage S] INSTRUCTION`.
    pub fn step(&self, stage: usize, text: &str) {
        self.step_with(stage, text, false)
    }

    pub fn step_with(&self, stage: usize, text: &str, cached: bool) {
        if !self.enabled() {
            return;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let first = text.lines().next().unwrap_or("").trim();
        let elapsed = self.started.elapsed().as_secs_f64();
        let mark = if cached { " CACHED" } else { "" };
        eprintln!("#{n} [stage-{stage}] {first}{mark} ({elapsed:.2}s)");
    }

    pub fn info(&self, msg: &str) {
        if self.enabled() {
            eprintln!("=> {msg}");
        }
    }

    /// Where a RUN step's output goes: its lines on stderr, indented
    /// (nowhere with `quiet`).
    pub fn run_output(&self) -> RunLog {
        RunLog {
            enabled: self.enabled(),
            partial: Arc::new(Mutex::new(Vec::new())),
            tail: Arc::new(Mutex::new(std::collections::VecDeque::new())),
        }
    }

    pub fn warn(&self, msg: &str) {
        eprintln!("WARNING: {msg}");
    }
}

/// A RUN step's output, forwarded line by line.
#[derive(Clone)]
pub struct RunLog {
    enabled: bool,
    partial: Arc<Mutex<Vec<u8>>>,
    /// The last lines, for the error message when the step fails.
    tail: Arc<Mutex<std::collections::VecDeque<String>>>,
}

/// Lines of a failed step's output repeated in its error.
const TAIL_LINES: usize = 10;

impl RunLog {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        if self.enabled {
            eprintln!("    {line}");
        }
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.into_owned());
    }

    /// The last lines the step printed.
    pub fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Prints a last line that had no newline.
    pub fn flush_partial(&self) {
        let rest = std::mem::take(&mut *self.partial.lock().unwrap_or_else(|p| p.into_inner()));
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }
}

impl Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        partial.extend_from_slice(buf);
        while let Some(nl) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=nl).collect();
            self.emit(&line[..line.len() - 1]);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
