//! The toolbox's own applets (grep, find, xargs, env, which) in the sandbox,
//! against known answers and, where the host has them, the GNU tools run on
//! an identical host tree. Commands that find -exec, xargs and env ask kiln
//! to run go through a spawner that runs them with the same toolbox.

use kiln_runtime::toolbox::{self, TOOLBOX_WASM};
use kiln_runtime::{Invocation, Program, Runtime, RuntimeConfig, SpawnRequest, Spawner, Stdin};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

struct Shared {
    runtime: Runtime,
    program: Program,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cache_dir = tempfile::tempdir().expect("cache dir").keep();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir),
        })
        .expect("runtime");
        let program = runtime
            .load("kiln-toolbox", TOOLBOX_WASM)
            .expect("load toolbox");
        Shared { runtime, program }
    })
}

/// What one command (and the commands it spawned) did.
struct Ran {
    status: u8,
    stdout: String,
    stderr: String,
    /// Standard output of the spawned commands, in order.
    children: String,
    /// Every request the spawner saw.
    requests: Vec<SpawnRequest>,
}

#[derive(Default)]
struct Spawned {
    stdout: Vec<u8>,
    requests: Vec<SpawnRequest>,
}

/// Runs requests with the toolbox (an applet named by argv[0]'s base name;
/// anything else is not found, 127) in the same root; their stdout goes to
/// `log`.
fn spawner(root: PathBuf, log: Arc<Mutex<Spawned>>) -> Spawner {
    Arc::new(move |req: SpawnRequest| {
        log.lock().expect("log").requests.push(req.clone());
        let name = req.argv[0].rsplit('/').next().unwrap_or_default();
        if !toolbox::provides(name) {
            return 127;
        }
        let s = shared();
        let mut inv = Invocation::new(req.argv.iter().cloned());
        inv.env = req.env;
        inv.cwd = req.cwd;
        inv.root = Some(root.clone());
        inv.spawner = Some(spawner(root.clone(), log.clone()));
        let outcome = s.runtime.run(&s.program, inv).expect("sandbox setup");
        log.lock()
            .expect("log")
            .stdout
            .extend_from_slice(&outcome.stdout);
        eprint!("{}", String::from_utf8_lossy(&outcome.stderr));
        outcome.end.unwrap_or(255)
    })
}

fn run_env(args: &[&str], root: &Path, stdin: &[u8], env: &[(&str, &str)]) -> Ran {
    let s = shared();
    let log = Arc::new(Mutex::new(Spawned::default()));
    let mut inv = Invocation::new(args.iter().copied());
    inv.root = Some(root.to_path_buf());
    inv.stdin = Stdin::Bytes(stdin.to_vec());
    inv.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    inv.spawner = Some(spawner(root.to_path_buf(), log.clone()));
    let outcome = s.runtime.run(&s.program, inv).expect("sandbox setup");
    let stderr = String::from_utf8_lossy(&outcome.stderr).into_owned();
    let status = match outcome.end {
        Ok(status) => status,
        Err(e) => panic!("{args:?} did not exit normally: {e}\nstderr: {stderr}"),
    };
    let log = std::mem::take(&mut *log.lock().expect("log"));
    Ran {
        status,
        stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
        stderr,
        children: String::from_utf8_lossy(&log.stdout).into_owned(),
        requests: log.requests,
    }
}

fn run(args: &[&str], root: &Path, stdin: &[u8]) -> Ran {
    run_env(args, root, stdin, &[])
}

/// What the host's GNU tool prints and returns for the same command in
/// `dir`, or `None` when the host lacks it.
struct Gnu {
    status: u8,
    stdout: String,
    stderr: String,
}

