//! The RUN filesystem with real WASI guests (tests/guests/src/fsprobe.rs):
//! chroot semantics, no escape, sorted listings, virtual inodes and times,
//! and the record of what a step changed.
#![cfg(unix)] // the fixtures make host symlinks

mod common;

use common::guests::guest_bytes;
use kiln_runtime::{Invocation, Outcome, Program, Rootfs, RootfsOptions, Runtime, RuntimeConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

fn fsprobe() -> Program {
    runtime()
        .load("/bin/fsprobe", &guest_bytes("fsprobe"))
        .expect("load fsprobe")
}

/// A scratch area holding `root/` (the image) and `outside/` (a sentinel
/// the guest must never read or write).
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

const SECRET: &str = "host secret, never to be seen";

fn world() -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:image:/root:/bin/sh\n").unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    World {
        _tmp: tmp,
        root,
        outside,
    }
}

impl World {
    /// Proves the sentinel is untouched and nothing was made next to it.
    fn assert_outside_untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret")).unwrap(),
            SECRET
        );
        let names: BTreeSet<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, BTreeSet::from(["secret".to_string()]));
        let top: BTreeSet<String> = std::fs::read_dir(self.root.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(top, BTreeSet::from(["outside".into(), "root".into()]));
    }

    fn secret_abs(&self) -> String {
        self.outside.join("secret").to_str().unwrap().to_owned()
    }
}

