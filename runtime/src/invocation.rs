//! What one run of a program gets: argv, environment, stdio, the directory
//! mounted at `/`, the step's epoch and seed, and its limits.

use crate::fs::Rootfs;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default per-instance linear-memory limit: 2 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

/// Default cap on captured stdout or stderr: 64 MiB.
pub const DEFAULT_CAPTURE_LIMIT: usize = 64 << 20;

/// Where a guest's stdin comes from.
#[derive(Debug, Default)]
pub enum Stdin {
    /// End of file at once.
    #[default]
    Empty,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// A host file or pipe (a pipeline's read end).
    File(File),
}

/// Where a guest's stdout or stderr goes.
#[derive(Debug)]
pub enum Output {
    /// Kept in memory and returned in the [`Outcome`](crate::Outcome); writes
    /// past `limit` bytes fail in the guest.
    Capture {
        /// Most bytes kept.
        limit: usize,
    },
    /// A host file or pipe (a pipeline's write end, a log file).
    File(File),
    /// Thrown away.
    Discard,
}

impl Default for Output {
    fn default() -> Self {
        Output::Capture {
            limit: DEFAULT_CAPTURE_LIMIT,
        }
    }
}

/// A command a guest asks kiln to run (`kiln.spawn`: `find -exec`, `xargs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnRequest {
    /// argv, including argv\[0\] as the guest wrote it (looked up in PATH).
    pub argv: Vec<String>,
    /// The child's whole environment.
    pub env: Vec<(String, String)>,
    /// The child's working directory (absolute image path).
    pub cwd: String,
}

/// Runs a [`SpawnRequest`] with the calling guest's standard streams and
/// returns its exit status. Whoever builds the [`Invocation`] knows those
/// streams, so it supplies this.
pub type Spawner = Arc<dyn Fn(SpawnRequest) -> u8 + Send + Sync>;

/// One run of a WASI command. Nothing of the host leaks in: the guest sees
/// exactly `args`, exactly `env`, virtual clocks from `source_date_epoch` and
/// randomness from `seed`.
pub struct Invocation {
    /// argv, including argv\[0\].
    pub args: Vec<String>,
    /// The whole environment, in this order.
    pub env: Vec<(String, String)>,
    /// Standard input.
    pub stdin: Stdin,
    /// Standard output.
    pub stdout: Output,
    /// Standard error.
    pub stderr: Output,
    /// Host directory mounted at `/` (read-write, chroot semantics), or no
    /// filesystem at all. A fresh [`Rootfs`] is opened for this run; use
    /// `rootfs` to share one across the commands of a step.
    pub root: Option<PathBuf>,
    /// The step's filesystem, shared by its commands; takes precedence over
    /// `root`.
    pub rootfs: Option<Rootfs>,
    /// Seconds since 1970 that the wall clock starts at.
    pub source_date_epoch: u64,
    /// Seed of the guest's random bytes (the step's identity).
    pub seed: [u8; 32],
    /// Most linear memory the instance may have, in bytes.
    pub memory_limit: u64,
    /// Wall-clock limit of the run, if any (granularity 10 ms).
    pub timeout: Option<Duration>,
    /// The working directory the guest gets from `kiln.cwd_get`.
    pub cwd: String,
    /// Runs commands for the guest (`kiln.spawn`); `None`: ENOSYS.
    pub spawner: Option<Spawner>,
    /// `(uid, gid)` the command runs as (the step's USER), as `kiln.user_get`
    /// reports it; also the owner of what it creates when `root` opens a
    /// fresh filesystem (a shared [`Rootfs`] has its own
    /// [`creator`](crate::RootfsOptions::creator)).
    pub user: (u32, u32),
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("args", &self.args)
            .field("env", &self.env)
            .field("root", &self.root)
            .field("cwd", &self.cwd)
            .field("source_date_epoch", &self.source_date_epoch)
            .field("memory_limit", &self.memory_limit)
            .field("timeout", &self.timeout)
            .field("spawner", &self.spawner.is_some())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Invocation {
    /// A run with these argv, an empty environment, empty stdin, captured
    /// output, no filesystem, epoch 0, an all-zero seed and default limits.
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        Invocation {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            stdin: Stdin::Empty,
            stdout: Output::default(),
            stderr: Output::default(),
            root: None,
            rootfs: None,
            source_date_epoch: 0,
            seed: [0; 32],
            memory_limit: DEFAULT_MEMORY_LIMIT,
            timeout: None,
            cwd: "/".into(),
            spawner: None,
            user: (0, 0),
        }
    }
}
