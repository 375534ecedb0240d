//! On-disk cache of compiled modules. Compiling a large module takes seconds;
//! loading its compiled form takes well under a millisecond, so a module is
//! compiled once per machine, not once per step.
//!
//! Layout: `DIR/<key>.cwasm` (wasmtime's serialized module) and
//! `DIR/<key>.sha256` (the hex SHA-256 of that file). The key is
//! SHA-256(engine fingerprint, wasm digest). Files are written to a temporary
//! name and renamed, the artifact before its checksum, so a reader sees either
//! nothing or a complete pair. On load the artifact is hashed and compared
//! before wasmtime sees it (from one private copy of the bytes, not a
//! mapping of the file): wasmtime checks the version and settings of a
//! serialized module but not the integrity of its code, and deserializing is
//! only sound for untampered artifacts. Any mismatch or wasmtime refusal means
//! recompile and rewrite.

use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::{Engine, Module};

/// Counters of what the cache did; the tests and the benchmark read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Programs served from memory (already loaded in this process).
    pub memory_hits: u64,
    /// Modules loaded from their compiled form on disk.
    pub disk_hits: u64,
    /// Modules compiled from wasm.
    pub compiled: u64,
    /// Cache files that were found but refused (checksum mismatch or
    /// wasmtime refusing them), then replaced.
    pub rejected: u64,
    /// Compiled modules that could not be written (the run went on).
    pub write_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
    rejected: AtomicU64,
    write_failures: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The disk half of the cache (the memory half lives in the runtime).
#[derive(Debug)]
pub(crate) struct ModuleCache {
    dir: Option<PathBuf>,
    engine_key: [u8; 32],
    pub counters: Counters,
}

impl ModuleCache {
    pub fn new(dir: Option<PathBuf>, engine_key: [u8; 32]) -> Self {
        ModuleCache {
            dir,
            engine_key,
            counters: Counters::default(),
        }
    }

    /// The compiled module for `wasm` (whose SHA-256 is `digest`): from disk
    /// when a sound artifact is there, else compiled and stored.
    /// `compiling` is called just before a compilation; what it returns
    /// lives until the compilation ends.
    pub fn load<T>(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
        compiling: impl FnOnce() -> T,
    ) -> wasmtime::Result<Module> {
        let Some(dir) = &self.dir else {
            bump(&self.counters.compiled);
            let _notice = compiling();
            return Module::new(engine, wasm);
        };
        let key = self.key(digest);
        let artifact = dir.join(format!("{key}.cwasm"));
        let checksum = dir.join(format!("{key}.sha256"));
        if let Some(module) = self.read_verified(engine, &artifact, &checksum) {
            bump(&self.counters.disk_hits);
            return Ok(module);
        }
        let notice = compiling();
        let module = Module::new(engine, wasm)?;
        drop(notice);
        bump(&self.counters.compiled);
        if store(dir, &artifact, &checksum, &module).is_err() {
            bump(&self.counters.write_failures);
        }
        Ok(module)
    }

    fn key(&self, digest: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(self.engine_key);
        h.update(digest);
        hex::encode(h.finalize())
    }

    /// `None` when there is no artifact or it must not be trusted.
    fn read_verified(&self, engine: &Engine, artifact: &Path, checksum: &Path) -> Option<Module> {
        let expected = fs::read_to_string(checksum).ok()?;
        let Ok(bytes) = fs::read(artifact) else {
            bump(&self.counters.rejected);
            return None;
        };
        if expected.trim() != hex::encode(Sha256::digest(&bytes)) {
            bump(&self.counters.rejected);
            return None;
        }
        // SAFETY: the bytes were written by `store` from `Module::serialize`
        // of this wasmtime version (the key covers version and engine
        // settings) and match the checksum written with them, so they are an
        // untampered wasmtime artifact; wasmtime still checks the header and
        // compatibility and returns an error on a mismatch. They are checked
        // and deserialized from the same private copy: `deserialize_file`
        // would map the file, so a later change to it (a user truncating the
        // cache) could alter verified code or crash kiln with SIGBUS.
        match unsafe { Module::deserialize(engine, &bytes) } {
            Ok(m) => Some(m),
            Err(_) => {
                bump(&self.counters.rejected);
                None
            }
        }
    }
}

fn store(dir: &Path, artifact: &Path, checksum: &Path, module: &Module) -> io::Result<()> {
    let bytes = module
        .serialize()
        .map_err(|e| io::Error::other(format!("{e:#}")))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    write_atomic(dir, artifact, &bytes)?;
    write_atomic(dir, checksum, digest.as_bytes())
}

fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}
