//! The toolbox's own awk, tar and gzip run in the sandbox and are checked
//! against the host's GNU tools: awk programs against gawk, archives both
//! ways through GNU tar, gzip output through GNU gzip.

use kiln_runtime::toolbox::TOOLBOX_WASM;
use kiln_runtime::{Invocation, Program, Runtime, RuntimeConfig, Stdin};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

struct Shared {
    runtime: Runtime,
    program: Program,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let program = runtime
            .load("kiln-toolbox", TOOLBOX_WASM)
            .expect("load toolbox");
        Shared { runtime, program }
    })
}

struct Ran {
    status: u8,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `args` (args[0] names the applet) with `root` mounted at `/`.
fn run(args: &[&str], root: &Path, stdin: &[u8]) -> Ran {
    let s = shared();
    let mut inv = Invocation::new(args.iter().copied());
    inv.root = Some(root.to_path_buf());
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

/// Runs a host tool in `dir`; `None` when the host lacks it (then the test
/// fails under CI, which installs it).
fn host(tool: &str, args: &[&str], dir: &Path, stdin: &[u8]) -> Option<(i32, Vec<u8>)> {
    let path = Path::new("/usr/bin").join(tool);
    if !path.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing on a CI host"
        );
        eprintln!("skipping the comparison with host {tool}: not installed");
        return None;
    }
    let mut child = Command::new(path)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn host tool");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("host tool");
    Some((out.status.code().unwrap_or(-1), out.stdout))
}

fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("data.txt"),
        "alice 30 admin\nbob 25 user\ncarol 35 admin\ndave 40 user\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("pw"),
        "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/bin:/usr/sbin/nologin\n",
    )
    .expect("write");
    dir
}

const INPUT: &str = "alice 30 admin\nbob 25 user\ncarol 35 admin\ndave 40 user\n";