fn gnu(args: &[&str], dir: &Path, stdin: &[u8]) -> Option<Gnu> {
    let tool = Path::new("/usr/bin").join(args[0]);
    if !tool.is_file() {
        return None;
    }
    let mut child = Command::new(tool)
        .arg0(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write as _;
    child.stdin.take()?.write_all(stdin).ok()?;
    let out = child.wait_with_output().ok()?;
    Some(Gnu {
        status: out.status.code()? as u8,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

/// A small tree for grep and find.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "fruit.txt", "pear\napple\nfig\nbanana\nApricot\n");
    write(r, "veg.txt", "leek\nbean\npea\n");
    write(r, "words.txt", "this is it\npeas and pea\nisn't\nmiss is\n");
    write(
        r,
        "special.txt",
        "a.b\naxb\nxx xxx\nabab\nnum 42 here\n[x] $5 ^up\nback\\slash\n",
    );
    write(r, "pats.txt", "fig\n^ban\n");
    write(r, "bin.dat", "alpha\0beta\nalpha\n");
    write(r, "d/a.txt", "alpha\n");
    write(r, "d/b.log", "beta\nalpha\n");
    write(r, "d/sub/c.txt", &"x".repeat(3000));
    write(r, "d/sub/empty", "");
    std::fs::create_dir_all(r.join("d/hollow")).expect("mkdir");
    std::os::unix::fs::symlink("a.txt", r.join("d/link")).expect("symlink");
    dir
}

#[test]
fn grep_matches_gnu() {
    let t = tree();
    let cases: &[&[&str]] = &[
        &["grep", "an", "fruit.txt"],
        &["grep", "-v", "an", "fruit.txt"],
        &["grep", "-c", "a", "fruit.txt", "veg.txt"],
        &["grep", "-n", "^b", "fruit.txt"],
        &["grep", "-i", "APPLE", "fruit.txt"],
        &["grep", "-in", "ap", "fruit.txt"],
        &["grep", "-w", "pea", "words.txt", "veg.txt"],
        &["grep", "-w", "is", "words.txt"],
        &["grep", "-ow", "is", "words.txt"],
        &["grep", "-x", "fig", "fruit.txt"],
        &["grep", "-xF", "pea", "veg.txt", "words.txt"],
        &["grep", "-l", "ea", "fruit.txt", "veg.txt", "words.txt"],
        &["grep", "-L", "fig", "fruit.txt", "veg.txt"],
        &["grep", "-h", "ea", "fruit.txt", "veg.txt"],
        &["grep", "-H", "fig", "fruit.txt"],
        &["grep", "-o", "[aeiou]\\+", "fruit.txt"],
        &["grep", "-E", "a(n|p)+", "fruit.txt"],
        &["grep", "-oE", "(an)+|p{2}", "fruit.txt"],
        &["grep", "-e", "fig", "-e", "pear", "fruit.txt"],
        &["grep", "-F", "a.b", "special.txt"],
        &["grep", "a.b", "special.txt"],
        &["grep", "-E", "x{2,3}", "special.txt"],
        &["grep", "-o", "x\\{2,\\}", "special.txt"],
        &["grep", "\\(ab\\)\\{2\\}", "special.txt"],
        &["grep", "-o", "[[:digit:]]\\+", "special.txt"],
        &["grep", "-o", "[^a-z ]", "special.txt"],
        &["grep", "[]x[]", "special.txt"],
        &["grep", "$5 ^up", "special.txt"],
        &["grep", "-E", "\\$5 \\^up", "special.txt"],
        &["grep", "-F", "\\", "special.txt"],
        &["grep", "a+b", "special.txt"],
        &["grep", "-E", "a{", "special.txt"],
        &["grep", "\\<is\\>", "words.txt"],
        &["grep", "-f", "pats.txt", "fruit.txt"],
        &["grep", "-c", "zzz", "fruit.txt"],
        &["grep", "-s", "a", "missing.txt", "fruit.txt"],
        &["grep", "--color=never", "a", "fruit.txt"],
        &["grep", "-m", "1", "a", "fruit.txt"],
        &["grep", "a\\|^f", "fruit.txt"],
        &["grep", "-E", "^(p|f)", "fruit.txt"],
        &["grep", "-q", "fig", "fruit.txt"],
        &["grep", "-q", "nope", "fruit.txt"],
        &["grep", "", "veg.txt"],
        &["grep", "-c", "-v", "zzz", "veg.txt"],
        &["grep", "-e", "zz", "-e", "", "-c", "veg.txt"],
        &["grep", "-l", "alpha", "d/a.txt", "d/b.log"],
        &["grep", "-w", "ab", "special.txt"],
        &["grep", "*x", "special.txt"],
        &["grep", "-o", "^*x*", "special.txt"],
        &["grep", "-oE", "x**", "special.txt"],
        &["grep", "-o", "x\\{,2\\} ", "special.txt"],
        &["grep", "-i", "[a]pr", "fruit.txt"],
        &["grep", "-oi", "A", "fruit.txt"],
        &["grep", "-nv", "-e", "a", "-e", "e", "fruit.txt", "veg.txt"],
        &["grep", "alpha", "bin.dat"],
        &["grep", "-c", "alpha", "bin.dat"],
        &["grep", "-a", "beta", "bin.dat"],
        &["grep", "-l", "beta", "bin.dat", "fruit.txt"],
        &["grep", "-E", "^$|fig", "fruit.txt"],
        &["grep", "[[:upper:]][[:lower:]]*", "fruit.txt"],
        &["grep", "-o", "\\w\\+\\b", "words.txt"],
    ];
    let mut compared = 0;
    for args in cases {
        let ours = run(args, t.path(), b"");
        let Some(theirs) = gnu(args, t.path(), b"") else {
            continue;
        };
        compared += 1;
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}: stdout");
        assert_eq!(
            ours.status, theirs.status,
            "{args:?}: status ({})",
            ours.stderr
        );
    }
    eprintln!("compared {compared} grep cases with GNU grep");
}

#[test]
fn grep_known_answers() {
    let t = tree();
    let r = run(&["grep", "-n", "an", "fruit.txt"], t.path(), b"");
    assert_eq!((r.status, r.stdout.as_str()), (0, "4:banana\n"));
    let r = run(&["grep", "-c", "a", "fruit.txt", "veg.txt"], t.path(), b"");
    assert_eq!(r.stdout, "fruit.txt:3\nveg.txt:2\n");
    let r = run(&["grep", "zzz", "fruit.txt"], t.path(), b"");
    assert_eq!((r.status, r.stdout.as_str()), (1, ""));
    let r = run(&["grep", "-oE", "[0-9]+", "special.txt"], t.path(), b"");
    assert_eq!(r.stdout, "42\n5\n");
}

#[test]
fn grep_reads_stdin() {
    let t = tree();
    let input = b"one\ntwo\nthree";
    for args in [
        &["grep", "-n", "t"][..],
        &["grep", "-H", "o"],
        &["grep", "-c", "e", "-"],
        &["grep", "-c", "o", "-", "veg.txt"],
        &["grep", "-v", "two"],
    ] {
        let ours = run(args, t.path(), input);
        if let Some(theirs) = gnu(args, t.path(), input) {
            assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
            assert_eq!(ours.status, theirs.status, "{args:?}");
        }
    }
    let r = run(&["grep", "-H", "o"], t.path(), input);
    assert_eq!(r.stdout, "(standard input):one\n(standard input):two\n");
    // The last line has no newline; grep adds one.
    assert_eq!(run(&["grep", "ee"], t.path(), input).stdout, "three\n");
}

#[test]
fn grep_recursive_matches_gnu_up_to_order() {
    let t = tree();
    let cases: &[&[&str]] = &[
        &["grep", "-r", "alpha", "."],
        &["grep", "-r", "alpha"],
        &["grep", "-r", "--include=*.txt", "a"],
        &["grep", "-r", "--exclude=*.txt", "a", "."],
        &["grep", "-rl", "a", "d"],
        &["grep", "-rc", "alpha", "d"],
        &["grep", "-rh", "alpha", "d"],
        &["grep", "-r", "--exclude-dir=sub", "-l", "x", "."],
    ];
    for args in cases {
        let ours = run(args, t.path(), b"");
        let Some(theirs) = gnu(args, t.path(), b"") else {
            continue;
        };
        assert_eq!(
            sorted_lines(&ours.stdout),
            sorted_lines(&theirs.stdout),
            "{args:?}"
        );
        assert_eq!(ours.status, theirs.status, "{args:?}: {}", ours.stderr);
    }
    // kiln lists directories sorted, so the order is fixed.
    let r = run(&["grep", "-r", "alpha", "d"], t.path(), b"");
    assert_eq!(r.stdout, "d/a.txt:alpha\nd/b.log:alpha\n");
}

#[test]
fn grep_errors_are_gnu_like() {
    let t = tree();
    let cases: &[(&[&str], &str)] = &[
        (&["grep", "\\(a", "fruit.txt"], "grep: Unmatched ( or \\(\n"),
        (&["grep", "a\\)", "fruit.txt"], "grep: Unmatched ) or \\)\n"),
        (
            &["grep", "-E", "(a", "fruit.txt"],
            "grep: Unmatched ( or \\(\n",
        ),
        (
            &["grep", "[a", "fruit.txt"],
            "grep: Unmatched [, [^, [:, [., or [=\n",
        ),
        (
            &["grep", "[[:foo:]]", "fruit.txt"],
            "grep: Invalid character class name\n",
        ),
        (&["grep", "a\\{1", "fruit.txt"], "grep: Unmatched \\{\n"),
        (
            &["grep", "a\\{2,1\\}", "fruit.txt"],
            "grep: Invalid content of \\{\\}\n",
        ),
        (
            &["grep", "\\1", "fruit.txt"],
            "grep: Invalid back reference\n",
        ),
        (
            &["grep", "a", "nope"],
            "grep: nope: No such file or directory\n",
        ),
        (&["grep", "a", "d"], "grep: d: Is a directory\n"),
    ];
    let r = run(&["grep", "alpha", "bin.dat"], t.path(), b"");
    assert_eq!((r.status, r.stdout.as_str()), (0, ""));
    assert_eq!(r.stderr, "grep: bin.dat: binary file matches\n");
    for (args, message) in cases {
        let ours = run(args, t.path(), b"");
        assert_eq!(ours.status, 2, "{args:?}: {}", ours.stderr);
        assert_eq!(ours.stderr, *message, "{args:?}");
        if let Some(theirs) = gnu(args, t.path(), b"") {
            assert_eq!(ours.stderr, theirs.stderr, "{args:?}");
            assert_eq!(ours.status, theirs.status, "{args:?}");
        }
    }
    let r = run(&["grep", "\\(a\\)\\1", "fruit.txt"], t.path(), b"");
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("back-references"), "{}", r.stderr);
    let r = run(&["grep", "--bogus", "a"], t.path(), b"");
    assert_eq!(r.status, 2);
    // A match wins over a missing file with -q, as in GNU grep.
    let r = run(&["grep", "-q", "fig", "nope", "fruit.txt"], t.path(), b"");
    assert_eq!(r.status, 0);
}

#[test]
fn find_matches_gnu_up_to_order() {
    let t = tree();
    let cases: &[&[&str]] = &[
        &["find"],
        &["find", ".", "-name", "*.txt"],
        &["find", "-type", "d"],
        &["find", "d", "-type", "f", "-name", "[ab]*"],
        &["find", "d", "-maxdepth", "1"],
        &["find", ".", "-mindepth", "2"],
        &[
            "find",
            "d",
            "-mindepth",
            "1",
            "-maxdepth",
            "1",
            "-type",
            "d",
        ],
        &["find", "-iname", "*.TXT"],
        &["find", ".", "-path", "./d/*", "-type", "f"],
        &["find", "d", "-path", "*sub*"],
        &["find", "-empty"],
        &["find", "d", "-size", "+1k"],
        &["find", "d", "-size", "-2"],
        &["find", "d", "-size", "6c"],
        &["find", "d", "!", "-name", "*.txt"],
        &["find", "d", "-not", "-type", "d"],
        &[
            "find", "d", "(", "-name", "a*", "-o", "-name", "b*", ")", "-print",
        ],
        &[
            "find", "d", "-name", "sub", "-prune", "-o", "-type", "f", "-print",
        ],
        &["find", "d", "-type", "l"],
        &["find", "d", "-type", "f,l"],
        &["find", "d/"],
        &["find", "d", "fruit.txt", "-name", "*t"],
        &["find", "d", "-depth", "-name", "s*"],
        &["find", "-L", "d", "-type", "f"],
        &[
            "find", "d", "-name", "*.txt", "-a", "-type", "f", "-o", "-name", "hollow",
        ],
        &["find", "d", "-false", "-o", "-true"],
        &["find", "d", "-name", "b*", "-quit"],
    ];
    let mut compared = 0;
    for args in cases {
        let ours = run(args, t.path(), b"");
        let Some(theirs) = gnu(args, t.path(), b"") else {
            continue;
        };
        compared += 1;
        assert_eq!(
            sorted_lines(&ours.stdout),
            sorted_lines(&theirs.stdout),
            "{args:?}"
        );
        assert_eq!(ours.status, theirs.status, "{args:?}: {}", ours.stderr);
    }
    eprintln!("compared {compared} find cases with GNU find");
}

#[test]
fn find_walks_in_listing_order() {
    let t = tree();
    let r = run(&["find", "d"], t.path(), b"");
    assert_eq!(
        r.stdout,
        "d\nd/a.txt\nd/b.log\nd/hollow\nd/link\nd/sub\nd/sub/c.txt\nd/sub/empty\n"
    );
    let r = run(&["find", "d", "-depth"], t.path(), b"");
    assert_eq!(
        r.stdout,
        "d/a.txt\nd/b.log\nd/hollow\nd/link\nd/sub/c.txt\nd/sub/empty\nd/sub\nd\n"
    );
    let r = run(&["find", "d/sub", "-print0"], t.path(), b"");
    assert_eq!(r.stdout, "d/sub\0d/sub/c.txt\0d/sub/empty\0");
}

#[test]
fn find_errors_are_gnu_like() {
    let t = tree();
    let cases: &[(&[&str], &str)] = &[
        (&["find", ".", "-foo"], "find: unknown predicate `-foo'\n"),
        (&["find", ".", "-name"], "find: missing argument to `-name'\n"),
        (&["find", ".", "-type", "q"], "find: Unknown argument to -type: q\n"),
        (&["find", ".", "-maxdepth", "0", "-o"], "find: expected an expression after '-o'\n"),
        (
            &["find", ".", "(", "-name", "f"],
            "find: invalid expression; I was expecting to find a ')' somewhere but did not see one.\n",
        ),
        (&["find", "nope"], "find: 'nope': No such file or directory\n"),
    ];
    for (args, message) in cases {
        let ours = run(args, t.path(), b"");
        assert_eq!(ours.status, 1, "{args:?}: {}", ours.stderr);
        assert_eq!(ours.stderr, *message, "{args:?}");
        if let Some(theirs) = gnu(args, t.path(), b"") {
            assert_eq!(ours.stderr, theirs.stderr, "{args:?}");
            assert_eq!(ours.status, theirs.status, "{args:?}");
        }
    }
    // Other paths are still searched.
    let r = run(&["find", "nope", "d/sub"], t.path(), b"");
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (1, "d/sub\nd/sub/c.txt\nd/sub/empty\n")
    );
}

