//! The runtime: one engine, one linker, the module cache, and `run`.

use crate::cache::{CacheStats, ModuleCache};
use crate::clock::VirtualClock;
use crate::engine::{build_engine, engine_fingerprint};
use crate::error::{RunError, RuntimeError, TrapKind};
use crate::fs::wasi::{FsHost, FsView};
use crate::fs::{Changes, Rootfs, RootfsOptions};
use crate::invocation::{Invocation, Output, Spawner, Stdin};
use crate::kiln_api::KilnHost;
use crate::limits::MemoryLimiter;
use crate::magic::check_wasm;
use crate::random::seeded;
use crate::ticker::{deadline_ticks, Ticker, NO_DEADLINE};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{Engine, InstancePre, Linker, Module, Store, Trap, WasmBacktrace};
use wasmtime_wasi::cli::{InputFile, OutputFile, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe, SinkOutputStream};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// Where the runtime keeps compiled modules.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Directory of the on-disk module cache; `None` compiles every module
    /// once per process.
    pub cache_dir: Option<PathBuf>,
}

/// State of one instance's store.
pub(crate) struct StepState {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
    fs: Option<FsView>,
    cwd: String,
    spawner: Option<Spawner>,
    user: (u32, u32),
}

impl KilnHost for StepState {
    fn cwd(&self) -> &str {
        &self.cwd
    }
    fn spawner(&self) -> Option<Spawner> {
        self.spawner.clone()
    }
    fn fs(&self) -> Option<&FsView> {
        self.fs.as_ref()
    }
    fn user(&self) -> (u32, u32) {
        self.user
    }
}

impl FsHost for StepState {
    fn parts(&mut self) -> (&mut WasiP1Ctx, Option<&mut FsView>) {
        (&mut self.wasi, self.fs.as_mut())
    }
}

/// The descriptor of the root preopen: the first after stdin, stdout, stderr.
const ROOT_FD: u32 = 3;

/// A loaded program, ready to instantiate many times.
#[derive(Clone)]
pub struct Program {
    name: String,
    digest: [u8; 32],
    pre: InstancePre<StepState>,
}

impl Program {
    /// The name it was loaded under (used in every error about it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of its wasm bytes.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("digest", &hex::encode(self.digest))
            .finish()
    }
}

/// What a run produced: how it ended and its captured output (captured even
/// when it crashed, so a panic message can be shown).
#[derive(Debug)]
pub struct Outcome {
    /// The exit status (0-255), or why the program did not exit normally.
    pub end: Result<u8, RunError>,
    /// Captured stdout (empty unless [`Output::Capture`]).
    pub stdout: Vec<u8>,
    /// Captured stderr (empty unless [`Output::Capture`]).
    pub stderr: Vec<u8>,
    /// Virtual time that passed during the run.
    pub virtual_elapsed: Duration,
    /// What the run's filesystem recorded as changed (all runs so far, when
    /// the [`Rootfs`] is shared through [`Invocation::rootfs`]); `None`
    /// without a filesystem.
    pub changes: Option<Changes>,
}

/// kiln's WASI sandbox. Cheap to share across threads (`&Runtime`): a
/// pipeline runs one instance per thread.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    cache: ModuleCache,
    loaded: Mutex<HashMap<[u8; 32], InstancePre<StepState>>>,
    ticker: OnceLock<Result<Ticker, String>>,
    on_compile: OnceLock<CompileObserver>,
}

/// Told when a module has to be compiled (seconds for a large one), with
/// the program's name and size in bytes; what it returns is dropped when
/// the compilation ends. A build shows this as progress instead of silence.
pub type CompileObserver = Box<dyn Fn(&str, usize) -> Box<dyn std::any::Any> + Send + Sync>;

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish()
    }
}

