//! What a RUN command costs: cold compile, load from the disk cache, and
//! instantiate+run of a cached program (`InstancePre`), for the trivial
//! `true` guest and the larger `probe` guest.
//!
//! `cargo bench -p kiln-runtime --bench run`

#[path = "../tests/common/guests.rs"]
mod guests;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_runtime::{Invocation, Output, Runtime, RuntimeConfig};
use std::path::Path;
use std::time::{Duration, Instant};

fn runtime(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
    })
    .expect("runtime")
}

fn quiet(args: &[&str]) -> Invocation {
    let mut inv = Invocation::new(args.iter().copied());
    inv.stdout = Output::Discard;
    inv.stderr = Output::Discard;
    inv
}

/// Median of `n` timings of `f`.
fn median(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..n).map(|_| f()).collect();
    v.sort();
    v[n / 2]
}

fn report_cold_and_disk(name: &str, wasm: &[u8]) {
    let cold = median(5, || {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let t = Instant::now();
        rt.load(name, wasm).unwrap();
        t.elapsed()
    });
    let dir = tempfile::tempdir().unwrap();
    runtime(dir.path()).load(name, wasm).unwrap();
    let rts: Vec<Runtime> = (0..21).map(|_| runtime(dir.path())).collect();
    let mut it = rts.iter();
    let disk = median(21, || {
        let rt = it.next().unwrap();
        let t = Instant::now();
        rt.load(name, wasm).unwrap();
        t.elapsed()
    });
    let rt = &rts[0];
    let program = rt.load(name, wasm).unwrap();
    let warm = median(201, || {
        let t = Instant::now();
        let o = rt.run(&program, quiet(&[name])).unwrap();
        let d = t.elapsed();
        assert!(o.end.is_ok());
        d
    });
    let loaded_again = median(201, || {
        let t = Instant::now();
        let p = rt.load(name, wasm).unwrap();
        let o = rt.run(&p, quiet(&[name])).unwrap();
        let d = t.elapsed();
        assert!(o.end.is_ok());
        d
    });
    println!(
        "{name:>5} ({:>6} bytes wasm): cold compile+store {:>9.3} ms | load from disk cache {:>7.3} ms | \
         instantiate+run {:>6.3} ms | load(memory hit, incl. sha256 of wasm)+run {:>6.3} ms | cold/warm = {:.0}x",
        wasm.len(),
        ms(cold),
        ms(disk),
        ms(warm),
        ms(loaded_again),
        cold.as_secs_f64() / warm.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench(c: &mut Criterion) {
    let t = Instant::now();
    let engine_rt = Runtime::new(RuntimeConfig::default()).unwrap();
    println!("Runtime::new (engine + linker): {:.3} ms", ms(t.elapsed()));
    drop(engine_rt);
    for name in ["true", "probe"] {
        report_cold_and_disk(name, &guests::guest_bytes(name));
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let wasm = guests::guest_bytes("true");
    let program = rt.load("true", &wasm).unwrap();
    c.bench_function("true: instantiate+run (cached InstancePre)", |b| {
        b.iter(|| rt.run(&program, quiet(&["true"])).unwrap())
    });
    let probe = rt.load("probe", &guests::guest_bytes("probe")).unwrap();
    c.bench_function("probe exit 3: instantiate+run", |b| {
        b.iter(|| rt.run(&probe, quiet(&["probe", "exit", "3"])).unwrap())
    });
    c.bench_function("true: instantiate+run with a 10 s timeout", |b| {
        b.iter(|| {
            let mut inv = quiet(&["true"]);
            inv.timeout = Some(Duration::from_secs(10));
            rt.run(&program, inv).unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
