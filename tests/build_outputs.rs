//! End-to-end: build the bundled example and read every output kind back
//! with real tools (skopeo, umoci) and by hand.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn hello_dir() -> std::path::PathBuf {
    repo_root().join("examples/hello")
}

fn build_hello(cache: &Path, output: &str) -> String {
    let ctx = hello_dir();
    kiln_ok(
        cache,
        &[
            "build",
            "--progress=quiet",
            "--output",
            output,
            ctx.to_str().unwrap(),
        ],
    )
    .trim()
    .to_string()
}

#[test]
fn oci_archive_is_readable_by_skopeo_with_the_expected_config() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hello.tar");
    let digest = build_hello(
        &tmp.path().join("cache"),
        &format!("type=oci,dest={}", out.display()),
    );
    assert!(
        digest.starts_with("sha256:"),
        "stdout is the manifest digest: {digest}"
    );
    if !require_tool("skopeo") {
        return;
    }
    let src = format!("oci-archive:{}", out.display());
    let raw = run_ok(Command::new("skopeo").args(["inspect", "--raw", &src]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // skopeo computes the digest itself: it must equal what kiln printed.
    let computed = format!("sha256:{}", hex_sha256(raw.as_bytes()));
    assert_eq!(computed, digest);

    let config: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", "--config", &src]),
    ))
    .unwrap();
    let c = &config["config"];
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/srv/bin/hello"]));
    // Exec-form CMD is not expanded, as in Docker.
    assert_eq!(c["Cmd"], serde_json::json!(["--greeting", "${GREETING}"]));
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "kiln hello");
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    assert!(env.contains(&"GREETING=hello".to_string()), "{env:?}");
    assert!(env.contains(&"APP_HOME=/srv".to_string()), "{env:?}");
    let history = config["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["created_by"]
        .as_str()
        .unwrap_or("")
        .contains("COPY --chmod=0755 hello.sh bin/hello")));
    let layers = manifest["layers"].as_array().unwrap();
    let non_empty = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(
        layers.len(),
        non_empty,
        "one layer per non-empty history entry"
    );
    assert_eq!(
        layers.len(),
        config["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
}

#[test]
fn oci_directory_layout_unpacks_with_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    build_hello(
        &tmp.path().join("cache"),
        &format!("type=oci,dest={},tar=false,name=hello:1", layout.display()),
    );
    assert!(layout.join("oci-layout").is_file());
    assert!(layout.join("index.json").is_file());
    if !require_tool("umoci") {
        return;
    }
    let bundle = tmp.path().join("bundle");
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        // BuildKit (and kiln) put only the tag in ref.name.
        &format!("{}:1", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    let script = rootfs.join("srv/bin/hello");
    let mode = std::fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "--chmod=0755 applied");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        std::fs::read_to_string(hello_dir().join("hello.sh")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/www/VERSION")).unwrap(),
        "1.0.0\n",
        "heredoc COPY"
    );
    assert!(
        rootfs.join("srv/www/index.html").is_file(),
        "COPY --from=assets"
    );
    assert!(!rootfs.join("srv/www/www").exists());
}

#[test]
fn docker_archive_is_readable_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hello-docker.tar");
    build_hello(
        &tmp.path().join("cache"),
        &format!("type=docker,dest={},name=kiln/hello:1", out.display()),
    );
    if !require_tool("skopeo") {
        return;
    }
    let info: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", out.display())]),
    ))
    .unwrap();
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(
        info["Labels"]["org.opencontainers.image.title"],
        "kiln hello"
    );
}

#[test]
fn local_output_writes_the_root_filesystem() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("rootfs");
    build_hello(
        &tmp.path().join("cache"),
        &format!("type=local,dest={}", dest.display()),
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("srv/www/VERSION")).unwrap(),
        "1.0.0\n"
    );
    assert!(dest.join("srv/bin/hello").is_file());
}

#[test]
fn iidfile_metadata_file_and_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let iid = tmp.path().join("iid");
    let meta = tmp.path().join("meta.json");
    let ctx = hello_dir();
    let digest = kiln_ok(
        &cache,
        &[
            "build",
            "--progress=plain",
            "-t",
            "kiln/hello:test",
            "--iidfile",
            iid.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    let digest = digest.trim();
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), digest);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], digest);
    assert!(m["containerimage.config.digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(m["image.name"], "kiln/hello:test");
    let images = kiln_ok(&cache, &["images"]);
    assert!(
        images.contains("kiln/hello:test") && images.contains(digest),
        "{images}"
    );
    let inspect = kiln_ok(&cache, &["inspect", "kiln/hello:test"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["config"]["config"]["User"], "1000:1000");
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `-q` as buildx: nothing but the image id (the manifest digest kiln
/// prints everywhere) on stdout, nothing on stderr; with another progress
/// mode it is an error.
#[test]
fn quiet_prints_only_the_image_id() {
    let fx = common::image::Fixture::new();
    fx.write(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    let out = fx.fresh("out");
    let dest = format!("type=oci,dest={},tar=false", out.display());
    let ctx = fx.ctx();
    let o = kiln(
        &fx.cache(),
        &["build", "-q", "--output", &dest, ctx.to_str().unwrap()],
    );
    let stdout = assert_ok(&o, "kiln build -q");
    assert_eq!(stdout, common::image::Image::open(&out).top_digest());
    assert!(o.stderr.is_empty(), "{}", stderr(&o));

    let o = kiln(
        &fx.cache(),
        &[
            "build",
            "--quiet",
            "--progress=plain",
            ctx.to_str().unwrap(),
        ],
    );
    let err = assert_failed_cleanly(&o, "kiln build -q --progress=plain");
    assert!(err.contains("--progress=plain and --quiet"), "{err}");
}
