//! Programs users bring: C and C++ compiled for wasm32-wasi by clang with
//! Debian's wasi-libc (what wasi-sdk packages), put in the image, found on
//! PATH by name or with `.wasm`, run by RUN with the step's environment,
//! files and exit status; and a generated module of tens of MB, compiled
//! once per machine however many steps and builds run it.

mod common;

use common::image::Fixture;
use common::require_tool;
use std::path::Path;
use std::process::Command;

const C_SOURCE: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <time.h>
int main(int argc, char **argv) {
    FILE *f = fopen("/c-out.txt", "w");
    if (!f) { perror("fopen"); return 3; }
    fprintf(f, "argc=%d first=%s\n", argc, argc > 1 ? argv[1] : "-");
    DIR *d = opendir("/etc");
    struct dirent *e;
    while (d && (e = readdir(d))) if (e->d_name[0] != '.') fprintf(f, "etc:%s\n", e->d_name);
    fprintf(f, "time=%lld env=%s\n", (long long)time(NULL), getenv("GREETING"));
    fclose(f);
    return argc > 2 ? atoi(argv[2]) : 0;
}
"#;

const CPP_SOURCE: &str = r#"
#include <fstream>
#include <iostream>
#include <map>
#include <string>
int main() {
    std::map<std::string, int> counts;
    std::ifstream in("/etc/words");
    std::string w;
    while (in >> w) counts[w]++;
    std::ofstream out("/cpp-out.txt");
    for (auto &kv : counts) out << kv.first << "=" << kv.second << "\n";
    std::cout << "distinct " << counts.size() << std::endl;
    return 0;
}
"#;

fn compile(compiler: &str, source: &str, ext: &str, out: &Path) {
    let dir = out.parent().unwrap();
    let src = dir.join(format!("prog.{ext}"));
    std::fs::write(&src, source).unwrap();
    let status = Command::new(compiler)
        .args([
            "--target=wasm32-wasi",
            "--sysroot=/usr",
            "-O2",
            "-fno-exceptions",
            "-fuse-ld=lld",
            "-o",
        ])
        .arg(out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "{compiler} failed");
    std::fs::remove_file(src).unwrap();
}

#[test]
fn c_and_cpp_programs_run_in_run_steps() {
    if !require_tool("clang-14") || !require_tool("clang++-14") {
        return;
    }
    let fx = Fixture::new();
    let bin = fx.ctx().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    compile("clang-14", C_SOURCE, "c", &bin.join("hello-c"));
    compile(
        "clang++-14",
        CPP_SOURCE,
        "cpp",
        &bin.join("count-words.wasm"),
    );
    fx.write(&[("words", "b a\nc a b\n")]);
    let img = fx.build(
        "FROM scratch\nCOPY bin /usr/local/bin/\nCOPY words /etc/words\nENV GREETING=hi\n\
         RUN hello-c one && count-words > /stdout.txt\n",
        &["--source-date-epoch", "1700000000"],
    );
    let files = img.files();
    assert_eq!(
        files["c-out.txt"].text(),
        "argc=2 first=one\netc:words\ntime=1700000000 env=hi\n"
    );
    assert_eq!(files["cpp-out.txt"].text(), "a=2\nb=2\nc=1\n");
    assert_eq!(files["stdout.txt"].text(), "distinct 3\n");
    let err = fx.build_err(
        "FROM scratch\nCOPY bin /usr/local/bin/\nRUN hello-c x 7\n",
        &[],
    );
    assert!(err.contains("exit code: 7"), "{err}");
}

/// The module of [`a_large_module_is_compiled_once_per_machine`]: 24 MiB of
/// data and 6000 functions.
const BIG_DATA: usize = 24 << 20;
const BIG_FUNCS: usize = 6000;
const BIG_OPS: usize = 24;

