//! One WASI program with a mode per behaviour the runtime tests check.
//! Usage: probe MODE [ARGS...]

use std::io::{Read, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    /// WASI p1 `random_get` called directly, so the test sees exactly the
    /// bytes the host hands out.
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let rest = args.get(2..).unwrap_or(&[]);
    match mode {
        "args" => {
            for a in &args {
                println!("arg={a}");
            }
            for (k, v) in std::env::vars() {
                println!("env={k}={v}");
            }
        }
        "exit" => {
            let code: i32 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(1);
            std::process::exit(code);
        }
        "clock" => {
            let w1 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let m1 = Instant::now();
            let w2 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let m2 = Instant::now();
            println!("wall1={}.{:09}", w1.as_secs(), w1.subsec_nanos());
            println!("wall2={}.{:09}", w2.as_secs(), w2.subsec_nanos());
            println!("mono_delta_ns={}", (m2 - m1).as_nanos());
        }
        "random" => {
            let n: usize = rest.first().and_then(|s| s.parse().ok()).unwrap_or(16);
            let mut buf = vec![0u8; n];
            let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
            assert_eq!(errno, 0);
            let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
            println!("{hex}");
        }
        "trap" => core::arch::wasm32::unreachable(),
        "panic" => panic!("probe was asked to panic"),
        "oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut chunk = vec![0u8; 16 << 20];
                chunk[0] = 1;
                hoard.push(chunk);
                std::hint::black_box(&hoard);
            }
        }
        "stack" => {
            println!("{}", recurse(std::hint::black_box(u64::MAX)));
        }
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "write" => {
            let path = &rest[0];
            std::fs::write(path, rest[1].as_bytes()).unwrap();
            let back = std::fs::read_to_string(path).unwrap();
            println!("wrote {path}: {back}");
        }
        "read" => {
            let text = std::fs::read_to_string(&rest[0]);
            match text {
                Ok(t) => print!("{t}"),
                Err(e) => {
                    eprintln!("cannot read {}: {e}", rest[0]);
                    std::process::exit(2);
                }
            }
        }
        "cat" => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).unwrap();
            std::io::stdout().write_all(&input).unwrap();
        }
        "stderr" => {
            eprintln!("to stderr: {}", rest.join(" "));
        }
        other => {
            eprintln!("probe: unknown mode {other:?}");
            std::process::exit(64);
        }
    }
}

fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let pad = std::hint::black_box([n; 16]);
    recurse(std::hint::black_box(n - 1)).wrapping_add(pad[n as usize % 16])
}
