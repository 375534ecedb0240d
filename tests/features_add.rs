//! ADD on built images: local archives in every supported compression are
//! extracted at the destination, other files are copied as they are, and
//! URLs are refused with a clear error.

mod common;

use common::image::Fixture;
use common::*;
use std::process::Command;

/// Writes `payload/` (a file and a nested file) into the context and packs
/// it as `name` with `tar` plus the given compression flag.
fn make_archive(fx: &Fixture, name: &str, tar_flag: Option<&str>) {
    let src = fx.fresh("payload");
    write_tree(&src, &[("top.txt", "top\n"), ("sub/deep.txt", "deep\n")]);
    let dest = fx.ctx().join(name);
    let mut cmd = Command::new("tar");
    cmd.arg("-c");
    if let Some(f) = tar_flag {
        cmd.arg(f);
    }
    cmd.arg("-f")
        .arg(&dest)
        .arg("-C")
        .arg(&src)
        .args(["top.txt", "sub"]);
    run_ok(&mut cmd);
}

#[test]
fn add_extracts_local_archives_of_every_compression() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("plain.tar", None, "tar"),
        ("gz.tar.gz", Some("--gzip"), "gzip"),
        ("bz.tar.bz2", Some("--bzip2"), "bzip2"),
        ("xz.tar.xz", Some("--xz"), "xz"),
        ("zst.tar.zst", Some("--zstd"), "zstd"),
    ];
    for (_, _, tool) in cases {
        if !require_tool(tool) {
            return;
        }
    }
    let fx = Fixture::new();
    let mut dockerfile = String::from("FROM scratch\n");
    for (name, flag, _) in cases {
        make_archive(&fx, name, *flag);
        dockerfile.push_str(&format!("ADD {name} /x/{name}/\n"));
    }
    let img = fx.build(&dockerfile, &[]);
    let files = img.files();
    for (name, _, _) in cases {
        let top = files
            .get(&format!("x/{name}/top.txt"))
            .unwrap_or_else(|| panic!("{name} not extracted: {:?}", files.keys()));
        assert_eq!(top.text(), "top\n", "{name}");
        let deep = &files[&format!("x/{name}/sub/deep.txt")];
        assert_eq!(deep.text(), "deep\n", "{name}");
        assert!(
            files[&format!("x/{name}/sub")].is_dir(),
            "{name}: sub is a directory"
        );
        assert!(
            !files.contains_key(&format!("x/{name}/{name}")),
            "{name}: archive itself must not be copied"
        );
    }
}

#[test]
fn add_extracts_into_a_non_slash_destination_too() {
    if !require_tool("gzip") {
        return;
    }
    let fx = Fixture::new();
    make_archive(&fx, "a.tgz", Some("--gzip"));
    let img = fx.build("FROM scratch\nADD a.tgz /opt\n", &[]);
    assert_eq!(img.file("opt/top.txt").text(), "top\n");
    assert!(img.file("opt").is_dir());
}

#[test]
fn add_of_a_non_archive_copies_it_as_is() {
    let fx = Fixture::new();
    // Named like an archive but not one, and a plain text file.
    fx.write(&[("notes.txt", "just text\n"), ("fake.tar.gz", "not gzip\n")]);
    let img = fx.build(
        "FROM scratch\nADD notes.txt /n/\nADD fake.tar.gz /f/\n",
        &[],
    );
    assert_eq!(img.file("n/notes.txt").text(), "just text\n");
    assert_eq!(img.file("f/fake.tar.gz").text(), "not gzip\n");
    assert_eq!(img.file("n/notes.txt").mode, 0o644);
}

#[test]
fn copy_never_extracts_archives() {
    if !require_tool("gzip") {
        return;
    }
    let fx = Fixture::new();
    make_archive(&fx, "a.tar.gz", Some("--gzip"));
    let img = fx.build("FROM scratch\nCOPY a.tar.gz /c/\n", &[]);
    let files = img.files();
    assert!(files.contains_key("c/a.tar.gz"), "{:?}", files.keys());
    assert!(!files.contains_key("c/top.txt"));
}

#[test]
fn add_of_a_url_is_a_clear_error() {
    let fx = Fixture::new();
    let err = fx.build_err(
        "FROM scratch\nADD https://example.com/file.tar.gz /x/\n",
        &[],
    );
    assert!(
        err.contains("https://example.com/file.tar.gz"),
        "error should name the URL:\n{err}"
    );
    assert!(
        err.contains("not supported"),
        "error should say remote sources are unsupported:\n{err}"
    );
    assert!(
        err.contains("Dockerfile:2"),
        "error should point at line 2:\n{err}"
    );
}
