//! kiln-runtime: the sandbox that executes RUN steps as WASI preview-1
//! programs under wasmtime.
//!
//! This slice provides the engine (Cranelift, NaN canonicalisation,
//! deterministic relaxed SIMD, no guest threads), an on-disk cache of compiled
//! modules, and single command runs with exactly the argv and environment the
//! caller gives, virtual clocks starting at SOURCE_DATE_EPOCH, seeded random
//! bytes, exit statuses 0-255, memory limits, timeouts and typed traps.
//!
//! Not yet here (later slices of the RUN issue): the chroot-semantics
//! filesystem (a host directory is mounted at `/` with wasmtime-wasi's own
//! preopen, which refuses absolute symlinks), kiln's mode/ownership host API,
//! sorted directory listings and virtual inode numbers and mtimes, the shell.

mod cache;
mod clock;
mod engine;
mod error;
mod invocation;
mod limits;
mod magic;
mod random;
mod runtime;
mod ticker;

pub use cache::CacheStats;
pub use clock::{VirtualClock, TICK as CLOCK_TICK};
pub use engine::{MAX_WASM_STACK, WASMTIME_VERSION};
pub use error::{RunError, RuntimeError, TrapKind};
pub use invocation::{Invocation, Output, Stdin, DEFAULT_CAPTURE_LIMIT, DEFAULT_MEMORY_LIMIT};
pub use magic::{check_wasm, is_wasm};
pub use runtime::{Outcome, Program, Runtime, RuntimeConfig};

/// Error text for RUN until the builder calls the sandbox: names the step so
/// the user sees which instruction kiln could not execute.
pub fn run_unsupported_message(instruction: &str) -> String {
    format!(
        "RUN is not supported yet: kiln executes RUN steps as WebAssembly programs and that runtime has not landed ({instruction})"
    )
}
