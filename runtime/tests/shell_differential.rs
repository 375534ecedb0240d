//! Runs everyday scripts through kiln's shell (with the in-memory test host)
//! and through the system /bin/sh (dash) restricted to the same few programs,
//! and compares stdout and exit status.

#[path = "shell_fixture.rs"]
mod fixture;

use std::process::{Command, Stdio};

const PROGRAMS: &[&str] = &["cat", "tr", "wc", "seq", "sort", "head", "mkdir", "ls"];

const SCRIPTS: &[&str] = &[
    "echo hello world",
    "p() { OPTIND=1; while getopts ab:c o \"$@\"; do echo \"$o=${OPTARG-}\"; done; shift $((OPTIND-1)); echo \"rest $* $OPTIND\"; }; p -a -b 1 x y; p -acb2 -- -z; p -ab; p -x -a 2>/dev/null; p",
    "while getopts :ab: o -b; do echo \"$o $OPTARG\"; done; OPTIND=1; while getopts :a o -q; do echo \"$o $OPTARG\"; done",
    "echo 'single  quoted' \"double  quoted\" un\\ quoted",
    "x=1; y=\"$x 2\"; echo \"$y\" $y",
    "echo a; false; echo $?",
    "true && echo yes || echo no; false && echo yes || echo no",
    "! false; echo $?; ! true; echo $?",
    "exit 3",
    "false",
    "( exit 4 ); echo $?",
    "{ echo a; echo b; } | wc -l",
    "seq 5 | sort -r | head -n 2",
    "seq 10 | tr 0-9 a-j | sort | head -3",
    "echo hello | tr a-z A-Z",
    "x=abc; echo ${#x} ${x:-d} ${u:-d} ${u-e} ${x:+alt} \"${u:+alt}\"",
    "f=/usr/lib/x.tar.gz; echo ${f#*/} ${f##*/} ${f%.*} ${f%%.*}",
    "echo ${u:=set}; echo $u",
    "echo $((1 + 2 * 3)) $(( (1+2)*3 )) $((7/2)) $((7%3)) $((-5/2)) $((1<2)) $((3==3 && 0))",
    "i=0; while [ $i -lt 5 ]; do i=$((i+1)); done; echo $i",
    "i=5; until [ $i -eq 0 ]; do printf '%d ' $i; i=$((i-1)); done; echo",
    "for x in a b c; do echo $x; done",
    "set -- one two three; for a; do echo \"<$a>\"; done; echo $#",
    "set -- 'a b' c; for a in \"$@\"; do echo \"[$a]\"; done; for a in $@; do echo \"($a)\"; done",
    "set -- 'a b' c; for a in \"$*\"; do echo \"[$a]\"; done",
    "case foo.txt in *.c) echo c;; *.txt) echo txt;; *) echo other;; esac",
    "case x in a|b) echo ab;; [xyz]) echo xyz;; esac",
    "f() { echo \"args: $# $1 $2\"; return 3; }; f a b; echo $?",
    "f() { local v=inner; echo $v; }; v=outer; f; echo $v",
    "for i in 1 2 3 4 5; do if [ $i = 3 ]; then continue; fi; if [ $i = 5 ]; then break; fi; echo $i; done",
    "for i in 1 2; do for j in a b; do if [ $j = b ]; then continue 2; fi; echo $i$j; done; done",
    "x=$(echo hi; echo there); echo \"$x\"",
    "x=`echo back tick`; echo $x",
    "echo \"$(printf 'a\\n\\n\\n')\"end",
    "printf '%s-%s\\n' a b c d",
    "printf '%5d|%-5s|%05.1f|%x|%o|%c\\n' 42 ab 3.14159 255 8 xyz",
    "printf '%b\\n' 'tab\\there'",
    "echo 'a\\tb'; echo -n no-newline; echo",
    "cat <<EOF\nline one\n  indented $((1+1))\nEOF",
    "x=val; cat <<'EOF'\n$x is literal\nEOF",
    "cat <<-EOF\n\tstripped\n\tEOF\necho after",
    "echo data > f; cat f; echo more >> f; cat f; wc -l < f",
    "echo err 1>&2; echo out",
    "ls nosuch 2>/dev/null; echo $?",
    "mkdir d; echo x > d/a; echo y > d/b; echo d/*",
    "echo b > b1; echo a > a1; echo *1; echo 'no'*match",
    "mkdir -p sub/dir; cd sub/dir; cd ..; ls",
    "IFS=:; x=a:b::c; for p in $x; do echo \"[$p]\"; done",
    "x='  lots   of   space  '; echo [$x]; echo [\"$x\"]",
    "printf 'a b c\\nd e\\n' | while read x y; do echo \"$y/$x\"; done",
    "echo 'a\\b c' | { read -r x; echo \"$x\"; }",
    "set -e; false || true; echo still; false; echo never",
    "set -e; if false; then :; fi; echo ok; ! true; echo ok2",
    "set -e; f() { false; echo inside; }; f || echo caught; echo end",
    "false | true; echo $?; true | false; echo $?",
    "set -u; x=1; echo $x; echo $nope; echo never",
    "unset x; echo ${x?custom message}; echo never",
    "nosuchcommand; echo $?",
    "export A=1; B=2; echo $A $B",
    "x=1; x=2 true; echo $x",
    "test -n \"\" ; echo $?; test a = a; echo $?; [ 3 -gt 2 ] && echo gt; [ a != a ] || echo ne",
    "[ -d /work ] && echo dir; [ -f nosuch ] || echo nofile; echo x > f; [ -s f ] && echo nonempty",
    "eval 'y=5; echo $y'",
    "command -v cat >/dev/null && echo found; command -v nosuch || echo missing",
    "echo $(( x = 3, 1 )) 2>/dev/null; echo after",
    "a=1; b=2; echo $((a+b)) $((a<<3)) $((b|1)) $((a?10:20)) $((x+=4)) $x",
    "i=0; while true; do i=$((i+1)); [ $i -ge 3 ] && break; done; echo $i",
    "seq 3 | while read n; do echo \"n=$n\"; done | tail -1 2>/dev/null; echo $?",
    "echo one two | { read a b; echo $b $a; }",
    "x=\"a*\"; echo \"$x\"; echo '$x'; echo \\$x",
    "v=hello; echo ${v%l*} ${v%%l*} ${v#*l} ${v##*l}",
    "shift_test() { shift; echo $@; }; shift_test a b c",
    "echo ${#} ${1:-none}",
    "x=5; [ $x -eq 5 ] && [ $x -lt 10 ] && echo inrange",
    "while read l; do echo \"got $l\"; done <<EOF\nfirst\nsecond\nEOF",
    "echo {a,b} ~/x 'tail'",
    "( cd /; pwd ); pwd | tr / _ | head -c 0; echo done",
    "if [ 1 = 2 ]; then echo a; elif [ 2 = 2 ]; then echo b; else echo c; fi",
    "echo $(( 10 > 5 ? 1 : 0 )) $(( !0 )) $(( ~0 )) $(( 2 ** 0 )) 2>/dev/null; echo $?",
    "echo \"$(echo \"inner $(echo deep)\")\"",
    "u=; echo \"${u:-\"quoted default\"}\" ${u-set} [${u:-}]",
    "set -- a b c; shift 2; echo $1 $#",
    "echo $((0x1f)) $((010)) $((1<<10))",
    "cat <<EOF | tr a-z A-Z\nhello\nEOF",
    "cat <<A; cat <<B\nfirst\nA\nsecond\nB",
    "IFS=, read a b <<EOF\nx,y,z\nEOF\necho \"$a|$b\"",
    "x='a b'; case \"$x\" in \"a b\") echo quoted-match;; *) echo no;; esac",
    "for f in *.none; do echo \"$f\"; done",
    "fact() { if [ $1 -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(($1-1))) )); fi; }; fact 6",
    "echo \"a\\\\b\\$c\\\"d\" 'x\\ny'",
    "x=$(exit 3); echo $?",
    "f() { exit 7; }; f; echo no",
    "printf '%s\\n' \"$@\"; echo $#",
    "trap 'echo bye' EXIT; echo hi",
    "echo a\\\nb",
    "echo a # comment\necho a#b",
    ": ${X:=default}; echo $X",
    "x=a; case $x in (a) echo paren;; esac",
    "while false; do :; done; echo $?; if false; then :; fi; echo $?",
    "{ echo a; false; } && echo no || echo yes",
    "echo $(( 2 + $(echo 3) ))",
    "a='x y  z'; set -- $a; echo $#",
    "IFS= read -r line <<EOF\n  spaced  \nEOF\necho \"[$line]\"",
    "echo \"$@\"; set -- '' ''; echo $#; for a in $@; do echo x; done; for a in \"$@\"; do echo y; done",
    "var='*'; echo $var; echo f > file1; echo $var \"$var\"",
    "echo a > ab; echo b > ba; echo [ab]* ?b",
    "cd /nonexistent 2>/dev/null; echo $?",
    "x=1 y=$x; echo $y",
    "cmd=echo; $cmd hi there",
    "set -- a b c d e f g h i j; echo $10 ${10}",
    "sort <<EOF\nb\nc\na\nEOF",
    "{ echo a; echo b; } > out; cat out; for i in 1 2; do echo $i; done > o; cat o",
    "seq 3 > nums; while read x; do echo \"<$x>\"; done < nums",
    "exec 3>f; echo hi >&3; echo there >&3; exec 3>&-; cat f",
    "echo $(seq 3); x=$(seq 3); echo \"$x\"",
    "x=abcabc; y=b; echo \"${x#*\"$y\"}\" ${x%\"$y\"*}",
    "f() { :; }; unset -f f; f 2>/dev/null; echo $?",
    "echo $((1/0)); echo after",
    "command -v echo; command -v if",
    "echo start; (echo sub; exit 1) || echo failed",
    "x=outer; (x=inner; echo $x); echo $x",
    "echo $(echo a | tr a b)$(echo c)",
    "n=0; for i in $(seq 100); do n=$((n+i)); done; echo $n",
    "seq 1000 | head -n 3",
    "seq 20000 | sort -n | tail 2>/dev/null; seq 20000 | sort -r | head -1",
    "echo 'it''s' \"it's\" it\\'s",
    "set -e; (false); echo not-reached",
    "set -e; x=$(false); echo not-reached-either",
    "set -e; false | true; echo pipe-ok",
    "echo -n abc | wc -c; printf 'x\\0y' | wc -c",
    "printf '%d %i %u\\n' -5 +7 3; printf '%s' ; printf '[%3s][%-3s]\\n' a b",
    "printf 'no newline'; printf '\\n%%d\\n'",
    "i=0; while :; do i=$((i+1)); case $i in 3) continue;; 6) break;; esac; echo $i; done",
    "echo ${x-unset} ${x:-unset}; x=; echo ${x-unset} ${x:-unset}",
    "echo \"${#HOME}\" ${HOME##*/}",
    "set -eux; \\\n  for d in a b; do \\\n    mkdir -p sub/$d; \\\n  done; \\\n  ls sub",
    "set -e\nif [ ! -d build ]; then\n  mkdir build\nfi\ncd build\necho \"in $(ls .. | head -n 1)\"\n",
    "case \"$HOME\" in\n  /root)\n    echo root-home\n    ;;\n  *)\n    echo other\n    ;;\nesac",
    "VERSION=1.2.3; MAJOR=${VERSION%%.*}; MINOR=${VERSION#*.}; MINOR=${MINOR%.*}; echo \"$MAJOR/$MINOR\"",
    "x=~/bin; echo $x; y=a:~/c; echo $y",
    "printf '%s\\n' c a b > list; sort list | while IFS= read -r l; do printf '[%s]' \"$l\"; done; echo",
    "echo \"$(echo 'single in double')\" \"$(echo \"d\")\"",
    "cat > script.sh <<'EOF'\necho from script $1\nEOF\n. ./script.sh; echo $?",
    "a=1\nb=2\nif [ \"$a\" -lt \"$b\" ] &&\n   [ \"$b\" -lt 3 ]; then\n  echo chained\nfi",
    "f() {\n  local n=$1\n  while [ $n -gt 0 ]; do\n    printf '%s ' $n\n    n=$((n - 1))\n  done\n  echo\n}\nf 3",
    "echo ${1-none} ${#} $@ \"$*\"",
    "IFS=: read -r user rest <<EOF\nroot:x:0:0\nEOF\necho $user; echo $rest",
    "for f in a b; do echo $f > $f.txt; done; cat *.txt; echo *.txt",
    "false; x=$?; [ $x -ne 0 ] && echo \"failed with $x\"",
    "echo 'quote''s' \"dq\"\"dq\" a\"b\"c",
    "i=0; while [ $i -lt 3 ]; do i=$((i+1)); [ $i -eq 2 ] && continue; echo $i; done",
    "echo $(( (3 + 4) * 2 - 10 / 5 % 3 ))",
    "test 2 -gt 1 -a -n x && echo ok; test ! -e nothing && echo absent",
    "x=\"line1\nline2\"; echo \"$x\" | wc -l; echo $x",
];