#[test]
fn find_exec_runs_commands_through_the_spawner() {
    let t = tree();
    let r = run(
        &[
            "find", "d", "-name", "*.txt", "-type", "f", "-exec", "cat", "{}", ";",
        ],
        t.path(),
        b"",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.children, format!("alpha\n{}", "x".repeat(3000)));
    assert_eq!(r.requests.len(), 2);
    assert_eq!(r.requests[0].argv, ["cat", "d/a.txt"]);
    assert_eq!(r.requests[0].cwd, "/");

    let r = run(
        &["find", "d", "-type", "f", "-exec", "echo", "got", "{}", "+"],
        t.path(),
        b"",
    );
    assert_eq!(r.children, "got d/a.txt d/b.log d/sub/c.txt d/sub/empty\n");
    assert_eq!(r.requests.len(), 1);

    // -exec is a test: its status decides what follows.
    let r = run(
        &[
            "find", "d", "-type", "f", "-exec", "test", "-s", "{}", ";", "-print",
        ],
        t.path(),
        b"",
    );
    assert_eq!(r.stdout, "d/a.txt\nd/b.log\nd/sub/c.txt\n");

    let r = run(
        &["find", "d/sub", "-type", "f", "-execdir", "echo", "{}", ";"],
        t.path(),
        b"",
    );
    assert_eq!(r.children, "./c.txt\n./empty\n");
    assert_eq!(r.requests[0].cwd, "/d/sub");

    // Output printed before a spawn comes before the child's.
    let r = run(
        &[
            "find", "d/sub", "-type", "f", "-print", "-exec", "false", ";",
        ],
        t.path(),
        b"",
    );
    assert_eq!(r.status, 0);
    assert_eq!(r.stdout, "d/sub/c.txt\nd/sub/empty\n");

    let r = run(
        &[
            "find",
            "d",
            "-name",
            "a.txt",
            "-exec",
            "nosuchcmd",
            "{}",
            ";",
        ],
        t.path(),
        b"",
    );
    assert_eq!(r.status, 1);
}

