//! RUN mounts cannot be turned against the host. During a step the guest
//! may rename any directory it can write and put a symlink to a host path in
//! its place; kiln's work after the step (taking mounts down, putting back
//! what they covered, moving cache directories home) must never follow it.
//!
//! Every attack aims at a sentinel directory outside every kiln directory,
//! which must stay byte for byte as it was. Each runs as root and, where the
//! test runs as root and `setpriv` exists, again as an unprivileged user who
//! owns the sentinel (so only kiln's containment, not file permissions,
//! protects it).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;
const SECRET: &str = "mount-escape-secret-value";

/// What a tree holds: every path with its kind, mode and content or target.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&p).unwrap())
        } else if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
            format!("dir {:o}", meta.mode())
        } else {
            format!(
                "file {:o} {:?}",
                meta.mode(),
                String::from_utf8_lossy(&std::fs::read(&p).unwrap())
            )
        };
        out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), what);
    }
    out
}

/// The sentinel: names an attack would delete, overwrite or read.
fn make_sentinel(dir: &Path, owner: Option<u32>) {
    write_tree(
        dir,
        &[
            ("t/keep", "tmpfs target namesake"),
            ("secrets/s/keep", "secret target namesake"),
            ("b/f/keep", "bind target namesake"),
            ("c/data", "host data the cache must never see"),
            ("q/t/keep", "deep namesake"),
            ("t.moved/keep", "moved namesake"),
        ],
    );
    if let Some(uid) = owner {
        chown_tree(dir, uid);
    }
}

