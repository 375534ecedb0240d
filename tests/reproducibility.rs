//! The reproducibility contract, end to end: pinned golden digests for the
//! examples, and the same digest under hostile host differences.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const GOLDEN: &str = "reproducibility/golden-digests.txt";

/// One pinned build: `EXAMPLE DIGEST [FLAGS...]` lines; `#` comments.
struct Pinned {
    example: String,
    digest: String,
    flags: Vec<String>,
}

fn golden() -> Vec<Pinned> {
    let text = fs::read_to_string(repo_root().join(GOLDEN)).expect("read golden digests");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            let example = words.next().expect("example name");
            let digest = words.next().expect("digest");
            Pinned {
                example,
                digest,
                flags: words.collect(),
            }
        })
        .collect()
}

/// Every example directory.
fn examples() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    all.sort();
    all
}

/// How one build of the matrix differs from the reference build.
#[derive(Default)]
struct Host<'a> {
    env: &'a [(&'a str, &'a str)],
    flags: &'a [&'a str],
    /// The umask kiln itself runs under.
    umask: Option<&'a str>,
}

fn build(cache: &Path, context: &Path, host: &Host<'_>) -> String {
    let mut args = vec!["build", "--progress=quiet"];
    args.extend_from_slice(host.flags);
    args.push(context.to_str().unwrap());
    let kiln = kiln_cmd(cache, &args);
    let mut cmd = match host.umask {
        None => kiln,
        Some(mask) => {
            // The same command under `sh -c 'umask M; exec kiln ...'`.
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
                .arg(kiln.get_program())
                .args(kiln.get_args());
            for (k, v) in kiln.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            sh
        }
    };
    for (k, v) in host.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "build of {} failed:\n{}",
        context.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `kiln verify --expect` each pinned digest: a fresh, isolated cache per
/// build, and a failure prints the digest to pin if the change is wanted.
#[test]
fn examples_match_their_pinned_golden_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let pinned = golden();
    let names: std::collections::BTreeSet<String> =
        pinned.iter().map(|p| p.example.clone()).collect();
    for example in examples() {
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            names.contains(&name),
            "examples/{name} has no golden digest in {GOLDEN}"
        );
    }
    let mut mismatches = Vec::new();
    for p in &pinned {
        let ctx = repo_root().join("examples").join(&p.example);
        let mut args = vec!["verify", "--progress=quiet", "--expect", &p.digest];
        args.extend(p.flags.iter().map(String::as_str));
        args.push(ctx.to_str().unwrap());
        let out = kiln(&tmp.path().join("cache"), &args);
        if !out.status.success() {
            mismatches.push(format!(
                "{} {}: {}{}",
                p.example,
                p.flags.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "output bytes changed; if deliberate, update {GOLDEN}:\n{}",
        mismatches.join("\n")
    );
}

/// Copies `src` to `dst` the way a hostile checkout would: files created in
/// reverse order, umask 077 modes (exec bit kept for the owner only), and
/// fresh, odd mtimes and atimes.
fn hostile_copy(src: &Path, dst: &Path, stamp: SystemTime) {
    let mut entries: Vec<PathBuf> = Vec::new();
    collect(src, &mut entries);
    entries.sort();
    fs::create_dir_all(dst).unwrap();
    for path in entries.iter().rev() {
        let rel = path.strip_prefix(src).unwrap();
        let target = dst.join(rel);
        let meta = fs::symlink_metadata(path).unwrap();
        if meta.is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::copy(path, &target).unwrap();
            let exec = meta.permissions().mode() & 0o111 != 0;
            fs::set_permissions(
                &target,
                fs::Permissions::from_mode(if exec { 0o700 } else { 0o600 }),
            )
            .unwrap();
            let f = fs::File::options().write(true).open(&target).unwrap();
            f.set_times(fs::FileTimes::new().set_modified(stamp).set_accessed(stamp))
                .unwrap();
        }
    }
    for path in entries.iter().filter(|p| p.is_dir()) {
        let target = dst.join(path.strip_prefix(src).unwrap());
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        }
        out.push(p);
    }
}

/// Copies `src` like a umask-022 checkout: 0644 files (0755 when
/// executable), 0755 directories, in sorted order, with today's mtimes.
fn plain_copy(src: &Path, dst: &Path) {
    let mut entries: Vec<PathBuf> = Vec::new();
    collect(src, &mut entries);
    entries.sort();
    for path in &entries {
        let target = dst.join(path.strip_prefix(src).unwrap());
        if path.is_dir() {
            fs::create_dir_all(&target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::copy(path, &target).unwrap();
            let exec = fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0;
            let mode = if exec { 0o755 } else { 0o644 };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// The matrix: every example, built under every hostile host difference,
/// must give the reference digest.
#[test]
fn same_digest_under_hostile_host_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let hostile_env = [
        ("TZ", "Pacific/Kiritimati"),
        ("LANG", "tr_TR.UTF-8"),
        ("LC_ALL", "tr_TR.UTF-8"),
        ("HOME", "/nonexistent"),
    ];
    for example in examples() {
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        let root = tmp.path().join(&name);
        let reference = build(&root.join("cache-a"), &example, &Host::default());

        // umask 022 checkout elsewhere, another cold cache, -j 1.
        let plain = root.join("checkout-022/src");
        plain_copy(&example, &plain);
        let got = build(
            &root.join("cache-b"),
            &plain,
            &Host {
                flags: &["-j", "1"],
                ..Host::default()
            },
        );
        assert_eq!(got, reference, "{name}: umask-022 checkout, -j 1");

        // umask 077 checkout: reverse creation order, new mtimes and atimes
        // (one set ten years ahead), another path and cache, another
        // TZ/locale/HOME, and kiln itself under umask 077.
        let stamps = [
            SystemTime::now(),
            SystemTime::now() + Duration::from_secs(86_400 * 365 * 10),
        ];
        for (i, stamp) in stamps.into_iter().enumerate() {
            let copy = root.join(format!("elsewhere-{i}/deeper/ctx"));
            hostile_copy(&example, &copy, stamp);
            let got = build(
                &root.join(format!("cache-{i}")),
                &copy,
                &Host {
                    env: &hostile_env,
                    umask: Some("077"),
                    ..Host::default()
                },
            );
            assert_eq!(
                got,
                reference,
                "{name}: hostile copy {i} at {}",
                copy.display()
            );
        }
        // Warm cache: building again in the first cache dir.
        assert_eq!(
            build(&root.join("cache-a"), &example, &Host::default()),
            reference,
            "{name}: warm cache"
        );
    }
}

#[test]
fn source_date_epoch_changes_created_but_is_itself_reproducible() {
    let example = repo_root().join("examples/hello");
    let tmp = tempfile::tempdir().unwrap();
    let epoch = Host {
        env: &[("SOURCE_DATE_EPOCH", "1700000000")],
        ..Host::default()
    };
    let a = build(&tmp.path().join("c1"), &example, &epoch);
    let b = build(&tmp.path().join("c2"), &example, &epoch);
    let zero = build(&tmp.path().join("c3"), &example, &Host::default());
    assert_eq!(a, b);
    assert_ne!(a, zero);
}
