//! Runs the stages a target needs as a DAG: a stage starts as soon as the
//! stages it reads from are done, up to `jobs` at a time, each on its own
//! thread. What a stage produces never depends on this order (every step is
//! deterministic and keyed by content), so neither do the output bytes.
//!
//! On a failure no new stage starts; the ones running finish, and the
//! error reported is that of the first failed stage in Dockerfile order, so
//! the message does not depend on timing either.

use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

/// Runs `run(stage)` for every stage in `order` (a topological order)
/// once all of `deps(stage)` have succeeded, with at most `jobs` at once.
pub fn run_dag<F>(
    order: &[usize],
    deps: impl Fn(usize) -> Vec<usize>,
    jobs: usize,
    run: F,
) -> Result<()>
where
    F: Fn(usize) -> Result<()> + Sync,
{
    let waits: Vec<(usize, Vec<usize>)> = order.iter().map(|&i| (i, deps(i))).collect();
    let state = Mutex::new(State {
        started: vec![false; waits.len()],
        done: Vec::new(),
        running: 0,
        failures: BTreeMap::new(),
    });
    let changed = Condvar::new();
    let workers = jobs.clamp(1, waits.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = {
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if !s.failures.is_empty() || s.started.iter().all(|&x| x) {
                            break None;
                        }
                        let ready = waits.iter().position(|(i, needs)| {
                            let slot = order.iter().position(|o| o == i).unwrap_or(0);
                            !s.started[slot] && needs.iter().all(|d| s.done.contains(d))
                        });
                        match ready {
                            Some(slot) => {
                                s.started[slot] = true;
                                s.running += 1;
                                break Some(waits[slot].0);
                            }
                            // Nothing ready and nothing running: a dependency
                            // outside `order` will never come.
                            None if s.running == 0 => {
                                s.failures.insert(
                                    usize::MAX,
                                    anyhow::anyhow!("stage dependencies cannot be satisfied"),
                                );
                                break None;
                            }
                            None => {
                                s = changed.wait(s).unwrap_or_else(|p| p.into_inner());
                            }
                        }
                    }
                };
                let Some(stage) = next else {
                    changed.notify_all();
                    return;
                };
                let result = run(stage);
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                s.running -= 1;
                match result {
                    Ok(()) => s.done.push(stage),
                    Err(e) => {
                        s.failures.insert(stage, e);
                    }
                }
                drop(s);
                changed.notify_all();
            });
        }
    });
    let mut s = state.into_inner().unwrap_or_else(|p| p.into_inner());
    match s.failures.pop_first() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

struct State {
    /// By position in `order`.
    started: Vec<bool>,
    done: Vec<usize>,
    running: usize,
    /// Errors by stage index: the first in Dockerfile order is reported.
    failures: BTreeMap<usize, anyhow::Error>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn a_stage_starts_only_after_its_dependencies() {
        // 0 and 1 independent; 2 needs both; 3 needs 2.
        let deps = |i: usize| match i {
            2 => vec![0, 1],
            3 => vec![2],
            _ => vec![],
        };
        let finished = Mutex::new(Vec::new());
        run_dag(&[0, 1, 2, 3], deps, 4, |i| {
            let seen = finished.lock().unwrap().clone();
            for d in deps(i) {
                assert!(seen.contains(&d), "stage {i} started before {d} finished");
            }
            std::thread::sleep(Duration::from_millis(20));
            finished.lock().unwrap().push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(finished.into_inner().unwrap().len(), 4);
    }

    #[test]
    fn independent_stages_overlap_up_to_jobs() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let work = |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        };
        run_dag(&[0, 1, 2, 3], |_| vec![], 2, work).unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        peak.store(0, Ordering::SeqCst);
        run_dag(&[0, 1, 2, 3], |_| vec![], 1, work).unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failure_stops_dependants_and_reports_the_first_stage_in_order() {
        let ran = Mutex::new(Vec::new());
        let err = run_dag(
            &[0, 1, 2],
            |i| if i == 2 { vec![1] } else { vec![] },
            2,
            |i| {
                ran.lock().unwrap().push(i);
                if i == 2 {
                    return Ok(());
                }
                // Stage 1 fails first in time, stage 0 later.
                std::thread::sleep(Duration::from_millis(if i == 0 { 60 } else { 5 }));
                anyhow::bail!("stage {i} failed")
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "stage 0 failed");
        assert!(!ran.lock().unwrap().contains(&2));
    }
}