fn run_in(fs: &Rootfs, epoch: u64, ops: &[&str]) -> Outcome {
    let mut inv = Invocation::new(std::iter::once("fsprobe").chain(ops.iter().copied()));
    inv.rootfs = Some(fs.clone());
    inv.source_date_epoch = epoch;
    let o = runtime().run(&fsprobe(), inv).expect("sandbox setup");
    assert_eq!(
        o.end.as_ref().ok(),
        Some(&0),
        "fsprobe failed: {:?}\n{}",
        o.end,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn open(root: &Path) -> Rootfs {
    Rootfs::open(root, RootfsOptions::default()).expect("rootfs")
}

fn lines(o: &Outcome) -> Vec<String> {
    String::from_utf8(o.stdout.clone())
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

const ENOENT: &str = "err=44";

#[test]
fn absolute_symlinks_are_created_read_back_verbatim_and_resolve_inside_the_root() {
    let w = world();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "symlink",
            "/etc/passwd",
            "/a/b/pw",
            "readlink",
            "/a/b/pw",
            "read",
            "/a/b/pw",
            "symlink",
            "/a",
            "/top",
            "read",
            "/top/b/pw",
            "symlink",
            "../../etc",
            "/a/b/rel",
            "read",
            "/a/b/rel/passwd",
        ],
    );
    assert_eq!(
        lines(&o),
        [
            "symlink /etc/passwd /a/b/pw: ok",
            "readlink /a/b/pw: /etc/passwd",
            "read /a/b/pw: root:x:0:0:image:/root:/bin/sh",
            "symlink /a /top: ok",
            "read /top/b/pw: root:x:0:0:image:/root:/bin/sh",
            "symlink ../../etc /a/b/rel: ok",
            "read /a/b/rel/passwd: root:x:0:0:image:/root:/bin/sh",
        ]
    );
    // On the host the link holds its target text verbatim.
    assert_eq!(
        std::fs::read_link(w.root.join("a/b/pw")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn dotdot_stops_at_the_root() {
    let w = world();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "read",
            "/../../../etc/passwd",
            "read",
            "../../etc/passwd",
            "read",
            "/a/b/../../../../etc/passwd",
            "read",
            "/../outside/secret",
            "write",
            "/../../outside/secret",
            "pwned",
            "mkdir",
            "/../../outside/newdir",
            "ls",
            "/..",
        ],
    );
    let l = lines(&o);
    assert_eq!(
        l[0],
        "read /../../../etc/passwd: root:x:0:0:image:/root:/bin/sh"
    );
    assert_eq!(
        l[1],
        "read ../../etc/passwd: root:x:0:0:image:/root:/bin/sh"
    );
    assert_eq!(
        l[2],
        "read /a/b/../../../../etc/passwd: root:x:0:0:image:/root:/bin/sh"
    );
    assert_eq!(l[3], format!("read /../outside/secret: {ENOENT}"));
    assert_eq!(l[4], format!("write /../../outside/secret pwned: {ENOENT}"));
    assert_eq!(l[5], format!("mkdir /../../outside/newdir: {ENOENT}"));
    assert!(l[6].starts_with("ls /..: .=1 ..=1 a="), "{}", l[6]);
    w.assert_outside_untouched();
}

#[test]
fn hostile_symlinks_in_the_image_never_reach_the_host() {
    let w = world();
    // What a base layer could carry: links aiming at the host.
    let secret = w.secret_abs();
    std::os::unix::fs::symlink(&secret, w.root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../outside/secret", w.root.join("a/rel")).unwrap();
    std::os::unix::fs::symlink("../..", w.root.join("a/b/up")).unwrap();
    std::os::unix::fs::symlink(w.outside.to_str().unwrap(), w.root.join("absdir")).unwrap();
    let fs = open(&w.root);
    let up_secret = "/a/b/up/outside/secret".to_string();
    let o = run_in(
        &fs,
        0,
        &[
            "read",
            "/abs",
            "read",
            "/a/rel",
            "read",
            &up_secret,
            "read",
            "/absdir/secret",
            "write",
            "/abs",
            "pwned",
            "append",
            "/a/rel",
            "pwned",
            "write",
            "/absdir/new",
            "pwned",
            "ln",
            "/abs",
            "/hard",
            "ln",
            "/absdir/secret",
            "/hard2",
            "mv",
            "/etc/passwd",
            "/absdir/stolen",
            "mv",
            "/etc/passwd",
            "/a/b/up/../outside/stolen",
            "symlink",
            "/etc/passwd",
            "/absdir/planted",
            "mkdir",
            "/a/b/up/planted",
            "rm",
            "/absdir/secret",
            "stat",
            "/abs",
            "ls",
            "/a/b/up",
            "ls",
            "/absdir",
            "readlink",
            "/absdir",
        ],
    );
    let l = lines(&o);
    for line in &l {
        assert!(!line.contains("host secret"), "leaked: {line}");
    }
    // The absolute link resolves to <root>/<host path>: missing, so ENOENT.
    assert_eq!(l[0], format!("read /abs: {ENOENT}"));
    assert_eq!(l[1], format!("read /a/rel: {ENOENT}"));
    assert_eq!(l[2], format!("read {up_secret}: {ENOENT}"));
    assert_eq!(l[3], format!("read /absdir/secret: {ENOENT}"));
    assert!(l[4].ends_with(ENOENT), "{}", l[4]);
    // `../../outside/secret` from /a is /outside/secret in the image; its
    // parent /outside does not exist there.
    assert!(l[5].ends_with(ENOENT), "{}", l[5]);
    assert!(l[6].ends_with(ENOENT), "{}", l[6]);
    // A hard link to a symlink links the symlink itself (linkat without
    // AT_SYMLINK_FOLLOW): a second name for a link that stays inside.
    assert_eq!(l[7], "ln /abs /hard: ok");
    assert!(std::fs::symlink_metadata(w.root.join("hard"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(l[8].ends_with(ENOENT), "{}", l[8]);
    assert!(l[9].ends_with(ENOENT), "{}", l[9]);
    assert!(l[10].ends_with(ENOENT), "{}", l[10]);
    assert!(l[11].ends_with(ENOENT), "{}", l[11]);
    // `/a/b/up` is `/` in the image: the directory lands inside the root.
    assert_eq!(l[12], "mkdir /a/b/up/planted: ok");
    assert!(w.root.join("planted").is_dir());
    assert!(l[13].ends_with(ENOENT), "{}", l[13]);
    assert!(l[14].ends_with(ENOENT), "{}", l[14]);
    assert!(l[15].starts_with("ls /a/b/up: .=1 ..=1 a="), "{}", l[15]);
    assert_eq!(l[16], format!("ls /absdir: {ENOENT}"));
    // Reading the link text is fine: it is the image's data.
    assert_eq!(l[17], format!("readlink /absdir: {}", w.outside.display()));
    w.assert_outside_untouched();
    assert_eq!(
        std::fs::read_to_string(w.root.join("etc/passwd")).unwrap(),
        "root:x:0:0:image:/root:/bin/sh\n"
    );
}

#[test]
fn writes_through_an_absolute_symlink_land_in_the_root() {
    let w = world();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "symlink",
            "/etc/passwd",
            "/pw",
            "append",
            "/pw",
            "added",
            "symlink",
            "/etc/shadow",
            "/sh",
            "write",
            "/sh",
            "created through a dangling link",
        ],
    );
    assert!(
        lines(&o).iter().all(|l| l.ends_with(": ok")),
        "{:?}",
        lines(&o)
    );
    assert_eq!(
        std::fs::read_to_string(w.root.join("etc/passwd")).unwrap(),
        "root:x:0:0:image:/root:/bin/sh\nadded"
    );
    assert_eq!(
        std::fs::read_to_string(w.root.join("etc/shadow")).unwrap(),
        "created through a dangling link"
    );
    w.assert_outside_untouched();
}

#[test]
fn listings_are_sorted_and_inode_numbers_follow_first_sight() {
    let w = world();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "mkdir",
            "/d",
            "write",
            "/d/zeta",
            "",
            "write",
            "/d/Mid",
            "",
            "write",
            "/d/b",
            "",
            "write",
            "/d/alpha",
            "",
            "write",
            "/d/_under",
            "",
            "ls",
            "/d",
            "ls",
            "/d",
            "stat",
            "/d/zeta",
            "fstat",
            "/d/zeta",
        ],
    );
    let l = lines(&o);
    // Created in the order zeta, Mid, b, alpha, _under: inodes 2 (/d) then
    // 3..7 (the root is 1). Listed bytewise: uppercase, `_`, lowercase.
    assert_eq!(l[6], "ls /d: .=2 ..=1 Mid=4 _under=7 alpha=6 b=5 zeta=3");
    assert_eq!(l[7].replace("ls /d: ", ""), l[6].replace("ls /d: ", ""));
    assert!(l[8].contains(" ino=3 "), "{}", l[8]);
    assert!(l[9].contains(" ino=3 "), "{}", l[9]);
    // A second run on the same step sees the same numbers.
    let again = run_in(&fs, 0, &["ls", "/d"]);
    assert_eq!(lines(&again)[0], l[6]);
}

#[test]
fn entries_seen_first_by_listing_get_numbers_in_sorted_order() {
    let w = world();
    for name in ["z3", "z1", "z2"] {
        std::fs::write(w.root.join(name), name).unwrap();
    }
    let fs = open(&w.root);
    let o = run_in(&fs, 0, &["ls", "/", "stat", "/z3"]);
    let l = lines(&o);
    assert_eq!(l[0], "ls /: .=1 ..=1 a=2 etc=3 z1=4 z2=5 z3=6");
    assert!(l[1].contains(" ino=6 "), "{}", l[1]);
}

#[test]
fn hard_links_share_an_inode_number_and_renames_keep_it() {
    let w = world();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "write", "/f", "data", "ln", "/f", "/g", "mv", "/g", "/a/h", "stat", "/f", "stat",
            "/a/h", "read", "/a/h",
        ],
    );
    let l = lines(&o);
    let ino = |s: &str| {
        s.split(' ')
            .find(|w| w.starts_with("ino="))
            .unwrap()
            .to_owned()
    };
    assert_eq!(ino(&l[3]), ino(&l[4]));
    assert!(l[3].contains(" nlink=2 "), "{}", l[3]);
    assert_eq!(l[5], "read /a/h: data");
}