impl Runtime {
    /// Creates the engine and linker and, if configured, the cache directory.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = build_engine()?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::CacheDir {
                path: dir.clone(),
                source,
            })?;
        }
        let cache = ModuleCache::new(config.cache_dir, engine_fingerprint(&engine));
        let linker = build_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            loaded: Mutex::new(HashMap::new()),
            ticker: OnceLock::new(),
            on_compile: OnceLock::new(),
        })
    }

    /// Sets the observer of compilations (once; later calls are ignored).
    pub fn observe_compiles(&self, observer: CompileObserver) {
        let _ = self.on_compile.set(observer);
    }

    /// What the module cache has done so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.counters.snapshot()
    }

    /// Reads and loads the program at `path` (named in errors as `name`).
    pub fn load_file(&self, name: &str, path: &Path) -> Result<Program, RunError> {
        let bytes = std::fs::read(path).map_err(|source| RunError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(name, &bytes)
    }

    /// Loads a program from its wasm bytes: from memory if this process saw
    /// it before, else from the disk cache, else by compiling it.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Program, RunError> {
        check_wasm(name, wasm)?;
        let digest: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(pre) = self.loaded_pre(&digest) {
            self.cache
                .counters
                .memory_hits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(Program {
                name: name.to_owned(),
                digest,
                pre,
            });
        }
        let load_err = |e: wasmtime::Error| RunError::Load {
            program: name.to_owned(),
            message: format!("{e:#}"),
        };
        let module = self
            .cache
            .load(&self.engine, wasm, &digest, || {
                self.on_compile
                    .get()
                    .map(|observe| observe(name, wasm.len()))
            })
            .map_err(load_err)?;
        check_command(name, &module)?;
        let pre = self.linker.instantiate_pre(&module).map_err(load_err)?;
        if let Ok(mut map) = self.loaded.lock() {
            map.insert(digest, pre.clone());
        }
        Ok(Program {
            name: name.to_owned(),
            digest,
            pre,
        })
    }

    fn loaded_pre(&self, digest: &[u8; 32]) -> Option<InstancePre<StepState>> {
        self.loaded.lock().ok()?.get(digest).cloned()
    }

    /// Runs `program` once. `Err` only when the sandbox could not be set up;
    /// how the program ended is in [`Outcome::end`].
    pub fn run(&self, program: &Program, inv: Invocation) -> Result<Outcome, RunError> {
        let setup = |message: String| RunError::Setup {
            program: program.name.clone(),
            message,
        };
        let limits = Limits {
            timeout: inv.timeout,
            memory: inv.memory_limit,
        };
        let clock = VirtualClock::new(inv.source_date_epoch);
        let random = seeded(inv.seed);
        let mut b = WasiCtxBuilder::new();
        b.allow_blocking_current_thread(true)
            .args(&inv.args)
            .envs(&inv.env)
            .wall_clock(clock.wall())
            .monotonic_clock(clock.monotonic())
            .secure_random(random.secure)
            .insecure_random(random.insecure)
            .insecure_random_seed(random.insecure_seed);
        match inv.stdin {
            Stdin::Empty => {}
            Stdin::Bytes(bytes) => {
                b.stdin(MemoryInputPipe::new(bytes));
            }
            Stdin::File(f) => {
                b.stdin(InputFile::new(f));
            }
        }
        let (out_stream, stdout) = output_stream(inv.stdout);
        b.stdout(out_stream);
        let (err_stream, stderr) = output_stream(inv.stderr);
        b.stderr(err_stream);
        let rootfs = match (inv.rootfs, &inv.root) {
            (Some(fs), _) => Some(fs),
            (None, Some(root)) => Some(
                Rootfs::open(
                    root,
                    RootfsOptions {
                        source_date_epoch: inv.source_date_epoch,
                        recorded_mtime: None,
                        recorded_owner: None,
                        creator: inv.user,
                        ..Default::default()
                    },
                )
                .map_err(|e| setup(e.to_string()))?,
            ),
            (None, None) => None,
        };
        if let Some(fs) = &rootfs {
            let root = fs.host_dir();
            b.preopened_dir(root, "/", FsPerms::ReadWrite)
                .map_err(|e| setup(format!("cannot open {} as /: {e:#}", root.display())))?;
        }
        let state = StepState {
            wasi: b.build_p1(),
            limiter: MemoryLimiter::new(inv.memory_limit),
            fs: rootfs
                .as_ref()
                .map(|fs| FsView::new(fs, clock.clone(), ROOT_FD, random.device)),
            cwd: inv.cwd,
            spawner: inv.spawner,
            user: inv.user,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        match inv.timeout {
            Some(t) => {
                self.ensure_ticker().map_err(setup)?;
                store.set_epoch_deadline(deadline_ticks(t));
            }
            None => store.set_epoch_deadline(NO_DEADLINE),
        }
        let result = program
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        let end = match result {
            Ok(()) => Ok(0),
            Err(e) => classify(&program.name, e, limits, store.data().limiter.hit()),
        };
        drop(store);
        Ok(Outcome {
            end,
            stdout: stdout.map(|p| p.contents().to_vec()).unwrap_or_default(),
            stderr: stderr.map(|p| p.contents().to_vec()).unwrap_or_default(),
            virtual_elapsed: clock.elapsed(),
            changes: rootfs.map(|fs| fs.changes()),
        })
    }

    fn ensure_ticker(&self) -> Result<(), String> {
        match self
            .ticker
            .get_or_init(|| Ticker::start(self.engine.clone()).map_err(|e| e.to_string()))
        {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot start the timeout thread: {e}")),
        }
    }
}

