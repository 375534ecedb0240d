//! Everyday RUN command lines, run twice on identical trees: by the host's
//! /bin/sh with GNU coreutils/sed/grep/gawk/findutils, and by kiln's step
//! sandbox (kiln's shell + the WASI toolbox). Standard output and exit
//! status must match. Lines that need an applet the toolbox lacks are
//! reported, not silently passed.

use kiln_runtime::shell::Output;
use kiln_runtime::step::{Step, StepConfig};
use kiln_runtime::toolbox::{self, TOOLBOX_WASM};
use kiln_runtime::{Rootfs, RootfsOptions, Runtime, RuntimeConfig};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const LINES: &[&str] = &[
    "cat a.txt | sort | uniq -c",
    "sort -n nums.txt | head -3",
    "sort -r words.txt | tail -n 2",
    "sort -u words.txt",
    "sort -t: -k3 -n passwd | cut -d: -f1",
    "uniq -d sorted.txt",
    "wc -l a.txt words.txt",
    "wc -c < a.txt",
    "cut -d: -f1,3 passwd | sort",
    "tr '[:lower:]' '[:upper:]' < words.txt",
    "tr -d aeiou < words.txt",
    "seq 1 5 | paste -sd+",
    "seq 10 -2 1",
    "echo hello world | sed 's/world/kiln/'",
    "sed -n '2,3p' words.txt",
    "sed -e 's/^/> /' -e '/beta/d' words.txt",
    "sed -i 's/alpha/ALPHA/' copy.txt && cat copy.txt",
    "basename /usr/local/bin/tool.sh .sh; dirname /usr/local/bin/tool.sh",
    "printf '%s-%d\\n' a 1 b 2",
    "sha256sum a.txt words.txt",
    "md5sum words.txt",
    "head -c 5 a.txt; echo",
    "head -n 2 words.txt; tail -n 1 words.txt",
    "ls; ls -1 dir; ls -a dir",
    "mkdir -p x/y/z && touch x/y/z/f && ls -R x",
    "expr 3 + 4; expr length hello",
    "test -f a.txt && echo file; test -d dir && echo dir; [ -e nope ] || echo none",
    "for f in *.txt; do echo \"$f\"; done",
    "cat missing.txt 2>/dev/null; echo status=$?",
    "tac words.txt",
    "nl words.txt",
    "fold -w 5 a.txt",
    "od -c a.txt | head -2",
    "tee out.txt < a.txt > /dev/null; cat out.txt",
    "cp -r dir dir2 && ls dir2 && cat dir2/inner.txt",
    "mv copy.txt moved.txt && ls *.txt",
    "rm -rf dir && ls",
    "ln -s a.txt l && readlink l && cat l",
    "echo $((3 * 4 + 1)); x=5; echo ${x:-none} ${y:-none} ${#x}",
    "date -u -d @86400 +%F",
    "base64 a.txt | base64 -d",
    "echo 'a b  c' | tr -s ' ' | cut -d' ' -f2-",
    "yes | head -n 3",
    "comm -12 sorted.txt words.txt",
    "join -t: passwd passwd | head -1",
    "printf 'b\\na\\n' | sort | tee sorted2.txt | wc -l; cat sorted2.txt",
    "expand tabs.txt | cat -A 2>/dev/null || expand tabs.txt",
    "basename \"$(realpath dir/../a.txt)\"",
    "true && false || echo recovered; ! false && echo negated",
    "case a.txt in *.txt) echo text;; *) echo other;; esac",
    "split -l 2 words.txt part_ && ls part_* && cat part_ab",
    "truncate -s 3 a.txt && cat a.txt; echo",
    "numfmt --to=iec 1048576",
    "shuf -n 0 words.txt; echo shuffled-none",
    "grep -n beta words.txt",
    "grep -c a words.txt",
    "grep -v -E 'alpha|gamma' words.txt",
    "grep -r inner dir",
    "grep -q delta words.txt || echo absent",
    "awk -F: '{ print $1, $3 }' passwd",
    "awk '{ n += $1 } END { print n, NR }' nums.txt",
    "awk 'length($0) > 4' words.txt",
    "find . -name '*.txt' | sort",
    "find dir -type f",
    "find . -type d | sort",
    "find . -name inner.txt -exec cat {} \\;",
    "ls *.txt | xargs -n 1 echo file:",
    "printf 'x\\ny\\n' | xargs echo",
    "tar -cf t.tar a.txt words.txt && tar -tf t.tar",
    "gzip -c a.txt | gunzip",
    "env | sort | grep -v '^PWD=' | grep -v '^_='",
    "dd if=a.txt bs=3 count=2 2>/dev/null",
    "dd if=a.txt of=x bs=1 skip=2 count=5 2>/dev/null; cat x",
    "printf abcdef | dd bs=2 count=2 2>&1 >/dev/null | head -2",
    "dd if=a.txt ibs=5 obs=3 2>&1 >/dev/null | head -2",
    "dd if=/dev/zero bs=1K count=3 2>/dev/null | wc -c",
    "seq 1 100 | dd bs=10 skip=1 count=3 iflag=fullblock 2>/dev/null",
    "dd if=words.txt of=copy.txt bs=2 count=2 conv=notrunc 2>/dev/null; cat copy.txt",
    "dd if=words.txt of=copy.txt bs=2 seek=1 count=2 2>/dev/null; od -c copy.txt",
    "dd if=a.txt of=copy.txt bs=3 seek=1 count=1 conv=notrunc 2>/dev/null; cat copy.txt",
    "dd if=a.txt bs=4 count=1 conv=ucase,sync 2>/dev/null | od -c",
    "dd if=a.txt iflag=skip_bytes,count_bytes skip=5 count=7 status=none",
    "dd if=a.txt bs=1 count=4 2>&1 >/dev/null | head -2",
    "dd if=/dev/zero bs=2x512 count=1 status=none | wc -c",
    "dd if=a.txt bs=1 skip=100 status=none; echo status=$?",
    "dd if=missing.txt 2>/dev/null; echo status=$?",
    "dd bs=0 2>/dev/null; dd foo=1 2>/dev/null; echo status=$?",
    "printf ab | dd bs=1 seek=2 2>/dev/null | od -c",
    "dd if=a.txt of=h2 bs=1 seek=3 count=2 status=none; od -c h2",
    "printf XYZ | dd of=copy.txt oflag=append conv=notrunc status=none; cat copy.txt",
    "printf abc | dd bs=2 conv=sync 2>/dev/null | od -c",
    // A bare `nice` prints the niceness kiln was started with on the host
    // side (CI often runs niced) and 0 in a step, as in a container started
    // at 0; toolbox.rs checks kiln's answer.
    "nice -n 5 echo hi",
    "nice -5 seq 2",
    "nohup echo x",
    "nohup false; echo status=$?",
    "nice nosuchcmd 2>/dev/null; echo status=$?",
    // du: only apparent sizes of files (GNU's block counts, and the sizes
    // of directories, are the host filesystem's; toolbox.rs checks kiln's).
    "du --apparent-size -s -k a.txt words.txt",
    "du -cb a.txt words.txt",
    "du --apparent-size -h a.txt",
    "ln a.txt h && du -cb a.txt h",
    "du -b a.txt a.txt",
    "du -sb nope 2>&1; echo status=$?",
    "tar czf a.tgz a.txt && tar xzf a.tgz -O",
    "tar czf a.tgz a.txt words.txt && tar xzf a.tgz -O words.txt",
    "mkdir o && tar cf t.tar a.txt dir && tar -C o -xf t.tar --to-stdout && ls o",
    // Issue 13: xargs -s (command line size, each argument with its NUL).
    "echo a b c d | xargs -s 12 echo",
    "echo a b c d | xargs -s 5 echo; echo status=$?",
    "echo a bbbbbbbbbb c | xargs -s 12 echo; echo status=$?",
    "echo a b c d e f | xargs -n 3 -s 9 -x echo; echo status=$?",
    "printf 'a b\\nc d\\n' | xargs -L 1 -s 8 echo; echo status=$?",
    "echo a | xargs -s 0 echo; echo status=$?",
    "echo abc | xargs -I{} -s 10 echo {}{}; echo status=$?",
    // cp -a: symlinks copied as links (with their times), hard links kept.
    "ln -s a.txt l && cp -a l l2; echo status=$?; readlink l2",
    "ln -s inner.txt dir/l && touch -d @1000000 dir/inner.txt dir && cp -a dir d2; echo status=$?; readlink d2/l; stat -c %Y d2/inner.txt d2",
    "ln a.txt h && cp -a a.txt h dir && stat -c %h dir/a.txt",
    "chmod 600 a.txt && cp -an a.txt words.txt; ls -l words.txt | cut -c1-10",
];

