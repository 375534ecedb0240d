//! The embedded toolbox runs real commands in the sandbox: output checked
//! against known answers, against the sha2 crate and, where the host has
//! them, against GNU coreutils; the compiled toolbox is reused from the disk
//! cache by a second runtime.

use kiln_runtime::toolbox::{self, TOOLBOX_WASM};
use kiln_runtime::{Invocation, Program, Runtime, RuntimeConfig, Stdin};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// One runtime and the loaded toolbox for the whole test binary (compiling
/// the module takes seconds), with a cache directory that outlives it.
struct Shared {
    runtime: Runtime,
    program: Program,
    cache_dir: PathBuf,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cache_dir = tempfile::tempdir().expect("cache dir").keep();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir.clone()),
        })
        .expect("runtime");
        let start = Instant::now();
        let program = runtime
            .load("kiln-toolbox", TOOLBOX_WASM)
            .expect("load toolbox");
        eprintln!(
            "toolbox: {} bytes, cold load (compile) {:?}",
            TOOLBOX_WASM.len(),
            start.elapsed()
        );
        Shared {
            runtime,
            program,
            cache_dir,
        }
    })
}

/// What one command did.
struct Ran {
    status: u8,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `args` (args[0] names the applet) with `root` mounted at `/`.
fn run(args: &[&str], root: Option<&Path>, stdin: &[u8]) -> Ran {
    let s = shared();
    let mut inv = Invocation::new(args.iter().copied());
    inv.root = root.map(Path::to_path_buf);
    inv.stdin = Stdin::Bytes(stdin.to_vec());
    let outcome = s.runtime.run(&s.program, inv).expect("sandbox setup");
    let stderr = String::from_utf8_lossy(&outcome.stderr).into_owned();
    let status = match outcome.end {
        Ok(status) => status,
        Err(e) => panic!("{args:?} did not exit normally: {e}\nstderr: {stderr}"),
    };
    Ran {
        status,
        stdout: outcome.stdout,
        stderr,
    }
}

/// Runs `args` and insists on status 0.
fn ok(args: &[&str], root: Option<&Path>, stdin: &[u8]) -> String {
    let ran = run(args, root, stdin);
    assert_eq!(ran.status, 0, "{args:?} failed: {}", ran.stderr);
    ran.out()
}

/// The same command with the host's GNU tool in `dir`, or `None` when the
/// host has no such tool (then only the known answer is checked).
fn gnu(args: &[&str], dir: &Path, stdin: &[u8]) -> Option<String> {
    let tool = Path::new("/usr/bin").join(args[0]);
    if !tool.is_file() {
        return None;
    }
    let mut child = Command::new(tool)
        .args(&args[1..])
        .current_dir(dir)
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write as _;
    child.stdin.take()?.write_all(stdin).ok()?;
    let out = child.wait_with_output().ok()?;
    assert!(out.status.success(), "GNU {args:?} failed");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fruit.txt"), "pear\napple\nfig\nbanana\n").expect("write");
    std::fs::create_dir(dir.path().join("d")).expect("mkdir");
    for name in ["b", "a", "c"] {
        std::fs::write(dir.path().join("d").join(name), name).expect("write");
    }
    dir
}

#[test]
fn names_are_sorted_and_cover_the_wasm_set_and_sed() {
    let names = toolbox::names();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not sorted: {names:?}"
    );
    assert!(names.len() >= 80, "only {} applets", names.len());
    for name in [
        "cat",
        "ls",
        "sort",
        "sha256sum",
        "mkdir",
        "seq",
        "tr",
        "[",
        "test",
        "sed",
    ] {
        assert!(toolbox::provides(name), "{name} missing");
    }
    for name in ["bash", "", "/bin/ls", "LS", "kiln-toolbox"] {
        assert!(!toolbox::provides(name), "{name:?} should not be provided");
    }
}

#[test]
fn list_prints_exactly_the_names() {
    let out = ok(&["kiln-toolbox", "--list"], None, b"");
    let listed: Vec<&str> = out.lines().collect();
    assert_eq!(listed, toolbox::names());
}

#[test]
fn echo_and_the_multicall_form() {
    assert_eq!(ok(&["echo", "hello"], None, b""), "hello\n");
    assert_eq!(ok(&["/usr/bin/echo", "-n", "hi"], None, b""), "hi");
    assert_eq!(ok(&["kiln-toolbox", "echo", "a", "b"], None, b""), "a b\n");
}