#[test]
fn find_delete_removes_files_and_dirs() {
    let t = tree();
    let r = run(&["find", "d/sub", "-delete"], t.path(), b"");
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!t.path().join("d/sub").exists());
    let r = run(
        &["find", "d", "-name", "*.log", "-delete", "-print"],
        t.path(),
        b"",
    );
    assert_eq!(r.stdout, "d/b.log\n");
    assert!(!t.path().join("d/b.log").exists());
    assert!(t.path().join("d/a.txt").exists());
}

#[test]
fn xargs_matches_gnu_xargs() {
    let t = tree();
    let cases: &[(&[&str], &[u8])] = &[
        (&["xargs"], b"a b\n c\n"),
        (&["xargs", "echo", "x"], b"a b\nc\n"),
        (&["xargs", "-n", "1", "echo", "x"], b"a b\nc\n"),
        (&["xargs", "-n2"], b"1 2 3 4 5\n"),
        (&["xargs", "-I", "{}", "echo", "[{}]", "{}"], b"a b\n  c\n"),
        (&["xargs", "-0", "echo"], b"a b\0c\nd\0"),
        (&["xargs", "-d", ",", "-n", "1"], b"a b,c,d"),
        (&["xargs", "-L", "1", "echo"], b"a b\nc d\ne\n"),
        (&["xargs", "echo"], b"'a  b' \"c d\" e\\ f\n"),
        (&["xargs", "-r", "echo", "nothing"], b""),
        (&["xargs", "echo", "empty"], b""),
        (&["xargs", "-t", "echo"], b"x y\n"),
    ];
    for (args, input) in cases {
        let ours = run(args, t.path(), input);
        assert!(ours.stdout.is_empty(), "{args:?}");
        if let Some(theirs) = gnu(args, t.path(), input) {
            assert_eq!(ours.children, theirs.stdout, "{args:?}");
            assert_eq!(ours.status, theirs.status, "{args:?}: {}", ours.stderr);
            assert_eq!(ours.stderr, theirs.stderr, "{args:?}");
        }
    }
    let r = run(&["xargs", "-n", "1", "echo", "x"], t.path(), b"a b\nc\n");
    assert_eq!(r.children, "x a\nx b\nx c\n");
    let r = run(&["xargs", "-r", "echo"], t.path(), b"\n\n");
    assert!(r.requests.is_empty());
    let r = run(&["xargs", "-t", "echo"], t.path(), b"x y\n");
    assert_eq!(r.stderr, "echo x y\n");
}

