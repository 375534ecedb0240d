//! Tests of kiln's shell constructs, builtins and syntax errors, using the
//! in-memory test host.

#[path = "shell_fixture.rs"]
mod fixture;

use std::sync::Arc;

use fixture::{run, run_with, MemHost, Node};
use kiln_runtime::shell::parse;

fn out(script: &str) -> String {
    run(script).stdout
}

#[test]
fn pipeline_stages_run_concurrently_over_pipes() {
    // `head` stops reading early; `seq` must not deadlock on a full pipe.
    assert_eq!(out("seq 100000 | head -n 2"), "1\n2\n");
    assert_eq!(out("seq 3 | sort -r | tr 123 abc"), "c\nb\na\n");
    // A builtin stage (while read) in the middle of a pipeline.
    assert_eq!(
        out("seq 3 | while read n; do echo $((n * 10)); done | sort -r"),
        "30\n20\n10\n"
    );
}

#[test]
fn builtin_writing_into_a_closed_pipe_stops() {
    // Like SIGPIPE: the loop ends once `head` has gone.
    assert_eq!(out("while true; do echo y; done | head -n 2"), "y\ny\n");
    assert_eq!(
        out("seq 3 | { while true; do echo z; done; } | head -n 1; echo $?"),
        "z\n0\n"
    );
}

#[test]
fn pipefail_and_negation() {
    assert_eq!(out("false | true; echo $?"), "0\n");
    assert_eq!(out("set -o pipefail; false | true; echo $?"), "1\n");
    assert_eq!(
        out("set -o pipefail; sh_fail() { return 3; }; sh_fail | true | true; echo $?"),
        "3\n"
    );
    assert_eq!(out("! false | false; echo $?"), "0\n");
    let r = run("set -e -o pipefail; false | true; echo unreachable");
    assert_eq!((r.status, r.stdout.as_str()), (1, ""));
}

#[test]
fn not_found_is_127_with_message() {
    let r = run("nosuch arg; echo \"status $?\"");
    assert_eq!(r.stdout, "status 127\n");
    assert_eq!(r.stderr, "sh: nosuch: not found\n");
    assert_eq!(run("nosuch").status, 127);
}

#[test]
fn redirections() {
    let host = Arc::new(MemHost::new());
    let r = run_with(
        host.clone(),
        "echo one > f; echo two >> f; cat < f > g; echo err >&2; echo both 2>&1; ls /none 2>/dev/null; echo x 2>/dev/null >&2",
        "",
    );
    assert_eq!(
        host.read_file("/work/f").as_deref(),
        Some(&b"one\ntwo\n"[..])
    );
    assert_eq!(
        host.read_file("/work/g").as_deref(),
        Some(&b"one\ntwo\n"[..])
    );
    assert_eq!(r.stdout, "both\n");
    assert_eq!(r.stderr, "err\n");
    // 2>&1 then >file: stderr goes to the old stdout (order matters).
    let r = run_with(host.clone(), "{ echo o; echo e >&2; } 2>&1 >h", "");
    assert_eq!(r.stdout, "e\n");
    assert_eq!(host.read_file("/work/h").as_deref(), Some(&b"o\n"[..]));
    // A missing input file: message, status 1, script goes on.
    let r = run("cat < missing; echo $?");
    assert_eq!(r.stdout, "1\n");
    assert!(r.stderr.contains("cannot open missing"), "{}", r.stderr);
    // Writing into a missing directory fails the same way.
    assert_eq!(out("echo x > /no/dir/f; echo $?"), "1\n");
}