#[test]
fn cat_ls_of_a_root() {
    let root = rootfs();
    let r = Some(root.path());
    assert_eq!(
        ok(&["cat", "/fruit.txt"], r, b""),
        "pear\napple\nfig\nbanana\n"
    );
    assert_eq!(ok(&["ls", "/d"], r, b""), "a\nb\nc\n");
    let missing = run(&["cat", "/nope"], r, b"");
    assert_eq!(missing.status, 1);
    assert!(missing.stderr.contains("/nope"), "{}", missing.stderr);
}

#[test]
fn text_tools_match_gnu() {
    let root = rootfs();
    let r = Some(root.path());
    let input = b"pear\napple\nfig\nbanana\n";
    let cases: &[(&[&str], &[u8], &str)] = &[
        (&["sort"], input, "apple\nbanana\nfig\npear\n"),
        (
            &["sort", "-r", "fruit.txt"],
            b"",
            "pear\nfig\nbanana\napple\n",
        ),
        (&["wc", "-l"], input, "4\n"),
        (&["head", "-n", "2"], input, "pear\napple\n"),
        (&["tail", "-n", "1"], input, "banana\n"),
        (&["seq", "3"], b"", "1\n2\n3\n"),
        (&["tr", "a-z", "A-Z"], b"hello, World\n", "HELLO, WORLD\n"),
        (&["cut", "-c", "1-2"], input, "pe\nap\nfi\nba\n"),
        (&["uniq", "-c"], b"a\na\nb\n", "      2 a\n      1 b\n"),
    ];
    for (args, stdin, expected) in cases {
        let ours = ok(args, r, stdin);
        assert_eq!(ours, *expected, "{args:?}");
        if let Some(theirs) = gnu(args, root.path(), stdin) {
            assert_eq!(ours, theirs, "{args:?} differs from GNU");
        }
    }
}

#[test]
fn sha256sum_matches_sha2() {
    let root = rootfs();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.path().join("blob"), &data).expect("write");
    let out = ok(&["sha256sum", "/blob"], Some(root.path()), b"");
    let expected = format!("{}  /blob\n", hex::encode(Sha256::digest(&data)));
    assert_eq!(out, expected);
}

#[test]
fn mkdir_p_writes_to_the_host_root() {
    let root = rootfs();
    ok(&["mkdir", "-p", "/x/y/z"], Some(root.path()), b"");
    assert!(root.path().join("x/y/z").is_dir());
    // Again: -p accepts what exists; without -p it is an error.
    ok(&["mkdir", "-p", "/x/y/z"], Some(root.path()), b"");
    let again = run(&["mkdir", "/x"], Some(root.path()), b"");
    assert_eq!(again.status, 1, "{}", again.stderr);
}

