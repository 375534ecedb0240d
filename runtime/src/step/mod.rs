//! One RUN step: the shell's [`Host`] over the step's [`Rootfs`] and the
//! [`Runtime`]. Every external command becomes a WASI instance (an image
//! module or a toolbox applet) sharing the step's filesystem; shells
//! (`sh -c`, `bash script.sh`, `#!/bin/sh` scripts) are kiln's own
//! interpreter, whatever the image has under those names.
//!
//! Determinism: each command's random seed is derived from the step's seed,
//! its argv and how many times that argv ran before in the step; its clocks
//! start at SOURCE_DATE_EPOCH. A trap, out-of-memory or timeout ends that
//! command with a status (134, 137, 124) and is remembered as the step's
//! [`Step::fatal`] error so the builder can say what happened.

mod args;
mod lookup;
mod stdio;

pub use args::ShellArgs;
pub use lookup::DEFAULT_PATH;

use crate::engine::MAX_WASM_STACK;
use crate::error::RunError;
use crate::fs::{Device, Rootfs, WriteMode};
use crate::invocation::{Invocation, SpawnRequest, Spawner};
use crate::runtime::{Program, Runtime};
use crate::shell::{
    current_lineage, grow_by, too_deep, with_lineage, Child, FileInfo, FileKind, Finished, Host,
    Input, Lineage, OpenMode, Output, Shell, Stdio, MAX_NEST,
};
use chacha20::rand_core::{Rng as _, SeedableRng as _};
use chacha20::ChaCha20Rng;
use lookup::{absolute, Found};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Status of a command that crashed (like SIGABRT).
const STATUS_TRAP: i32 = 134;
/// Status of a command that ran out of memory (like SIGKILL by the OOM killer).
const STATUS_OOM: i32 = 137;
/// Status of a command that hit the step timeout (like `timeout(1)`).
const STATUS_TIMEOUT: i32 = 124;

/// Stack a WASI program runs with: its own largest call stack and room for
/// the host's frames around it (WASI calls, `kiln.spawn`). A program started
/// by a program runs on the same thread, deeper down its stack.
const MODULE_STACK: usize = MAX_WASM_STACK + (512 << 10);

/// What a step runs with.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// SOURCE_DATE_EPOCH: where every command's clocks start.
    pub source_date_epoch: u64,
    /// The step's identity; every command's random seed derives from it.
    pub seed: [u8; 32],
    /// Most linear memory one instance may have.
    pub memory_limit: u64,
    /// Wall-clock limit of the whole step.
    pub timeout: Option<Duration>,
    /// uid and gid the step runs as (USER): what `id` says.
    pub user: (u32, u32),
}

/// One RUN step's sandbox. Create it with [`Step::new`], then run the
/// instruction with [`Step::run_argv`] (exec form, or `sh -c` for shell
/// form).
pub struct Step {
    me: Weak<Step>,
    runtime: Arc<Runtime>,
    toolbox: Program,
    rootfs: Rootfs,
    config: StepConfig,
    deadline: Option<Instant>,
    runs: Mutex<HashMap<[u8; 32], u64>>,
    fatal: Mutex<Option<RunError>>,
    /// Image modules loaded in this step, by canonical path.
    programs: Mutex<HashMap<String, (FileStamp, Program)>>,
}