#[test]
fn here_documents() {
    assert_eq!(
        out("x=world\ncat <<EOF\nhello $x\n\\$x $(echo sub)\nEOF\necho end"),
        "hello world\n$x sub\nend\n"
    );
    assert_eq!(out("cat <<'E O'\n$x `y`\nE O"), "$x `y`\n");
    assert_eq!(out("cat <<\"EOF\"\n$x\nEOF"), "$x\n");
    assert_eq!(
        out("cat <<-EOF\n\t\tindented\n\tEOF\necho next"),
        "indented\nnext\n"
    );
    assert_eq!(
        out("f() {\ncat <<EOF\nin function $1\nEOF\n}\nf arg"),
        "in function arg\n"
    );
    assert_eq!(
        out("x=$(cat <<EOF\ninside\nEOF\n)\necho \"[$x]\""),
        "[inside]\n"
    );
    assert_eq!(out("cat <<A <<B\na\nA\nb\nB"), "b\n");
    // The body starts after the line's real end, past quoted newlines.
    assert_eq!(out("cat <<EOF; echo \"x\ny\"\nbody\nEOF"), "body\nx\ny\n");
    assert_eq!(out("cat <<EOF # it's a comment\nbody\nEOF"), "body\n");
}

#[test]
fn parameter_expansion() {
    assert_eq!(
        out("x=hello; echo ${x} ${#x} ${x:-d} ${x-d} ${x:+a} ${x#h} ${x##*l} ${x%l*} ${x%%l*}"),
        "hello 5 hello hello a ello o hel he\n"
    );
    assert_eq!(
        out("e=; echo [${e:-d}] [${e-d}] [${e:+a}] [${e+a}] [${u+a}]"),
        "[d] [] [] [a] []\n"
    );
    assert_eq!(
        out("echo ${v:=assigned}; echo $v; e=; echo ${e=no}[$e]"),
        "assigned\nassigned\n[]\n"
    );
    let r = run("echo ${v:?is required}; echo after");
    assert_eq!((r.status, r.stdout.as_str()), (2, ""));
    assert_eq!(r.stderr, "sh: v: is required\n");
    assert_eq!(
        out("set -- a 'b c' d; echo $# $1 \"$2\" $3; echo ${#}"),
        "3 a b c d\n3\n"
    );
    assert_eq!(
        out("set -- a 'b c'; for x in \"$@\"; do echo \"<$x>\"; done"),
        "<a>\n<b c>\n"
    );
    assert_eq!(
        out("set -- a 'b c'; for x in $*; do echo \"<$x>\"; done"),
        "<a>\n<b>\n<c>\n"
    );
    assert_eq!(out("set -- a b; IFS=-; echo \"$*\""), "a-b\n");
    assert_eq!(out("echo $0"), "sh\n");
    assert_eq!(out("false; echo $?; true; echo $?"), "1\n0\n");
}

#[test]
fn field_splitting_and_ifs() {
    assert_eq!(out("x='a  b\tc'; set -- $x; echo $#"), "3\n");
    assert_eq!(out("x='a::b'; IFS=:; set -- $x; echo $# \"$2\""), "3 \n");
    assert_eq!(
        out("x=' a : b '; IFS=' :'; set -- $x; echo $# $1$2"),
        "2 ab\n"
    );
    assert_eq!(out("IFS=; x='a b'; set -- $x; echo $#"), "1\n");
    assert_eq!(out("e=; set -- $e \"$e\" ''; echo $#"), "2\n");
}

#[test]
fn arithmetic() {
    assert_eq!(
        out("echo $((2 + 3 * 4)) $(( (2+3)*4 )) $((17 / 5)) $((17 % 5)) $((-3))"),
        "14 20 3 2 -3\n"
    );
    assert_eq!(
        out("echo $((1 < 2)) $((2 <= 1)) $((3 == 3)) $((3 != 3)) $((1 && 0)) $((0 || 2)) $((!5))"),
        "1 0 1 0 0 1 0\n"
    );
    assert_eq!(out("x=5; echo $((x += 2)) $x $((x *= 2)) $((x -= 4)) $((x /= 2)) $((x %= 4)) $((y = 9)) $y"), "7 7 14 10 5 1 9 9\n");
    assert_eq!(out("n=3; echo $(( n > 2 ? n * 2 : 0 )) $(($n+1))"), "6 4\n");
    let r = run("echo $((1 / 0)); echo after");
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("division by zero"), "{}", r.stderr);
}