/// Builds `fx`'s context with rawjson progress, compiled modules in
/// `wasm_cache`, and `extra` flags; returns the image, the progress events
/// and the wall time.
fn build_rawjson(
    fx: &Fixture,
    wasm_cache: &Path,
    extra: &[&str],
) -> (
    common::image::Image,
    Vec<serde_json::Value>,
    std::time::Duration,
) {
    let out = fx.fresh("out");
    let output = format!("type=oci,dest={},tar=false,name=big:1", out.display());
    let ctx = fx.ctx();
    let mut args = vec!["build", "--progress=rawjson", "--output", &output];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().expect("utf-8 path"));
    let started = std::time::Instant::now();
    let o = common::kiln_cmd(&fx.cache(), &args)
        .env("KILN_WASM_CACHE", wasm_cache)
        .output()
        .expect("start kiln");
    let took = started.elapsed();
    common::assert_ok(&o, "kiln build");
    let events = String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (common::image::Image::open(&out), events, took)
}

/// A fresh compiled-module cache that already holds kiln's toolbox, as on
/// a machine that has built before: compiling the toolbox takes several
/// seconds and is not what the test is about. The files of the shared
/// cache are linked in after a build that makes sure the toolbox is there.
fn machine_with_toolbox(fx: &Fixture) -> std::path::PathBuf {
    let warm = fx.fresh("warm");
    common::write_tree(&warm, &[("Dockerfile", "FROM scratch\nRUN true\n")]);
    common::image::build_layout(&fx.cache(), &warm, &fx.fresh("out"), "warm:1", &[]);
    let dir = fx.fresh("wasm-modules");
    std::fs::create_dir_all(&dir).unwrap();
    let shared = common::shared_wasm_cache();
    for entry in std::fs::read_dir(&shared).unwrap() {
        let from = entry.unwrap().path();
        let to = dir.join(from.file_name().unwrap());
        if std::fs::hard_link(&from, &to).is_err() {
            // Another test may be replacing the file; a missing or partial
            // copy only means a compilation.
            let _ = std::fs::copy(&from, &to);
        }
    }
    dir
}

/// The names and durations of the finished compile tasks for `program`.
fn compile_tasks(events: &[serde_json::Value], program: &str) -> Vec<(String, f64)> {
    events
        .iter()
        .filter(|e| e["type"] == "task" && e["status"] == "done")
        .filter_map(|e| {
            let name = e["name"].as_str()?;
            (name.starts_with("compiling ") && name.contains(program))
                .then(|| (name.to_string(), e["duration"].as_f64().unwrap_or(0.0)))
        })
        .collect()
}

#[test]
fn a_large_module_is_compiled_once_per_machine() {
    let fx = Fixture::new();
    let module = big_module::BigModule::new(BIG_DATA, BIG_FUNCS, BIG_OPS);
    let wasm = module.encode();
    assert!(wasm.len() > 20 << 20, "only {} bytes", wasm.len());
    let expected = module.expected_stdout();
    std::fs::write(fx.ctx().join("big.wasm"), &wasm).unwrap();
    fx.write(&[(
        "Dockerfile",
        "FROM scratch\nCOPY big.wasm /usr/local/bin/big.wasm\n\
         RUN big > /a.txt\nRUN /usr/local/bin/big.wasm > /b.txt\n",
    )]);
    let machine = machine_with_toolbox(&fx);

    // Two steps run the module; it is compiled once.
    let (first, events, took1) = build_rawjson(&fx, &machine, &[]);
    let compiles = compile_tasks(&events, "big");
    assert_eq!(compiles.len(), 1, "{compiles:?}\n{events:#?}");
    let files = first.files();
    assert_eq!(files["a.txt"].text(), expected);
    assert_eq!(files["b.txt"].text(), expected);

    // Both steps run again, from the compiled module on disk.
    let (second, events, took2) = build_rawjson(&fx, &machine, &["--no-cache"]);
    assert_eq!(compile_tasks(&events, "big"), vec![], "{events:#?}");
    let ran = events
        .iter()
        .filter(|e| e["type"] == "step" && e["status"] == "done")
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("RUN ")))
        .count();
    assert_eq!(ran, 2, "both RUN steps ran again: {events:#?}");
    assert_eq!(second.top_digest(), first.top_digest());

    // Another machine compiles it again.
    let (third, events, took3) = build_rawjson(&fx, &machine_with_toolbox(&fx), &["--no-cache"]);
    assert_eq!(compile_tasks(&events, "big").len(), 1, "{events:#?}");
    assert_eq!(third.top_digest(), first.top_digest());
    eprintln!(
        "big.wasm: {} bytes; compile {:.2}s; builds {:.2}s (compiling), {:.2}s (cached), {:.2}s (compiling)",
        wasm.len(),
        compiles[0].1,
        took1.as_secs_f64(),
        took2.as_secs_f64(),
        took3.as_secs_f64()
    );
}

