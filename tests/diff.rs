//! End-to-end: `kiln diff` and `kiln verify` on images kiln builds, on
//! images rewritten by hand, and on images other tools made.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct T {
    tmp: tempfile::TempDir,
}

impl T {
    fn new() -> T {
        T {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
    fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    /// Writes a context `ctx-NAME` with the Dockerfile and files.
    fn ctx(&self, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.p(&format!("ctx-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        write_tree(&dir, files);
        dir
    }
    /// Builds `ctx` into the OCI layout directory `out` (name t:1).
    fn layout(&self, ctx: &Path, out: &str, extra: &[&str]) -> PathBuf {
        let dest = self.p(out);
        image::build_layout(&self.cache(), ctx, &dest, "t:1", extra);
        dest
    }
    fn diff(&self, a: &Path, b: &Path, extra: &[&str]) -> Output {
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        let mut args = vec!["diff", a, b];
        args.extend_from_slice(extra);
        kiln(&self.cache(), &args)
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts `kiln diff` exited with `code` and returns its report.
fn expect_code(o: Output, code: i32) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "exit status; output:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    t
}

const DOCKERFILE: &str = "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nENV X=1\nLABEL l=1\n";

fn base(t: &T, name: &str) -> PathBuf {
    t.ctx(
        name,
        DOCKERFILE,
        &[("a.txt", "one\ntwo\nthree\n"), ("b.txt", "bee\n")],
    )
}

#[test]
fn identical_builds_diff_to_exit_0() {
    let t = T::new();
    let ctx = base(&t, "a");
    let l1 = t.layout(&ctx, "l1", &[]);
    let l2 = t.layout(&base(&t, "b"), "l2", &[]);
    let out = expect_code(t.diff(&l1, &l2, &[]), 0);
    assert!(out.contains("identical"), "{out}");
    // The OCI tar and the local store name of the same build, too.
    let tar = t.p("l.tar");
    kiln_ok(
        &t.cache(),
        &[
            "build",
            "--progress=quiet",
            "-t",
            "mine:1",
            "--output",
            &format!("type=oci,dest={}", tar.display()),
            ctx.to_str().unwrap(),
        ],
    );
    expect_code(t.diff(&l1, &tar, &[]), 0);
    let oci_ref = format!("oci-layout://{}:1", l1.display());
    expect_code(kiln(&t.cache(), &["diff", &oci_ref, "mine:1"]), 0);
}

#[test]
fn a_changed_file_names_the_step_the_file_and_the_first_differing_line() {
    let t = T::new();
    let l1 = t.layout(&base(&t, "a"), "l1", &[]);
    let ctx = t.ctx(
        "b",
        DOCKERFILE,
        &[("a.txt", "one\nTWO\nthree\n"), ("b.txt", "bee\n")],
    );
    let l2 = t.layout(&ctx, "l2", &[]);
    let out = expect_code(t.diff(&l1, &l2, &[]), 1);
    assert!(out.contains("layer 1 (COPY a.txt /a.txt"), "{out}");
    assert!(
        out.contains("/a.txt: content differs (14 vs 14 bytes"),
        "{out}"
    );
    assert!(
        out.contains(r#"first difference at line 2: "two" vs "TWO""#),
        "{out}"
    );
    assert!(
        !out.contains("layer 2"),
        "the second layer is equal:\n{out}"
    );
}

#[test]
fn mode_added_and_removed_files_are_reported() {
    let t = T::new();
    let df = "FROM scratch\nCOPY dir/ /d/\n";
    let a = t.ctx("a", df, &[("dir/x", "x\n"), ("dir/gone", "g\n")]);
    let l1 = t.layout(&a, "l1", &[]);
    let b = t.ctx(
        "b",
        "FROM scratch\nCOPY --chmod=0755 dir/ /d/\n",
        &[("dir/x", "x\n"), ("dir/new", "n\n")],
    );
    let l2 = t.layout(&b, "l2", &[]);
    let out = expect_code(t.diff(&l1, &l2, &[]), 1);
    assert!(out.contains("/d/gone: only in A"), "{out}");
    assert!(out.contains("/d/new: only in B"), "{out}");
    assert!(out.contains(r#"/d/x: mode "0644" vs "0755""#), "{out}");
}

#[test]
fn config_changes_name_the_field() {
    let t = T::new();
    let l1 = t.layout(&base(&t, "a"), "l1", &[]);
    let df = DOCKERFILE
        .replace("ENV X=1", "ENV X=2")
        .replace("l=1", "l=2");
    let ctx = t.ctx(
        "b",
        &df,
        &[("a.txt", "one\ntwo\nthree\n"), ("b.txt", "bee\n")],
    );
    let l2 = t.layout(&ctx, "l2", &[]);
    let out = expect_code(t.diff(&l1, &l2, &[]), 1);
    assert!(out.contains(r#"config: config.Env.X: "1" vs "2""#), "{out}");
    assert!(
        out.contains(r#"config: config.Labels.l: "1" vs "2""#),
        "{out}"
    );
    assert!(!out.contains("layer"), "layers are equal:\n{out}");
}

#[test]
fn source_date_epoch_shows_in_created_and_mtimes() {
    let t = T::new();
    let ctx = base(&t, "a");
    let l1 = t.layout(&ctx, "l1", &["--source-date-epoch", "0"]);
    let l2 = t.layout(&ctx, "l2", &["--source-date-epoch", "1700000000"]);
    let out = expect_code(t.diff(&l1, &l2, &[]), 1);
    assert!(
        out.contains(r#"config: created: "1970-01-01T00:00:00Z" vs "2023-11-14T22:13:20Z""#),
        "{out}"
    );
    assert!(out.contains("/a.txt: mtime 0 vs 1700000000"), "{out}");
}

/// Rewrites the layout's first layer gzipped at `level` with header
/// mtime 7, and the manifest and index.json to match.
fn recompress(layout: &Path) {
    use flate2::{Compression, GzBuilder};
    use std::io::{Read, Write};
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(&mdigest)).unwrap()).unwrap();
    let ldigest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&std::fs::read(blob(&ldigest)).unwrap()[..])
        .read_to_end(&mut raw)
        .unwrap();
    let mut gz = GzBuilder::new()
        .mtime(7)
        .write(Vec::new(), Compression::new(1));
    gz.write_all(&raw).unwrap();
    let new_layer = gz.finish().unwrap();
    let put = |bytes: &[u8]| -> String {
        let d = kiln::digest::Digest::of(bytes).to_string();
        std::fs::write(blob(&d), bytes).unwrap();
        d
    };
    manifest["layers"][0]["digest"] = put(&new_layer).into();
    manifest["layers"][0]["size"] = new_layer.len().into();
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    index["manifests"][0]["digest"] = put(&mbytes).into();
    index["manifests"][0]["size"] = mbytes.len().into();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_recompressed_layer_is_a_compression_only_difference() {
    let t = T::new();
    let ctx = base(&t, "a");
    let l1 = t.layout(&ctx, "l1", &[]);
    let l2 = t.layout(&ctx, "l2", &[]);
    recompress(&l2);
    let out = expect_code(t.diff(&l1, &l2, &[]), 1);
    assert!(
        out.contains("same uncompressed tar; only the compression differs"),
        "{out}"
    );
    assert!(out.contains("gzip.mtime: 0 vs 7"), "{out}");
    assert!(
        out.contains("gzip.xfl: 0 vs 4"),
        "level 1 sets XFL=4:\n{out}"
    );
    assert!(!out.contains("config:"), "{out}");
    let json = expect_code(t.diff(&l1, &l2, &["--format", "json"]), 1);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["platforms"][0]["layers"][0]["compression_only"], true);
}

#[test]
fn docker_archive_and_oci_layout_of_one_build_are_equal_in_content() {
    let t = T::new();
    let ctx = base(&t, "a");
    let l1 = t.layout(&ctx, "l1", &[]);
    let archive = t.p("d.tar");
    kiln_ok(
        &t.cache(),
        &[
            "build",
            "--progress=quiet",
            "--output",
            &format!("type=docker,dest={}", archive.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let out = expect_code(t.diff(&l1, &archive, &[]), 0);
    assert!(
        out.contains("docker archive, which keeps no manifest"),
        "{out}"
    );
}

#[test]
fn json_reports_parse_and_carry_the_fields() {
    let t = T::new();
    let l1 = t.layout(&base(&t, "a"), "l1", &[]);
    let ctx = t.ctx(
        "b",
        &DOCKERFILE.replace("ENV X=1", "ENV X=3"),
        &[("a.txt", "one\ntwo\n3\n"), ("b.txt", "bee\n")],
    );
    let l2 = t.layout(&ctx, "l2", &[]);
    let out = t.diff(&l1, &l2, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(v["identical"], false);
    assert_eq!(v["a"]["kind"], "oci-layout");
    let p = &v["platforms"][0];
    assert!(p["manifest_digest"]["a"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let fields: Vec<&str> = p["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"config.Env.X"), "{fields:?}");
    let layer = &p["layers"][0];
    assert_eq!(layer["layer"], 1);
    assert!(layer["created_by"]
        .as_str()
        .unwrap()
        .starts_with("COPY a.txt"));
    let file = &layer["files"][0];
    assert_eq!(file["path"], "/a.txt");
    assert_eq!(file["change"], "changed");
    assert_eq!(file["first_difference"]["line"], 3);
    assert_eq!(file["first_difference"]["b"], "3");
}

#[test]
fn images_not_built_by_kiln_are_read() {
    if !require_tool("umoci") {
        return;
    }
    let t = T::new();
    let l1 = t.layout(&base(&t, "a"), "l1", &[]);
    let u = t.p("umoci");
    let us = u.to_str().unwrap();
    run_ok(Command::new("umoci").args(["init", "--layout", us]));
    run_ok(Command::new("umoci").args(["new", "--image", &format!("{us}:t")]));
    let file = t.p("a.txt");
    std::fs::write(&file, "one\ntwo\nthree\n").unwrap();
    run_ok(Command::new("umoci").args([
        "insert",
        "--rootless",
        "--image",
        &format!("{us}:t"),
        file.to_str().unwrap(),
        "/a.txt",
    ]));
    let uref = PathBuf::from(format!("{us}:t"));
    expect_code(t.diff(&uref, &uref, &[]), 0);
    let out = expect_code(t.diff(&l1, &uref, &[]), 1);
    assert!(out.contains("config: "), "{out}");
    assert!(
        out.contains("/a.txt: "),
        "umoci's layer is read file by file:\n{out}"
    );
    if !require_tool("skopeo") {
        return;
    }
    // skopeo's docker-archive of kiln's layout: same content.
    let da = t.p("skopeo.tar");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:1", l1.display()),
        &format!("docker-archive:{}", da.display()),
    ]));
    let out = expect_code(t.diff(&l1, &da, &[]), 0);
    assert!(out.contains("identical"), "{out}");
}

#[test]
fn bad_references_exit_2_naming_the_reference() {
    let t = T::new();
    let l1 = t.layout(&base(&t, "a"), "l1", &[]);
    let missing = t.p("missing");
    let out = expect_code(t.diff(&l1, &missing, &[]), 2);
    assert!(out.contains(missing.to_str().unwrap()), "{out}");
    let bad_tag = format!("oci-layout://{}:nope", l1.display());
    let out = expect_code(
        kiln(&t.cache(), &["diff", l1.to_str().unwrap(), &bad_tag]),
        2,
    );
    assert!(out.contains("no image tagged \"nope\""), "{out}");
    // A corrupted blob is found and named.
    let img = image::Image::open(&l1);
    let ld = img.manifest["layers"][0]["digest"].as_str().unwrap();
    let l2 = t.layout(&base(&t, "b"), "l2", &["--build-arg", "unused=1"]);
    let _ = l2;
    let blob = l1
        .join("blobs/sha256")
        .join(ld.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let other = t.layout(
        &t.ctx("c", DOCKERFILE, &[("a.txt", "x\n"), ("b.txt", "bee\n")]),
        "l3",
        &[],
    );
    let out = expect_code(t.diff(&l1, &other, &[]), 2);
    assert!(out.contains(ld), "{out}");
}

#[test]
fn verify_checks_the_rebuild() {
    let t = T::new();
    let ctx = base(&t, "a");
    let l1 = t.layout(&ctx, "l1", &[]);
    let digest = image::Image::open(&l1).dir.join("index.json");
    let index: Value = serde_json::from_slice(&std::fs::read(digest).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let c = ctx.to_str().unwrap();
    let ok = kiln(
        &t.cache(),
        &["verify", "--progress=quiet", "--expect", &digest, c],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("OK: the rebuild produced the expected"));

    let wrong = format!("sha256:{}", "0".repeat(64));
    let bad = kiln(
        &t.cache(),
        &["verify", "--progress=quiet", "--expect", &wrong, c],
    );
    let out = text(&bad);
    assert!(!bad.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "MISMATCH: expected {wrong}, the rebuild produced {digest}"
        )),
        "{out}"
    );
    assert!(out.contains("--against"), "{out}");

    let other = t.ctx(
        "b",
        DOCKERFILE,
        &[("a.txt", "one\ntwo\nthree\n"), ("b.txt", "BEE\n")],
    );
    let l2 = t.layout(&other, "l2", &[]);
    let against = format!("oci-layout://{}:1", l2.display());
    let bad = kiln(
        &t.cache(),
        &["verify", "--progress=quiet", "--against", &against, c],
    );
    let out = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("layer 2 (COPY b.txt /b.txt"), "{out}");
    assert!(
        out.contains(r#"first difference at line 1: "BEE" vs "bee""#),
        "{out}"
    );

    let same = format!("oci-layout://{}:1", l1.display());
    let ok = kiln(
        &t.cache(),
        &["verify", "--progress=quiet", "--against", &same, c],
    );
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn registry_images_are_fetched_and_compared() {
    if !registry::registry_available(false) {
        return;
    }
    let reg = registry::TestRegistry::start();
    let t = T::new();
    let l1 = t.layout(&base(&t, "a"), "l1", &[]);
    let ctx = t.ctx(
        "b",
        DOCKERFILE,
        &[("a.txt", "one\ntwo\nthree\n"), ("b.txt", "BEE\n")],
    );
    let l2 = t.layout(&ctx, "l2", &[]);
    reg.push_layout(&l1, "diffme", "1", None);
    let remote = format!("docker://{}/diffme:1", reg.host());
    let out = expect_code(
        kiln(&t.cache(), &["diff", &remote, l1.to_str().unwrap()]),
        0,
    );
    assert!(out.contains("identical"), "{out}");
    let out = expect_code(
        kiln(&t.cache(), &["diff", &remote, l2.to_str().unwrap()]),
        1,
    );
    assert!(
        out.contains(r#"first difference at line 1: "bee" vs "BEE""#),
        "{out}"
    );
    let missing = format!("{}/nothere:1", reg.host());
    let out = expect_code(
        kiln(&t.cache(), &["diff", &missing, l1.to_str().unwrap()]),
        2,
    );
    assert!(out.contains("nothere"), "{out}");
}