/// (program, stdin, extra arguments before the program)
const CASES: &[(&str, &str, &[&str])] = &[
    ("{ print $1 }", INPUT, &[]),
    ("{ print $NF, NF, NR }", INPUT, &[]),
    ("{ s += $2 } END { print s, s / NR }", INPUT, &[]),
    ("$3 == \"admin\" { print $1 }", INPUT, &[]),
    ("$2 > 28", INPUT, &[]),
    ("/^b/, /^c/ { print NR \": \" $0 }", INPUT, &[]),
    ("BEGIN { FS = \":\" } { print $1, $7 }", "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/bin:/usr/sbin/nologin\n", &[]),
    ("{ print $1 \"-\" $3 }", "a:b:c\nd:e:f\n", &["-F:"]),
    ("{ print $2 }", "a1b22c\nx333y\n", &["-F", "[0-9]+"]),
    ("BEGIN { OFS = \"|\" } { $1 = $1; print }", "  a   b\tc  \n", &[]),
    ("BEGIN { OFS = \"-\" } { $5 = \"e\"; print; print NF }", "a b c\n", &[]),
    ("{ NF = 2; print }", "a b c d\n", &[]),
    ("BEGIN { RS = \"\" } { print NR \": \" $1 \" (\" NF \")\" }", "\n\npara one\nline two\n\n\npara two\n", &[]),
    ("BEGIN { RS = \";\" } { print \"[\" $0 \"]\" }", "a;b;c", &[]),
    ("BEGIN { ORS = \"\\n--\\n\" } { print }", "x\ny\n", &[]),
    ("BEGIN { x = 1; x += 2; x *= 5; x -= 1; x /= 2; x %= 5; x ^= 3; print x }", "", &[]),
    ("BEGIN { print 1/3, 2^10, 2**3, -2^2, 7%3, -7%3, 1e6, 1e20, 0.1+0.2, 100000 * 100000 }", "", &[]),
    ("BEGIN { x = 0.1; y = x \"\"; CONVFMT = \"%.2f\"; z = x \"\"; print y, z; OFMT = \"%.3f\"; print x, 3.14159 }", "", &[]),
    ("BEGIN { print (\"10\" < \"9\"), (10 < 9), (\"abc\" < \"abd\"), (2 == 2.0), (\"a\" != \"a\") }", "", &[]),
    ("{ print ($1 < $2), ($1 == $2) }", "10 9\n2 2.0\nabc abd\n1e1 10\n", &[]),
    ("{ if ($0 ~ /^[0-9]+$/) print \"num\"; else if ($0 !~ /a/) print \"no-a\"; else print \"other\" }", "123\nxyz\nabc\n", &[]),
    ("BEGIN { a[\"x\"] = 1; a[\"y\"] = 2; delete a[\"x\"]; print (\"x\" in a), (\"y\" in a), length(a) }", "", &[]),
    ("{ c[$3]++ } END { print c[\"admin\"], c[\"user\"], c[\"none\"] + 0 }", INPUT, &[]),
    ("BEGIN { a[1,2] = 3; for (k in a) { split(k, p, SUBSEP); print p[1], p[2], a[k] }; if ((1,2) in a) print \"yes\" }", "", &[]),
    ("BEGIN { n = split(\"a:b:c\", arr, \":\"); print n, arr[1], arr[3]; n = split(\"  x  y \", w); print n, w[1], w[2] }", "", &[]),
    ("BEGIN { i = 0; while (i < 3) { i++; if (i == 2) continue; print i }; do { print \"do\", i; i-- } while (i > 1); for (;;) { if (++i > 5) break }; print i }", "", &[]),
    ("NR == 2 { next } { print } NR == 3 { exit 3 } END { print \"end\" }", "1\n2\n3\n4\n", &[]),
    ("BEGIN { print length(\"hello\"), substr(\"hello\", 2, 3), substr(\"hello\", 0), substr(\"hello\", -1, 3), substr(\"hello\", 1.5, 2), substr(\"hello\", 4), index(\"hello\", \"ll\"), index(\"hello\", \"z\") }", "", &[]),
    ("{ print length }", "abc\n\nhello world\n", &[]),
    ("{ n = gsub(/o/, \"0\"); print n, $0 }", "foo boo\nxyz\n", &[]),
    ("BEGIN { s = \"hello\"; sub(/l+/, \"[&]\", s); print s; t = \"aaa\"; gsub(/a/, \"\\\\&\", t); print t; u = \"abc\"; gsub(/x*/, \"-\", u); print u }", "", &[]),
    ("BEGIN { print match(\"foobar\", /o+/), RSTART, RLENGTH; print match(\"abc\", /z/), RSTART, RLENGTH }", "", &[]),
    ("BEGIN { printf \"%d|%5d|%-5d|%05d|%x|%X|%o|%c|%c|%s|%10s|%-10s|%.2s|%%\\n\", 42.9, 42, 42, 42, 255, 255, 8, 65, \"hello\", \"str\", \"right\", \"left\", \"abc\" }", "", &[]),
    ("BEGIN { printf \"%f %.2f %e %.3E %g %G %g %g %g %+d % d %5.1f|%-8.3f|\\n\", 3.14159, 2.5, 12345.678, 0.000123, 0.0001, 1e-10, 123456789, 100, 0.5, 5, 5, 3.14159, 2.0 }", "", &[]),
    ("BEGIN { printf \"%*d|%-*d|%.*f\\n\", 5, 1, 4, 2, 2, 3.14159 }", "", &[]),
    ("BEGIN { print sprintf(\"%03d-%s\", 7, \"x\"), tolower(\"MiXeD\"), toupper(\"MiXeD\"), int(3.9), int(-3.9), sqrt(16), exp(0), log(1), sin(0), cos(0), atan2(0, -1) }", "", &[]),
    ("function fact(n) { return n <= 1 ? 1 : n * fact(n - 1) } BEGIN { print fact(10) }", "", &[]),
    ("function fill(arr, n,   i) { for (i = 1; i <= n; i++) arr[i] = i * i } BEGIN { fill(sq, 4); print sq[1], sq[4], length(sq) }", "", &[]),
    ("function f(x) { x = 5 } BEGIN { y = 1; f(y); print y }", "", &[]),
    ("BEGIN { print x + 0, x \"\", length(x); if (!x) print \"unset is false\" }", "", &[]),
    ("BEGIN { print v, w }", "", &["-v", "v=hello", "-v", "w=a\\tb"]),
    ("{ print $1 + $2 }", "1 2\n3.5 4.5\n0x10 1\n-1 +1\n", &[]),
    ("BEGIN { while ((getline line < \"/data.txt\") > 0) n++; print n, line }", "", &[]),
    ("NR == 1 { getline; print \"after getline:\", $0, NR } NR == 3 { getline x; print \"x=\" x, $0, NR }", "l1\nl2\nl3\nl4\n", &[]),
    ("BEGIN { x[\"a\"]; if (\"a\" in x) print \"created\"; delete x; print length(x) }", "", &[]),
    ("{ $2 = \"\"; print; print NF }", "a b c\n", &[]),
    ("{ print; $0 = \"x y z\"; print $2, NF }", "one\n", &[]),
    ("BEGIN { print 1 == 1, 1 < 2 ? \"lt\" : \"ge\", !0, !\"\", !\"a\", 1 && 0, 1 || 0 }", "", &[]),
    ("BEGIN { s = \"a.b.c\"; gsub(\".\", \"-\", s); print s; t = \"a.b\"; gsub(/\\./, \"+\", t); print t }", "", &[]),
    ("BEGIN { print length(12345), 1 \" \" 2, 1 2, 3 -1 }", "", &[]),
    ("{ a = a $0 } END { print a }", "x\ny\nz\n", &[]),
    ("/[[:digit:]]+/ { print \"d:\" $0 } /^[^a-z]*$/ { print \"nolower:\" $0 }", "abc\n123\nA1\n", &[]),
    ("BEGIN { printf \"%s %s %s\\n\", \"a\", \"b\", \"c\" > \"/out.txt\"; print \"more\" >> \"/out.txt\"; close(\"/out.txt\"); while ((getline l < \"/out.txt\") > 0) print \"got\", l }", "", &[]),
    ("BEGIN { srand(1); a = rand(); srand(1); b = rand(); print (a == b), (a >= 0 && a < 1), srand(5) }", "", &[]),
    ("{ sum[$3] += $2 } END { print sum[\"admin\"] \"/\" sum[\"user\"] }", INPUT, &[]),
    ("BEGIN { x = \"3x\"; print x + 1, +\"\", -\"2\" }", "", &[]),
    ("END { print NR, $0 }", "a\nb\nlast line\n", &[]),
    ("$2 > n { print $1 }", INPUT, &["-v", "n=29"]),
    ("$0 ~ \"^[ab]\" { print; print $1 ~ \"o\" }", INPUT, &[]),
    ("BEGIN { printf \"%d %d %s\\n\", \"3abc\", \"-2.5\", 1e300 * 10 }", "", &[]),
    ("{ print NR % 2 ? \"odd\" : \"even\", $1 }", INPUT, &[]),
    ("BEGIN { while (i++ < 3) s = s i; print s; print i++ + ++i, i-- - --i }", "", &[]),
    ("{ $3 = toupper($3) } 1", INPUT, &[]),
    ("function max(a, b) { return a > b ? a : b }\n{ m = max(m, $2 + 0) }\nEND { print m }", INPUT, &[]),
    // Issue 13: -F escapes are processed as in strings; -Ft is a literal t.
    ("{ print NF, $2 }", "a!b!c\n", &["-F", "\\x21"]),
    ("{ print NF, $1 }", "atb\tc\n", &["-Ft"]),
    // Regex FS that can match the empty string (gawk's re_parse_field).
    ("{ print NF, $1 }", "abc\n", &["-F", "x*"]),
    ("{ printf \"%d\", NF; for (i = 1; i <= NF; i++) printf \" [%s]\", $i; print \"\" }", "abc\nbaab\naab\n\na1b22c\n", &["-F", "b*"]),
    ("{ print NF, $1 }", "abc\n", &["-F", "^x*"]),
    ("BEGIN { n = split(\"baab\", a, /a*/); print n, a[1], a[2]; n = split(\"a1b22c\", b, \"[0-9]*\"); print n, b[1], b[2], b[3] }", "", &[]),
    ("BEGIN { RS = \"\"; FS = \":+\" } { print NF, $2 }", "a:b\nc:d\n", &[]),
    // A backslash-newline inside a string is removed; \x escapes.
    ("BEGIN { s = \"ab\\\ncd\"; print s, length(s) }", "", &[]),
    ("BEGIN { print \"\\x41\\x42C\", \"\\x4a\", \"\\x414243\" }", "", &[]),
    ("BEGIN { print (\"A\" ~ /\\x41/), (\"x41\" ~ /\\x41/) }", "", &[]),
    // A field past NF is an empty string: compared as a string.
    ("$2 != 0", "a\nb 0\nc 1\n", &[]),
    ("{ print ($2 == 0), ($2 == \"\"), ($2 < 1), ($3 == $2), ($2 < -1) }", "a\n", &[]),
];

