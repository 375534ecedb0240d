//! The reproducibility contract, end to end: pinned golden digests for the
//! examples, and the same digest under hostile host differences.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const GOLDEN: &str = "reproducibility/golden-digests.txt";

/// `name sha256:...` lines; `#` comments.
fn golden() -> Vec<(String, String)> {
    let text = fs::read_to_string(repo_root().join(GOLDEN)).expect("read golden digests");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, digest) = l.split_once(char::is_whitespace).expect("name digest");
            (name.to_string(), digest.trim().to_string())
        })
        .collect()
}

fn build(cache: &Path, context: &Path, extra_env: &[(&str, &str)]) -> String {
    let mut cmd = kiln_cmd(
        cache,
        &["build", "--progress=quiet", context.to_str().unwrap()],
    );
    for (k, v) in extra_env {
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

#[test]
fn examples_match_their_pinned_golden_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    let pinned = golden();
    assert!(!pinned.is_empty(), "{GOLDEN} pins no example");
    for (name, want) in &pinned {
        let got = build(
            &tmp.path().join("cache"),
            &repo_root().join("examples").join(name),
            &[],
        );
        if &got != want {
            mismatches.push(format!("{name}: pinned {want}, built {got}"));
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

#[test]
fn same_digest_under_hostile_host_differences() {
    let example = repo_root().join("examples/hello");
    let tmp = tempfile::tempdir().unwrap();
    let reference = build(&tmp.path().join("cache-a"), &example, &[]);

    // Another absolute path, reverse creation order, umask-077 modes and
    // new mtimes (one in the future), another cache dir, other TZ/locale/HOME.
    let stamps = [
        SystemTime::now(),
        SystemTime::now() + Duration::from_secs(86_400 * 365 * 10),
    ];
    for (i, stamp) in stamps.into_iter().enumerate() {
        let copy = tmp.path().join(format!("elsewhere-{i}/deeper/ctx"));
        hostile_copy(&example, &copy, stamp);
        let got = build(
            &tmp.path().join(format!("cache-{i}")),
            &copy,
            &[
                ("TZ", "Pacific/Kiritimati"),
                ("LANG", "tr_TR.UTF-8"),
                ("LC_ALL", "tr_TR.UTF-8"),
                ("HOME", "/nonexistent"),
            ],
        );
        assert_eq!(got, reference, "hostile copy {i} at {}", copy.display());
    }
    // Warm cache: building again in the first cache dir gives the same bytes.
    assert_eq!(build(&tmp.path().join("cache-a"), &example, &[]), reference);
}

#[test]
fn source_date_epoch_changes_created_but_is_itself_reproducible() {
    let example = repo_root().join("examples/hello");
    let tmp = tempfile::tempdir().unwrap();
    let a = build(
        &tmp.path().join("c1"),
        &example,
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    let b = build(
        &tmp.path().join("c2"),
        &example,
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    let zero = build(&tmp.path().join("c3"), &example, &[]);
    assert_eq!(a, b);
    assert_ne!(a, zero);
}