#[test]
fn command_substitution() {
    assert_eq!(out("x=$(printf 'a\\n\\n'); echo \"[$x]\""), "[a]\n");
    assert_eq!(
        out("echo `echo back` $(echo $(echo nested))"),
        "back nested\n"
    );
    assert_eq!(out("x=$(false); echo $?"), "1\n");
    assert_eq!(out("echo \"$(seq 2)\""), "1\n2\n");
}

#[test]
fn globbing_is_sorted_bytewise_through_the_host() {
    let host = Arc::new(MemHost::new());
    for name in ["b.txt", "a.txt", "C.txt", "_x.txt", ".hidden.txt", "z.md"] {
        host.write_file(&format!("/work/{name}"), b"");
    }
    host.add("/work/dir", Node::Dir);
    host.write_file("/work/dir/inner.txt", b"");
    assert_eq!(
        run_with(host.clone(), "echo *.txt", "").stdout,
        "C.txt _x.txt a.txt b.txt\n"
    );
    assert_eq!(
        run_with(host.clone(), "echo .*.txt", "").stdout,
        ".hidden.txt\n"
    );
    assert_eq!(
        run_with(host.clone(), "echo */*.txt; echo /work/[ab].txt", "").stdout,
        "dir/inner.txt\n/work/a.txt /work/b.txt\n"
    );
    assert_eq!(run_with(host.clone(), "echo */", "").stdout, "dir/\n");
    assert_eq!(
        run_with(host.clone(), "echo *.none '*'.txt \"*\"", "").stdout,
        "*.none *.txt *\n"
    );
    assert_eq!(
        run_with(host.clone(), "set -f; echo *.md; set +f; echo *.md", "").stdout,
        "*.md\nz.md\n"
    );
}

#[test]
fn quoting() {
    assert_eq!(
        out("echo 'a $x \"b\"' \"c 'd' \\$e \\\\ \\q\" f\\ g\\$"),
        "a $x \"b\" c 'd' $e \\ \\q f g$\n"
    );
    assert_eq!(out("echo \"\" '' | wc -c"), "2\n");
    assert_eq!(out("echo a\\\nb"), "ab\n");
}

#[test]
fn control_flow() {
    assert_eq!(
        out("if false; then echo a; elif true; then echo b; else echo c; fi"),
        "b\n"
    );
    assert_eq!(out("for i in 1 2 3; do echo $i; done"), "1\n2\n3\n");
    assert_eq!(
        out("i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i"),
        "3\n"
    );
    assert_eq!(
        out("i=3; until [ $i = 0 ]; do i=$((i-1)); done; echo $i"),
        "0\n"
    );
    assert_eq!(
        out("for i in 1 2 3; do for j in 1 2 3; do [ $j = 2 ] && continue 2; [ $i = 3 ] && break 2; echo $i$j; done; done"),
        "11\n21\n"
    );
    assert_eq!(
        out("case abc in a*c) echo glob;; *) echo no;; esac"),
        "glob\n"
    );
    assert_eq!(
        out("case '*' in \\*) echo star;; esac; case x in '*') echo bad;; *) echo ok;; esac"),
        "star\nok\n"
    );
    assert_eq!(
        out("case 5 in [0-9]) echo digit;; esac; case '' in '') echo empty;; esac"),
        "digit\nempty\n"
    );
}

