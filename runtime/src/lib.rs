//! kiln-runtime: the sandbox that executes RUN steps as WASI preview-1
//! programs under wasmtime.
//!
//! This slice provides the engine (Cranelift, NaN canonicalisation,
//! deterministic relaxed SIMD, no guest threads), an on-disk cache of compiled
//! modules, and single command runs with exactly the argv and environment the
//! caller gives, virtual clocks starting at SOURCE_DATE_EPOCH, seeded random
//! bytes, exit statuses 0-255, memory limits, timeouts and typed traps.
//!
//! ```no_run
//! use kiln_runtime::{Invocation, Runtime, RuntimeConfig, Stdin};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = Runtime::new(RuntimeConfig { cache_dir: Some("/var/cache/kiln/modules".into()) })?;
//! let program = rt.load_file("/bin/tool", std::path::Path::new("rootfs/bin/tool"))?;
//! let mut inv = Invocation::new(["tool", "--flag"]);
//! inv.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
//! inv.stdin = Stdin::Bytes(b"input".to_vec());
//! inv.root = Some("rootfs".into());
//! inv.source_date_epoch = 1_700_000_000;
//! inv.seed = [7; 32]; // the step's identity
//! let outcome = rt.run(&program, inv)?;
//! match outcome.end {
//!     Ok(status) => println!("exit {status}, {} bytes of stdout", outcome.stdout.len()),
//!     Err(why) => eprintln!("{why}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A host directory given as `root` (or a shared [`Rootfs`]) is the guest's
//! `/` with chroot semantics: absolute symlinks resolve inside it, `..` stops
//! at `/`, listings are sorted, inode numbers and times are virtual, and the
//! [`Changes`] a run made are recorded (see [`fs`]).
//!
//! [`step`] runs a whole RUN step: kiln's [`shell`] drives the commands,
//! each one a WASI instance (an image module or a [`toolbox`] applet) over
//! the step's shared [`Rootfs`]; [`kiln_api`] is kiln's own import module
//! (working directory, spawning commands for `find -exec` and `xargs`).
//!
//! Modes and owners (which WASI p1 lacks) are kept by kiln per inode and
//! served to guests through the `kiln` import module ([`kiln_api`]); the
//! host reads them with [`Rootfs::owner`].

mod cache;
mod clock;
mod engine;
mod error;
pub mod fs;
pub mod image_path;
mod invocation;
pub mod kiln_api;
mod limits;
mod magic;
mod random;
mod runtime;
mod ticker;

pub use cache::CacheStats;
pub use clock::{VirtualClock, TICK as CLOCK_TICK};
pub use engine::{MAX_WASM_STACK, WASMTIME_VERSION};
pub use error::{RunError, RuntimeError, TrapKind};
pub use fs::{Changes, Owner, Rootfs, RootfsOptions};
pub use invocation::{
    Invocation, Output, SpawnRequest, Spawner, Stdin, DEFAULT_CAPTURE_LIMIT, DEFAULT_MEMORY_LIMIT,
};
pub use magic::{check_wasm, is_wasm};
pub use runtime::{Outcome, Program, Runtime, RuntimeConfig};

pub mod shell;
pub mod step;
pub mod toolbox;
