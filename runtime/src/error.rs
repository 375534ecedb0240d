//! Errors of the sandbox. Every variant names the program it is about, so the
//! builder can prefix the Dockerfile instruction and line and show the user
//! one sentence that says what happened.

use std::path::PathBuf;
use std::time::Duration;

/// Why a program could not be loaded or did not finish normally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file is something other than a WASI preview-1 core module.
    #[error(
        "{program}: {what}; kiln runs WebAssembly programs only (WASI preview 1 command modules)"
    )]
    NotWasm {
        /// The program as the caller named it (an image path or a host path).
        program: String,
        /// What the file looks like instead ("a Linux ELF executable", ...).
        what: String,
    },
    /// wasmtime rejected the module (invalid wasm, unsupported proposal, missing import).
    #[error("{program}: cannot load WebAssembly module: {message}")]
    Load {
        /// The program as the caller named it.
        program: String,
        /// wasmtime's explanation, with its causes.
        message: String,
    },
    /// The guest trapped (unreachable, stack overflow, out-of-bounds access, ...).
    #[error("{program}: the program crashed: {message}")]
    Trap {
        /// The program as the caller named it.
        program: String,
        /// What kind of trap it was.
        kind: TrapKind,
        /// The trap description and the wasm backtrace.
        message: String,
    },
    /// The guest needed more linear memory than the step may use.
    #[error("{program}: out of memory: the program needed more than the step's memory limit of {} (raise it with --step-memory)", bytes(*limit))]
    OutOfMemory {
        /// The program as the caller named it.
        program: String,
        /// The per-instance memory limit in bytes.
        limit: u64,
    },
    /// The step ran longer than its timeout.
    #[error("{program}: timed out after {} (the step's --step-timeout)", humanize(*after))]
    Timeout {
        /// The program as the caller named it.
        program: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// Setting up the sandbox failed on the host (preopen, pipes, ...).
    #[error("{program}: cannot set up the sandbox: {message}")]
    Setup {
        /// The program as the caller named it.
        program: String,
        /// What failed.
        message: String,
    },
    /// Reading a program file from the host failed.
    #[error("cannot read program {}: {source}", path.display())]
    Read {
        /// The host file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RunError {
    /// The same error about `name`, e.g. the toolbox applet that ran
    /// (`awk`) rather than the module that holds it.
    pub fn about(mut self, name: &str) -> RunError {
        match &mut self {
            RunError::NotWasm { program, .. }
            | RunError::Load { program, .. }
            | RunError::Trap { program, .. }
            | RunError::OutOfMemory { program, .. }
            | RunError::Timeout { program, .. }
            | RunError::Setup { program, .. } => *program = name.to_owned(),
            RunError::Read { .. } => {}
        }
        self
    }
}

/// The kinds of trap kiln tells apart in its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// `unreachable` executed (also what Rust's `abort` and `panic=abort` do).
    Unreachable,
    /// The wasm call stack overflowed.
    StackOverflow,
    /// An out-of-bounds memory or table access.
    OutOfBounds,
    /// Integer division by zero or overflow, bad conversion.
    Arithmetic,
    /// Any other trap or host error.
    Other,
}

/// Errors of the runtime itself (engine and cache setup).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// The module cache directory cannot be created.
    #[error("cannot create the module cache directory {}: {source}", path.display())]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `67108864` as `64 MiB`; sizes that are not whole MiB in bytes.
fn bytes(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= MIB && n % MIB == 0 => format!("{} MiB", n / MIB),
        n => format!("{n} bytes"),
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