#[test]
fn functions_locals_and_return() {
    assert_eq!(
        out("f() { echo $# \"$1\"; }; f 'a b' c; echo $#"),
        "2 a b\n0\n"
    );
    assert_eq!(
        out("f() { local x=in; g; }; g() { echo $x; }; x=out; f; echo $x"),
        "in\nout\n"
    );
    assert_eq!(out("f() { return 4; echo no; }; f; echo $?"), "4\n");
    assert_eq!(
        out("f() { set -- z; echo $1; }; set -- a; f; echo $1"),
        "z\na\n"
    );
    assert_eq!(
        out("f() ( x=sub; echo $x ); x=main; f; echo $x"),
        "sub\nmain\n"
    );
    assert_eq!(
        out("f() { echo redirected; } > /dev/null; f; echo shown"),
        "shown\n"
    );
    // Deep but bounded recursion works; unbounded recursion is an error,
    // not a stack overflow.
    assert_eq!(
        out("f() { n=$((n+1)); [ $n -lt 900 ] && f; }; n=0; f; echo $n"),
        "900\n"
    );
    let r = run("f() { f; }; f; echo never");
    assert_eq!((r.status, r.stdout.as_str()), (2, ""));
    assert!(r.stderr.contains("nesting too deep"), "{}", r.stderr);
    // In a command substitution the error ends only that subshell.
    assert!(run("g() { echo $(g); }; g")
        .stderr
        .contains("nesting too deep"));
    assert_eq!(run("e='eval \"$e\"'; eval \"$e\"").status, 2);
}

#[test]
fn runaway_pipelines_run_out_of_threads_cleanly() {
    // A pipeline "fork bomb": each level starts two stage threads; past the
    // step's thread budget a pipeline fails instead of the process dying.
    let r = run("f() { f | f; }; f; echo after $?");
    assert_eq!(r.stdout, "after 2\n", "{}", r.stderr);
    let said = format!(
        "sh: pipeline: too many threads running in this step (more than {})",
        kiln_runtime::shell::MAX_THREADS
    );
    assert!(r.stderr.contains(&said), "{}", r.stderr);
    // The budget is given back: the same shell goes on running pipelines.
    assert_eq!(out("f() { f | f; }; f 2>/dev/null; echo a | tr a b"), "b\n");
}

#[test]
fn errexit_follows_posix() {
    let r = run("set -e; echo a; false; echo b");
    assert_eq!((r.status, r.stdout.as_str()), (1, "a\n"));
    assert_eq!(out("set -e; false && true; false || true; if false; then :; fi; ! true; while false; do :; done; echo survived"), "survived\n");
    assert_eq!(
        out("set -e; f() { false; echo in-f; }; f || echo f-failed; echo end"),
        "in-f\nend\n"
    );
    let r = run("set -e; (exit 3); echo no");
    assert_eq!((r.status, r.stdout.as_str()), (3, ""));
    let r = run("set -e; x=$(false); echo no");
    assert_eq!(r.status, 1);
}

#[test]
fn nounset_and_xtrace() {
    let r = run("set -u; echo ${x:-ok}; echo $x; echo no");
    assert_eq!((r.status, r.stdout.as_str()), (2, "ok\n"));
    assert!(r.stderr.contains("x: parameter not set"), "{}", r.stderr);
    let r = run("set -x; A=1 echo hi; set +x; echo quiet");
    assert_eq!(r.stdout, "hi\nquiet\n");
    assert_eq!(r.stderr, "+ A=1 echo hi\n+ set +x\n");
}

#[test]
fn cd_sets_the_cwd_of_spawned_commands() {
    let host = Arc::new(MemHost::new());
    host.add("/work/sub", Node::Dir);
    host.write_file("/work/sub/file", b"content\n");
    let r = run_with(host.clone(), "cd sub; pwd; cat file; ls; cd ..; pwd; cd /; pwd; cd /nonexistent; echo $?; echo $PWD $OLDPWD", "");
    assert_eq!(r.stdout, "/work/sub\ncontent\nfile\n/work\n/\n2\n/ /work\n");
    assert!(r.stderr.contains("can't cd to /nonexistent"));
    // A subshell's cd does not leak.
    assert_eq!(
        run_with(host, "(cd sub; pwd); pwd", "").stdout,
        "/work/sub\n/work\n"
    );
}