#[test]
fn awk_programs_match_gawk() {
    let dir = root();
    let mut failures = Vec::new();
    for (program, input, extra) in CASES {
        let _ = std::fs::remove_file(dir.path().join("out.txt"));
        let mut args = vec!["awk"];
        args.extend_from_slice(extra);
        args.push(program);
        let ours = run(&args, dir.path(), input.as_bytes());
        // gawk reads the same files, relative to the root.
        let host_program = program
            .replace("\"/data.txt", "\"data.txt")
            .replace("\"/out.txt", "\"out.txt");
        let mut host_args: Vec<&str> = extra.to_vec();
        host_args.push(&host_program);
        let _ = std::fs::remove_file(dir.path().join("out.txt"));
        let Some((status, theirs)) = host("gawk", &host_args, dir.path(), input.as_bytes()) else {
            continue;
        };
        let ours_out = String::from_utf8_lossy(&ours.stdout);
        let theirs_out = String::from_utf8_lossy(&theirs);
        if ours_out != theirs_out || i32::from(ours.status) != status {
            failures.push(format!(
                "program {program:?} (args {extra:?})\n  kiln ({}): {ours_out:?}\n  gawk ({status}): {theirs_out:?}\n  kiln stderr: {}",
                ours.status, ours.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn awk_file_operands_progfile_and_assignments() {
    let dir = root();
    std::fs::write(
        dir.path().join("prog.awk"),
        "# sum ages\n{ s += $2 }\nEND { print FILENAME, s, x }\n",
    )
    .expect("write");
    let ours = run(
        &["awk", "-f", "/prog.awk", "x=1", "/data.txt"],
        dir.path(),
        b"",
    );
    assert_eq!(ours.status, 0, "{}", ours.stderr);
    assert_eq!(String::from_utf8_lossy(&ours.stdout), "/data.txt 130 1\n");
    let ours = run(
        &["awk", "{ print FNR, NR, $1 }", "/data.txt", "/pw"],
        dir.path(),
        b"",
    );
    let out = String::from_utf8_lossy(&ours.stdout).into_owned();
    assert!(out.starts_with("1 1 alice\n"), "{out}");
    assert!(
        out.ends_with("2 6 bin:x:1:1::/bin:/usr/sbin/nologin\n"),
        "{out}"
    );
}

#[test]
fn awk_for_in_visits_keys_in_insertion_order() {
    let dir = root();
    let ours = run(
        &["awk", "BEGIN { a[\"z\"]; a[\"b\"]; a[10]; a[\"a\"]; delete a[\"b\"]; a[\"b\"]; for (k in a) printf \"%s \", k; print \"\" }"],
        dir.path(),
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&ours.stdout), "z 10 a b \n");
}

#[test]
fn awk_syntax_error_names_the_line_and_exits_2() {
    let dir = root();
    let ours = run(&["awk", "BEGIN {\n  print 1\n  x = (\n}"], dir.path(), b"");
    assert_eq!(ours.status, 2);
    assert!(ours.stderr.contains("cmd. line:4:"), "{}", ours.stderr);
    assert!(ours.stderr.contains("syntax error"), "{}", ours.stderr);
    assert!(ours.stdout.is_empty());
    let ours = run(&["awk", "BEGIN { print \"unterminated }"], dir.path(), b"");
    assert_eq!(ours.status, 2);
    assert!(ours.stderr.contains("cmd. line:1:"), "{}", ours.stderr);
    let ours = run(&["awk", "BEGIN { print 1/0 }"], dir.path(), b"");
    assert_eq!(ours.status, 2);
    assert!(ours.stderr.contains("division by zero"), "{}", ours.stderr);
    let ours = run(&["awk", "BEGIN { print \"x\" | \"cat\" }"], dir.path(), b"");
    assert_eq!(ours.status, 2);
    assert!(
        ours.stderr.contains("pipes are not supported"),
        "{}",
        ours.stderr
    );
}

/// A tree with nested directories, an empty directory, a symlink and a file
/// with a long name (GNU long-name header).
fn make_tree(dir: &Path) {
    let t = dir.join("tree");
    std::fs::create_dir_all(t.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(t.join("empty")).expect("mkdir");
    std::fs::write(t.join("b.txt"), "bee\n").expect("write");
    std::fs::write(t.join("a.txt"), "ay\n").expect("write");
    std::fs::write(t.join("sub/deeper/z"), vec![7u8; 70_000]).expect("write");
    let long = "n".repeat(120);
    std::fs::write(t.join("sub").join(&long), "long\n").expect("write");
    std::os::unix::fs::symlink("a.txt", t.join("link")).expect("symlink");
}

#[test]
fn tar_created_in_kiln_lists_and_extracts_with_gnu_tar() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_tree(dir.path());
    for (flags, name) in [("-cf", "out.tar"), ("-czf", "out.tgz")] {
        let ran = run(
            &["tar", flags, &format!("/{name}"), "-C", "/", "tree"],
            dir.path(),
            b"",
        );
        assert_eq!(ran.status, 0, "{}", ran.stderr);
        let Some((status, listing)) = host("tar", &["-tf", name], dir.path(), b"") else {
            return;
        };
        assert_eq!(status, 0);
        let long = "n".repeat(120);
        let expected = format!(
            "tree/\ntree/a.txt\ntree/b.txt\ntree/empty/\ntree/link\ntree/sub/\ntree/sub/deeper/\ntree/sub/deeper/z\ntree/sub/{long}\n"
        );
        assert_eq!(String::from_utf8_lossy(&listing), expected, "{name}");
        let out = dir.path().join(format!("x-{name}"));
        std::fs::create_dir(&out).expect("mkdir");
        let (status, _) = host(
            "tar",
            &["-xf", name, "-C", out.to_str().expect("utf8")],
            dir.path(),
            b"",
        )
        .expect("tar");
        assert_eq!(status, 0);
        assert_eq!(
            std::fs::read(out.join("tree/sub/deeper/z")).expect("z"),
            vec![7u8; 70_000]
        );
        assert_eq!(
            std::fs::read_link(out.join("tree/link")).expect("link"),
            Path::new("a.txt")
        );
        assert!(out.join("tree/empty").is_dir());
    }
    // Creating twice gives the same bytes.
    let a = std::fs::read(dir.path().join("out.tgz")).expect("read");
    run(
        &["tar", "-czf", "/out.tgz", "-C", "/", "tree"],
        dir.path(),
        b"",
    );
    assert_eq!(a, std::fs::read(dir.path().join("out.tgz")).expect("read"));
}

#[test]
fn tar_from_gnu_extracts_and_lists_in_kiln() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_tree(dir.path());
    let Some((status, _)) = host("tar", &["-czf", "gnu.tgz", "tree"], dir.path(), b"") else {
        return;
    };
    assert_eq!(status, 0);
    std::fs::create_dir(dir.path().join("dest")).expect("mkdir");
    let ran = run(
        &[
            "tar",
            "xzf",
            "/gnu.tgz",
            "-C",
            "/dest",
            "--strip-components=1",
        ],
        dir.path(),
        b"",
    );
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dest/a.txt")).expect("a"),
        "ay\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("dest/sub/deeper/z"))
            .expect("z")
            .len(),
        70_000
    );
    assert_eq!(
        std::fs::read_link(dir.path().join("dest/link")).expect("link"),
        Path::new("a.txt")
    );
    assert!(dir
        .path()
        .join("dest")
        .join("sub")
        .join("n".repeat(120))
        .is_file());
    // Listing from stdin, verbose, matches GNU's verbose listing.
    let bytes = std::fs::read(dir.path().join("gnu.tgz")).expect("read");
    let ours = run(&["tar", "-tvzf", "-"], dir.path(), &bytes);
    assert_eq!(ours.status, 0, "{}", ours.stderr);
    let (_, theirs) = host(
        "tar",
        &["--utc", "-tvzf", "-", "--numeric-owner"],
        dir.path(),
        &bytes,
    )
    .expect("tar");
    let ours_names: Vec<String> = String::from_utf8_lossy(&ours.stdout)
        .lines()
        .map(|l| l.split(' ').next_back().unwrap_or("").to_owned())
        .collect();
    let theirs_names: Vec<String> = String::from_utf8_lossy(&theirs)
        .lines()
        .map(|l| l.split(' ').next_back().unwrap_or("").to_owned())
        .collect();
    assert_eq!(ours_names, theirs_names);
    let ours_first = String::from_utf8_lossy(&ours.stdout)
        .lines()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    assert!(
        ours_first.starts_with("-rw-r--r--") || ours_first.starts_with("-rw-"),
        "{ours_first}"
    );
}

#[test]
fn tar_refuses_members_escaping_the_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A hostile archive written by hand: ../ and a symlink out, then a file
    // through that symlink.
    let mut data = Vec::new();
    {
        let mut b = tar::Builder::new(&mut data);
        let mut raw = |name: &[u8], kind: tar::EntryType, link: Option<&[u8]>, body: &[u8]| {
            let mut h = tar::Header::new_gnu();
            {
                let old = h.as_old_mut();
                old.name[..name.len()].copy_from_slice(name);
                if let Some(l) = link {
                    old.linkname[..l.len()].copy_from_slice(l);
                }
            }
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(body.len() as u64);
            h.set_cksum();
            b.append(&h, body).expect("append");
        };
        raw(b"../evil.txt", tar::EntryType::Regular, None, b"evil\n");
        raw(
            b"ok/../../evil2.txt",
            tar::EntryType::Regular,
            None,
            b"evil\n",
        );
        raw(b"esc", tar::EntryType::Symlink, Some(b".."), b"");
        raw(b"esc/evil3.txt", tar::EntryType::Regular, None, b"evil\n");
        raw(b"/abs.txt", tar::EntryType::Regular, None, b"abs\n");
        raw(b"good.txt", tar::EntryType::Regular, None, b"good\n");
        b.finish().expect("finish");
    }
    std::fs::write(dir.path().join("evil.tar"), &data).expect("write");
    std::fs::create_dir(dir.path().join("dest")).expect("mkdir");
    let ran = run(&["tar", "-xf", "/evil.tar", "-C", "/dest"], dir.path(), b"");
    assert_eq!(ran.status, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("../evil.txt: Member name contains '..'"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("Removing leading `/'"),
        "{}",
        ran.stderr
    );
    assert!(!dir.path().join("evil.txt").exists());
    assert!(!dir.path().join("evil2.txt").exists());
    assert!(!dir.path().join("evil3.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dest/good.txt")).expect("good"),
        "good\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dest/abs.txt")).expect("abs"),
        "abs\n"
    );
}

