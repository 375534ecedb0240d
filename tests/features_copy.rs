//! COPY on built images, checked in the layer tar headers: `--chown` by
//! name from a base image's /etc/passwd and /etc/group, `--chmod`,
//! `--parents`, `--exclude`, globs, heredocs, WORKDIR-relative destinations
//! and copying into an existing directory.

mod common;

use common::image::{build_layout, Fixture, TarEntry};
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

fn top(img: &common::image::Image) -> BTreeMap<String, TarEntry> {
    img.top_layer()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

/// A base image (OCI layout, tag 1) with /etc/passwd and /etc/group.
fn base_with_users(fx: &Fixture) -> String {
    let ctx = fx.fresh("base-ctx");
    write_tree(
        &ctx,
        &[
            ("Dockerfile", "FROM scratch\nCOPY passwd group /etc/\n"),
            (
                "passwd",
                "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:App:/home/app:/bin/sh\n",
            ),
            ("group", "root:x:0:\napp:x:2345:\nstaff:x:50:app\n"),
        ],
    );
    let layout = fx.fresh("base-layout");
    build_layout(&fx.cache(), &ctx, &layout, "base:1", &[]);
    format!("base=oci-layout://{}:1", layout.display())
}

#[test]
fn chown_names_resolve_in_the_base_image() {
    let fx = Fixture::new();
    let base = base_with_users(&fx);
    fx.write(&[
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("c.txt", "c\n"),
        ("d/x.txt", "x\n"),
    ]);
    let img = fx.build(
        "FROM base\nCOPY --chown=app a.txt /out/\nCOPY --chown=app:staff b.txt /out/\n\
         COPY --chown=7:8 c.txt /out/\nCOPY --chown=app:staff d /newdir/\n",
        &["--build-context", &base],
    );
    let layers = img.layers();
    assert_eq!(layers.len(), 5, "base layer + 4 COPY layers");
    let a = img.file("out/a.txt");
    assert_eq!((a.uid, a.gid), (1234, 2345), "user's primary group");
    let b = img.file("out/b.txt");
    assert_eq!((b.uid, b.gid), (1234, 50));
    let c = img.file("out/c.txt");
    assert_eq!((c.uid, c.gid), (7, 8));
    let x = img.file("newdir/x.txt");
    assert_eq!((x.uid, x.gid), (1234, 50));
    // Without --chown, files are root's.
    let passwd = img.file("etc/passwd");
    assert_eq!((passwd.uid, passwd.gid), (0, 0));
}

#[test]
fn chown_unknown_name_is_an_error() {
    let fx = Fixture::new();
    let base = base_with_users(&fx);
    fx.write(&[("a.txt", "a\n")]);
    let err = fx.build_err(
        "FROM base\nCOPY --chown=nobody-here a.txt /\n",
        &["--build-context", &base],
    );
    assert!(err.contains("nobody-here"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
}

#[test]
fn chmod_and_context_modes() {
    let fx = Fixture::new();
    fx.write(&[
        ("plain.txt", "p\n"),
        ("exec.sh", "#!/bin/sh\n"),
        ("secret", "s\n"),
    ]);
    let ctx = fx.ctx();
    std::fs::set_permissions(ctx.join("exec.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(ctx.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let img = fx.build(
        "FROM scratch\nCOPY plain.txt exec.sh secret /m/\nCOPY --chmod=0640 plain.txt /c/ro.txt\n\
         COPY --chmod=755 plain.txt /c/x.txt\n",
        &[],
    );
    assert_eq!(img.file("m/plain.txt").mode, 0o644);
    assert_eq!(img.file("m/exec.sh").mode, 0o755, "host exec bit kept");
    assert_eq!(img.file("m/secret").mode, 0o644, "host umask/mode ignored");
    assert_eq!(img.file("c/ro.txt").mode, 0o640);
    assert_eq!(img.file("c/x.txt").mode, 0o755);
    assert_eq!(img.file("m").mode, 0o755, "created parent dir");
}

#[test]
fn parents_keeps_source_paths() {
    let fx = Fixture::new();
    fx.write(&[
        ("a/b/one.txt", "1\n"),
        ("a/c/two.txt", "2\n"),
        ("a/c/skip.md", "no\n"),
    ]);
    let img = fx.build("FROM scratch\nCOPY --parents a/*/*.txt /dst/\n", &[]);
    let files = img.files();
    assert_eq!(img.file("dst/a/b/one.txt").text(), "1\n");
    assert_eq!(img.file("dst/a/c/two.txt").text(), "2\n");
    assert!(!files.contains_key("dst/one.txt"), "{:?}", files.keys());
    assert!(!files.contains_key("dst/a/c/skip.md"));
}

/// The Dockerfile reference's `**` example for `--parents` (any number of
/// directories, none included), with a `/./` pivot and a matched
/// directory; without `--parents`, `**` is Go's `filepath.Match` (BuildKit's
/// fsutil): one component, as `*`.
#[test]
fn parents_double_star_spans_directories() {
    let fx = Fixture::new();
    fx.write(&[
        ("src/a.txt", "a\n"),
        ("src/x/b.txt", "b\n"),
        ("src/x/y/c.txt", "c\n"),
        ("src/x/y/skip.md", "no\n"),
        ("other/d.txt", "d\n"),
    ]);
    let img = fx.build(
        "FROM scratch\n\
         COPY --parents ./src/**/*.txt /parents/\n\
         COPY --parents ./src/./**/*.txt /pivot/\n\
         COPY --parents src/**/y /dirs/\n\
         COPY src/**/*.txt /flat/\n",
        &[],
    );
    let files = img.files();
    let under = |prefix: &str| -> Vec<&str> {
        files
            .iter()
            .filter(|(p, e)| p.starts_with(prefix) && !e.is_dir())
            .map(|(p, _)| p.as_str())
            .collect()
    };
    assert_eq!(
        under("parents/"),
        [
            "parents/src/a.txt",
            "parents/src/x/b.txt",
            "parents/src/x/y/c.txt"
        ]
    );
    assert_eq!(img.file("parents/src/x/y/c.txt").text(), "c\n");
    assert_eq!(
        under("pivot/"),
        ["pivot/a.txt", "pivot/x/b.txt", "pivot/x/y/c.txt"]
    );
    assert_eq!(
        under("dirs/"),
        ["dirs/src/x/y/c.txt", "dirs/src/x/y/skip.md"]
    );
    assert_eq!(under("flat/"), ["flat/b.txt"]);
}

#[test]
fn exclude_skips_matches() {
    let fx = Fixture::new();
    fx.write(&[
        ("src/keep.rs", "k\n"),
        ("src/debug.log", "l\n"),
        ("src/sub/deep.log", "l\n"),
        ("src/sub/deep.rs", "d\n"),
    ]);
    let img = fx.build(
        "FROM scratch\nCOPY --exclude=*.log --exclude=sub/*.log src /s/\n",
        &[],
    );
    let files = img.files();
    assert!(files.contains_key("s/keep.rs"), "{:?}", files.keys());
    assert!(files.contains_key("s/sub/deep.rs"));
    assert!(!files.contains_key("s/debug.log"), "{:?}", files.keys());
    assert!(!files.contains_key("s/sub/deep.log"), "{:?}", files.keys());
}

#[test]
fn globs_match_files_and_directories() {
    let fx = Fixture::new();
    fx.write(&[
        ("f1.md", "1\n"),
        ("f2.md", "2\n"),
        ("f10.md", "10\n"),
        ("docs/guide.md", "g\n"),
        ("other.txt", "o\n"),
    ]);
    let img = fx.build(
        "FROM scratch\nCOPY f?.md /q/\nCOPY *.md /star/\nCOPY [\"do*\", \"/dirs/\"]\n",
        &[],
    );
    let files = img.files();
    let under = |p: &str| -> Vec<String> {
        files
            .keys()
            .filter_map(|k| k.strip_prefix(p).map(str::to_string))
            .filter(|k| !k.is_empty())
            .collect()
    };
    assert_eq!(under("q/"), ["f1.md", "f2.md"]);
    assert_eq!(under("star/"), ["f1.md", "f10.md", "f2.md"]);
    // A directory matched by a glob has its contents copied.
    assert_eq!(under("dirs/"), ["guide.md"]);
}

#[test]
fn heredoc_copy_expands_unless_the_delimiter_is_quoted() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nARG NAME=world\nENV GREETING=hello\n\
         COPY <<EOF /expanded.txt\n${GREETING} ${NAME}\nEOF\n\
         COPY <<\"EOF\" /raw.txt\n${GREETING} ${NAME}\nEOF\n\
         COPY <<-EOT <<TWO /many/\n\tindented\n\tEOT\nsecond\nTWO\n",
        &["--build-arg", "NAME=kiln"],
    );
    assert_eq!(img.file("expanded.txt").text(), "hello kiln\n");
    assert_eq!(img.file("raw.txt").text(), "${GREETING} ${NAME}\n");
    assert_eq!(img.file("many/EOT").text(), "indented\n");
    assert_eq!(img.file("many/TWO").text(), "second\n");
    assert_eq!(img.file("raw.txt").mode, 0o644);
}

#[test]
fn relative_destinations_use_workdir() {
    let fx = Fixture::new();
    fx.write(&[("f.txt", "f\n")]);
    let img = fx.build(
        "FROM scratch\nWORKDIR /app\nCOPY f.txt .\nCOPY f.txt rel/\nWORKDIR sub\nCOPY f.txt renamed\n",
        &[],
    );
    assert_eq!(img.cfg()["WorkingDir"], "/app/sub");
    let files = img.files();
    for p in ["app/f.txt", "app/rel/f.txt", "app/sub/renamed"] {
        assert!(files.contains_key(p), "{p} missing: {:?}", files.keys());
    }
    assert!(!files.contains_key("f.txt"));
    assert!(files["app/sub"].is_dir());
}

#[test]
fn copy_into_an_existing_directory_keeps_it() {
    let fx = Fixture::new();
    fx.write(&[
        ("opt/old.txt", "old\n"),
        ("new.txt", "new\n"),
        ("tree/n2.txt", "n2\n"),
    ]);
    let img = fx.build(
        "FROM scratch AS a\nCOPY --chown=5:6 opt /opt/\n\
         FROM a\nCOPY new.txt /opt/\nCOPY tree /opt\n",
        &[],
    );
    let files = img.files();
    assert_eq!(files["opt/old.txt"].text(), "old\n");
    assert_eq!(files["opt/new.txt"].text(), "new\n");
    assert_eq!(files["opt/n2.txt"].text(), "n2\n", "dir contents merged");
    assert!(files["opt"].is_dir());
    // The last layer holds only the merged file (and parents), and an
    // existing parent keeps its owner rather than being reset to root.
    let last = top(&img);
    assert!(last.contains_key("opt/n2.txt"), "{:?}", last.keys());
    assert!(!last.contains_key("opt/old.txt"), "{:?}", last.keys());
    let opt = last.get("opt").expect("parent dir in the layer");
    assert_eq!((opt.uid, opt.gid), (5, 6), "existing dir owner kept");
    assert!(opt.is_dir());
}

#[test]
fn copy_file_onto_a_dest_without_slash_renames_it() {
    let fx = Fixture::new();
    fx.write(&[("f.txt", "f\n")]);
    let img = fx.build("FROM scratch\nCOPY f.txt /usr/local/bin/tool\n", &[]);
    let tool = img.file("usr/local/bin/tool");
    assert_eq!(tool.text(), "f\n");
    assert_eq!(tool.entry_type, tar::EntryType::Regular);
    for d in ["usr", "usr/local", "usr/local/bin"] {
        let e = img.file(d);
        assert!(e.is_dir(), "{d}");
        assert_eq!(e.mode, 0o755, "{d}");
    }
}