/// What tells a host file changed: size, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            ino: std::os::unix::fs::MetadataExt::ino(m),
        }
    }
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("rootfs", &self.rootfs)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// A step over `rootfs`; `toolbox` is the loaded toolbox module.
    pub fn new(
        runtime: Arc<Runtime>,
        toolbox: Program,
        rootfs: Rootfs,
        config: StepConfig,
    ) -> Arc<Step> {
        let deadline = config.timeout.map(|t| Instant::now() + t);
        Arc::new_cyclic(|me| Step {
            me: me.clone(),
            runtime,
            toolbox,
            rootfs,
            config,
            deadline,
            runs: Mutex::new(HashMap::new()),
            fatal: Mutex::new(None),
            programs: Mutex::new(HashMap::new()),
        })
    }

    /// The step's filesystem.
    pub fn rootfs(&self) -> &Rootfs {
        &self.rootfs
    }

    /// The first crash, out-of-memory or timeout of any command of the step.
    pub fn fatal(&self) -> Option<String> {
        self.fatal
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(|e| e.to_string()))
    }

    /// Runs `argv` (argv\[0\] looked up like the shell would: `sh -c SCRIPT`
    /// for shell form) with exactly `env`, in `cwd`, with empty stdin, and
    /// returns its exit status.
    pub fn run_argv(
        &self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        stdout: Output,
        stderr: Output,
    ) -> i32 {
        let stdio = Stdio {
            stdin: Input::Null,
            stdout,
            stderr: stderr.clone(),
        };
        // Everything the command starts shares one nesting count and one
        // thread budget.
        let started = with_lineage(current_lineage(), || self.start(argv, env, cwd, stdio));
        match started {
            Ok(status) => status,
            Err(e) => {
                let name = argv.first().map(String::as_str).unwrap_or_default();
                let (msg, status) = match e.kind() {
                    io::ErrorKind::NotFound => (format!("{name}: not found"), 127),
                    _ => (format!("{name}: {e}"), 126),
                };
                let _ = stderr.write_all(format!("kiln: {msg}\n").as_bytes());
                status
            }
        }
    }

    fn host(&self) -> Arc<dyn Host> {
        let me: Arc<Step> = self.me.upgrade().expect("a step is always held by an Arc");
        me
    }

    /// Runs a command to completion; `Err` means it could not start
    /// (NotFound: 127; anything else: 126).
    fn start(
        &self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        stdio: Stdio,
    ) -> io::Result<i32> {
        let name = argv
            .first()
            .ok_or_else(|| io::Error::other("empty command"))?;
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        match lookup::find(&self.rootfs, name, path, cwd) {
            Found::Nothing => Err(io::ErrorKind::NotFound.into()),
            Found::Unrunnable(e) => Err(io::Error::other(e.to_string())),
            Found::Shell => Ok(self.run_shell(ShellArgs::parse(argv), env, cwd, stdio)),
            Found::Script { path, shebang } => match shebang {
                Some(s) if !s.is_shell() => {
                    let mut inner = vec![s.interpreter.clone()];
                    inner.extend(s.arg.clone());
                    inner.push(path);
                    inner.extend(argv[1..].iter().cloned());
                    if inner[0] == argv[0] {
                        return Err(io::Error::other("a script cannot be its own interpreter"));
                    }
                    self.start(&inner, env, cwd, stdio)
                }
                _ => {
                    let script = ShellArgs::script_file(&path, &argv[1..]);
                    Ok(self.run_shell(script, env, cwd, stdio))
                }
            },
            Found::Applet(applet) => {
                let program = self.toolbox.clone();
                let mut args = argv.to_vec();
                args[0] = applet;
                Ok(self.run_module(&program, args, env, cwd, stdio))
            }
            Found::Module { path } => {
                let program = self.image_program(name, &path)?;
                Ok(self.run_module(&program, argv.to_vec(), env, cwd, stdio))
            }
        }
    }

    /// The program in the image file at `path`, loaded once per step while
    /// the file stays the same (a loop calling a large module does not
    /// re-read and re-hash it every time). Files the step itself wrote are
    /// always read again: a host timestamp may be too coarse to tell.
    fn image_program(&self, name: &str, path: &str) -> io::Result<Program> {
        let fail = |e: String| io::Error::other(e);
        let canonical = self
            .rootfs
            .canonical(path)
            .map_err(|e| fail(e.to_string()))?;
        let host = self
            .rootfs
            .host_dir()
            .join(canonical.trim_start_matches('/'));
        let stamp = std::fs::symlink_metadata(&host)
            .map(|m| FileStamp::of(&m))
            .map_err(|e| fail(format!("{path}: {e}")))?;
        let mut cache = self.programs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, program)) = cache.get(&canonical) {
            if *seen == stamp && !self.rootfs.written(&canonical) {
                return Ok(program.clone());
            }
        }
        let bytes = self
            .rootfs
            .read(&canonical)
            .map_err(|e| fail(e.to_string()))?;
        let program = self
            .runtime
            .load(name, &bytes)
            .map_err(|e| fail(e.to_string()))?;
        cache.insert(canonical, (stamp, program.clone()));
        Ok(program)
    }

    /// Runs kiln's shell as a command (`sh -c`, a script file, a `#!` script).
    fn run_shell(&self, args: ShellArgs, env: &[(String, String)], cwd: &str, stdio: Stdio) -> i32 {
        let mut sh = Shell::new(self.host());
        sh.set_stdio(stdio.clone());
        sh.set_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        sh.set_cwd(cwd);
        sh.set_args(&args.arg0, &args.positional);
        if !args.options.is_empty() {
            let set = format!("set {}", args.options.join(" "));
            let status = sh.run_script(&set);
            if status != 0 {
                return status;
            }
        }
        let script = match args.source {
            args::Source::Command(s) => s,
            args::Source::File(path) => {
                let file = absolute(cwd, &path);
                match self.rootfs.read(&file) {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => {
                        let _ = stdio
                            .stderr
                            .write_all(format!("sh: cannot open {path}: {e}\n").as_bytes());
                        return 127;
                    }
                }
            }
            args::Source::Stdin => match stdio.stdin.read_to_end() {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(_) => String::new(),
            },
            args::Source::Invalid(msg) => {
                let _ = stdio.stderr.write_all(format!("sh: {msg}\n").as_bytes());
                return 2;
            }
        };
        sh.run_script(&script)
    }

    /// The seed of the next run of `argv` in this step.
    fn seed_for(&self, argv: &[String]) -> [u8; 32] {
        let mut h = Sha256::new();
        for a in argv {
            h.update(a.as_bytes());
            h.update([0]);
        }
        let key: [u8; 32] = h.finalize().into();
        let n = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            let n = runs.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        let mut h = Sha256::new();
        h.update(b"kiln command seed\0");
        h.update(self.config.seed);
        h.update(key);
        h.update(n.to_le_bytes());
        h.finalize().into()
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn run_module(
        &self,
        program: &Program,
        args: Vec<String>,
        env: &[(String, String)],
        cwd: &str,
        stdio: Stdio,
    ) -> i32 {
        let seed = self.seed_for(&args);
        let name = args.first().cloned().unwrap_or_default();
        let mut inv = Invocation::new(args);
        inv.env = env.to_vec();
        inv.cwd = cwd.to_owned();
        inv.rootfs = Some(self.rootfs.clone());
        inv.source_date_epoch = self.config.source_date_epoch;
        inv.seed = seed;
        inv.memory_limit = self.config.memory_limit;
        inv.timeout = self.remaining();
        inv.user = self.config.user;
        if inv.timeout == Some(Duration::ZERO) {
            return STATUS_TIMEOUT;
        }
        let streams = (|| {
            let stdin = stdio::stdin(&stdio.stdin)?;
            let (stdout, out_pump) = stdio::output(&stdio.stdout)?;
            let (stderr, err_pump) = stdio::output(&stdio.stderr)?;
            Ok::<_, io::Error>((stdin, stdout, stderr, out_pump, err_pump))
        })();
        let (stdin, stdout, stderr, out_pump, err_pump) = match streams {
            Ok(s) => s,
            Err(e) => {
                let _ = stdio.stderr.write_all(
                    format!("kiln: {}: cannot set up its streams: {e}\n", program.name())
                        .as_bytes(),
                );
                return 126;
            }
        };
        inv.stdin = stdin;
        inv.stdout = stdout;
        inv.stderr = stderr;
        inv.spawner = Some(self.spawner(stdio.clone(), current_lineage()));
        // On a fresh stack segment when this thread's is running low (a
        // program started by a program started by ...).
        let result = grow_by(MODULE_STACK, || self.runtime.run(program, inv));
        out_pump.finish();
        err_pump.finish();
        let end = match result {
            Ok(outcome) => outcome.end,
            Err(e) => Err(e),
        };
        match end {
            Ok(status) => i32::from(status),
            Err(e) => {
                // Name the applet, not the toolbox module, and the step's
                // time limit rather than what was left of it.
                let e = match e {
                    RunError::Timeout { program, .. } => RunError::Timeout {
                        program,
                        after: self.config.timeout.unwrap_or_default(),
                    },
                    e => e,
                };
                let e = if program.name() == self.toolbox.name() {
                    e.about(&name)
                } else {
                    e
                };
                let status = match e {
                    RunError::OutOfMemory { .. } => STATUS_OOM,
                    RunError::Timeout { .. } => STATUS_TIMEOUT,
                    RunError::Trap { .. } => STATUS_TRAP,
                    _ => 126,
                };
                let _ = stdio.stderr.write_all(format!("kiln: {e}\n").as_bytes());
                if let Ok(mut f) = self.fatal.lock() {
                    if f.is_none() {
                        *f = Some(e);
                    }
                }
                status
            }
        }
    }

    /// What `kiln.spawn` calls: runs the request with the calling guest's
    /// streams, one nesting level below the guest (`lineage`: what the
    /// guest inherited).
    fn spawner(&self, stdio: Stdio, lineage: Lineage) -> Spawner {
        let me = self.me.clone();
        Arc::new(move |req: SpawnRequest| -> u8 {
            let Some(step) = me.upgrade() else {
                return 126;
            };
            let name = req.argv.first().map(String::as_str).unwrap_or_default();
            if lineage.nest >= MAX_NEST {
                let _ = stdio
                    .stderr
                    .write_all(format!("kiln: {}\n", too_deep(name)).as_bytes());
                return 126;
            }
            let child = Lineage {
                nest: lineage.nest + 1,
                threads: Arc::clone(&lineage.threads),
            };
            let started = with_lineage(child, || {
                step.start(&req.argv, &req.env, &req.cwd, stdio.clone())
            });
            let status = match started {
                Ok(s) => s,
                Err(e) => {
                    let (msg, s) = match e.kind() {
                        io::ErrorKind::NotFound => (format!("{name}: not found"), 127),
                        _ => (format!("{name}: {e}"), 126),
                    };
                    let _ = stdio.stderr.write_all(format!("kiln: {msg}\n").as_bytes());
                    s
                }
            };
            (status & 0xff) as u8
        })
    }
}

