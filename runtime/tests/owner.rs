//! Modes and owners end to end: the real toolbox (chmod, chown, stat, ls,
//! cp, install, adduser, ...) against a temporary rootfs, checked through
//! `Rootfs::owner` and through what the tools print.

use kiln_runtime::fs::{Owner, RecordedOwner};
use kiln_runtime::toolbox::TOOLBOX_WASM;
use kiln_runtime::{Invocation, Program, Rootfs, RootfsOptions, Runtime, RuntimeConfig};
use std::sync::{Arc, OnceLock};

fn shared() -> &'static (Runtime, Program) {
    static SHARED: OnceLock<(Runtime, Program)> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Whatever the host's umask, nothing kiln shows may depend on it.
        #[cfg(unix)]
        // SAFETY: umask only swaps the process's file creation mask.
        unsafe {
            umask(0o077);
        }
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let program = rt.load("kiln-toolbox", TOOLBOX_WASM).expect("toolbox");
        (rt, program)
    })
}

#[cfg(unix)]
extern "C" {
    fn umask(mask: u32) -> u32;
}

struct Ran {
    status: u8,
    out: String,
    err: String,
}

fn run_as(fs: &Rootfs, user: (u32, u32), args: &[&str]) -> Ran {
    let (rt, program) = shared();
    let mut inv = Invocation::new(args.iter().copied());
    inv.rootfs = Some(fs.clone());
    inv.user = user;
    let o = rt.run(program, inv).expect("setup");
    Ran {
        status: o.end.unwrap_or_else(|e| panic!("{args:?}: {e}")),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn run(fs: &Rootfs, args: &[&str]) -> Ran {
    run_as(fs, (0, 0), args)
}

fn ok(fs: &Rootfs, args: &[&str]) -> String {
    let r = run(fs, args);
    assert_eq!(r.status, 0, "{args:?} failed: {}", r.err);
    r.out
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nstaff:x:50:www-data\n";

/// A rootfs with /etc/passwd, /etc/group, /bin/tool and /data/f.
fn tree(options: RootfsOptions) -> (tempfile::TempDir, Rootfs) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for d in ["etc", "bin", "data", "home"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(root.join("etc/group"), GROUP).unwrap();
    std::fs::write(root.join("bin/tool"), "#!/bin/sh\n").unwrap();
    std::fs::write(root.join("data/f"), "hello").unwrap();
    let fs = Rootfs::open(root, options).unwrap();
    (tmp, fs)
}

fn plain() -> (tempfile::TempDir, Rootfs) {
    tree(RootfsOptions::default())
}

fn owner(fs: &Rootfs, p: &str) -> Owner {
    fs.owner(p, false).unwrap()
}

fn o(mode: u32, uid: u32, gid: u32) -> Owner {
    Owner { mode, uid, gid }
}

#[test]
fn created_entries_get_fixed_defaults_and_the_creator() {
    let (_t, fs) = tree(RootfsOptions {
        creator: (1000, 1000),
        ..Default::default()
    });
    // Existing, unrecorded entries: kind defaults, root.
    assert_eq!(owner(&fs, "/data/f"), o(0o644, 0, 0));
    assert_eq!(owner(&fs, "/data"), o(0o755, 0, 0));
    ok(&fs, &["mkdir", "/data/d"]);
    ok(&fs, &["touch", "/data/d/new"]);
    ok(&fs, &["ln", "-s", "new", "/data/d/link"]);
    assert_eq!(owner(&fs, "/data/d"), o(0o755, 1000, 1000));
    assert_eq!(owner(&fs, "/data/d/new"), o(0o644, 1000, 1000));
    assert_eq!(owner(&fs, "/data/d/link"), o(0o777, 1000, 1000));
    // Following the link gives the file's.
    assert_eq!(
        fs.owner("/data/d/link", true).unwrap(),
        o(0o644, 1000, 1000)
    );
    // The host's own modes (umask 077 here) never show.
    let host = std::fs::metadata(fs.host_dir().join("data/d/new")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            host.permissions().mode() & 0o777,
            0o600,
            "test runs under umask 077"
        );
    }
    let _ = host;
    assert!(fs.changes().chowned.is_empty());
}

#[test]
fn recorded_owners_are_used_and_follow_renames() {
    let recorded: RecordedOwner = Arc::new(|p: &str| match p {
        "/bin/tool" => Some(o(0o4755, 0, 0)),
        "/data/f" => Some(o(0o600, 33, 33)),
        _ => None,
    });
    let (_t, fs) = tree(RootfsOptions {
        recorded_owner: Some(recorded),
        ..Default::default()
    });
    assert_eq!(owner(&fs, "/bin/tool"), o(0o4755, 0, 0));
    // Renaming the directory first: the file, never seen, is still found
    // under its old path in the record.
    ok(&fs, &["mv", "/data", "/moved"]);
    assert_eq!(owner(&fs, "/moved/f"), o(0o600, 33, 33));
    ok(&fs, &["mv", "/moved/f", "/moved/g"]);
    assert_eq!(owner(&fs, "/moved/g"), o(0o600, 33, 33));
    assert_eq!(
        ok(&fs, &["stat", "-c", "%a %U:%G %n", "/moved/g"]),
        "600 www-data:www-data /moved/g\n"
    );
    // A new file at the old recorded path is new: defaults.
    ok(&fs, &["mkdir", "/data"]);
    ok(&fs, &["touch", "/data/f"]);
    assert_eq!(owner(&fs, "/data/f"), o(0o644, 0, 0));
}

#[test]
fn hard_links_share_and_chown_clears_setuid() {
    let (_t, fs) = plain();
    ok(&fs, &["ln", "/data/f", "/data/hard"]);
    ok(&fs, &["chmod", "4755", "/data/hard"]);
    assert_eq!(owner(&fs, "/data/f").mode, 0o4755);
    ok(&fs, &["chown", "www-data:staff", "/data/f"]);
    // Linux's chown drops setuid on regular files.
    assert_eq!(owner(&fs, "/data/hard"), o(0o755, 33, 50));
    let changes = fs.changes();
    assert!(changes.chowned.contains("/data/f"));
    assert!(changes.chowned.contains("/data/hard"));
    assert!(changes.touched().contains("/data/f"));
}

#[test]
fn chmod_modes() {
    let (_t, fs) = plain();
    let cases: &[(&str, u32, u32)] = &[
        ("755", 0o644, 0o755),
        ("u+x", 0o644, 0o744),
        ("go-w", 0o666, 0o644),
        ("a=r", 0o777, 0o444),
        ("+x", 0o644, 0o755),
        ("a-w", 0o666, 0o444),
        ("g=u", 0o700, 0o770),
        ("u+s,+t", 0o755, 0o5755),
        ("a+X", 0o644, 0o644),
        ("a+X", 0o744, 0o755),
        ("u=rw,g=,o=", 0o777, 0o600),
    ];
    for (mode, from, want) in cases {
        ok(&fs, &["chmod", &format!("{from:o}"), "/data/f"]);
        ok(&fs, &["chmod", mode, "/data/f"]);
        assert_eq!(
            owner(&fs, "/data/f").mode,
            *want,
            "chmod {mode} on {from:o}"
        );
    }
    // Without "who", the umask (022, never the host's) limits the change,
    // and chmod says so and fails, as GNU's does.
    ok(&fs, &["chmod", "666", "/data/f"]);
    let r = run(&fs, &["chmod", "-w", "/data/f"]);
    assert_eq!(r.status, 1);
    assert!(
        r.err
            .contains("new permissions are -r--rw-rw-, not -r--r--r--"),
        "{}",
        r.err
    );
    assert_eq!(owner(&fs, "/data/f").mode, 0o466);
    // Directories keep setgid under a short octal mode; X applies to them.
    ok(&fs, &["mkdir", "/data/d"]);
    ok(&fs, &["chmod", "2775", "/data/d"]);
    ok(&fs, &["chmod", "755", "/data/d"]);
    assert_eq!(owner(&fs, "/data/d").mode, 0o2755);
    ok(&fs, &["chmod", "600", "/data/d"]);
    ok(&fs, &["chmod", "a+X", "/data/d"]);
    assert_eq!(owner(&fs, "/data/d").mode, 0o2711);
}

#[test]
fn chmod_and_chown_recursive() {
    let (_t, fs) = plain();
    ok(&fs, &["mkdir", "-p", "/data/a/b"]);
    ok(&fs, &["touch", "/data/a/b/c"]);
    ok(&fs, &["ln", "-s", "/bin/tool", "/data/a/l"]);
    ok(&fs, &["chmod", "-R", "go-rx", "/data/a"]);
    assert_eq!(owner(&fs, "/data/a").mode, 0o700);
    assert_eq!(owner(&fs, "/data/a/b/c").mode, 0o600);
    // The symlink was skipped and its target untouched.
    assert_eq!(owner(&fs, "/bin/tool").mode, 0o644);
    ok(&fs, &["chown", "-R", "1234:50", "/data/a"]);
    assert_eq!(owner(&fs, "/data/a/b/c"), o(0o600, 1234, 50));
    // -R changes the link itself, not what it points to.
    assert_eq!(owner(&fs, "/data/a/l"), o(0o777, 1234, 50));
    assert_eq!(owner(&fs, "/bin/tool"), o(0o644, 0, 0));
    ok(&fs, &["chown", "-h", "daemon", "/data/a/l"]);
    assert_eq!(owner(&fs, "/data/a/l").uid, 1);
    ok(&fs, &["chown", "www-data:", "/data/f"]);
    assert_eq!(owner(&fs, "/data/f"), o(0o644, 33, 33));
    ok(&fs, &["chgrp", "staff", "/data/f"]);
    ok(&fs, &["chown", ":daemon", "/data/a"]);
    assert_eq!(owner(&fs, "/data/f").gid, 50);
    assert_eq!(owner(&fs, "/data/a"), o(0o700, 1234, 1));
}

#[test]
fn bad_input_fails_with_a_message() {
    let (_t, fs) = plain();
    for (args, text) in [
        (&["chmod", "u+q", "/data/f"][..], "invalid mode: 'u+q'"),
        (&["chmod", "8", "/data/f"][..], "invalid mode"),
        (&["chmod", "755", "/nope"][..], "No such file"),
        (
            &["chown", "nobody", "/data/f"][..],
            "invalid user: 'nobody'",
        ),
        (&["chown", "root:nogroup", "/data/f"][..], "invalid group"),
        (&["chgrp", "nogroup", "/data/f"][..], "invalid group"),
        (&["chmod", "755"][..], "missing operand"),
        (&["stat", "/nope"][..], "cannot stat '/nope'"),
        (
            &["install", "-m", "99", "/data/f", "/data/g"][..],
            "invalid mode",
        ),
    ] {
        let r = run(&fs, args);
        assert_ne!(r.status, 0, "{args:?}");
        assert!(r.err.contains(text), "{args:?}: {}", r.err);
    }
    assert_eq!(owner(&fs, "/data/f"), o(0o644, 0, 0));
}

#[test]
fn stat_and_ls_show_kiln_modes_and_owners() {
    let (_t, fs) = plain();
    ok(&fs, &["chmod", "750", "/bin/tool"]);
    ok(&fs, &["chown", "www-data:staff", "/bin/tool"]);
    let out = ok(
        &fs,
        &["stat", "-c", "%a %A %u %g %U %G %n %s %F", "/bin/tool"],
    );
    assert_eq!(
        out,
        "750 -rwxr-x--- 33 50 www-data staff /bin/tool 10 regular file\n"
    );
    let out = ok(&fs, &["stat", "/bin/tool"]);
    assert!(
        out.contains("Access: (0750/-rwxr-x---)  Uid: (   33/www-data)   Gid: (   50/   staff)"),
        "{out}"
    );
    assert!(out.contains("  File: /bin/tool\n  Size: 10"), "{out}");
    let out = ok(&fs, &["ls", "-l", "/bin"]);
    let want = "total 4\n-rwxr-x--- 1 www-data staff 10 Jan  1 00:00 tool\n";
    assert_eq!(out, want);
    let out = ok(&fs, &["ls", "-ln", "/bin/tool", "/etc"]);
    assert!(
        out.starts_with("-rwxr-x--- 1 33 50 10 Jan  1 00:00 /bin/tool\n\n/etc:\ntotal 8\n"),
        "{out}"
    );
    assert!(out.contains("-rw-r--r-- 1 0 0 "), "{out}");
    let out = ok(&fs, &["ls", "-ld", "/data"]);
    assert_eq!(out, "drwxr-xr-x 1 root root 4096 Jan  1 00:00 /data\n");
    // Plain ls still is uutils'.
    assert_eq!(ok(&fs, &["ls", "/bin"]), "tool\n");
    ok(&fs, &["ln", "-s", "tool", "/bin/t"]);
    let out = ok(&fs, &["ls", "-l", "/bin/t"]);
    assert_eq!(
        out,
        "lrwxrwxrwx 1 root root 4 Jan  1 00:00 /bin/t -> tool\n"
    );
    let out = ok(&fs, &["stat", "-c", "%N %F %a", "/bin/t"]);
    assert_eq!(out, "/bin/t -> tool symbolic link 777\n");
}

#[test]
fn cp_gives_source_modes_and_preserves_with_p_and_a() {
    let (_t, fs) = plain();
    ok(&fs, &["chmod", "4775", "/bin/tool"]);
    ok(&fs, &["chown", "33:50", "/bin/tool"]);
    ok(&fs, &["chmod", "4775", "/bin/tool"]);
    ok(&fs, &["cp", "/bin/tool", "/data/plain"]);
    assert_eq!(owner(&fs, "/data/plain"), o(0o755, 0, 0));
    ok(&fs, &["cp", "-p", "/bin/tool", "/data/kept"]);
    assert_eq!(owner(&fs, "/data/kept"), o(0o4775, 33, 50));
    // An existing destination keeps its mode.
    ok(&fs, &["cp", "/bin/tool", "/data/f"]);
    assert_eq!(owner(&fs, "/data/f").mode, 0o644);
    ok(&fs, &["mkdir", "/data/src"]);
    ok(&fs, &["chmod", "700", "/data/src"]);
    ok(&fs, &["cp", "/bin/tool", "/data/src/x"]);
    ok(&fs, &["chown", "-R", "1:1", "/data/src"]);
    ok(&fs, &["cp", "-a", "/data/src", "/data/copy"]);
    assert_eq!(owner(&fs, "/data/copy"), o(0o700, 1, 1));
    assert_eq!(owner(&fs, "/data/copy/x"), o(0o755, 1, 1));
    ok(&fs, &["cp", "-r", "/data/src", "/data/copy2"]);
    assert_eq!(owner(&fs, "/data/copy2"), o(0o700, 0, 0));
    assert_eq!(ok(&fs, &["cat", "/data/copy2/x"]), "#!/bin/sh\n");
}

#[test]
fn install_copies_and_sets_modes() {
    let (_t, fs) = plain();
    ok(&fs, &["install", "/data/f", "/bin/f1"]);
    assert_eq!(owner(&fs, "/bin/f1"), o(0o755, 0, 0));
    ok(
        &fs,
        &[
            "install", "-m", "640", "-o", "www-data", "-g", "staff", "/data/f", "/bin/f2",
        ],
    );
    assert_eq!(owner(&fs, "/bin/f2"), o(0o640, 33, 50));
    ok(
        &fs,
        &[
            "install",
            "-D",
            "-m",
            "u=rwx,go=rx",
            "/data/f",
            "/opt/app/bin/f3",
        ],
    );
    assert_eq!(owner(&fs, "/opt/app/bin/f3").mode, 0o755);
    assert_eq!(ok(&fs, &["cat", "/opt/app/bin/f3"]), "hello");
    ok(&fs, &["install", "-d", "-m", "700", "-o", "33", "/srv/a/b"]);
    assert_eq!(owner(&fs, "/srv/a/b"), o(0o700, 33, 0));
    assert_eq!(owner(&fs, "/srv/a"), o(0o755, 0, 0));
    ok(
        &fs,
        &["install", "-m", "600", "/data/f", "/bin/tool", "/srv"],
    );
    assert_eq!(owner(&fs, "/srv/tool").mode, 0o600);
}

#[test]
fn users_groups_and_id() {
    let (_t, fs) = plain();
    assert_eq!(ok(&fs, &["id"]), "uid=0(root) gid=0(root) groups=0(root)\n");
    assert_eq!(ok(&fs, &["whoami"]), "root\n");
    ok(&fs, &["addgroup", "-g", "2000", "app"]);
    ok(&fs, &["adduser", "-D", "-u", "1500", "-G", "app", "alice"]);
    let passwd = std::fs::read_to_string(fs.host_dir().join("etc/passwd")).unwrap();
    assert!(
        passwd.ends_with("alice:x:1500:2000::/home/alice:/bin/sh\n"),
        "{passwd}"
    );
    assert_eq!(owner(&fs, "/home/alice"), o(0o755, 1500, 2000));
    assert_eq!(
        ok(&fs, &["id", "alice"]),
        "uid=1500(alice) gid=2000(app) groups=2000(app)\n"
    );
    ok(&fs, &["adduser", "-D", "bob"]);
    assert_eq!(ok(&fs, &["id", "-u", "bob"]), "1000\n");
    assert_eq!(ok(&fs, &["id", "-gn", "bob"]), "bob\n");
    ok(&fs, &["addgroup", "bob", "staff"]);
    assert_eq!(ok(&fs, &["id", "-Gn", "bob"]), "bob staff\n");
    ok(&fs, &["groupadd", "-r", "svc"]);
    ok(
        &fs,
        &[
            "useradd",
            "-r",
            "-g",
            "svc",
            "-m",
            "-d",
            "/var/lib/svc",
            "svc",
        ],
    );
    let group = std::fs::read_to_string(fs.host_dir().join("etc/group")).unwrap();
    assert!(group.contains("svc:x:999:\n"), "{group}");
    assert_eq!(
        ok(&fs, &["stat", "-c", "%U:%G %a", "/var/lib/svc"]),
        "svc:svc 755\n"
    );
    let r = run(&fs, &["adduser", "-D", "bob"]);
    assert_ne!(r.status, 0);
    assert!(r.err.contains("in use"), "{}", r.err);
    // The step's USER, from the invocation.
    let me = run_as(&fs, (1500, 2000), &["id"]);
    assert_eq!(me.out, "uid=1500(alice) gid=2000(app) groups=2000(app)\n");
    assert_eq!(run_as(&fs, (1500, 2000), &["whoami"]).out, "alice\n");
}
