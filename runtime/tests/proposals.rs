//! Programs users bring may use the common post-MVP proposals: bulk memory,
//! SIMD, tail calls and exception handling. A hand-written WASI command
//! exercises each and prints what it computed; the sandbox must run it.

use kiln_runtime::{Invocation, Runtime, RuntimeConfig};

const MODULE: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (tag $boom (param i32))

  ;; tail calls: count down a million times without growing the stack
  (func $countdown (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call $countdown
              (i32.sub (local.get $n) (i32.const 1))
              (i32.add (local.get $acc) (i32.const 1))))))

  ;; exceptions: throw a value and catch it
  (func $caught (result i32)
    (block $handler (result i32)
      (try_table (catch $boom $handler)
        (throw $boom (i32.const 42)))
      (i32.const -1)))

  (func (export "_start")
    ;; bulk memory: fill 4 bytes with 'x', copy them 4 bytes further
    (memory.fill (i32.const 100) (i32.const 120) (i32.const 4))
    (memory.copy (i32.const 104) (i32.const 100) (i32.const 4))
    ;; SIMD: add two vectors of four i32 and store the sum of lane 0 + 3
    (v128.store (i32.const 200)
      (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 10 20 30 40)))
    ;; checks: lane0 = 11, lane3 = 44, countdown = 1000000, caught = 42
    (if (i32.ne (i32.load (i32.const 200)) (i32.const 11)) (then (call $exit (i32.const 2))))
    (if (i32.ne (i32.load (i32.const 212)) (i32.const 44)) (then (call $exit (i32.const 3))))
    (if (i32.ne (call $countdown (i32.const 1000000) (i32.const 0)) (i32.const 1000000))
      (then (call $exit (i32.const 4))))
    (if (i32.ne (call $caught) (i32.const 42)) (then (call $exit (i32.const 5))))
    ;; print the 8 bytes at 100 ("xxxxxxxx") and a newline
    (i32.store8 (i32.const 108) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
"#;

#[test]
fn bulk_memory_simd_tail_calls_and_exceptions_run() {
    let wasm = wat::parse_str(MODULE).expect("valid module text");
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let program = rt.load("/usr/local/bin/proposals", &wasm).unwrap();
    let out = rt.run(&program, Invocation::new(["proposals"])).unwrap();
    assert_eq!(
        out.end.expect("the program exits normally"),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"xxxxxxxx\n");
}
