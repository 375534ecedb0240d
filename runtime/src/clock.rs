//! Virtual time for a step. The guest must not see the host clock: wall time
//! starts at SOURCE_DATE_EPOCH and both clocks advance by a fixed tick on every
//! read, so a program that measures elapsed time sees time pass (and loops that
//! wait for it end) while the values depend only on the program's own calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// How far virtual time moves on each clock read.
pub const TICK: Duration = Duration::from_millis(1);

/// One step's timeline: wall clock, monotonic clock and (later) the mtimes of
/// files the step writes all read it.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    epoch: Duration,
    reads: Arc<AtomicU64>,
}

impl VirtualClock {
    /// A timeline whose first wall-clock read returns `epoch_secs` (seconds
    /// since 1970, i.e. SOURCE_DATE_EPOCH) and first monotonic read returns 0.
    pub fn new(epoch_secs: u64) -> Self {
        VirtualClock {
            epoch: Duration::from_secs(epoch_secs),
            reads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Time elapsed on the timeline before the next read, without advancing it.
    pub fn elapsed(&self) -> Duration {
        tick_times(self.reads.load(Ordering::Relaxed))
    }

    /// Wall time now (since 1970), without advancing the timeline.
    pub fn wall_now(&self) -> Duration {
        self.epoch.saturating_add(self.elapsed())
    }

    /// Advances the timeline by one tick and returns the time before it.
    fn advance(&self) -> Duration {
        tick_times(self.reads.fetch_add(1, Ordering::Relaxed))
    }

    /// The wall clock to install in a WASI context.
    pub fn wall(&self) -> impl HostWallClock + 'static {
        Wall(self.clone())
    }

    /// The monotonic clock to install in a WASI context.
    pub fn monotonic(&self) -> impl HostMonotonicClock + 'static {
        Monotonic(self.clone())
    }
}

fn tick_times(n: u64) -> Duration {
    let nanos = u128::from(n) * TICK.as_nanos();
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

struct Wall(VirtualClock);

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        TICK
    }
    fn now(&self) -> Duration {
        self.0.epoch.saturating_add(self.0.advance())
    }
}

struct Monotonic(VirtualClock);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        u64::try_from(TICK.as_nanos()).unwrap_or(u64::MAX)
    }
    fn now(&self) -> u64 {
        u64::try_from(self.0.advance().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_starts_at_epoch_and_ticks() {
        let clock = VirtualClock::new(1_700_000_000);
        let wall = clock.wall();
        let mono = clock.monotonic();
        assert_eq!(wall.now(), Duration::from_secs(1_700_000_000));
        assert_eq!(mono.now(), 1_000_000);
        assert_eq!(wall.now(), Duration::from_secs(1_700_000_000) + 2 * TICK);
        assert_eq!(
            clock.wall_now(),
            Duration::from_secs(1_700_000_000) + 3 * TICK
        );
        assert_eq!(clock.elapsed(), 3 * TICK);
    }

    #[test]
    fn timelines_are_independent() {
        let a = VirtualClock::new(0);
        let b = VirtualClock::new(0);
        a.wall().now();
        assert_eq!(b.wall().now(), Duration::ZERO);
    }
}
