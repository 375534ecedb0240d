//! Helpers shared by the end-to-end tests: running the real `kiln` binary
//! and finding the real tools its output is checked with.
#![allow(dead_code)]

pub mod image;
pub mod registry;
pub mod token_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `kiln` binary cargo built for these tests.
pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `kiln ARGS` with its own cache dir, SOURCE_DATE_EPOCH unset, and
/// returns the output (whatever the exit status).
pub fn kiln(cache: &Path, args: &[&str]) -> Output {
    kiln_cmd(cache, args).output().expect("start kiln")
}

pub fn kiln_cmd(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(kiln_bin());
    cmd.env("KILN_CACHE_DIR", cache)
        // Compiled WebAssembly is shared by every test (compiling the
        // toolbox takes seconds); what a build produces never depends on it.
        .env("KILN_WASM_CACHE", shared_wasm_cache())
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("DOCKER_DEFAULT_PLATFORM")
        // Never the user's registry credentials: a config dir that does not
        // exist unless a test writes one (tests that log in set their own).
        .env("DOCKER_CONFIG", cache.with_extension("docker-config"))
        .args(args);
    cmd
}

/// `kiln` run by user and group `uid` through `setpriv`: no capabilities,
/// no supplementary groups, no way to gain privileges.
pub fn kiln_as_user(uid: u32) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ])
    .arg(kiln_bin());
    c
}

/// The compiled-module cache all tests share.
pub fn shared_wasm_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-wasm-modules")
}

/// Runs `cmd` with `input` on its standard input and collects its output.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait for the command")
}

/// A finished command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts `o` succeeded (showing its stderr if not); returns its stdout,
/// trimmed.
pub fn assert_ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}",
        o.status,
        stderr(o)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Asserts `o` failed without a panic; returns its stderr.
pub fn assert_failed_cleanly(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "{what} unexpectedly succeeded:\n{err}");
    assert!(!err.contains("panicked"), "{what} panicked:\n{err}");
    err
}

/// Runs kiln and panics with its stderr unless it succeeded; returns stdout.
pub fn kiln_ok(cache: &Path, args: &[&str]) -> String {
    let out = kiln(cache, args);
    assert!(
        out.status.success(),
        "kiln {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs kiln, asserts it failed without panicking, and returns stderr.
pub fn kiln_err(cache: &Path, args: &[&str]) -> String {
    let out = kiln(cache, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kiln {args:?} unexpectedly succeeded"
    );
    assert!(
        !stderr.contains("panicked"),
        "kiln {args:?} panicked:\n{stderr}"
    );
    stderr
}

/// Whether `tool` is on PATH. Missing tools fail the test in CI and skip it
/// (with a message) elsewhere.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required in CI (.ci/run installs it) but is not on PATH");
        }
        eprintln!("SKIP: {tool} not installed; install it (see .ci/run) to run this test");
    }
    found
}

/// Runs a command and panics with its output unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `files` (path, contents) under `dir`, creating parents.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
    }
}

/// `$KILN_CONFORMANCE_DIR/SUB` (default `<repo>/../shared/conformance/SUB`).
/// Missing data fails the test in CI and skips it elsewhere (None).
pub fn conformance_dir(sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("KILN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/conformance"));
    let dir = root.join(sub);
    if dir.exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("conformance data missing at {}", dir.display());
    }
    eprintln!(
        "SKIP: conformance data not found at {} (set KILN_CONFORMANCE_DIR)",
        dir.display()
    );
    None
}

/// The `NAME/Dockerfile` cases below `dir`, sorted by name.
pub fn case_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Dockerfile").is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}