#[test]
fn test_builtin_with_file_tests_through_the_host() {
    let host = Arc::new(MemHost::new());
    host.write_file("/work/empty", b"");
    host.write_file("/work/full", b"x");
    host.add("/work/link", Node::Symlink("full".into()));
    host.add("/work/dangling", Node::Symlink("/nowhere".into()));
    let script = "for t in '-e full' '-f full' '-d full' '-d /work' '-s empty' '-s full' '-h link' '-L full' '-e dangling' '-h dangling' '-x /bin/cat' '-x full' '-f link'; do if test $t; then echo \"$t: yes\"; else echo \"$t: no\"; fi; done";
    let r = run_with(host, script, "");
    assert_eq!(
        r.stdout,
        "-e full: yes\n-f full: yes\n-d full: no\n-d /work: yes\n-s empty: no\n-s full: yes\n-h link: yes\n-L full: no\n-e dangling: no\n-h dangling: yes\n-x /bin/cat: yes\n-x full: no\n-f link: yes\n"
    );
    assert_eq!(out("[ 10 -gt 9 ] && [ abc = abc ] && [ a != b ] && [ -n x ] && [ -z '' ] && [ ! -n '' ] && echo all"), "all\n");
    assert_eq!(out("[ 1 -eq 1 -a 2 -eq 3 ]; echo $?; [ 1 -eq 1 -o 2 -eq 3 ]; echo $?; [ \\( a = b \\) ]; echo $?"), "1\n0\n1\n");
    let r = run("[ 1 -eq x ]; echo $?; [ a b ]; echo $?; [ a; echo $?");
    assert_eq!(r.stdout, "2\n2\n2\n");
    assert!(r.stderr.contains("Illegal number: x"));
}

#[test]
fn echo_and_printf() {
    // dash echo: escapes always interpreted, only -n recognised.
    assert_eq!(
        out("echo 'a\\tb\\nc'; echo -n x; echo -e y; echo 'stop\\chere'; echo end"),
        "a\tb\nc\nx-e y\nstopend\n"
    );
    assert_eq!(out("printf '%s=%d\\n' a 1 b 2 c"), "a=1\nb=2\nc=0\n");
    assert_eq!(
        out("printf '%x %X %o %c %%\\n' 255 255 8 hello"),
        "ff FF 10 h %\n"
    );
    assert_eq!(out("printf '%b|%s\\n' 'x\\ty' 'x\\ty'"), "x\ty|x\\ty\n");
    let r = run("printf '%d\\n' abc; echo $?");
    assert_eq!(r.stdout, "0\n1\n");
}

#[test]
fn read_builtin() {
    let r = fixture::run_with(
        Arc::new(MemHost::new()),
        "read a b; echo \"$b|$a\"; read -r line; echo \"$line\"; read x; echo $? \"$x\"",
        "one two three\nback\\slash\nlast-no-newline",
    );
    assert_eq!(r.stdout, "two three|one\nback\\slash\n1 last-no-newline\n");
    // Without -r a backslash escapes the next character.
    assert_eq!(
        out("printf '%s\\n' 'a\\b' | { read v; echo \"$v\"; }"),
        "ab\n"
    );
    assert_eq!(
        out("printf '%s\\n' 'a\\\\b' | { read v; printf '%s\\n' \"$v\"; }"),
        "a\\b\n"
    );
}

#[test]
fn misc_builtins() {
    assert_eq!(out("export A=1; unset A; echo ${A-gone}"), "gone\n");
    assert_eq!(
        out("set -- a b c; shift; echo $@; shift 2; echo $#"),
        "b c\n0\n"
    );
    assert_eq!(out("eval 'x=1; y=$((x+1))'; echo $y"), "2\n");
    assert_eq!(
        out("command -v cat; command -v cd; f() { :; }; command -v f; command -v nope; echo $?"),
        "/bin/cat\ncd\nf\n1\n"
    );
    assert_eq!(
        out("type cat cd"),
        "cat is /bin/cat\ncd is a shell builtin\n"
    );
    assert_eq!(
        out(": ignored args; true; echo $?; false; echo $?"),
        "0\n1\n"
    );
    let host = Arc::new(MemHost::new());
    host.write_file("/work/lib.sh", b"greet() { echo hi $1; }\nLIBVAR=loaded\n");
    assert_eq!(
        run_with(host, ". ./lib.sh; greet you; echo $LIBVAR", "").stdout,
        "hi you\nloaded\n"
    );
    let r = run("echo a; exit 5; echo b");
    assert_eq!((r.status, r.stdout.as_str()), (5, "a\n"));
    assert_eq!(run("false; exit").status, 1);
    assert_eq!(run("exit 300").status, 44);
}

