//! Drives epoch interruption for step timeouts: a thread that advances the
//! engine's epoch every `EPOCH_TICK`. It starts with the first run that has a
//! timeout and stops when the runtime is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

/// Granularity of step timeouts.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Epoch deadline for runs without a timeout: never reached.
pub(crate) const NO_DEADLINE: u64 = u64::MAX / 2;

#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kiln-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Epoch ticks that cover `timeout` (at least one, plus one for the partial
/// tick already under way when the run starts).
pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    let ticks = timeout.as_nanos().div_ceil(tick).max(1) + 1;
    u64::try_from(ticks).unwrap_or(NO_DEADLINE).min(NO_DEADLINE)
}