#[test]
fn xargs_exit_statuses() {
    let t = tree();
    let r = run(
        &["xargs", "-n", "1", "test", "-s"],
        t.path(),
        b"veg.txt d/sub/empty fruit.txt\n",
    );
    assert_eq!(r.status, 123);
    assert_eq!(r.requests.len(), 3, "keeps going after a failure");
    let r = run(&["xargs", "nosuchcmd"], t.path(), b"a\n");
    assert_eq!(r.status, 127);
    let r = run(&["xargs", "-n", "1", "true"], t.path(), b"a b\n");
    assert_eq!((r.status, r.requests.len()), (0, 2));
    let r = run(&["xargs", "-n", "0"], t.path(), b"a\n");
    assert_eq!(r.status, 1);
    // The environment and working directory go to the command.
    let mut ran = run_env(
        &["xargs", "printenv", "FOO"],
        t.path(),
        b"",
        &[("FOO", "bar")],
    );
    assert_eq!(ran.children, "bar\n");
    assert_eq!(
        ran.requests.remove(0).env,
        [("FOO".to_owned(), "bar".to_owned())]
    );
}

#[test]
fn env_prints_and_runs() {
    let t = tree();
    let env = &[("A", "1"), ("B", "2")];
    let r = run_env(&["env"], t.path(), b"", env);
    assert_eq!(r.stdout, "A=1\nB=2\n");
    let r = run_env(&["env", "-u", "A", "C=3"], t.path(), b"", env);
    assert_eq!(r.stdout, "B=2\nC=3\n");
    let r = run_env(&["env", "-i", "X=y"], t.path(), b"", env);
    assert_eq!(r.stdout, "X=y\n");
    let r = run_env(&["env", "-", "A=5", "printenv", "A"], t.path(), b"", env);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.children, "5\n");
    assert_eq!(r.requests[0].env, [("A".to_owned(), "5".to_owned())]);
    let r = run_env(&["env", "B=9", "env"], t.path(), b"", env);
    assert_eq!(r.children, "A=1\nB=9\n");
    let r = run(&["env", "false"], t.path(), b"");
    assert_eq!(r.status, 1);
    let r = run(&["env", "nosuchcmd"], t.path(), b"");
    assert_eq!(r.status, 127);
    let r = run(&["env", "-Z"], t.path(), b"");
    assert_eq!(r.status, 125);
}

#[test]
fn which_searches_path() {
    let t = tree();
    write(t.path(), "usr/bin/tool", "");
    write(t.path(), "bin/tool", "");
    let env = &[("PATH", "/usr/local/bin:/usr/bin:/bin")];
    let r = run_env(&["which", "tool"], t.path(), b"", env);
    assert_eq!((r.status, r.stdout.as_str()), (0, "/usr/bin/tool\n"));
    let r = run_env(&["which", "-a", "tool"], t.path(), b"", env);
    assert_eq!(r.stdout, "/usr/bin/tool\n/bin/tool\n");
    let r = run_env(&["which", "tool", "ls"], t.path(), b"", env);
    assert_eq!((r.status, r.stdout.as_str()), (1, "/usr/bin/tool\n"));
}