fn fixture(root: &Path) {
    let w = |p: &str, s: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, s).unwrap();
    };
    w("a.txt", "pear\napple\npear\nfig\n");
    w("words.txt", "alpha\nbeta\ngamma\ndelta-epsilon\n");
    w("copy.txt", "alpha\nbeta\n");
    w("sorted.txt", "alpha\nalpha\nbeta\ngamma\n");
    w("nums.txt", "10\n9\n100\n1\n");
    w("passwd", "root:x:0:0:root:/root:/bin/sh\nbin:x:2:2:bin:/bin:/bin/false\ndaemon:x:1:1::/:/bin/false\n");
    w("tabs.txt", "a\tb\n");
    w("dir/inner.txt", "inner\n");
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

/// The applets a command line calls (words in command position, roughly).
fn applets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in line.split(['|', ';', '&', '(', ')', '!']) {
        let mut words = part.split_whitespace();
        let Some(first) = words.next() else { continue };
        let name = match first {
            "xargs" | "env" => {
                out.push(first.to_string());
                continue;
            }
            w => w,
        };
        if name.contains('=')
            || [
                "for", "do", "done", "case", "esac", "in", "then", "fi", "test", "[", "echo",
                "printf", "true", "false", "x", "y", "esac", "text", "other",
            ]
            .contains(&name)
        {
            continue;
        }
        let plain = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            out.push(name.to_string());
        }
    }
    if line.contains("-exec cat") || line.contains("xargs -n 1 echo") {
        out.push("cat".into());
    }
    out
}