/// A WASI command module of tens of MB, generated here: a data segment of
/// pseudo-random bytes and thousands of small functions, with a `_start`
/// that prints a checksum of the whole segment and a value computed by
/// several of the functions. [`BigModule::expected_stdout`] computes the
/// same text in Rust from the same bytes and function descriptions.
mod big_module {
    use wasm_encoder::{
        BlockType, CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection,
        Function, FunctionSection, ImportSection, MemArg, MemArgTarget, MemoryType, Module,
        TypeSection, ValType,
    };

    /// Where the data segment starts (page 0 holds the output buffer).
    const DATA_AT: u32 = 65536;
    /// The output text; `_start` fills in the dots.
    const TEMPLATE: &[u8] = b"checksum=........\nresult=........\n";
    /// Where TEMPLATE lives, and where its two hex numbers start.
    const TEXT_AT: u32 = 16;
    const CHECKSUM_AT: u32 = TEXT_AT + 9;
    const RESULT_AT: u32 = TEXT_AT + 25;
    const MULTIPLIER: u32 = 0x9E37_79B1;

    /// One step of a generated function, applied to its running value.
    #[derive(Clone, Copy)]
    enum Op {
        Add(u32),
        Xor(u32),
        Mul(u32),
        Rotl(u32),
        /// `if x & 1 { x ^ a } else { x + b }`.
        Branch(u32, u32),
        /// `n` times `x = rotl(x, 1) ^ c`.
        Repeat(u32, u32),
    }

    impl Op {
        fn apply(self, x: u32) -> u32 {
            match self {
                Op::Add(c) => x.wrapping_add(c),
                Op::Xor(c) => x ^ c,
                Op::Mul(c) => x.wrapping_mul(c),
                Op::Rotl(c) => x.rotate_left(c),
                Op::Branch(a, _) if x & 1 != 0 => x ^ a,
                Op::Branch(_, b) => x.wrapping_add(b),
                Op::Repeat(n, c) => (0..n).fold(x, |x, _| x.rotate_left(1) ^ c),
            }
        }
    }

