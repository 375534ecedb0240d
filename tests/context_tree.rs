//! The build context as a SourceTree: filtering, metadata, symlinks.

use std::fs;
use std::path::Path;

use kiln::context::{Context, PatternMatcher};
use kiln::snapshot::{Content, EntryKind, ImagePath, SourceTree};

fn p(s: &str) -> ImagePath {
    ImagePath::parse(s).unwrap()
}

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn ctx(root: &Path, ignore: &[&str]) -> Context {
    let pm = if ignore.is_empty() {
        None
    } else {
        Some(PatternMatcher::new(ignore).unwrap())
    };
    Context::open(root, pm).unwrap()
}

#[test]
fn metadata_is_kilns_not_the_hosts() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.txt", "hello");
    write(d.path(), "sub/run.sh", "#!/bin/sh");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            d.path().join("sub/run.sh"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        fs::set_permissions(d.path().join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(d.path().join("sub"), fs::Permissions::from_mode(0o700)).unwrap();
    }
    let c = ctx(d.path(), &[]);
    let a = c.lstat(&p("a.txt")).unwrap().unwrap();
    assert_eq!(a.meta.mode, 0o644);
    assert_eq!((a.meta.uid, a.meta.gid), (0, 0));
    assert!(a.meta.mtime > 0);
    match &a.kind {
        EntryKind::File {
            size,
            content: Content::Host(h),
        } => {
            assert_eq!(*size, 5);
            assert_eq!(fs::read(h).unwrap(), b"hello");
        }
        k => panic!("{k:?}"),
    }
    let sub = c.lstat(&p("sub")).unwrap().unwrap();
    assert!(matches!(sub.kind, EntryKind::Dir));
    assert_eq!(sub.meta.mode, 0o755);
    #[cfg(unix)]
    assert_eq!(c.lstat(&p("sub/run.sh")).unwrap().unwrap().meta.mode, 0o755);
    assert!(c.lstat(&p("missing")).unwrap().is_none());
    assert!(c.lstat(&p("a.txt/x")).unwrap().is_none());
    assert!(matches!(
        c.lstat(&ImagePath::root()).unwrap().unwrap().kind,
        EntryKind::Dir
    ));
    assert_eq!(c.read_dir(&ImagePath::root()).unwrap(), ["a.txt", "sub"]);
}

#[test]
fn ignored_paths_are_absent_but_exceptions_stay_reachable() {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "keep.txt",
        "secret.env",
        "node_modules/x/y.js",
        "docs/a.md",
        "docs/README.md",
        "b/c/d/e.txt",
        "b/c/other",
    ] {
        write(d.path(), f, "x");
    }
    let c = ctx(
        d.path(),
        &[
            "*.env",
            "node_modules",
            "docs",
            "!docs/README.md",
            "b",
            "!b/c/d",
        ],
    );
    assert!(c.lstat(&p("secret.env")).unwrap().is_none());
    assert!(c.lstat(&p("node_modules")).unwrap().is_none());
    assert!(c.lstat(&p("node_modules/x/y.js")).unwrap().is_none());
    assert!(c.lstat(&p("docs/a.md")).unwrap().is_none());
    assert!(c.lstat(&p("docs/README.md")).unwrap().is_some());
    // The excluded dir exists only as the parent of what was re-included.
    assert!(c.lstat(&p("docs")).unwrap().is_some());
    assert_eq!(c.read_dir(&p("docs")).unwrap(), ["README.md"]);
    assert_eq!(
        c.read_dir(&ImagePath::root()).unwrap(),
        ["b", "docs", "keep.txt"]
    );
    assert_eq!(c.read_dir(&p("b")).unwrap(), ["c"]);
    assert_eq!(c.read_dir(&p("b/c")).unwrap(), ["d"]);
    assert!(c.lstat(&p("b/c/other")).unwrap().is_none());
    assert!(c.lstat(&p("b/c/d/e.txt")).unwrap().is_some());
}

#[cfg(unix)]
#[test]
fn symlinks_are_reported_and_parents_resolve_inside_the_context() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "etc/passwd", "host secret");
    write(d.path(), "real/f.txt", "inside");
    write(d.path(), "etc/passwd", "context passwd");
    symlink("real", d.path().join("rel")).unwrap();
    symlink("/real", d.path().join("abs")).unwrap();
    symlink("../../../../../../../etc", d.path().join("real/up")).unwrap();
    symlink(outside.path(), d.path().join("escape")).unwrap();
    symlink("loop", d.path().join("loop")).unwrap();
    let c = ctx(d.path(), &[]);

    match c.lstat(&p("abs")).unwrap().unwrap().kind {
        EntryKind::Symlink { target } => assert_eq!(target, "/real"),
        k => panic!("{k:?}"),
    }
    assert_eq!(c.lstat(&p("abs")).unwrap().unwrap().meta.mode, 0o777);
    let read = |path: &str| match c.lstat(&p(path)).unwrap().map(|e| e.kind) {
        Some(EntryKind::File {
            content: Content::Host(h),
            ..
        }) => Some(fs::read_to_string(h).unwrap()),
        _ => None,
    };
    assert_eq!(read("rel/f.txt").as_deref(), Some("inside"));
    assert_eq!(read("abs/f.txt").as_deref(), Some("inside"));
    // ".." stops at the context root.
    assert_eq!(read("real/up/passwd").as_deref(), Some("context passwd"));
    // An absolute host path is taken relative to the context root.
    let esc = format!("escape{}/etc/passwd", outside.path().display());
    assert_eq!(read(&esc), None);
    assert!(c.lstat(&p("loop/x")).is_err());
    assert_eq!(c.read_dir(&p("abs")).unwrap(), ["f.txt", "up"]);
}

#[cfg(unix)]
#[test]
fn ignored_symlink_parent_hides_what_is_behind_it() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "real/f.txt", "x");
    symlink("real", d.path().join("link")).unwrap();
    let c = ctx(d.path(), &["link"]);
    assert!(c.lstat(&p("link/f.txt")).unwrap().is_none());
    assert!(c.lstat(&p("real/f.txt")).unwrap().is_some());
    let c = ctx(d.path(), &["real/f.txt"]);
    assert!(c.lstat(&p("link/f.txt")).unwrap().is_none());
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_names_are_a_clear_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join(OsStr::from_bytes(b"bad\xff")), "x").unwrap();
    let c = ctx(d.path(), &[]);
    let err = c.read_dir(&ImagePath::root()).unwrap_err().to_string();
    assert!(err.contains("not valid UTF-8"), "{err}");
}

#[test]
fn open_rejects_a_file() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "f", "x");
    assert!(Context::open(&d.path().join("f"), None).is_err());
    assert!(Context::open(&d.path().join("nope"), None).is_err());
}