#[test]
fn sed_substitutes() {
    assert_eq!(ok(&["sed", "s/a/b/"], None, b"banana\n"), "bbnana\n");
    assert_eq!(ok(&["sed", "-n", "2p"], None, b"1\n2\n3\n"), "2\n");
    let root = rootfs();
    let args = ["sed", "-e", "s/a/A/g", "fruit.txt"];
    let ours = ok(&args, Some(root.path()), b"");
    assert_eq!(ours, "peAr\nApple\nfig\nbAnAnA\n");
    if let Some(theirs) = gnu(&args, root.path(), b"") {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn exit_statuses_pass_through() {
    assert_eq!(run(&["true"], None, b"").status, 0);
    assert_eq!(run(&["false"], None, b"").status, 1);
    assert_eq!(run(&["[", "a", "=", "a", "]"], None, b"").status, 0);
    assert_eq!(run(&["test", "a", "=", "b"], None, b"").status, 1);
}

#[test]
fn unknown_applet_is_a_clear_error() {
    for args in [
        &["nosuchtool", "x"][..],
        &["kiln-toolbox", "nosuchtool"][..],
    ] {
        let ran = run(args, None, b"");
        assert_eq!(ran.status, 127, "{args:?}");
        assert!(
            ran.stderr.contains("nosuchtool") && ran.stderr.contains("applet not found"),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(ran.stdout.is_empty());
    }
    let bare = run(&["kiln-toolbox"], None, b"");
    assert_ne!(bare.status, 0);
    assert!(bare.stderr.contains("--list"), "{}", bare.stderr);
}

#[test]
fn second_runtime_loads_the_toolbox_from_the_disk_cache() {
    let s = shared();
    let again = Runtime::new(RuntimeConfig {
        cache_dir: Some(s.cache_dir.clone()),
    })
    .expect("runtime");
    let start = Instant::now();
    let program = again.load("kiln-toolbox", TOOLBOX_WASM).expect("load");
    let took = start.elapsed();
    eprintln!("toolbox: cached load {took:?}");
    let stats = again.cache_stats();
    assert_eq!(stats.disk_hits, 1, "{stats:?}");
    assert_eq!(stats.compiled, 0, "{stats:?}");
    let outcome = again
        .run(&program, Invocation::new(["echo", "cached"]))
        .expect("run");
    assert_eq!(outcome.end.ok(), Some(0));
    assert_eq!(outcome.stdout, b"cached\n");
}

#[test]
fn tac_reverses_lines() {
    let input = b"1\n2\n3\n";
    let ours = ok(&["tac"], None, input);
    assert_eq!(ours, "3\n2\n1\n");
    if let Some(theirs) = gnu(&["tac"], Path::new("/"), input) {
        assert_eq!(ours, theirs);
    }
}

/// Every applet's messages are embedded: `--help` shows text, not the
/// message ids (`ls-about`) uucore falls back to when they are missing.
#[test]
fn every_applet_has_its_messages() {
    for name in toolbox::names() {
        if ["[", "echo", "false", "true", "test", "sed"].contains(name) {
            continue; // --help is an operand, or no message catalogue
        }
        let ran = run(&[name, "--help"], None, b"");
        let out = ran.out();
        assert_eq!(ran.status, 0, "{name} --help: {}", ran.stderr);
        assert!(out.len() > 40, "{name} --help printed {out:?}");
        for id in ["-about", "-usage"] {
            assert!(
                !out.contains(&format!("{name}{id}")),
                "{name} --help shows a raw message id: {out}"
            );
        }
    }
}

/// dd is kiln's own (uu_dd needs a thread): bad operands and unreadable
/// input are `dd: ...` errors with status 1, and the report is GNU's.
#[test]
fn dd_reports_errors_and_records_like_gnu() {
    let root = rootfs();
    for (args, want) in [
        (&["dd", "bs=x"][..], "dd: invalid number: 'x'"),
        (&["dd", "foo=1"][..], "dd: unrecognized operand 'foo=1'"),
        (&["dd", "conv=bogus"][..], "dd: invalid conversion: 'bogus'"),
        (
            &["dd", "if=/missing.txt"][..],
            "dd: failed to open '/missing.txt': No such file or directory",
        ),
    ] {
        let ran = run(args, Some(root.path()), b"");
        assert_eq!(ran.status, 1, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.starts_with(want), "{args:?}: {}", ran.stderr);
        assert!(ran.stdout.is_empty(), "{args:?}");
    }

    let ran = run(&["dd", "bs=2"], None, b"abcde");
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert_eq!(ran.out(), "abcde");
    assert!(
        ran.stderr
            .starts_with("2+1 records in\n2+1 records out\n5 bytes copied, "),
        "{}",
        ran.stderr
    );
    let ran = run(&["dd", "of=/out", "bs=1K"], Some(root.path()), &[0; 1024]);
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert!(
        ran.stderr
            .starts_with("1+0 records in\n1+0 records out\n1024 bytes (1.0 kB, 1.0 KiB) copied, "),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.ends_with("B/s\n"), "{}", ran.stderr);
    assert_eq!(
        std::fs::read(root.path().join("out")).ok(),
        Some(vec![0; 1024])
    );
    let ran = run(
        &["dd", "bs=1000", "count=1", "status=noxfer"],
        None,
        &[7; 1000],
    );
    assert_eq!(ran.stderr, "1+0 records in\n1+0 records out\n");
    assert_eq!(ran.stdout, vec![7; 1000]);
    let ran = run(&["dd", "status=none"], None, b"quiet");
    assert_eq!((ran.out().as_str(), ran.stderr.as_str()), ("quiet", ""));
}

/// nice and nohup are kiln's own (uu_nice tried to exec); running their
/// command needs a step's spawn, which differential_gnu covers.
#[test]
fn nice_prints_the_niceness_and_nohup_needs_a_command() {
    assert_eq!(ok(&["nice"], None, b""), "0\n");
    let ran = run(&["nice", "-n", "x", "true"], None, b"");
    assert_eq!(ran.status, 125);
    assert!(
        ran.stderr.contains("invalid adjustment 'x'"),
        "{}",
        ran.stderr
    );
    let ran = run(&["nohup"], None, b"");
    assert_eq!(ran.status, 125);
    assert!(
        ran.stderr.starts_with("nohup: missing operand"),
        "{}",
        ran.stderr
    );
}

/// hostname prints the fixed RUN host name (the one `uname -n` prints) and
/// refuses to change it like an unprivileged GNU hostname.
#[test]
fn hostname_is_fixed_and_cannot_be_set() {
    let uname = ok(&["uname", "-n"], None, b"");
    assert_eq!(ok(&["hostname"], None, b""), uname);
    assert_eq!(uname, "localhost\n");
    assert_eq!(ok(&["hostname", "-s"], None, b""), "localhost\n");
    assert_eq!(ok(&["hostname", "-i"], None, b""), "127.0.0.1\n");
    let ran = run(&["hostname", "foo"], None, b"");
    assert_eq!(ran.status, 1);
    assert_eq!(
        ran.stderr,
        "hostname: you must be root to change the host name\n"
    );
}

/// du's disk usage is deterministic: files round up to 4 KiB blocks,
/// directories count 4 KiB, symbolic links nothing, hard links once.
#[test]
fn du_counts_documented_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().join("t");
    std::fs::create_dir_all(t.join("sub")).expect("mkdir");
    std::fs::write(t.join("big"), vec![b'x'; 5000]).expect("write");
    std::fs::write(t.join("one"), "1").expect("write");
    std::fs::write(t.join("sub/zero"), "").expect("write");
    std::fs::write(t.join("sub/mb"), vec![0u8; 1536 * 1024]).expect("write");
    let root = Some(dir.path());
    // 8K + 4K + (4K + 0 + 1536K) + 4K
    assert_eq!(ok(&["du", "-s", "/t"], root, b""), "1556\t/t\n");
    assert_eq!(ok(&["du", "-sh", "/t"], root, b""), "1.6M\t/t\n");
    assert_eq!(
        ok(&["du", "-ah", "/t"], root, b""),
        "8.0K\t/t/big\n4.0K\t/t/one\n1.5M\t/t/sub/mb\n0\t/t/sub/zero\n1.6M\t/t/sub\n1.6M\t/t\n"
    );
    assert_eq!(
        ok(&["du", "-c", "-d", "0", "/t/big", "/t/one"], root, b""),
        "8\t/t/big\n4\t/t/one\n12\ttotal\n"
    );
    assert_eq!(
        ok(&["du", "-sb", "/t"], root, b""),
        format!("{}\t/t\n", 5000 + 1 + 1536 * 1024 + 2 * 4096)
    );
    assert_eq!(ok(&["du", "-sm", "/t/sub"], root, b""), "2\t/t/sub\n");
    // A hard link to the 1.5M file under another directory counts nothing.
    std::fs::create_dir(dir.path().join("l")).expect("mkdir");
    std::fs::hard_link(t.join("sub/mb"), dir.path().join("l/mb")).expect("link");
    assert_eq!(
        ok(&["du", "-s", "/"], root, b""),
        format!("{}\t/\n", 1556 + 4 + 4)
    );
    let ran = run(&["du", "/nope"], root, b"");
    assert_eq!(ran.status, 1);
    assert_eq!(
        ran.stderr,
        "du: cannot access '/nope': No such file or directory\n"
    );
}

/// kiln's own applets word I/O errors as the C library does, never with
/// Rust's " (os error N)" tail (WASI's errno numbers are not Linux's).
#[test]
fn io_errors_never_show_a_raw_errno() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    for args in [
        &["gzip", "/nope"][..],
        &["gzip", "-d", "/nope.gz"],
        &["tar", "cf", "/no/dir/x.tar", "/etc"],
        &["tar", "xf", "/nope.tar"],
        &["grep", "x", "/nope"],
        &["find", "/nope"],
        &["xargs", "-a", "/nope", "echo"],
        &["dd", "if=/nope"],
    ] {
        let ran = run(args, Some(root.path()), b"");
        assert_ne!(ran.status, 0, "{args:?} succeeded");
        assert!(!ran.stderr.contains("os error"), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("No such file or directory"),
            "{args:?}: {}",
            ran.stderr
        );
    }
    // The account applets read /etc/passwd and /etc/group: here directories.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/passwd")).unwrap();
    std::fs::create_dir_all(root.path().join("etc/group")).unwrap();
    for args in [&["useradd", "bob"][..], &["groupadd", "staff"]] {
        let ran = run(args, Some(root.path()), b"");
        assert_ne!(ran.status, 0, "{args:?} succeeded");
        assert!(!ran.stderr.contains("os error"), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("Is a directory"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}