/// Issue 13 ("a RUN line means what it means, or fails loudly"): cases
/// where kiln's shell silently differed from dash, and where bash --posix
/// agrees with dash (compared with both).
const POSIX_SEMANTICS: &[&str] = &[
    // `return` in a `.` file ends the `.` only, with its status.
    "cat > r.sh <<'EOF'\necho in; return 3; echo no\nEOF\n. ./r.sh; echo \"after $?\"; f() { . ./r.sh; echo \"f $?\"; return 4; }; f; echo $?",
    "cat > r.sh <<'EOF'\nif true; then return; fi\necho no\nEOF\nfalse; . ./r.sh; echo \"after $?\"; for i in 1 2; do . ./r.sh; echo $i; done",
    // The word of an unquoted ${x:+word} / ${x:-word} is field-split.
    "x=1; set -- ${x:+-v -x}; echo $# \"$1\"; set -- ${u:-a b  c}; echo $# \"$3\"; set -- \"${x:+-v -x}\"; echo $#",
    "x=1; IFS=:; set -- ${x:+a:b:c}; echo $#; set -- ${u-p:q}; echo $#; set -- ${x:+\"a:b\"}; echo $#",
    "for w in ${UNSET:-one two three}; do echo \"<$w>\"; done",
    // test -ef: the same file.
    "echo x > f; [ f -ef ./f ] && echo same; [ f -ef g ] || echo nog; mkdir d; [ d/../f -ef f ] && echo same2; [ d -ef d/. ] && echo dot; [ f -ef d ]; echo $?",
    // A subshell runs its own EXIT trap, not its parent's; exit in a trap.
    "( trap 'echo bye' EXIT; echo in ); echo out; ( trap 'echo bye2' EXIT; exit 3 ); echo $?",
    "x=$(trap 'echo bye' EXIT; echo in); echo \"[$x]\"; echo a | { trap 'echo pb' EXIT; cat; }",
    "trap 'echo top; exit 5' EXIT; (echo sub); x=$(echo cs); echo main $x; exit 3",
    // Prefix assignments expand left to right, later ones see earlier ones.
    "a=1; b=2; f() { echo \"b=$b c=$c\"; }; b=$a c=$b f; echo $b ${c-unset}",
    "a=1; b=2; b=$a c=$b printf '%s\\n' \"$b\"; b=$a c=$b eval 'echo $b $c'; echo $b; a=3; b=$a c=$b; echo $b $c",
];

