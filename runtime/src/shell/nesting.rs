//! Bounds on how deep a step's commands nest and how many threads they
//! use, so that runaway recursion in a RUN step (`f() { f; }`, a script
//! that runs itself with `sh`, `xargs sh -c` chains, pipelines inside
//! recursion) ends that step with an error instead of overflowing a stack
//! or running the process out of threads, either of which aborts kiln.
//!
//! - One nesting count covers function calls, `eval`, `.`, `$( )`, shells
//!   run as commands (`sh`, `bash`, `sh -c`, `#!/bin/sh` scripts) and
//!   programs a WASI program starts (`kiln.spawn`: `xargs`, `find -exec`,
//!   `env`); more than [`MAX_NEST`] levels is an error.
//! - A shell started as a command runs on the thread of the command that
//!   started it (only the outermost shell gets a thread of its own), so
//!   nesting costs no threads; the pipeline-stage and stream-pump threads a
//!   step has running at once are capped at [`MAX_THREADS`].
//! - Recursion within these caps can still outgrow a thread's stack (every
//!   nesting level may hold a deeply nested command, a WASI program's own
//!   stack, ...), so the recursive entry points run through [`grow`], which
//!   moves onto a fresh stack segment when the current one runs low.
//!
//! What a command inherits travels in a thread-local [`Lineage`]: a shell
//! sets it around starting a command, and the host, which runs the command
//! on the same thread, hands it to the shells and programs it starts.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Deepest nesting of shells, functions, eval, `.`, command substitutions
/// and programs started by programs, counted together.
pub const MAX_NEST: usize = 1000;

/// Most pipeline-stage and stream-pump threads one step may have running
/// at once (its RUN command and everything it starts).
pub const MAX_THREADS: usize = 256;

/// Stack [`grow`] wants left before one more level of shell recursion,
/// and the size of the segment it switches to when less is left.
const RED_ZONE: usize = 256 << 10;
const STACK_SEGMENT: usize = 8 << 20;

/// Runs `f` with at least [`RED_ZONE`] bytes of stack: on the current stack
/// when there is room, otherwise on a new segment of the same thread.
pub(crate) fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, f)
}

/// Runs `f` with at least `need` bytes of stack (e.g. a WASI program's
/// largest call stack plus the host's frames around it).
pub(crate) fn grow_by<R>(need: usize, f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(need, need + STACK_SEGMENT, f)
}

/// The message for nesting beyond [`MAX_NEST`] at `what`.
pub(crate) fn too_deep(what: &str) -> String {
    format!(
        "{what}: nesting too deep (more than {MAX_NEST} levels of nested shells, commands, \
         functions, eval, . and $(...))"
    )
}

/// The threads a step's commands have running, shared by all of them.
#[derive(Debug, Default)]
pub(crate) struct ThreadBudget(AtomicUsize);

/// `n` threads taken from a [`ThreadBudget`]; given back on drop.
#[derive(Debug)]
pub(crate) struct Threads {
    budget: Arc<ThreadBudget>,
    n: usize,
}

impl ThreadBudget {
    /// Takes `n` threads, or `None` when that would exceed [`MAX_THREADS`].
    pub(crate) fn take(self: &Arc<Self>, n: usize) -> Option<Threads> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= MAX_THREADS)
            })
            .ok()
            .map(|_| Threads {
                budget: Arc::clone(self),
                n,
            })
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.budget.0.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// The message for running out of [`MAX_THREADS`].
pub(crate) fn too_many_threads() -> String {
    format!("too many threads running in this step (more than {MAX_THREADS})")
}

/// What a command started on this thread inherits from its starter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lineage {
    /// Nesting levels around the starter.
    pub nest: usize,
    /// The step's thread budget.
    pub threads: Arc<ThreadBudget>,
}

thread_local! {
    static CURRENT: RefCell<Option<Lineage>> = const { RefCell::new(None) };
    static SHELL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// What a command started now on this thread inherits: a fresh lineage
/// (no nesting, a budget of its own) outside any step command.
pub(crate) fn current() -> Lineage {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
}

/// Runs `f` with `lineage` as what commands started on this thread inherit.
pub(crate) fn with_lineage<R>(lineage: Lineage, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Lineage>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let saved = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = saved);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(lineage)));
    f()
}

/// Marks this thread as one the shell interprets on (with a large stack):
/// shells started from it run right here instead of on a thread of their own.
pub(crate) fn mark_shell_thread() {
    SHELL_THREAD.with(|s| s.set(true));
}

/// Whether [`mark_shell_thread`] was called on this thread.
pub(crate) fn on_shell_thread() -> bool {
    SHELL_THREAD.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_budget_is_shared_and_given_back() {
        let budget = Arc::new(ThreadBudget::default());
        let most = budget.take(MAX_THREADS - 1).unwrap();
        assert!(budget.take(2).is_none());
        let last = budget.take(1).unwrap();
        assert!(budget.take(1).is_none());
        drop(most);
        assert!(budget.take(MAX_THREADS - 1).is_some());
        drop(last);
        assert!(budget.take(MAX_THREADS).is_some());
    }

    #[test]
    fn lineage_is_scoped_to_the_thread_and_the_call() {
        assert_eq!(current().nest, 0);
        let outer = Lineage {
            nest: 7,
            ..Lineage::default()
        };
        with_lineage(outer, || {
            assert_eq!(current().nest, 7);
            std::thread::spawn(|| assert_eq!(current().nest, 0))
                .join()
                .unwrap();
            let inner = Lineage {
                nest: 8,
                ..current()
            };
            with_lineage(inner, || assert_eq!(current().nest, 8));
            assert_eq!(current().nest, 7);
        });
        assert_eq!(current().nest, 0);
    }
}