#[test]
fn gzip_output_is_reproducible_and_gnu_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let a = run(&["gzip"], dir.path(), &text);
    let b = run(&["gzip", "-c", "-n"], dir.path(), &text);
    assert_eq!(a.status, 0, "{}", a.stderr);
    assert_eq!(a.stdout, b.stdout, "two runs differ");
    assert_eq!(&a.stdout[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    let best = run(&["gzip", "-9"], dir.path(), &text);
    assert_eq!(best.stdout[8], 2);
    assert!(best.stdout.len() <= a.stdout.len());
    if let Some((status, plain)) = host("gzip", &["-dc"], dir.path(), &a.stdout) {
        assert_eq!(status, 0);
        assert_eq!(plain, text);
    }
    // Files: compress in place, keep, decompress back; zcat.
    std::fs::write(dir.path().join("f.txt"), &text).expect("write");
    let ran = run(&["gzip", "-k", "/f.txt"], dir.path(), b"");
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert!(dir.path().join("f.txt").exists() && dir.path().join("f.txt.gz").exists());
    let again = run(&["gzip", "/f.txt"], dir.path(), b"");
    assert_eq!(again.status, 2, "existing .gz must not be overwritten");
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    std::fs::remove_file(dir.path().join("f.txt")).expect("rm");
    let ran = run(&["gunzip", "/f.txt.gz"], dir.path(), b"");
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert_eq!(std::fs::read(dir.path().join("f.txt")).expect("read"), text);
    assert!(!dir.path().join("f.txt.gz").exists());
    // GNU-made input, including two concatenated members.
    if let Some((_, gnu)) = host("gzip", &["-c"], dir.path(), b"hello ") {
        let (_, gnu2) = host("gzip", &["-c"], dir.path(), b"world\n").expect("gzip");
        let both = [gnu, gnu2].concat();
        let z = run(&["zcat"], dir.path(), &both);
        assert_eq!(z.stdout, b"hello world\n");
        let d = run(&["gzip", "-d"], dir.path(), &both);
        assert_eq!(d.stdout, b"hello world\n");
    }
    let bad = run(&["gunzip", "-c"], dir.path(), b"not gzip at all");
    assert_eq!(bad.status, 1);
    assert!(bad.stderr.contains("not in gzip format"), "{}", bad.stderr);
}