#[test]
fn exported_env_reaches_children_through_the_host() {
    use kiln_runtime::shell::{Child, FileInfo, Finished, Host, OpenMode, Shell, Stdio};
    use std::io;
    use std::sync::Mutex;
    type Call = (Vec<String>, Vec<(String, String)>, String);
    struct EnvHost(Mutex<Vec<Call>>);
    impl Host for EnvHost {
        fn spawn(
            &self,
            argv: &[String],
            env: &[(String, String)],
            cwd: &str,
            _: Stdio,
        ) -> io::Result<Box<dyn Child>> {
            if let Ok(mut v) = self.0.lock() {
                v.push((argv.to_vec(), env.to_vec(), cwd.to_string()));
            }
            Ok(Box::new(Finished(0)))
        }
        fn find_program(&self, _: &str, _: &[(String, String)]) -> Option<String> {
            None
        }
        fn open_read(&self, _: &str) -> io::Result<Box<dyn io::Read + Send>> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn open_write(&self, _: &str, _: OpenMode) -> io::Result<Box<dyn io::Write + Send>> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn metadata(&self, _: &str) -> Option<FileInfo> {
            None
        }
        fn symlink_metadata(&self, _: &str) -> Option<FileInfo> {
            None
        }
        fn read_dir(&self, _: &str) -> io::Result<Vec<String>> {
            Ok(Vec::new())
        }
    }
    let host = Arc::new(EnvHost(Mutex::new(Vec::new())));
    let mut sh = Shell::new(host.clone());
    sh.set_env([("PATH", "/usr/bin")]);
    sh.set_cwd("/app");
    // Prefix assignments expand left to right: c sees the new b (dash).
    let status = sh.run_script(
        "export E=1; L=local; T=temp prog a 'b c'; prog2; a=1; b=2; b=$a c=$b prog3 $b",
    );
    assert_eq!(status, 0);
    let calls = host.0.lock().map(|v| v.clone()).unwrap_or_default();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        calls,
        vec![
            (
                vec!["prog".into(), "a".into(), "b c".into()],
                env(&[("E", "1"), ("PATH", "/usr/bin"), ("T", "temp")]),
                "/app".into()
            ),
            (
                vec!["prog2".into()],
                env(&[("E", "1"), ("PATH", "/usr/bin")]),
                "/app".into()
            ),
            (
                vec!["prog3".into(), "2".into()],
                env(&[("E", "1"), ("PATH", "/usr/bin"), ("b", "1"), ("c", "1")]),
                "/app".into()
            ),
        ]
    );
}

#[test]
fn test_ef_compares_file_identity() {
    let host = Arc::new(MemHost::new());
    host.write_file("/work/f", b"x");
    host.write_file("/work/h", b"x");
    host.write_file("/work/g", b"x");
    host.same_inode("/work/h", "/work/f");
    host.add("/work/s", Node::Symlink("h".into()));
    let r = run_with(
        host,
        "[ f -ef h ] && echo link; [ s -ef f ] && echo sym; \
         [ f -ef g ] || echo other; [ f -ef nosuch ] || echo missing; test h -ef /work/f; echo $?",
        "",
    );
    assert_eq!(r.stdout, "link\nsym\nother\nmissing\n0\n");
}