/// The stream for one output, and the capture pipe when capturing.
fn output_stream(out: Output) -> (Box<dyn StdoutStream + Sync>, Option<MemoryOutputPipe>) {
    match out {
        Output::Capture { limit } => {
            let pipe = MemoryOutputPipe::new(limit);
            (Box::new(pipe.clone()), Some(pipe))
        }
        Output::File(f) => (Box::new(OutputFile::new(f)), None),
        Output::Discard => (Box::new(SinkOutputStream), None),
    }
}

/// The WASI p1 imports, with `proc_exit` shadowed so every status 0-255
/// passes through (wasmtime-wasi traps on >= 126), and the path, listing and
/// metadata functions shadowed by kiln's filesystem.
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<StepState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut StepState| &mut s.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "proc_exit",
        |_caller: wasmtime::Caller<'_, StepState>, status: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(I32Exit(status)))
        },
    )?;
    crate::fs::wasi::add_to_linker(&mut linker)?;
    crate::fs::wasi_devices::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    crate::kiln_api::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// A command module exports `_start` taking and returning nothing.
fn check_command(name: &str, module: &Module) -> Result<(), RunError> {
    let ok = module
        .get_export("_start")
        .and_then(|e| e.func().cloned())
        .is_some_and(|f| f.params().len() == 0 && f.results().len() == 0);
    if ok {
        Ok(())
    } else {
        Err(RunError::Load {
            program: name.to_owned(),
            message: "it exports no `_start` function, so it is not a WASI command (a library or reactor module cannot be run)".into(),
        })
    }
}

/// The limits a run had, for its error messages.
#[derive(Clone, Copy)]
struct Limits {
    timeout: Option<Duration>,
    memory: u64,
}

/// Turns how a run ended into a status or a typed error.
fn classify(
    program: &str,
    e: wasmtime::Error,
    limits: Limits,
    memory_hit: bool,
) -> Result<u8, RunError> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        // WASI exit codes are u32; like a POSIX wait status, keep the low byte.
        return Ok((exit.0 & 0xff) as u8);
    }
    let program = program.to_owned();
    let trap = e.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::Interrupt) {
        return Err(RunError::Timeout {
            program,
            after: limits.timeout.unwrap_or_default(),
        });
    }
    if memory_hit {
        return Err(RunError::OutOfMemory {
            program,
            limit: limits.memory,
        });
    }
    let kind = match trap {
        Some(Trap::UnreachableCodeReached) => TrapKind::Unreachable,
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(Trap::MemoryOutOfBounds | Trap::TableOutOfBounds | Trap::HeapMisaligned) => {
            TrapKind::OutOfBounds
        }
        Some(
            Trap::IntegerOverflow | Trap::IntegerDivisionByZero | Trap::BadConversionToInteger,
        ) => TrapKind::Arithmetic,
        _ => TrapKind::Other,
    };
    let what = match kind {
        TrapKind::Unreachable => "it executed `unreachable` (an abort or a panic)".to_string(),
        TrapKind::StackOverflow => "stack overflow (call stack exhausted)".to_string(),
        TrapKind::OutOfBounds => format!(
            "{} (a bad pointer, or the program overflowed the stack it keeps in its own memory)",
            trap.map(|t| t.to_string()).unwrap_or_default()
        ),
        _ => match trap {
            Some(t) => t.to_string(),
            None => format!("{e:#}"),
        },
    };
    let message = match e.downcast_ref::<WasmBacktrace>() {
        Some(bt) if !bt.frames().is_empty() => format!("{what}\n{bt}"),
        _ => what,
    };
    Err(RunError::Trap {
        program,
        kind,
        message,
    })
}