/// Every time the guest sees, in a form that can be compared across runs.
fn timeline_ops() -> Vec<&'static str> {
    vec![
        "write",
        "/new",
        "x",
        "mkdir",
        "/newdir",
        "append",
        "/etc/passwd",
        "more",
        "symlink",
        "/new",
        "/ln",
        "settime",
        "/new",
        "1234",
        "stat",
        "/new",
        "stat",
        "/newdir",
        "stat",
        "/etc/passwd",
        "lstat",
        "/ln",
        "stat",
        "/a/b",
        "stat",
        "/",
        "fstat",
        "/etc/passwd",
    ]
}

#[test]
fn times_are_virtual_and_identical_across_runs_on_different_host_times() {
    let first = world();
    let second = world();
    // The hosts disagree about every existing file's times.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for p in ["etc/passwd", "a/b", "a", "etc"] {
        let f = std::fs::File::open(second.root.join(p)).unwrap();
        f.set_modified(old).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let recorded: kiln_runtime::fs::RecordedMtime = Arc::new(|path: &str| {
        (path == "/etc/passwd" || path == "/a/b").then(|| Duration::from_secs(1_600_000_000))
    });
    let options = RootfsOptions {
        source_date_epoch: 1_700_000_000,
        recorded_mtime: Some(recorded),
        ..Default::default()
    };
    let a = Rootfs::open(&first.root, options.clone()).unwrap();
    let b = Rootfs::open(&second.root, options).unwrap();
    let ops = timeline_ops();
    let out_a = run_in(&a, 1_700_000_000, &ops);
    std::thread::sleep(Duration::from_millis(1100));
    let out_b = run_in(&b, 1_700_000_000, &ops);
    assert_eq!(lines(&out_a), lines(&out_b));
    let l = lines(&out_a);
    let field = |s: &str, k: &str| {
        s.split(' ')
            .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_owned))
            .unwrap()
    };
    // touch -d: the time the guest set.
    assert_eq!(field(&l[5], "mtime"), "1234.000000000", "{}", l[5]);
    // Written during the step: virtual time (the epoch; no clock reads yet).
    assert_eq!(field(&l[6], "mtime"), "1700000000.000000000", "{}", l[6]);
    assert_eq!(field(&l[7], "mtime"), "1700000000.000000000", "{}", l[7]);
    assert_eq!(field(&l[8], "mtime"), "1700000000.000000000", "{}", l[8]);
    // Untouched and recorded: the recorded time, never the host's.
    assert_eq!(field(&l[9], "mtime"), "1600000000.000000000", "{}", l[9]);
    assert_eq!(field(&l[9], "type"), "3");
    assert_eq!(field(&l[9], "size"), "4096");
    assert_eq!(field(&l[9], "nlink"), "1");
    assert_eq!(field(&l[9], "dev"), "1");
    // The root gained entries during the step: virtual time.
    assert_eq!(field(&l[10], "mtime"), "1700000000.000000000", "{}", l[10]);
    // fstat agrees with stat.
    assert_eq!(field(&l[11], "mtime"), field(&l[7], "mtime"));
    assert_eq!(field(&l[11], "ino"), field(&l[7], "ino"));
    // The host API reports the same.
    assert_eq!(
        a.stat("/new").unwrap().times.mtime,
        Duration::from_secs(1234)
    );
}