#[test]
fn syntax_errors_have_positions_and_status_2() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("echo 'unterminated", 1, 6, "unterminated single quote"),
        ("echo ok\nif true; then echo x", 2, 21, "expected 'fi'"),
        ("echo \"open", 1, 6, "unterminated double quote"),
        ("for 1x in a; do :; done", 1, 5, "bad variable name"),
        ("echo a |", 1, 9, "unexpected end of file"),
        ("fi", 1, 1, "unexpected 'fi'"),
        ("echo ${x", 1, 6, "unterminated '${'"),
        ("echo $(echo", 1, 6, "'$('"),
        ("a && && b", 1, 6, "unexpected '&&'"),
        ("case x in a) echo;; b echo;; esac", 1, 23, "expected ')'"),
        ("( echo a", 1, 9, "expected ')'"),
        ("echo >", 1, 7, "expected a word after '>'"),
        ("{ }", 1, 3, "unexpected '}'"),
        ("echo $((1 + 2)", 1, 6, "'$((' arithmetic expansion"),
    ];
    for (script, line, column, msg) in cases {
        let err = match parse(script) {
            Err(e) => e,
            Ok(_) => panic!("{script:?} parsed"),
        };
        assert_eq!(
            (err.line, err.column),
            (*line, *column),
            "{script:?}: {err}"
        );
        assert!(err.message.contains(msg), "{script:?}: {err}");
        let r = run(script);
        assert_eq!(r.status, 2, "{script:?}");
        assert_eq!(r.stdout, "");
        assert!(
            r.stderr
                .starts_with(&format!("sh: line {line}, column {column}: syntax error: ")),
            "{}",
            r.stderr
        );
    }
    // Nothing runs when a later line has a syntax error.
    assert_eq!(run("echo first\n)").stdout, "");
}

/// A small deterministic PRNG (xorshift) for the fuzz test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn parser_never_panics_on_random_input() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    const PIECES: &[&str] = &[
        "echo", " ", "\n", ";", "&&", "||", "|", "&", "(", ")", "{", "}", "if", "then", "else",
        "fi", "for", "in", "do", "done", "while", "case", "esac", ";;", "$", "${", "}", "$(",
        "$((", "))", "`", "'", "\"", "\\", "<<", "<<-", "EOF", ">", "<", ">&", "2", "#", "*", "?",
        "[", "]", "x=", ":-", "#", "%%", "!", "f()", "~", "\t",
    ];
    for _ in 0..4000 {
        let len = (rng.next() % 40) as usize;
        let script: String = if rng.next().is_multiple_of(2) {
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() % 128) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..len)
                .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
                .collect()
        };
        let _ = parse(&script);
    }
    // Deep nesting is refused, not a stack overflow.
    for deep in [
        "(".repeat(5000),
        "$(".repeat(5000),
        "${x:-".repeat(5000),
        "`".repeat(3) + &"{ ".repeat(5000),
    ] {
        assert!(parse(&deep).is_err());
    }
    assert!(parse(&format!(
        "echo $(( {} 1 {} ))",
        "(".repeat(3000),
        ")".repeat(3000)
    ))
    .is_ok());
}

#[test]
fn readonly_is_enforced_loudly() {
    let r = run("readonly x=1; x=2; echo no");
    assert_eq!((r.status, r.stdout.as_str()), (2, ""));
    assert_eq!(r.stderr, "sh: x: is read only\n");
    let r = run("readonly x=1; unset x; echo no");
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (2, "sh: unset: x: is read only\n")
    );
    let r = run("readonly x=1; export x=2; echo no");
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (2, "sh: export: x: is read only\n")
    );
    // `read` fails (status 2) without ending the shell.
    let r = run("readonly x=1; echo 5 | { read x; echo $? $x; }");
    assert_eq!((r.status, r.stdout.as_str()), (0, "2 1\n"));
    assert_eq!(r.stderr, "sh: read: x: is read only\n");
    // Marking and listing.
    assert_eq!(
        out("x=1; readonly x; export x; readonly -p; x=1 true"),
        "readonly x='1'\n"
    );
}
