//! Pulling base images from a real registry (Debian's docker-registry),
//! seeded with skopeo from layouts kiln built.

mod common;

use common::image::{build_layout, Image};
use common::registry::{registry_available, TestRegistry};
use common::{kiln_cmd, output_with_stdin, require_tool, write_tree};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;

fn tools() -> bool {
    registry_available(true) && require_tool("skopeo")
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// A Docker config dir with no credentials (never the user's own).
    fn docker_config(&self) -> PathBuf {
        let d = self.path("docker");
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

/// Builds `FROM scratch` + COPY of `files` into an OCI layout at `out`.
fn base_layout(s: &Scratch, name: &str, files: &[(&str, &str)], extra: &[&str]) -> Image {
    let ctx = s.path(&format!("{name}-ctx"));
    write_tree(&ctx, files);
    let copies: String = files
        .iter()
        .map(|(p, _)| format!("COPY {p} /{p}\n"))
        .collect();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM scratch\n{copies}")).unwrap();
    build_layout(
        &s.path(&format!("{name}-cache")),
        &ctx,
        &s.path(&format!("{name}-layout")),
        name,
        extra,
    )
}

/// The manifest digest of the only image of a layout.
fn layout_manifest(dir: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0].clone()
}

/// Runs `kiln build` of `dockerfile` with `DOCKER_CONFIG=docker_config`.
fn build(
    s: &Scratch,
    cache: &Path,
    docker_config: &Path,
    dockerfile: &str,
    out: &str,
    extra: &[&str],
) -> Output {
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let out = s.path(out);
    let output = format!("type=oci,dest={},tar=false", out.display());
    let mut args = vec!["build", "--progress=plain", "--output", &output];
    args.extend_from_slice(extra);
    let ctx_s = ctx.to_str().unwrap().to_string();
    args.push(&ctx_s);
    kiln_cmd(cache, &args)
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .expect("start kiln")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "kiln failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn err(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kiln unexpectedly succeeded:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "kiln panicked:\n{stderr}");
    stderr
}

fn file_in(img: &Image, path: &str) -> Option<String> {
    img.layers()
        .iter()
        .rev()
        .flat_map(|l| l.iter())
        .find(|e| e.path == path)
        .map(|e| e.text())
}

#[test]
fn from_a_pushed_image_copy_and_run_then_offline_rebuild_by_digest() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let base = base_layout(&s, "base", &[("file", "hello from the registry\n")], &[]);
    let mut reg = TestRegistry::start();
    reg.push_layout(&s.path("base-layout"), "kiln/base", "1", None);
    let host = reg.host();
    let cache = s.path("cache");
    let dc = s.docker_config();

    let dockerfile = format!(
        "FROM {host}/kiln/base:1\nRUN cat /file > /seen\n\
         FROM scratch\nCOPY --from={host}/kiln/base:1 /file /copied\nCOPY --from=0 /seen /seen\n"
    );
    ok(&build(&s, &cache, &dc, &dockerfile, "out1", &[]));
    let img = Image::open(&s.path("out1"));
    assert_eq!(
        file_in(&img, "copied").as_deref(),
        Some("hello from the registry\n")
    );
    assert_eq!(
        file_in(&img, "seen").as_deref(),
        Some("hello from the registry\n")
    );

    // The first stage as the final image keeps the base layer byte for byte.
    let dockerfile1 = format!("FROM {host}/kiln/base:1\nRUN cat /file > /seen\n");
    ok(&build(&s, &cache, &dc, &dockerfile1, "out2", &[]));
    let img = Image::open(&s.path("out2"));
    assert_eq!(
        img.layer_blobs[0], base.layer_blobs[0],
        "base layer kept byte for byte"
    );
    assert_eq!(
        img.manifest["layers"][0]["digest"],
        base.manifest["layers"][0]["digest"]
    );
    assert_eq!(img.layer_blobs.len(), 2);
    assert!(
        reg.log().contains("/v2/kiln/base/manifests/1"),
        "{}",
        reg.log()
    );

    // Registry gone: the digest-pinned reference resolves from the store.
    let digest = layout_manifest(&s.path("base-layout"))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    reg.stop();
    let pinned = format!("FROM {host}/kiln/base@{digest}\nRUN cat /file > /seen\n");
    ok(&build(&s, &cache, &dc, &pinned, "out3", &[]));
    let img3 = Image::open(&s.path("out3"));
    assert_eq!(img3.manifest, img.manifest, "same base, same image");
    // A tag must be resolved, and the registry is down: a clear error.
    let e = err(&build(&s, &cache, &dc, &dockerfile1, "out4", &[]));
    assert!(e.contains(&host) && e.contains("kiln/base"), "{e}");
}

