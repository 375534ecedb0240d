//! Programs users bring: C and C++ compiled for wasm32-wasi by clang with
//! Debian's wasi-libc (what wasi-sdk packages), put in the image, found on
//! PATH by name or with `.wasm`, run by RUN with the step's environment,
//! files and exit status.

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