#[test]
fn everyday_command_lines_match_gnu() {
    let rt = Arc::new(
        Runtime::new(RuntimeConfig {
            cache_dir: Some(std::env::temp_dir().join("kiln-test-modules")),
        })
        .unwrap(),
    );
    let tb = rt.load("kiln-toolbox", TOOLBOX_WASM).unwrap();
    let mut failures = Vec::new();
    let mut missing = Vec::new();
    let mut compared = 0;
    for line in LINES {
        let lacking: Vec<String> = applets(line)
            .into_iter()
            .filter(|a| !toolbox::provides(a))
            .collect();
        if !lacking.is_empty() {
            missing.push(format!("{line}  (toolbox lacks {})", lacking.join(", ")));
            continue;
        }
        // GNU
        let host = tempfile::tempdir().unwrap();
        fixture(host.path());
        let gnu = Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .current_dir(host.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .output()
            .unwrap();
        // kiln
        let root = tempfile::tempdir().unwrap();
        fixture(&root.path().join("work"));
        let fs = Rootfs::open(root.path(), RootfsOptions::default()).unwrap();
        let step = Step::new(
            rt.clone(),
            tb.clone(),
            fs,
            StepConfig {
                source_date_epoch: 0,
                seed: [1; 32],
                memory_limit: 1 << 30,
                timeout: Some(std::time::Duration::from_secs(60)),
                user: (0, 0),
            },
        );
        let out = Buf::default();
        let env = vec![
            ("LC_ALL".to_string(), "C".to_string()),
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("TZ".to_string(), "UTC".to_string()),
        ];
        let status = step.run_argv(
            &["/bin/sh".into(), "-c".into(), line.to_string()],
            &env,
            "/work",
            Output::from_writer(out.clone()),
            Output::Null,
        );
        let kiln_out = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        let gnu_out = String::from_utf8_lossy(&gnu.stdout).into_owned();
        compared += 1;
        if kiln_out != gnu_out || Some(status) != gnu.status.code() {
            failures.push(format!(
                "{line}\n  gnu  ({:?}): {gnu_out:?}\n  kiln ({status}): {kiln_out:?}",
                gnu.status.code()
            ));
        }
    }
    eprintln!("compared {compared} command lines with GNU");
    for m in &missing {
        eprintln!("not compared: {m}");
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 40, "only {compared} lines compared");
}
