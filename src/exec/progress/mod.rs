//! Build progress on stderr, like `docker buildx build --progress=…`.
//!
//! A build reports *steps* (Dockerfile instructions, numbered within their
//! stage) and *tasks* (long waits that are not instructions: compiling a
//! WASI module, unpacking base layers, exporting). Each gets a number `#N`
//! in start order across the whole build; stages run in parallel threads,
//! so [`Progress`] is shared by reference and a [`StepHandle`] is `Send`.
//!
//! Modes (`--progress`):
//! - `plain`: numbered lines, as buildx writes them for CI logs:
//!   `#3 [stage-1 2/4] RUN make`, `#3 0.123 output line` (seconds since the
//!   step started), then `#3 CACHED`, `#3 DONE 1.2s` or `#3 ERROR: message`.
//!   Lines of parallel steps interleave, but every line is written whole.
//! - `tty`: a live view (a spinner line per running step with its elapsed
//!   time and latest output line); finished steps become permanent lines
//!   `=> [stage-1 2/4] RUN make DONE 1.2s`. Needs stderr to be a terminal,
//!   otherwise `plain` is used.
//! - `auto`: `tty` when stderr is a terminal, else `plain`.
//! - `quiet`: only warnings (the caller prints errors).
//! - `rawjson`: one JSON object per line; `time` is seconds since the build
//!   started, `duration` seconds since the step started:
//!   - `{"type":"step","id":3,"stage":"stage-1","pos":[2,4],"name":"RUN make","status":"started","time":0.12}`;
//!     `status` later `cached`, `done` or `error`, with `"duration":1.2` and
//!     for `error` also `"error":"message"`.
//!   - `{"type":"task","id":4,"name":"compiling toolbox.wasm","status":…,"time":…}`,
//!     the same as a step without `stage` and `pos`.
//!   - `{"type":"log","id":3,"time":0.3,"data":"output line"}` (`id` null
//!     for output that belongs to no step).
//!   - `{"type":"message","id":4,"time":2.0,"message":"12.5 MB written"}`.
//!   - `{"type":"info"|"warning","time":…,"message":…}`.
//!   - `{"type":"summary","time":3.4,"steps":7,"cached":2,"failed":0}` at the end.
//!
//! Plain and rawjson show a step's [`StepHandle::set_message`] at most once
//! a second (rawjson ten times), and its latest message before the step ends.

mod plain;
mod rawjson;
mod runlog;
mod tty;

pub use super::options::Progress as Mode;
pub use runlog::RunLog;

use indicatif::{ProgressBar, ProgressDrawTarget};
use runlog::Target;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The progress reporter of one build.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

/// A step or task that started; report how it ended with [`done`](Self::done),
/// [`cached`](Self::cached) or [`failed`](Self::failed). Dropping it counts
/// as done.
pub struct StepHandle {
    inner: Arc<Inner>,
    state: Arc<StepState>,
    ended: bool,
}

type Out = Mutex<Box<dyn Write + Send>>;

pub(super) struct Inner {
    view: View,
    started: Instant,
    next_id: AtomicUsize,
    steps: AtomicUsize,
    cached: AtomicUsize,
    failed: AtomicUsize,
    finished: AtomicBool,
}

enum View {
    Quiet(Out),
    Plain(Out),
    Json(Out),
    Tty(tty::Tty),
}

pub(super) struct StepState {
    id: usize,
    kind: Kind,
    /// The first line of the instruction or the task's text.
    name: String,
    /// `[stage 2/4] RUN make` for steps, the name for tasks.
    label: String,
    started: Instant,
    message: Mutex<Throttle>,
    /// The live line in `tty` mode.
    bar: Option<ProgressBar>,
}

pub(super) enum Kind {
    Step { stage: String, pos: (usize, usize) },
    Task,
}

#[derive(Default)]
struct Throttle {
    last_shown: Option<Instant>,
    pending: Option<String>,
}