#[test]
fn build_context_docker_image_and_index_platform_selection() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let amd = base_layout(
        &s,
        "amd",
        &[("arch", "amd64\n")],
        &["--platform", "linux/amd64"],
    );
    let arm = base_layout(
        &s,
        "arm",
        &[("arch", "arm64\n")],
        &["--platform", "linux/arm64"],
    );
    assert_eq!(arm.config["architecture"], "arm64");
    // One layout holding an index of both, as `docker buildx` would push.
    let multi = s.path("multi-layout");
    std::fs::create_dir_all(multi.join("blobs/sha256")).unwrap();
    for src in ["amd-layout", "arm-layout"] {
        for e in std::fs::read_dir(s.path(src).join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), multi.join("blobs/sha256").join(e.file_name())).unwrap();
        }
    }
    let entry = |dir: &str, arch: &str| {
        let mut d = layout_manifest(&s.path(dir));
        d["annotations"] = Value::Null;
        d.as_object_mut().unwrap().remove("annotations");
        d["platform"] = json!({"os": "linux", "architecture": arch});
        d
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("amd-layout", "amd64"), entry("arm-layout", "arm64")],
    }))
    .unwrap();
    let index_digest = format!("sha256:{}", sha256_hex(&index));
    std::fs::write(multi.join("blobs/sha256").join(&index_digest[7..]), &index).unwrap();
    std::fs::write(
        multi.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        multi.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest, "size": index.len()}]}))
        .unwrap(),
    )
    .unwrap();
    let reg = TestRegistry::start();
    reg.push_layout(&multi, "kiln/multi", "v1", None);
    let host = reg.host();
    let cache = s.path("cache");
    let dc = s.docker_config();

    let df = "FROM base\nRUN cat /arch > /picked\n";
    let ctx_arg = format!("base=docker-image://{host}/kiln/multi:v1");
    for (platform, want, layer) in [
        ("linux/arm64", "arm64\n", &arm),
        ("linux/amd64", "amd64\n", &amd),
    ] {
        let out = format!("out-{}", want.trim());
        ok(&build(
            &s,
            &cache,
            &dc,
            df,
            &out,
            &["--build-context", &ctx_arg, "--platform", platform],
        ));
        let img = Image::open(&s.path(&out));
        assert_eq!(file_in(&img, "picked").as_deref(), Some(want), "{platform}");
        assert_eq!(img.layer_blobs[0], layer.layer_blobs[0], "{platform}");
    }
    let e = err(&build(
        &s,
        &cache,
        &dc,
        df,
        "out-x",
        &["--build-context", &ctx_arg, "--platform", "linux/s390x"],
    ));
    assert!(
        e.contains("linux/s390x") && e.contains("linux/arm64"),
        "{e}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn login(cache: &Path, dc: &Path, host: &str, user: &str, pass: &str) -> Output {
    output_with_stdin(
        kiln_cmd(
            cache,
            &["login", "--username", user, "--password-stdin", host],
        )
        .env("DOCKER_CONFIG", dc),
        format!("{pass}\n").as_bytes(),
    )
}

