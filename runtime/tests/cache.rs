//! The on-disk module cache: compile once, load afterwards, recompile what
//! is damaged.

mod common;

use common::guests::guest_bytes;
use kiln_runtime::{CacheStats, Invocation, Runtime, RuntimeConfig};
use std::path::Path;

fn runtime(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
    })
    .expect("runtime")
}

fn runs(rt: &Runtime, wasm: &[u8]) {
    let program = rt.load("probe", wasm).expect("load");
    let out = rt
        .run(&program, Invocation::new(["probe", "exit", "5"]))
        .expect("run");
    assert_eq!(out.end.ok(), Some(5));
}

fn artifacts(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn second_load_hits_memory_then_disk() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest_bytes("probe");
    let first = runtime(dir.path());
    runs(&first, &wasm);
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            compiled: 1,
            ..Default::default()
        }
    );
    runs(&first, &wasm);
    assert_eq!(first.cache_stats().memory_hits, 1);
    assert_eq!(first.cache_stats().compiled, 1);
    assert_eq!(artifacts(dir.path(), "cwasm").len(), 1);
    assert_eq!(artifacts(dir.path(), "sha256").len(), 1);

    // A new process (runtime) loads the compiled form from disk.
    let second = runtime(dir.path());
    runs(&second, &wasm);
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            disk_hits: 1,
            ..Default::default()
        }
    );
}

#[test]
fn damaged_artifacts_are_recompiled_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest_bytes("probe");
    runs(&runtime(dir.path()), &wasm);
    let cwasm = artifacts(dir.path(), "cwasm").remove(0);

    // Flip one byte in the middle of the code.
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&cwasm, &bytes).unwrap();
    let rt = runtime(dir.path());
    runs(&rt, &wasm);
    let s = rt.cache_stats();
    assert_eq!((s.rejected, s.compiled, s.disk_hits), (1, 1, 0), "{s:?}");

    // The rewritten artifact is trusted again.
    let rt = runtime(dir.path());
    runs(&rt, &wasm);
    assert_eq!(rt.cache_stats().disk_hits, 1);

    // Garbage with a matching checksum: wasmtime refuses it, kiln recompiles.
    std::fs::write(&cwasm, b"not a compiled module").unwrap();
    let sum = artifacts(dir.path(), "sha256").remove(0);
    std::fs::write(&sum, hex_sha256(b"not a compiled module")).unwrap();
    let rt = runtime(dir.path());
    runs(&rt, &wasm);
    let s = rt.cache_stats();
    assert_eq!((s.rejected, s.compiled), (1, 1), "{s:?}");

    // A missing checksum is a plain miss.
    std::fs::remove_file(&sum).unwrap();
    let rt = runtime(dir.path());
    runs(&rt, &wasm);
    let s = rt.cache_stats();
    assert_eq!((s.rejected, s.compiled), (0, 1), "{s:?}");
}

#[test]
fn different_modules_get_different_entries() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    rt.load("probe", &guest_bytes("probe")).unwrap();
    rt.load("true", &guest_bytes("true")).unwrap();
    assert_eq!(rt.cache_stats().compiled, 2);
    assert_eq!(artifacts(dir.path(), "cwasm").len(), 2);
}

#[test]
fn unwritable_cache_dir_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    // Replace the cache directory by a file: writes fail, the run goes on.
    std::fs::remove_dir(dir.path()).unwrap();
    std::fs::write(dir.path(), b"").unwrap();
    runs(&rt, &guest_bytes("probe"));
    assert_eq!(rt.cache_stats().write_failures, 1);
    std::fs::remove_file(dir.path()).unwrap();
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn compile_observer_hears_of_compilations_only() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest_bytes("probe");
    let heard = Arc::new(Mutex::new(Vec::new()));
    let observe = |rt: &Runtime| {
        let heard = heard.clone();
        rt.observe_compiles(Box::new(move |name, bytes| {
            heard.lock().unwrap().push((name.to_string(), bytes));
            Box::new(())
        }));
    };
    let first = runtime(dir.path());
    observe(&first);
    runs(&first, &wasm);
    runs(&first, &wasm); // from memory
    assert_eq!(
        *heard.lock().unwrap(),
        vec![("probe".to_string(), wasm.len())]
    );
    let second = runtime(dir.path());
    observe(&second);
    runs(&second, &wasm); // from disk: nothing to tell
    assert_eq!(heard.lock().unwrap().len(), 1);
}