/// Issue 13 cases where bash --posix differs from dash (readonly errors,
/// `break` in a subshell): compared with dash only.
const DASH_SEMANTICS: &[&str] = &[
    // readonly is enforced: a fatal error (status 2) except for `read`.
    "readonly x=1; x=2; echo no",
    "readonly x=1; x=2 true; echo no",
    "readonly x=1; export x=3; echo no",
    "readonly x=1; unset x; echo no",
    "readonly x=1; echo $((x=5)); echo no",
    "readonly x=1; : ${x:=5}; echo $x; (x=2; echo no); echo \"sub $?\"; for x in 1 2; do echo $x; done; echo no",
    "set -- -a -b; readonly x=1; getopts ab x; echo $? $x",
    "readonly x=1; read x <<EOF\n5\nEOF\necho \"cont $? $x\"",
    "readonly x=1 y=2; export E=3; readonly; readonly -p; export -p | head -c 0; x=1 echo late",
    // `trap` lists the EXIT trap (dash's quoting, as `set` and `export -p`);
    // `trap '' EXIT` is listed; `trap --`; a trap that does not parse fails.
    "trap 'echo a' EXIT; trap; trap -- '' EXIT; trap; echo b",
    "trap -- 'echo a' EXIT; echo b",
    "trap \"echo \\\"it's\\\"\" EXIT; trap; v=\"a''b\"; readonly v; readonly -p; w=\"'\"; readonly w; readonly -p",
    "trap \"echo it's\" EXIT; echo x",
    // break/continue in a subshell end the subshell.
    "for i in 1 2; do (echo x; break; echo y); echo $i $?; x=$(echo a; break; echo b); echo \"[$x]\"; done",
    "for i in 1 2; do (continue; echo y); echo $i; done; i=0; while [ $i -lt 2 ]; do i=$((i+1)); ( [ $i = 1 ] && break; echo in $i ); done; echo done",
    "for i in 1 2; do echo $i | (while read a; do break 2; done; echo in); echo out; done",
    "for i in 1 2; do echo | break; echo $i; done; for i in 1 2; do echo $i | { while read a; do continue 2; done; echo in; }; done",
];