#[test]
fn authentication_config_login_and_logout() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    base_layout(&s, "base", &[("file", "secret base\n")], &[]);
    let reg = TestRegistry::start_with_auth("kiln", "s3cret");
    assert_eq!(reg.v2_status(), Some(401));
    reg.push_layout(
        &s.path("base-layout"),
        "priv/base",
        "1",
        Some(("kiln", "s3cret")),
    );
    let host = reg.host();
    let df = format!("FROM {host}/priv/base:1\nRUN cat /file > /seen\n");
    let cache = s.path("cache");

    // No credentials: refused, and kiln says so.
    let anon = s.path("anon");
    std::fs::create_dir_all(&anon).unwrap();
    let e = err(&build(&s, &cache, &anon, &df, "o1", &[]));
    assert!(
        e.contains(&host) && e.contains("authentication failed"),
        "{e}"
    );

    // Wrong credentials in config.json.
    let wrong = s.path("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    let b64 = |t: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(t)
    };
    std::fs::write(
        wrong.join("config.json"),
        json!({"auths": {host.clone(): {"auth": b64("kiln:nope")}}}).to_string(),
    )
    .unwrap();
    let e = err(&build(&s, &cache, &wrong, &df, "o2", &[]));
    assert!(
        e.contains(&host) && e.contains("authentication failed"),
        "{e}"
    );
    assert!(e.contains("refused the credentials"), "{e}");

    // Right credentials in config.json.
    let right = s.path("right");
    std::fs::create_dir_all(&right).unwrap();
    std::fs::write(
        right.join("config.json"),
        json!({"auths": {format!("http://{host}"): {"username": "kiln", "password": "s3cret"}}})
            .to_string(),
    )
    .unwrap();
    ok(&build(&s, &cache, &right, &df, "o3", &[]));
    assert_eq!(
        file_in(&Image::open(&s.path("o3")), "seen").as_deref(),
        Some("secret base\n")
    );

    // kiln login: wrong password refused and nothing stored.
    let dc = s.path("login");
    std::fs::create_dir_all(&dc).unwrap();
    std::fs::write(dc.join("config.json"), r#"{"proxies": {"keep": "me"}}"#).unwrap();
    let cache2 = s.path("cache2");
    let out = login(&cache2, &dc, &host, "kiln", "bad");
    let e = err(&out);
    assert!(
        e.contains("authentication failed") && e.contains(&host),
        "{e}"
    );
    assert!(!std::fs::read_to_string(dc.join("config.json"))
        .unwrap()
        .contains("auths"));
    // Right password: stored (0600, other keys kept), and builds work.
    ok(&login(&cache2, &dc, &host, "kiln", "s3cret"));
    let text = std::fs::read_to_string(dc.join("config.json")).unwrap();
    assert!(text.contains(&host) && text.contains("proxies"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dc.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    ok(&build(&s, &cache2, &dc, &df, "o4", &[]));
    // Logout: the next build (fresh cache, so it must pull) is refused.
    let out = kiln_cmd(&cache2, &["logout", &host])
        .env("DOCKER_CONFIG", &dc)
        .output()
        .unwrap();
    ok(&out);
    assert!(!std::fs::read_to_string(dc.join("config.json"))
        .unwrap()
        .contains(&host));
    let e = err(&build(&s, &s.path("cache3"), &dc, &df, "o5", &[]));
    assert!(e.contains("authentication failed"), "{e}");
}

#[test]
fn a_tampered_layer_in_the_registry_is_refused() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let base = base_layout(&s, "base", &[("file", "original content\n")], &[]);
    let reg = TestRegistry::start();
    reg.push_layout(&s.path("base-layout"), "kiln/t", "1", None);
    let layer = base.manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = reg.blob_data(&layer);
    let mut bytes = std::fs::read(&data).expect("layer data in the registry storage");
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let dc = s.docker_config();
    let cache = s.path("cache");
    let df = format!("FROM {}/kiln/t:1\nRUN cat /file\n", reg.host());
    let e = err(&build(&s, &cache, &dc, &df, "o", &[]));
    assert!(e.contains("does not match its digest"), "{e}");
    assert!(e.contains(&layer) && e.contains(&reg.host()), "{e}");
    // Nothing under the layer's name in the store.
    assert!(!cache.join("blobs/sha256").join(&layer[7..]).exists());
}

#[test]
fn non_loopback_registries_are_not_contacted_over_http_unless_listed() {
    if !tools() {
        return;
    }
    // The registry listens on this machine's own non-loopback address,
    // which kiln must treat like any remote host.
    let Some(ip) = common::registry::non_loopback_ip() else {
        eprintln!("SKIP: this machine has no non-loopback IPv4 address");
        return;
    };
    let s = Scratch::new();
    base_layout(&s, "base", &[("file", "x\n")], &[]);
    let reg = TestRegistry::start_on(&ip, None);
    reg.push_layout(&s.path("base-layout"), "kiln/h", "1", None);
    let before = reg.log().matches("GET /v2/kiln/h").count();
    let dc = s.docker_config();
    let df = format!("FROM {}/kiln/h:1\n", reg.host());
    let e = err(&build(&s, &s.path("c1"), &dc, &df, "o1", &[]));
    assert!(e.contains(&reg.host()) && e.contains("https"), "{e}");
    assert_eq!(
        reg.log().matches("GET /v2/kiln/h").count(),
        before,
        "no HTTP request reached the registry:\n{}",
        reg.log()
    );
    ok(&build(
        &s,
        &s.path("c2"),
        &dc,
        &df,
        "o2",
        &["--insecure-registry", &reg.host()],
    ));
}

#[test]
fn unknown_images_and_bad_references_fail_clearly() {
    if !tools() {
        return;
    }
    let s = Scratch::new();
    let reg = TestRegistry::start();
    let dc = s.docker_config();
    let e = err(&build(
        &s,
        &s.path("c"),
        &dc,
        &format!("FROM {}/no/such:1\n", reg.host()),
        "o",
        &[],
    ));
    assert!(e.contains("no/such") && e.contains(&reg.host()), "{e}");
    let e = err(&build(&s, &s.path("c"), &dc, "FROM Bad_Ref\n", "o", &[]));
    assert!(e.contains("invalid image reference"), "{e}");
}
