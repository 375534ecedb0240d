//! Build progress on stderr. `plain` (and `auto` for now) prints one line
//! per step; `quiet` prints nothing but errors. The live terminal view and
//! `rawjson` come with the cache and scheduling issue.

use super::options::Progress as Mode;
use std::sync::atomic::{AtomicUsize, Ordering};
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

    pub fn warn(&self, msg: &str) {
        eprintln!("WARNING: {msg}");
    }
}