/// Runs `script` with `shell` (argv prefix) in an empty directory, with only
/// the fixture's programs on PATH.
fn run_sh(shell: &[&str], script: &str) -> (String, i32) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return (format!("<tempdir failed: {e}>"), -1),
    };
    let bin = dir.path().join("bin");
    let work = dir.path().join("work");
    let _ = std::fs::create_dir(&bin);
    let _ = std::fs::create_dir(&work);
    for p in PROGRAMS {
        let _ = std::os::unix::fs::symlink(format!("/usr/bin/{p}"), bin.join(p));
    }
    let out = Command::new("/usr/bin/env")
        .arg("-i")
        .arg(format!("PATH={}", bin.display()))
        .arg("HOME=/root")
        .arg("LC_ALL=C")
        .args(shell)
        .arg("-c")
        .arg(script)
        .current_dir(&work)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            o.status.code().unwrap_or(-1),
        ),
        Err(e) => (format!("<spawn failed: {e}>"), -1),
    }
}

#[test]
fn everyday_scripts_match_dash() {
    if !std::path::Path::new("/bin/sh").exists() {
        eprintln!("no /bin/sh: skipping");
        return;
    }
    let scripts: Vec<&str> = SCRIPTS
        .iter()
        .chain(POSIX_SEMANTICS)
        .chain(DASH_SEMANTICS)
        .copied()
        .collect();
    let mismatches = differences(&["/bin/sh"], &scripts);
    assert!(
        mismatches.is_empty(),
        "{} of {} scripts differ from dash:\n{}",
        mismatches.len(),
        scripts.len(),
        mismatches.join("\n")
    );
}

#[test]
fn posix_semantics_match_bash_posix() {
    if !std::path::Path::new("/usr/bin/bash").exists() {
        eprintln!("no /usr/bin/bash: skipping");
        return;
    }
    let shell = ["/usr/bin/bash", "--posix"];
    let mismatches = differences(&shell, POSIX_SEMANTICS);
    assert!(
        mismatches.is_empty(),
        "{} of {} scripts differ from bash --posix:\n{}",
        mismatches.len(),
        POSIX_SEMANTICS.len(),
        mismatches.join("\n")
    );
}

/// The scripts whose stdout or status under kiln differ from `shell`'s.
fn differences(shell: &[&str], scripts: &[&str]) -> Vec<String> {
    let mut mismatches = Vec::new();
    for script in scripts {
        let (want_out, want_status) = run_sh(shell, script);
        let got = fixture::run(script);
        if got.stdout != want_out || got.status != want_status {
            mismatches.push(format!(
                "script: {script:?}\n  {}: status {want_status}, stdout {want_out:?}\n  kiln: status {}, stdout {:?}, stderr {:?}",
                shell.join(" "),
                got.status,
                got.stdout,
                got.stderr
            ));
        }
    }
    mismatches
}