fn info(st: &crate::fs::Stat) -> FileInfo {
    let kind = match st.kind {
        crate::fs::FileKind::Regular => FileKind::File,
        crate::fs::FileKind::Directory => FileKind::Dir,
        crate::fs::FileKind::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let mode = match kind {
        FileKind::Dir => 0o755,
        FileKind::Symlink => 0o777,
        _ => 0o644,
    };
    FileInfo {
        kind,
        size: st.size,
        mode,
    }
}

impl Host for Step {
    fn spawn(
        &self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        stdio: Stdio,
    ) -> io::Result<Box<dyn Child>> {
        let status = self.start(argv, env, cwd, stdio)?;
        Ok(Box::new(Finished(status)))
    }

    fn find_program(&self, name: &str, env: &[(String, String)]) -> Option<String> {
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        match lookup::find(&self.rootfs, name, path, "/") {
            Found::Module { path } | Found::Script { path, .. } => Some(path),
            // Toolbox applets are not files in the image: like builtins,
            // `command -v` prints the bare name.
            Found::Applet(name) => Some(name),
            Found::Shell => Some(if name.contains('/') {
                name.to_owned()
            } else {
                format!("/bin/{name}")
            }),
            Found::Unrunnable(_) | Found::Nothing => None,
        }
    }

    fn open_read(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        if let Some(device) = self.rootfs.device(path) {
            return Ok(match device {
                // A RUN step's standard input is empty.
                Device::Null | Device::Stdio(_) => Box::new(io::empty()),
                Device::Zero | Device::Full => Box::new(io::repeat(0)),
                Device::Random => Box::new(SeededReader(ChaCha20Rng::from_seed(
                    self.seed_for(&[path.to_owned()]),
                ))),
            });
        }
        let f = self.rootfs.open_read(path).map_err(fs_io)?;
        Ok(Box::new(f))
    }

    fn open_write(&self, path: &str, mode: OpenMode) -> io::Result<Box<dyn Write + Send>> {
        match self.rootfs.device(path) {
            Some(Device::Full) => return Err(io::Error::from(crate::fs::Errno::NOSPC)),
            // Stdio devices are the shell's own (`stdio_alias`); a RUN step's
            // standard input is empty, so writes to it go nowhere either.
            Some(_) => return Ok(Box::new(io::sink())),
            None => {}
        }
        let mode = match mode {
            OpenMode::Append => WriteMode::Append,
            _ => WriteMode::Truncate,
        };
        let now = Duration::from_secs(self.config.source_date_epoch);
        let f = self.rootfs.open_write(path, mode, now).map_err(fs_io)?;
        Ok(Box::new(f))
    }

    fn metadata(&self, path: &str) -> Option<FileInfo> {
        self.rootfs.stat_path(path, true).ok().map(|s| info(&s))
    }

    fn symlink_metadata(&self, path: &str) -> Option<FileInfo> {
        self.rootfs.stat_path(path, false).ok().map(|s| info(&s))
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.rootfs.read_dir(path).map_err(fs_io)
    }

    fn file_id(&self, path: &str) -> Option<u64> {
        self.rootfs.stat_path(path, true).ok().map(|s| s.ino)
    }

    fn stdio_alias(&self, path: &str) -> Option<usize> {
        match self.rootfs.device(path)? {
            Device::Stdio(n) => Some(n as usize),
            _ => None,
        }
    }

    fn interrupted(&self) -> Option<String> {
        if self.remaining() != Some(Duration::ZERO) {
            return None;
        }
        let after = self.config.timeout.unwrap_or_default();
        let e = RunError::Timeout {
            program: "sh".into(),
            after,
        };
        let msg = e.to_string();
        if let Ok(mut f) = self.fatal.lock() {
            if f.is_none() {
                *f = Some(e);
            }
        }
        Some(msg)
    }
}

/// Reads of `/dev/random` and `/dev/urandom` by the shell: the step's
/// seeded bytes.
struct SeededReader(ChaCha20Rng);

impl Read for SeededReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.fill_bytes(buf);
        Ok(buf.len())
    }
}

/// An fs error as the io::Error the shell prints.
fn fs_io(e: crate::fs::FsError) -> io::Error {
    match e {
        crate::fs::FsError::Path { errno, .. } => io::Error::from(errno),
        other => io::Error::other(other.to_string()),
    }
}