#[test]
fn the_change_record_names_what_the_step_did() {
    let w = world();
    std::fs::write(w.root.join("old"), "old").unwrap();
    std::fs::write(w.root.join("a/moveme"), "m").unwrap();
    let fs = open(&w.root);
    run_in(
        &fs,
        0,
        &[
            "read",
            "/etc/passwd",
            "write",
            "/new",
            "x",
            "append",
            "/etc/passwd",
            "more",
            "mkdir",
            "/d",
            "symlink",
            "/etc/passwd",
            "/d/pw",
            "rm",
            "/old",
            "mv",
            "/a/moveme",
            "/d/moved",
            "ln",
            "/new",
            "/a/b/hard",
            "settime",
            "/d/moved",
            "5",
            "stat",
            "/a",
        ],
    );
    let c = fs.changes();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(c.written, set(&["/etc/passwd", "/new", "/d/moved"]));
    assert_eq!(
        c.created,
        set(&["/new", "/d", "/d/pw", "/d/moved", "/a/b/hard"])
    );
    assert_eq!(c.removed, set(&["/old", "/a/moveme"]));
    assert_eq!(c.retimed, set(&["/d/moved"]));
    // The outcome of a run carries the same record.
    let o = run_in(&fs, 0, &["read", "/new"]);
    assert_eq!(o.changes.as_ref(), Some(&c));
}

