//! A RUN step end to end inside kiln-runtime: kiln's shell drives toolbox
//! applets and image programs over a shared rootfs, with pipes, redirections,
//! working directories, scripts, and clear errors for native binaries.

use kiln_runtime::shell::Output;
use kiln_runtime::step::{Step, StepConfig};
use kiln_runtime::toolbox::TOOLBOX_WASM;
use kiln_runtime::{Rootfs, RootfsOptions, Runtime, RuntimeConfig};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

fn runtime() -> &'static (Arc<Runtime>, kiln_runtime::Program) {
    static RT: OnceLock<(Arc<Runtime>, kiln_runtime::Program)> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let rt = Arc::new(
            Runtime::new(RuntimeConfig {
                cache_dir: Some(dir),
            })
            .unwrap(),
        );
        let tb = rt.load("kiln-toolbox", TOOLBOX_WASM).unwrap();
        (rt, tb)
    })
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Ran {
    status: i32,
    out: String,
    err: String,
    step: Arc<Step>,
}

fn run_in(root: &Path, argv: &[&str], cwd: &str, env: &[(&str, &str)]) -> Ran {
    let (rt, tb) = runtime();
    let fs = Rootfs::open(
        root,
        RootfsOptions {
            source_date_epoch: 1_700_000_000,
            ..Default::default()
        },
    )
    .unwrap();
    let step = Step::new(
        rt.clone(),
        tb.clone(),
        fs,
        StepConfig {
            source_date_epoch: 1_700_000_000,
            seed: [3; 32],
            memory_limit: 1 << 30,
            timeout: None,
            user: (0, 0),
        },
    );
    let (out, err) = (Buf::default(), Buf::default());
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let status = step.run_argv(
        &argv,
        &env,
        cwd,
        Output::from_writer(out.clone()),
        Output::from_writer(err.clone()),
    );
    Ran {
        status,
        out: out.text(),
        err: err.text(),
        step,
    }
}

fn sh(root: &Path, script: &str) -> Ran {
    run_in(
        root,
        &["/bin/sh", "-c", script],
        "/",
        &[("PATH", "/usr/bin:/bin")],
    )
}

#[test]
fn shell_form_runs_toolbox_applets_with_pipes_and_redirections() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/names"), "carol\nalice\nbob\n").unwrap();
    let r = sh(
        root.path(),
        "set -e; sort /etc/names | head -n 2 > /first; cat /first | tr a-z A-Z; wc -l < /etc/names",
    );
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "ALICE\nBOB\n3\n");
    assert_eq!(
        std::fs::read_to_string(root.path().join("first")).unwrap(),
        "alice\nbob\n"
    );
    let changes = r.step.rootfs().changes();
    assert!(changes.written.contains("/first"), "{changes:?}");
    assert!(changes.created.contains("/first"), "{changes:?}");
}

/// `test -ef` in a real step compares the step filesystem's inode
/// numbers: a hard link made by `ln` is the same file, a copy is not.
#[test]
fn test_ef_knows_hard_links_made_in_the_step() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a"), "a\n").unwrap();
    let r = sh(
        root.path(),
        "ln /a /b; cp /a /c; ln -s /a /l; \
         for p in /b /c /l; do if [ /a -ef $p ]; then echo $p same; else echo $p other; fi; done",
    );
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "/b same\n/c other\n/l same\n");
}

#[test]
fn commands_start_in_the_shells_working_directory() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("app/src")).unwrap();
    std::fs::write(root.path().join("app/src/main.c"), "int main;\n").unwrap();
    let r = run_in(
        root.path(),
        &[
            "/bin/sh",
            "-c",
            "cat src/main.c; cd src && ls && mkdir build && pwd",
        ],
        "/app",
        &[("PATH", "/bin")],
    );
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "int main;\nmain.c\n/app/src\n");
    assert!(root.path().join("app/src/build").is_dir());
}

#[test]
fn environment_is_exactly_what_the_step_gives() {
    let root = tempfile::tempdir().unwrap();
    let r = run_in(
        root.path(),
        &["printenv"],
        "/",
        &[("PATH", "/bin"), ("FOO", "bar")],
    );
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "PATH=/bin\nFOO=bar\n");
}

#[test]
fn native_binaries_fail_with_a_message_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::write(root.path().join("bin/tool"), b"\x7fELF\x02\x01\x01\0junk").unwrap();
    let r = sh(root.path(), "tool --version");
    assert_eq!(r.status, 126);
    assert!(r.err.contains("/bin/tool"), "{}", r.err);
    assert!(r.err.contains("WebAssembly programs only"), "{}", r.err);
    // An ELF under a toolbox applet's name does not hide the applet.
    std::fs::write(root.path().join("bin/ls"), b"\x7fELF\x02\x01\x01\0junk").unwrap();
    let r = sh(root.path(), "ls /");
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "bin\n");
    let r = sh(root.path(), "no-such-command");
    assert_eq!(r.status, 127);
    assert!(r.err.contains("no-such-command: not found"), "{}", r.err);
}