pub(super) enum Event<'a> {
    Start,
    Log(&'a str),
    Message(&'a str),
    End(&'a Outcome),
}

pub(super) enum Outcome {
    Cached,
    Done,
    Failed(String),
}

pub(super) struct Summary {
    seconds: f64,
    steps: usize,
    cached: usize,
    failed: usize,
}

impl Progress {
    /// Progress on stderr; `auto` (and `tty` without a terminal) is `plain`
    /// unless stderr is a terminal.
    pub fn new(mode: Mode) -> Progress {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        match mode {
            Mode::Auto | Mode::Tty if terminal => {
                Progress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10))
            }
            _ => Progress::with_writer(mode, Box::new(std::io::stderr())),
        }
    }

    /// Progress written to `out`, which is not a terminal: `auto` and `tty`
    /// are `plain`.
    pub fn with_writer(mode: Mode, out: Box<dyn Write + Send>) -> Progress {
        let out = Mutex::new(out);
        Progress::from_view(match mode {
            Mode::Quiet => View::Quiet(out),
            Mode::Rawjson => View::Json(out),
            Mode::Auto | Mode::Plain | Mode::Tty => View::Plain(out),
        })
    }

    /// The live `tty` view drawn on `target` (tests draw on an
    /// `indicatif::InMemoryTerm`).
    pub fn with_draw_target(target: ProgressDrawTarget) -> Progress {
        Progress::from_view(View::Tty(tty::Tty::new(target)))
    }

    fn from_view(view: View) -> Progress {
        Progress {
            inner: Arc::new(Inner {
                view,
                started: Instant::now(),
                next_id: AtomicUsize::new(1),
                steps: AtomicUsize::new(0),
                cached: AtomicUsize::new(0),
                failed: AtomicUsize::new(0),
                finished: AtomicBool::new(false),
            }),
        }
    }

    /// The mode in effect (never `auto`).
    pub fn mode(&self) -> Mode {
        match self.inner.view {
            View::Quiet(_) => Mode::Quiet,
            View::Plain(_) => Mode::Plain,
            View::Json(_) => Mode::Rawjson,
            View::Tty(_) => Mode::Tty,
        }
    }

    /// A build step starts: `stage` is the stage's display name, `pos` the
    /// 1-based step number within the stage and the stage's step count,
    /// `text` the instruction (only its first line is shown).
    pub fn step(&self, stage: &str, pos: (usize, usize), text: &str) -> StepHandle {
        let name = first_line(text);
        let label = format!("[{stage} {}/{}] {name}", pos.0, pos.1);
        self.inner.steps.fetch_add(1, Ordering::Relaxed);
        let kind = Kind::Step {
            stage: stage.to_string(),
            pos,
        };
        self.begin(kind, name, label)
    }

    /// A long wait that is not a Dockerfile step.
    pub fn task(&self, text: &str) -> StepHandle {
        let name = first_line(text);
        self.begin(Kind::Task, name.clone(), name)
    }

    fn begin(&self, kind: Kind, name: String, label: String) -> StepHandle {
        let bar = match &self.inner.view {
            View::Tty(tty) => Some(tty.start(&label)),
            _ => None,
        };
        let state = Arc::new(StepState {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            kind,
            name,
            label,
            started: Instant::now(),
            message: Mutex::new(Throttle::default()),
            bar,
        });
        self.inner.show(&state, &Event::Start);
        StepHandle {
            inner: self.inner.clone(),
            state,
            ended: false,
        }
    }

    pub fn info(&self, msg: &str) {
        let inner = &self.inner;
        match &inner.view {
            View::Quiet(_) => {}
            View::Plain(out) => write_out(out, &plain::info_line(msg)),
            View::Json(out) => write_out(out, &rawjson::note_line("info", msg, inner.time())),
            View::Tty(tty) => tty.println(&format!("=> {msg}")),
        }
    }

    /// A warning, shown in every mode.
    pub fn warn(&self, msg: &str) {
        let inner = &self.inner;
        match &inner.view {
            View::Quiet(out) | View::Plain(out) => write_out(out, &plain::warn_line(msg)),
            View::Json(out) => write_out(out, &rawjson::note_line("warning", msg, inner.time())),
            View::Tty(tty) => tty.println(plain::warn_line(msg).trim_end()),
        }
    }

    /// Runs `f`, which writes to stderr itself, without garbling the live
    /// view (in other modes it just runs `f`).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.inner.view {
            View::Tty(tty) => tty.suspend(f),
            _ => f(),
        }
    }

    /// End of the build: stops the live view and prints the summary. Only
    /// the first call does anything; step output after it is not shown.
    pub fn finish(&self) {
        let inner = &self.inner;
        if inner.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let summary = Summary {
            seconds: inner.time(),
            steps: inner.steps.load(Ordering::Relaxed),
            cached: inner.cached.load(Ordering::Relaxed),
            failed: inner.failed.load(Ordering::Relaxed),
        };
        match &inner.view {
            View::Quiet(out) => flush_out(out),
            View::Plain(out) => {
                write_out(out, &format!("{}\n", plain::summary_line(&summary)));
                flush_out(out);
            }
            View::Json(out) => {
                write_out(out, &rawjson::summary_line(&summary));
                flush_out(out);
            }
            View::Tty(tty) => {
                tty.println(&plain::summary_line(&summary));
                tty.clear();
            }
        }
    }

    /// Transitional: output of a RUN step that has no [`StepHandle`]; its
    /// lines are shown indented (`plain`) under whichever step started last.
    /// Use [`StepHandle::log`] instead.
    pub fn run_output(&self) -> RunLog {
        RunLog::new(Target::Loose(self.inner.clone()))
    }
}