    /// splitmix64: deterministic and good enough to defeat compression.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn word(&mut self) -> u32 {
            (self.next() >> 32) as u32
        }
    }

    pub struct BigModule {
        data: Vec<u8>,
        funcs: Vec<Vec<Op>>,
        /// Which generated functions `_start` calls, in order.
        called: Vec<usize>,
    }

    impl BigModule {
        /// `data_len` bytes of data (a multiple of 4) and `funcs` functions
        /// of `ops` steps each.
        pub fn new(data_len: usize, funcs: usize, ops: usize) -> BigModule {
            assert_eq!(data_len % 8, 0);
            let mut rng = Rng(0x6b69_6c6e);
            let data = (0..data_len / 8)
                .flat_map(|_| rng.next().to_le_bytes())
                .collect();
            let funcs = (0..funcs)
                .map(|_| {
                    (0..ops)
                        .map(|_| match rng.next() % 6 {
                            0 => Op::Add(rng.word()),
                            1 => Op::Xor(rng.word()),
                            2 => Op::Mul(rng.word() | 1),
                            3 => Op::Rotl(rng.word() % 32),
                            4 => Op::Branch(rng.word(), rng.word()),
                            _ => Op::Repeat(rng.word() % 8 + 1, rng.word()),
                        })
                        .collect()
                })
                .collect::<Vec<Vec<Op>>>();
            let called = (0..8).map(|k| k * (funcs.len() - 1) / 7).collect();
            BigModule {
                data,
                funcs,
                called,
            }
        }

        /// What `_start` writes to stdout.
        pub fn expected_stdout(&self) -> String {
            let mut h = 0u32;
            for w in self.data.chunks_exact(4) {
                let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                h = (h.rotate_left(5) ^ w).wrapping_mul(MULTIPLIER);
            }
            let result = self
                .called
                .iter()
                .fold(h, |x, &f| self.funcs[f].iter().fold(x, |x, op| op.apply(x)));
            format!("checksum={h:08x}\nresult={result:08x}\n")
        }

        /// The module's bytes.
        pub fn encode(&self) -> Vec<u8> {
            // Function indices: 0 fd_write (imported), 1 hex, 2 _start,
            // 3.. the generated ones.
            let mut types = TypeSection::new();
            types.ty().function([ValType::I32; 4], [ValType::I32]);
            types.ty().function([ValType::I32; 2], []);
            types.ty().function([], []);
            types.ty().function([ValType::I32], [ValType::I32]);
            let mut imports = ImportSection::new();
            imports.import(
                "wasi_snapshot_preview1",
                "fd_write",
                EntityType::Function(0),
            );
            let mut functions = FunctionSection::new();
            functions.function(1).function(2);
            for _ in &self.funcs {
                functions.function(3);
            }
            let pages = (DATA_AT as usize + self.data.len()).div_ceil(65536) as u64;
            let mut memories = wasm_encoder::MemorySection::new();
            memories.memory(MemoryType {
                minimum: pages,
                maximum: Some(pages),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            let mut exports = ExportSection::new();
            exports
                .export("memory", ExportKind::Memory, 0)
                .export("_start", ExportKind::Func, 2);
            let mut code = CodeSection::new();
            code.function(&hex_function());
            code.function(&self.start_function());
            for ops in &self.funcs {
                code.function(&generated_function(ops));
            }
            let mut data = DataSection::new();
            data.active(
                0,
                &ConstExpr::i32_const(TEXT_AT as i32),
                TEMPLATE.iter().copied(),
            );
            data.active(
                0,
                &ConstExpr::i32_const(DATA_AT as i32),
                self.data.iter().copied(),
            );
            let mut module = Module::new();
            module
                .section(&types)
                .section(&imports)
                .section(&functions)
                .section(&memories)
                .section(&exports)
                .section(&code)
                .section(&data);
            module.finish()
        }

        fn start_function(&self) -> Function {
            // Locals: 0 address, 1 checksum, 2 result.
            let mut f = Function::new([(3, ValType::I32)]);
            let end = DATA_AT + self.data.len() as u32;
            let word = MemArg {
                offset: 0,
                align: 2,
                target: MemArgTarget::Memory(0),
                ordering: None,
            };
            let mut i = f.instructions();
            i.i32_const(DATA_AT as i32).local_set(0);
            i.loop_(BlockType::Empty)
                .local_get(1)
                .i32_const(5)
                .i32_rotl()
                .local_get(0)
                .i32_load(word)
                .i32_xor()
                .i32_const(MULTIPLIER as i32)
                .i32_mul()
                .local_set(1)
                .local_get(0)
                .i32_const(4)
                .i32_add()
                .local_tee(0)
                .i32_const(end as i32)
                .i32_lt_u()
                .br_if(0)
                .end();
            i.local_get(1);
            for &callee in &self.called {
                i.call(3 + callee as u32);
            }
            i.local_set(2);
            i.local_get(1).i32_const(CHECKSUM_AT as i32).call(1);
            i.local_get(2).i32_const(RESULT_AT as i32).call(1);
            // iovec {TEXT_AT, len} at 0; bytes written go to 8.
            i.i32_const(0).i32_const(TEXT_AT as i32).i32_store(word);
            i.i32_const(4)
                .i32_const(TEMPLATE.len() as i32)
                .i32_store(word);
            i.i32_const(1)
                .i32_const(0)
                .i32_const(1)
                .i32_const(8)
                .call(0)
                .if_(BlockType::Empty)
                .unreachable()
                .end();
            i.end();
            f
        }
    }

    /// `hex(value, at)`: writes `value` as 8 lowercase hex digits at `at`.
    fn hex_function() -> Function {
        // Locals: 0 value, 1 address, 2 digit index, 3 nibble.
        let mut f = Function::new([(2, ValType::I32)]);
        let byte = MemArg {
            offset: 0,
            align: 0,
            target: MemArgTarget::Memory(0),
            ordering: None,
        };
        let mut i = f.instructions();
        i.loop_(BlockType::Empty)
            // nibble = (value >> (28 - 4 * index)) & 15
            .local_get(0)
            .i32_const(28)
            .local_get(2)
            .i32_const(4)
            .i32_mul()
            .i32_sub()
            .i32_shr_u()
            .i32_const(15)
            .i32_and()
            .local_set(3)
            // memory[at + index] = '0' + nibble + 39 * (nibble > 9)
            .local_get(1)
            .local_get(2)
            .i32_add()
            .local_get(3)
            .i32_const(48)
            .i32_add()
            .local_get(3)
            .i32_const(9)
            .i32_gt_u()
            .i32_const(39)
            .i32_mul()
            .i32_add()
            .i32_store8(byte)
            .local_get(2)
            .i32_const(1)
            .i32_add()
            .local_tee(2)
            .i32_const(8)
            .i32_lt_u()
            .br_if(0)
            .end()
            .end();
        f
    }

    /// `f(x)`: `ops` applied to `x` in order.
    fn generated_function(ops: &[Op]) -> Function {
        // Locals: 0 x, 1 loop counter.
        let mut f = Function::new([(1, ValType::I32)]);
        let mut i = f.instructions();
        for op in ops {
            match *op {
                Op::Add(c) => {
                    i.local_get(0).i32_const(c as i32).i32_add().local_set(0);
                }
                Op::Xor(c) => {
                    i.local_get(0).i32_const(c as i32).i32_xor().local_set(0);
                }
                Op::Mul(c) => {
                    i.local_get(0).i32_const(c as i32).i32_mul().local_set(0);
                }
                Op::Rotl(c) => {
                    i.local_get(0).i32_const(c as i32).i32_rotl().local_set(0);
                }
                Op::Branch(a, b) => {
                    i.local_get(0)
                        .i32_const(1)
                        .i32_and()
                        .if_(BlockType::Result(ValType::I32))
                        .local_get(0)
                        .i32_const(a as i32)
                        .i32_xor()
                        .else_()
                        .local_get(0)
                        .i32_const(b as i32)
                        .i32_add()
                        .end()
                        .local_set(0);
                }
                Op::Repeat(n, c) => {
                    i.i32_const(n as i32).local_set(1);
                    i.loop_(BlockType::Empty)
                        .local_get(0)
                        .i32_const(1)
                        .i32_rotl()
                        .i32_const(c as i32)
                        .i32_xor()
                        .local_set(0)
                        .local_get(1)
                        .i32_const(1)
                        .i32_sub()
                        .local_tee(1)
                        .br_if(0)
                        .end();
                }
            }
        }
        i.local_get(0).end();
        f
    }
}