#[test]
fn scripts_with_a_shell_shebang_and_shell_options_run_in_kilns_shell() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::write(
        root.path().join("bin/greet"),
        "#!/bin/bash\necho \"hello $1\" | tr h H\n",
    )
    .unwrap();
    let r = sh(root.path(), "greet world");
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "Hello world\n");
    // SHELL ["/bin/bash", "-o", "pipefail", "-c"]
    let r = run_in(
        root.path(),
        &["/bin/bash", "-o", "pipefail", "-c", "false | cat; echo $?"],
        "/",
        &[("PATH", "/bin")],
    );
    assert_eq!(r.out, "1\n", "stderr: {}", r.err);
}

#[test]
fn same_step_gives_the_same_random_bytes_and_times() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let script = "mktemp -u; date +%s; touch /f; ls -l --time-style=+%s /f | cut -d' ' -f6-";
    let ra = sh(a.path(), script);
    let rb = sh(b.path(), script);
    assert_eq!(ra.status, 0, "stderr: {}", ra.err);
    assert_eq!(ra.out, rb.out);
    assert!(ra.out.contains("1700000000"), "{}", ra.out);
}

/// A WASI command that prints `text` and a newline.
fn printer(text: &str) -> Vec<u8> {
    let len = text.len() + 1;
    wat::parse_str(format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "{text}\n")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const {len}))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    ))
    .unwrap()
}

#[test]
fn image_modules_run_and_a_rewritten_module_is_loaded_again() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::write(root.path().join("bin/hello.wasm"), printer("first")).unwrap();
    std::fs::write(root.path().join("bin/other"), printer("second")).unwrap();
    let r = sh(
        root.path(),
        "hello; hello; cp /bin/other /bin/hello.wasm && hello && /bin/other",
    );
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, "first\nfirst\nsecond\nsecond\n");
}

#[test]
fn dev_files_work_like_dockers_without_touching_the_rootfs() {
    // No /dev in the image (FROM scratch): the devices are there anyway.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("tmp")).unwrap();
    let r = sh(
        root.path(),
        "set -e
         cat /dev/null; echo a | tee /dev/null
         head -c 4 /dev/zero | od -An -tx1
         cp /dev/null /tmp/empty; wc -c < /tmp/empty
         head -c 32 /dev/zero > /tmp/zeros; wc -c < /tmp/zeros
         [ -c /dev/null ] && echo char
         ls -l /dev/null | cut -c1-10
         touch /dev/null; chmod 600 /dev/null; ls -l /dev/null | cut -c1-10
         cd /tmp && head -c 2 ../dev/zero | od -An -tx1
         echo to-stderr | tee /dev/stderr > /dev/null
         ln -s /dev/stdout /tmp/log && echo via-link > /tmp/log
         ln -s ../dev/zero /tmp/z && head -c 1 /tmp/z | od -An -tx1
         echo dup | tee /dev/stdout
         if echo x > /dev/full; then echo wrote; else echo full; fi",
    );
    assert_eq!(r.status, 0, "stdout: {}\nstderr: {}", r.out, r.err);
    assert_eq!(
        r.out,
        "a\n 00 00 00 00\n0\n32\nchar\n-rw-rw-rw-\n-rw-rw-rw-\n 00 00\nvia-link\n 00\ndup\ndup\nfull\n"
    );
    assert!(r.err.contains("to-stderr"), "stderr: {}", r.err);
    assert!(
        !root.path().join("dev").exists(),
        "a /dev was made on the host"
    );
    let changes = r.step.rootfs().changes();
    assert!(
        changes.touched().iter().all(|p| !p.starts_with("/dev")),
        "{changes:?}"
    );
}

#[test]
fn dev_urandom_gives_the_steps_seeded_bytes() {
    let draw = "head -c 16 /dev/urandom | od -An -tx1; od -An -tx1 -N 8 /dev/random";
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = sh(a.path(), draw);
    let second = sh(b.path(), draw);
    assert_eq!(first.status, 0, "stderr: {}", first.err);
    assert_eq!(first.out, second.out, "the same step drew different bytes");
    let lines: Vec<&str> = first.out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", first.out);
    assert_ne!(
        lines[0].trim(),
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    );
    // Each read draws new bytes: a second command in the step differs.
    assert_ne!(lines[0].get(..24), lines[1].get(..24));
}