impl Inner {
    /// Seconds since the build started.
    fn time(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn show(&self, step: &StepState, event: &Event<'_>) {
        if self.finished.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        match &self.view {
            View::Quiet(_) => {}
            View::Plain(out) => write_out(out, &plain::step_lines(step, event, now)),
            View::Json(out) => {
                let time = now.saturating_duration_since(self.started).as_secs_f64();
                write_out(out, &rawjson::step_line(step, event, time, now))
            }
            View::Tty(tty) => tty.step_event(step, event),
        }
    }

    pub(super) fn step_log(&self, step: &StepState, line: &str) {
        self.show(step, &Event::Log(line));
    }

    pub(super) fn loose_log(&self, line: &str) {
        if self.finished.load(Ordering::Acquire) {
            return;
        }
        match &self.view {
            View::Quiet(_) => {}
            View::Plain(out) => write_out(out, &plain::loose_line(line)),
            View::Json(out) => write_out(out, &rawjson::loose_line(line, self.time())),
            View::Tty(tty) => tty.println(&format!("    {line}")),
        }
    }

    /// How often a step's message may be shown; `None`: every time.
    fn message_interval(&self) -> Option<Duration> {
        match self.view {
            View::Plain(_) => Some(Duration::from_secs(1)),
            View::Json(_) => Some(Duration::from_millis(100)),
            View::Quiet(_) | View::Tty(_) => None,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A build that ended without `finish` (an error) leaves no live
        // lines behind.
        if let View::Tty(tty) = &self.view {
            tty.clear();
        }
    }
}

impl StepHandle {
    pub fn cached(mut self) {
        self.end(Outcome::Cached);
    }

    pub fn done(mut self) {
        self.end(Outcome::Done);
    }

    /// The step failed; `message` is shown with it (all its lines in
    /// `plain` and `rawjson`, the first on a terminal).
    pub fn failed(mut self, message: &str) {
        self.end(Outcome::Failed(message.to_string()));
    }

    /// A status shown with the running step, e.g. "12.5 MB written".
    pub fn set_message(&self, msg: &str) {
        let show = match self.inner.message_interval() {
            None => true,
            Some(interval) => {
                let mut throttle = self.lock_message();
                let now = Instant::now();
                let due = throttle
                    .last_shown
                    .is_none_or(|t| now.saturating_duration_since(t) >= interval);
                if due {
                    throttle.last_shown = Some(now);
                    throttle.pending = None;
                } else {
                    throttle.pending = Some(msg.to_string());
                }
                due
            }
        };
        if show {
            self.inner.show(&self.state, &Event::Message(msg));
        }
    }

    /// Where a RUN step's output goes.
    pub fn log(&self) -> RunLog {
        RunLog::new(Target::Step(self.inner.clone(), self.state.clone()))
    }

    /// The step's number `#N`.
    pub fn id(&self) -> usize {
        self.state.id
    }

    fn lock_message(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.state.message.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn end(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let pending = self.lock_message().pending.take();
        if let Some(msg) = pending {
            self.inner.show(&self.state, &Event::Message(&msg));
        }
        if matches!(self.state.kind, Kind::Step { .. }) {
            match outcome {
                Outcome::Cached => self.inner.cached.fetch_add(1, Ordering::Relaxed),
                Outcome::Failed(_) => self.inner.failed.fetch_add(1, Ordering::Relaxed),
                Outcome::Done => 0,
            };
        }
        self.inner.show(&self.state, &Event::End(&outcome));
        if let Some(bar) = &self.state.bar {
            // Also after `finish`, so no live line stays behind.
            bar.finish_and_clear();
        }
    }
}

impl Drop for StepHandle {
    fn drop(&mut self) {
        self.end(Outcome::Done);
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// Writes whole lines at once, so parallel steps never split each other's.
/// Errors (stderr closed) are ignored: progress is not worth failing for.
fn write_out(out: &Out, text: &str) {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    let _ = out.write_all(text.as_bytes());
}

fn flush_out(out: &Out) {
    let _ = out.lock().unwrap_or_else(|p| p.into_inner()).flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    fn captured(mode: Mode) -> (Progress, Capture) {
        let cap = Capture::default();
        (Progress::with_writer(mode, Box::new(cap.clone())), cap)
    }

    /// `#N <seconds> <text>` → (N, seconds, text).
    fn timed(line: &str) -> (usize, f64, String) {
        let (id, rest) = line.split_once(' ').unwrap();
        let (secs, text) = rest.split_once(' ').unwrap();
        let id = id.strip_prefix('#').unwrap().parse().unwrap();
        (id, secs.parse().unwrap(), text.to_string())
    }

    #[test]
    fn plain_numbers_steps_in_start_order_and_shows_how_they_end() {
        let (p, cap) = captured(Mode::Plain);
        assert_eq!(p.mode(), Mode::Plain);
        let from = p.step("base", (1, 3), "FROM alpine AS base\n");
        let run = p.step("base", (2, 3), "RUN make \\\n  all");
        assert_eq!((from.id(), run.id()), (1, 2));
        let mut log = run.log();
        log.write_all(b"compiling\nlinking").unwrap();
        log.flush_partial();
        from.cached();
        run.failed("exit code: 2\nlast line");
        let task = p.task("compiling toolbox.wasm");
        task.done();
        drop(p.step("stage-1", (1, 1), "FROM scratch"));
        p.info("exporting to oci");
        p.warn("unused build argument");
        p.finish();
        // After the summary nothing more is shown.
        p.finish();
        p.step("late", (1, 1), "RUN true").done();

        let lines = cap.lines();
        assert_eq!(lines.len(), 14, "{lines:#?}");
        assert_eq!(lines[0], "#1 [base 1/3] FROM alpine AS base");
        assert_eq!(lines[1], "#2 [base 2/3] RUN make \\");
        let (id, secs, text) = timed(&lines[2]);
        assert_eq!((id, text.as_str()), (2, "compiling"));
        assert!((0.0..5.0).contains(&secs), "{secs}");
        assert_eq!(
            lines[2].split(' ').nth(1).unwrap().len(),
            5,
            "three decimals"
        );
        assert_eq!(timed(&lines[3]).2, "linking");
        assert_eq!(lines[4], "#1 CACHED");
        assert_eq!(lines[5], "#2 ERROR: exit code: 2");
        assert_eq!(lines[6], "#2 last line");
        assert_eq!(lines[7], "#3 compiling toolbox.wasm");
        assert!(lines[8].starts_with("#3 DONE ") && lines[8].ends_with('s'));
        assert_eq!(lines[9], "#4 [stage-1 1/1] FROM scratch");
        assert!(
            lines[10].starts_with("#4 DONE "),
            "a dropped handle is done"
        );
        assert_eq!(lines[11], "=> exporting to oci");
        assert_eq!(lines[12], "WARNING: unused build argument");
        assert!(
            lines[13].starts_with("Build finished in ")
                && lines[13].ends_with("s, 3 steps, 1 cached, 1 failed"),
            "{}",
            lines[13]
        );
    }

    #[test]
    fn plain_shows_messages_at_most_once_a_second_and_the_last_one_at_the_end() {
        let (p, cap) = captured(Mode::Plain);
        let task = p.task("writing layer");
        task.set_message("1 MB written");
        task.set_message("2 MB written");
        task.set_message("3 MB written");
        task.done();
        let lines = cap.lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(lines[0], "#1 writing layer");
        assert_eq!(timed(&lines[1]).2, "1 MB written");
        assert_eq!(timed(&lines[2]).2, "3 MB written");
        assert!(lines[3].starts_with("#1 DONE "));
    }

    #[test]
    fn rawjson_lines_are_json_objects_with_the_documented_fields() {
        let (p, cap) = captured(Mode::Rawjson);
        assert_eq!(p.mode(), Mode::Rawjson);
        let run = p.step("stage-1", (2, 4), "RUN make\n  more");
        let mut log = run.log();
        writeln!(log, "built \"x\"").unwrap();
        run.failed("exit code: 1");
        let task = p.task("exporting");
        task.set_message("5 MB written");
        task.cached();
        p.info("note");
        p.warn("careful");
        p.finish();

        let events: Vec<serde_json::Value> = cap
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 9, "{events:#?}");
        let e = &events[0];
        assert_eq!(e["type"], "step");
        assert_eq!(e["id"], 1);
        assert_eq!(e["stage"], "stage-1");
        assert_eq!(e["pos"], serde_json::json!([2, 4]));
        assert_eq!(e["name"], "RUN make");
        assert_eq!(e["status"], "started");
        assert!(e["time"].as_f64().unwrap() >= 0.0);
        assert!(e.get("duration").is_none());

        assert_eq!(events[1]["type"], "log");
        assert_eq!(events[1]["id"], 1);
        assert_eq!(events[1]["data"], "built \"x\"");

        assert_eq!(events[2]["status"], "error");
        assert_eq!(events[2]["error"], "exit code: 1");
        assert!(events[2]["duration"].as_f64().unwrap() >= 0.0);
        assert!(events[2]["time"].as_f64() >= events[0]["time"].as_f64());

        assert_eq!(events[3]["type"], "task");
        assert_eq!(events[3]["id"], 2);
        assert_eq!(events[3]["name"], "exporting");
        assert!(events[3].get("stage").is_none());
        assert_eq!(events[4]["type"], "message");
        assert_eq!(events[4]["message"], "5 MB written");
        assert_eq!(events[5]["status"], "cached");
        assert_eq!(events[6]["type"], "info");
        assert_eq!(events[7]["type"], "warning");
        assert_eq!(events[7]["message"], "careful");
        let summary = &events[8];
        assert_eq!(summary["type"], "summary");
        assert_eq!(
            (&summary["steps"], &summary["cached"], &summary["failed"]),
            (&1.into(), &0.into(), &1.into()),
            "tasks are not counted as steps"
        );
    }

    #[test]
    fn quiet_shows_only_warnings_but_still_keeps_the_tail() {
        let (p, cap) = captured(Mode::Quiet);
        let run = p.step("stage-0", (1, 1), "RUN ls");
        let mut log = run.log();
        writeln!(log, "a file").unwrap();
        run.set_message("busy");
        run.done();
        p.task("compiling").cached();
        p.info("exporting");
        p.warn("odd thing");
        p.run_output().write_all(b"loose\n").unwrap();
        p.finish();
        assert_eq!(cap.lines(), ["WARNING: odd thing"]);
        assert_eq!(log.tail(), ["a file"]);
    }

    #[test]
    fn parallel_steps_only_ever_write_whole_lines() {
        let (p, cap) = captured(Mode::Plain);
        let steps = [p.step("a", (1, 1), "RUN a"), p.step("b", (1, 1), "RUN b")];
        std::thread::scope(|scope| {
            for step in &steps {
                let mut log = step.log();
                let who = step.id();
                scope.spawn(move || {
                    for i in 0..300 {
                        // Each line in three writes, to interleave partial lines.
                        let line = format!("step {who} line {i:03} {}\n", "x".repeat(i % 40));
                        let (a, b) = line.as_bytes().split_at(line.len() / 3);
                        let (b, c) = b.split_at(b.len() / 2);
                        for part in [a, b, c] {
                            log.write_all(part).unwrap();
                        }
                    }
                });
            }
        });
        drop(steps);
        let lines = cap.lines();
        assert_eq!(lines.len(), 2 + 600 + 2);
        let mut next = [0usize; 2];
        for line in &lines[2..602] {
            let (id, _, text) = timed(line);
            let i = next[id - 1];
            assert_eq!(
                text,
                format!("step {id} line {i:03} {}", "x".repeat(i % 40)),
                "line of step #{id} is whole and in order"
            );
            next[id - 1] += 1;
        }
        assert_eq!(next, [300, 300]);
    }

    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Progress>();
        send::<StepHandle>();
        send::<RunLog>();
    }

    #[test]
    fn writers_are_never_terminals() {
        for mode in [Mode::Auto, Mode::Tty, Mode::Plain] {
            assert_eq!(captured(mode).0.mode(), Mode::Plain);
        }
        assert_eq!(captured(Mode::Quiet).0.mode(), Mode::Quiet);
    }

    #[test]
    fn tty_shows_running_steps_live_and_finished_ones_above() {
        let term = indicatif::InMemoryTerm::new(10, 80);
        let p = Progress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        assert_eq!(p.mode(), Mode::Tty);
        let wait_for = |want: &str| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !term.contents().contains(want) {
                assert!(
                    Instant::now() < deadline,
                    "{want:?} not in\n{}",
                    term.contents()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let from = p.step("stage-1", (1, 2), "FROM alpine");
        let run = p.step("stage-1", (2, 2), "RUN make");
        writeln!(run.log(), "cc -c main.c\x1b[0m").unwrap();
        wait_for("[stage-1 2/2] RUN make");
        wait_for("cc -c main.c");
        assert!(!term.contents().contains('\x1b'));
        from.cached();
        wait_for("=> [stage-1 1/2] FROM alpine CACHED");
        run.done();
        wait_for("=> [stage-1 2/2] RUN make DONE ");
        p.finish();
        wait_for("Build finished in ");
        let screen = term.contents();
        let live: Vec<&str> = screen.lines().filter(|l| l.contains("cc -c")).collect();
        assert!(
            live.is_empty(),
            "live lines are gone after finish:\n{screen}"
        );
        assert!(screen.contains("2 steps, 1 cached"), "{screen}");
    }
}