fn chown_tree(dir: &Path, uid: u32) {
    for e in walk(dir) {
        std::os::unix::fs::lchown(&e, Some(uid), Some(uid)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out
}

/// Who runs kiln.
#[derive(Clone, Copy, Debug)]
enum As {
    Root,
    Nobody,
}

struct Lab {
    tmp: tempfile::TempDir,
    who: As,
    n: std::cell::Cell<u32>,
}

impl Lab {
    fn new(who: As) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab {
            tmp,
            who,
            n: std::cell::Cell::new(0),
        };
        if let As::Nobody = who {
            for a in lab.tmp.path().ancestors() {
                let mode = std::fs::metadata(a).unwrap().permissions().mode();
                if mode & 0o005 != 0o005 {
                    std::fs::set_permissions(a, std::fs::Permissions::from_mode(mode | 0o755))
                        .unwrap();
                }
            }
            std::os::unix::fs::chown(lab.tmp.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        std::fs::write(lab.tmp.path().join("secret.txt"), SECRET).unwrap();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Builds `dockerfile` in a fresh context (holding `f`, a file for bind
    /// mounts) against `cache`; the sentinel must be unchanged afterwards.
    fn build(&self, dockerfile: &str, cache: &Path) -> (Output, PathBuf) {
        let n = self.n.get() + 1;
        self.n.set(n);
        let ctx = self.path(&format!("ctx-{n}"));
        write_tree(&ctx, &[("Dockerfile", dockerfile), ("f", "bound file\n")]);
        let out = self.path(&format!("out-{n}"));
        std::fs::create_dir_all(cache).unwrap();
        let secret = self.path("secret.txt");
        if let As::Nobody = self.who {
            chown_tree(&ctx, NOBODY);
            chown_tree(cache, NOBODY);
            std::os::unix::fs::chown(&secret, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let mut cmd = match self.who {
            As::Root => Command::new(kiln_bin()),
            As::Nobody => kiln_as_user(NOBODY),
        };
        let output = cmd
            .env("KILN_CACHE_DIR", cache)
            .env("KILN_WASM_CACHE", self.path("modules"))
            .env("HOME", cache)
            .env("DOCKER_CONFIG", cache.join("docker-config"))
            .env_remove("SOURCE_DATE_EPOCH")
            .args([
                "build",
                "--progress=plain",
                "--secret",
                &format!("id=s,src={}", secret.display()),
                "--output",
                &format!("type=oci,dest={},tar=false", out.display()),
                ctx.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            !stderr(&output).contains("panicked"),
            "kiln panicked:\n{}",
            stderr(&output)
        );
        (output, out)
    }
}

/// Runs `attack` (a Dockerfile with `{S}` for the sentinel's path) and
/// checks that the sentinel is untouched. Returns the build's output.
fn contained(lab: &Lab, what: &str, attack: &str, cache: &Path) -> (Output, PathBuf) {
    let sentinel = lab.path(&format!("sentinel-{}", lab.n.get() + 1));
    make_sentinel(&sentinel, matches!(lab.who, As::Nobody).then_some(NOBODY));
    let before = snapshot(&sentinel);
    let dockerfile = attack.replace("{S}", sentinel.to_str().unwrap());
    let (output, out) = lab.build(&dockerfile, cache);
    assert_eq!(
        snapshot(&sentinel),
        before,
        "{what} ({:?}) changed the sentinel outside the rootfs; kiln said:\n{}",
        lab.who,
        stderr(&output)
    );
    (output, out)
}

/// The reproductions of the security review, one per line of it.
fn reported_attacks(who: As) {
    let lab = Lab::new(who);
    let cache = lab.path("cache");

    // Delete through tmpfs teardown; the guest's `mv` is refused outright.
    let (o, _) = contained(
        &lab,
        "tmpfs delete",
        "FROM scratch\nRUN --mount=type=tmpfs,target=/a/t mv /a /a2 && ln -s {S} /a\n",
        &cache,
    );
    let err = assert_failed_cleanly(&o, "tmpfs delete");
    assert!(err.contains("busy"), "{err}");

    // The same, carrying on after the refused `mv`.
    let (o, _) = contained(
        &lab,
        "tmpfs delete (continuing)",
        "FROM scratch\nRUN --mount=type=tmpfs,target=/a/t mv /a /a2; ln -s {S} /a; true\n",
        &cache,
    );
    assert_ok(&o, "tmpfs delete (continuing)");

    // Delete through a secret mount (file, then its emptied directory).
    let (o, _) = contained(
        &lab,
        "secret delete",
        "FROM scratch\nRUN --mount=type=secret,id=s,target=/a/secrets/s mv /a /a2; ln -s {S} /a; true\n",
        &cache,
    );
    assert_ok(&o, "secret delete");

    // Write with chosen content: the set-aside file renamed back.
    let (o, _) = contained(
        &lab,
        "planted write",
        "FROM scratch\nRUN mkdir /a && echo attacker-written > /a/planted\n\
         RUN --mount=type=tmpfs,target=/a/planted mv /a /a2; ln -s {S} /a; true\n",
        &cache,
    );
    assert_ok(&o, "planted write");

    // Read: a host directory moved into a cache, printed by the next step.
    let (o, out) = contained(
        &lab,
        "cache read",
        "FROM scratch\nRUN --mount=type=cache,target=/a/c,id=evil mv /a /a2; ln -s {S} /a; true\n\
         RUN --mount=type=cache,target=/m,id=evil cp -r /m /copy\n",
        &cache,
    );
    assert_ok(&o, "cache read");
    let files = common::image::Image::open(&out).files();
    assert!(
        !files.keys().any(|p| p.contains("copy/data")),
        "host data reached the image: {:?}",
        files.keys().collect::<Vec<_>>()
    );

    // A cache mount point replaced by a relative symlink out of the cache
    // dir: the cache's home must stay a real directory.
    let (o, _) = contained(
        &lab,
        "cache home symlink",
        "FROM scratch\nRUN --mount=type=cache,target=/c,id=home mv /c /c2; \
         ln -s ../../../../../../../../../..{S} /c; rm -rf /c; ln -s {S} /c; true\n",
        &cache,
    );
    assert_ok(&o, "cache home symlink");
    let homes = cache.join("run-cache");
    for e in std::fs::read_dir(&homes).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        assert!(
            !meta.file_type().is_symlink(),
            "{} became a symlink",
            e.path().display()
        );
    }

    // Bind mounts take the same route down.
    let (o, _) = contained(
        &lab,
        "bind delete",
        "FROM scratch\nRUN --mount=type=bind,source=f,target=/b/f mv /b /b2; ln -s {S} /b; true\n",
        &cache,
    );
    assert_ok(&o, "bind delete");
}

/// Every mount type, with a rename-and-symlink race on every ancestor of
/// its target (the target included): the sentinel holds the namesakes.
fn ancestor_races(who: As) {
    let lab = Lab::new(who);
    let cache = lab.path("cache");
    let specs = [
        "type=tmpfs,target=/q/t",
        "type=cache,target=/q/t,id=race",
        "type=cache,target=/q/t,id=race-private,sharing=private",
        "type=secret,id=s,target=/q/t",
        "type=bind,source=f,target=/q/t",
        "type=bind,source=f,target=/q/t,rw",
    ];
    for spec in specs {
        let mut dockerfile = String::from("FROM scratch\nRUN mkdir -p /q/t.moved\n");
        for victim in ["/q", "/q/t"] {
            for attack in [
                format!("mv {victim} {victim}.moved; ln -s {{S}} {victim}"),
                format!("rm -rf {victim}; ln -s {{S}}/q {victim}"),
                format!("mv {victim} /elsewhere; mkdir -p {victim}; ln -s {{S}} {victim}/t"),
            ] {
                dockerfile.push_str(&format!("RUN --mount={spec} {attack}; true\n"));
            }
        }
        dockerfile.push_str("RUN ls -la /q /q/t* > /listing; true\n");
        let (o, out) = contained(&lab, spec, &dockerfile, &cache);
        assert_ok(&o, spec);
        // The mount point's parent stayed a directory through every attack.
        let q = common::image::Image::open(&out).file("q");
        assert!(q.is_dir(), "{spec}: /q is {:?}", q.entry_type);
    }
}

#[test]
fn reported_mount_attacks_are_contained_as_root() {
    reported_attacks(As::Root);
}

#[test]
fn every_mount_ancestor_race_is_contained_as_root() {
    ancestor_races(As::Root);
}

/// The same attacks by an unprivileged user who owns the sentinel.
#[test]
fn mount_attacks_are_contained_for_an_unprivileged_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        eprintln!("not root: cannot switch to an unprivileged user; skipped");
        return;
    }
    if !require_tool("setpriv") {
        return;
    }
    reported_attacks(As::Nobody);
    ancestor_races(As::Nobody);
}

extern "C" {
    fn geteuid() -> u32;
}