/// The start of what the shell says when nesting goes too deep.
fn too_deep(what: &str) -> String {
    format!(
        "{what}: nesting too deep (more than {} levels",
        kiln_runtime::shell::MAX_NEST
    )
}

#[test]
fn a_script_running_itself_fails_cleanly_instead_of_crashing() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("s"), "sh /s\n").unwrap();
    std::fs::write(root.path().join("b"), "bash -c 'dash /b'\n").unwrap();
    std::fs::write(root.path().join("x"), "#!/bin/sh\n/x\n").unwrap();
    for (script, innermost) in [("sh /s", "sh: /s"), ("sh /b", "sh: "), ("/x", "sh: /x")] {
        let r = sh(root.path(), script);
        assert_eq!(r.status, 2, "{script}: {}", r.err);
        // Said once, by the innermost shell; the others just fail.
        assert_eq!(r.err.matches("nesting too deep").count(), 1, "{}", r.err);
        assert!(r.err.starts_with(innermost), "{}", r.err);
        assert!(r.err.contains(&too_deep("")), "{}", r.err);
    }
}

#[test]
fn nesting_up_to_the_cap_works_and_one_level_more_fails_cleanly() {
    // Each round nests four levels (a function, eval, `.`, and a shell run
    // as a command) inside 100 nested braces, so the deepest allowed mix
    // also has to fit the stack.
    let root = tempfile::tempdir().unwrap();
    let body = format!("{}eval '. /m2'{}", "{ ".repeat(100), "; }".repeat(100));
    std::fs::write(
        root.path().join("m"),
        format!("n=$1 max=$2\nf() {{ {body}; }}\nf\n"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("m2"),
        "if [ $((n + 4)) -le $max ]; then sh /m $((n + 4)) $max; else echo deepest $((n + 3)); fi\n",
    )
    .unwrap();
    let cap = kiln_runtime::shell::MAX_NEST;
    assert_eq!(cap % 4, 0, "the rounds end exactly at the cap");
    let env = [("PATH", "/bin")];
    let r = run_in(root.path(), &["sh", "/m", "1", &cap.to_string()], "/", &env);
    assert_eq!(r.status, 0, "stderr: {}", r.err);
    assert_eq!(r.out, format!("deepest {cap}\n"));
    let beyond = (cap + 1).to_string();
    let r = run_in(root.path(), &["sh", "/m", "1", &beyond], "/", &env);
    assert_eq!((r.status, r.out.as_str()), (2, ""), "stderr: {}", r.err);
    assert!(r.err.starts_with(&too_deep("sh: /m")), "{}", r.err);
}

#[test]
fn programs_starting_programs_count_against_the_same_cap() {
    // `env` (a toolbox program) starts the shell through kiln.spawn: two
    // levels a round, so the last round to start is at level 999.
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("e"),
        "echo $1 > /level\nenv sh /e $(($1 + 2)) > /dev/null 2>&1\n",
    )
    .unwrap();
    let r = run_in(root.path(), &["sh", "/e", "1"], "/", &[("PATH", "/bin")]);
    assert_eq!(r.status, 2, "stderr: {}", r.err);
    let deepest = std::fs::read_to_string(root.path().join("level")).unwrap();
    assert_eq!(
        deepest.trim(),
        (kiln_runtime::shell::MAX_NEST - 1).to_string()
    );
    // With output going through the shell (a pump thread per stream and
    // level), the step's thread budget runs out first: a clean error too.
    std::fs::write(root.path().join("p"), "env sh /p\n").unwrap();
    let r = run_in(root.path(), &["sh", "/p"], "/", &[("PATH", "/bin")]);
    assert_ne!(r.status, 0);
    assert!(
        r.err.contains("too many threads running in this step"),
        "{}",
        r.err
    );
}

#[test]
fn programs_get_their_whole_stack_whatever_thread_starts_them() {
    // A program that recurses until its call stack (MAX_WASM_STACK) runs
    // out, started through nested `env`s (exec form: no shell thread) on a
    // thread with far less stack than that: it ends with a stack-overflow
    // trap, instead of overflowing the thread's stack and aborting kiln.
    let deep = wat::parse_str(
        r#"(module
          (memory (export "memory") 1)
          (func $down (param i64) (result i64)
            (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (local.get 0)))
          (func (export "_start") (drop (call $down (i64.const 0)))))"#,
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::write(root.path().join("bin/deep"), deep).unwrap();
    runtime();
    let dir = root.path().to_path_buf();
    let r = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let mut argv = vec!["env"; 20];
            argv.push("/bin/deep");
            let r = run_in(&dir, &argv, "/", &[("PATH", "/bin")]);
            (r.status, r.err)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(r.0, 134, "stderr: {}", r.1);
    assert!(r.1.contains("stack overflow"), "{}", r.1);
}