#[test]
fn a_root_path_alone_gets_a_fresh_filesystem_per_run() {
    let w = world();
    let mut inv = Invocation::new(["fsprobe", "symlink", "/etc/passwd", "/x", "read", "/x"]);
    inv.root = Some(w.root.clone());
    let o = runtime().run(&fsprobe(), inv).expect("run");
    assert_eq!(
        lines(&o),
        [
            "symlink /etc/passwd /x: ok",
            "read /x: root:x:0:0:image:/root:/bin/sh"
        ]
    );
    let c = o.changes.expect("changes");
    assert_eq!(c.created, BTreeSet::from(["/x".to_string()]));
}

#[test]
fn loops_and_misuse_give_posix_errors() {
    let w = world();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "symlink",
            "/loop",
            "/loop",
            "read",
            "/loop",
            "symlink",
            "/etc/passwd",
            "/pw",
            "read",
            "/pw/",
            "mkdir",
            "/etc",
            "rm",
            "/a",
            "rmdir",
            "/etc/passwd",
            "rmdir",
            "/a",
            "mv",
            "/a",
            "/a/b/inside",
            "readlink",
            "/etc/passwd",
            "symlink",
            "/x",
            "/etc",
        ],
    );
    assert_eq!(
        lines(&o),
        [
            "symlink /loop /loop: ok",
            "read /loop: err=32",
            "symlink /etc/passwd /pw: ok",
            "read /pw/: err=54",
            "mkdir /etc: err=20",
            "rm /a: err=31",
            "rmdir /etc/passwd: err=54",
            "rmdir /a: err=55",
            "mv /a /a/b/inside: err=28",
            "readlink /etc/passwd: err=28",
            "symlink /x /etc: err=20",
        ]
    );
}

#[test]
fn descriptor_relative_operations_use_the_descriptors_image_path() {
    let w = world();
    for p in ["t/x", "t/sub/y", "t/sub/deeper/z"] {
        let host = w.root.join(p);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, p).unwrap();
    }
    std::fs::create_dir(w.root.join("held")).unwrap();
    let fs = open(&w.root);
    let o = run_in(
        &fs,
        0,
        &[
            "rmtree",
            "/t",
            "heldmv",
            "/held",
            "/moved",
            "read",
            "/moved/child",
        ],
    );
    assert_eq!(
        lines(&o),
        [
            "rmtree /t: ok",
            "heldmv /held /moved: ok",
            "read /moved/child: "
        ]
    );
    assert!(!w.root.join("t").exists());
    assert!(w.root.join("moved/child").is_file());
    let c = fs.changes();
    let removed: Vec<&str> = c.removed.iter().map(String::as_str).collect();
    assert_eq!(
        removed,
        [
            "/held",
            "/t",
            "/t/sub",
            "/t/sub/deeper",
            "/t/sub/deeper/z",
            "/t/sub/y",
            "/t/x"
        ]
    );
    assert!(c.created.contains("/moved/child"), "{c:?}");
}
