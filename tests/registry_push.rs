//! End-to-end: the real kiln binary pushes to a real registry
//! (docker-registry on 127.0.0.1), and skopeo reads the image back.

mod common;

use common::image::Fixture;
use common::registry::{free_port, registry_available, TestRegistry};
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const DOCKERFILE: &str =
    "FROM scratch\nCOPY hello.txt /hello.txt\nCOPY big.bin /big.bin\nRUN echo built > /built.txt\n";

/// A context with a small file and an incompressible 10 MiB one, so one
/// layer is larger than the chunked-upload threshold.
fn context(fx: &Fixture) {
    fx.write(&[("hello.txt", "hello registry\n")]);
    fx.write(&[("Dockerfile", DOCKERFILE)]);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let big: Vec<u8> = (0..10 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(fx.ctx().join("big.bin"), big).unwrap();
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"))
}

/// The digest skopeo reads back for `reference` from the registry.
fn skopeo_digest(reference: &str) -> String {
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().expect("Digest").to_string()
}

/// Blob files of an OCI layout, by name.
fn blobs(layout: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn built_image_pushes_byte_for_byte_then_skips_and_mounts() {
    if !registry_available(false) || !require_tool("skopeo") {
        return;
    }
    let reg = TestRegistry::start();
    let fx = Fixture::new();
    context(&fx);
    let layout = fx.fresh("layout");
    let dest = format!("{}/demo:1", reg.host());
    let out = run(&mut kiln_cmd(
        &fx.cache(),
        &[
            "build",
            "--progress=plain",
            "-t",
            &dest,
            "--push",
            "--output",
            &format!("type=oci,dest={},tar=false", layout.display()),
            fx.ctx().to_str().unwrap(),
        ],
    ));
    let digest = assert_ok(&out, "kiln build --push");
    let log = stderr(&out);
    assert!(
        log.contains("4 blobs uploaded") && log.contains("0 already present"),
        "first push uploads config and three layers:\n{log}"
    );
    assert_eq!(skopeo_digest(&dest), digest, "registry digest = kiln's");

    // skopeo copies the image out of the registry: every blob is kiln's.
    let copy = fx.fresh("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{dest}"),
        &format!("oci:{}:x", copy.display()),
    ]));
    let ours = blobs(&layout);
    let theirs = blobs(&copy);
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "same blob set"
    );
    assert!(
        ours.values().any(|b| b.len() > 8 << 20),
        "one layer takes the chunked path"
    );
    for (name, bytes) in &ours {
        assert!(theirs[name] == *bytes, "blob {name} differs");
    }

    // Pushing again sends nothing.
    let again = run(&mut kiln_cmd(&fx.cache(), &["push", &dest]));
    assert_eq!(assert_ok(&again, "kiln push"), digest);
    let log = stderr(&again);
    assert!(
        log.contains("0 blobs uploaded") && log.contains("4 already present"),
        "{log}"
    );

    // Another repository on the same registry: blobs are mounted.
    let other = format!("{}/other/copy:2", reg.host());
    let mounted = run(&mut kiln_cmd(&fx.cache(), &["push", &dest, &other]));
    assert_eq!(assert_ok(&mounted, "kiln push to another repo"), digest);
    let log = stderr(&mounted);
    assert!(
        log.contains("0 blobs uploaded") && log.contains("4 mounted"),
        "{log}"
    );
    assert_eq!(skopeo_digest(&other), digest);
}

#[test]
fn output_type_registry_pushes_and_type_image_only_names() {
    if !registry_available(false) || !require_tool("skopeo") {
        return;
    }
    let reg = TestRegistry::start();
    let fx = Fixture::new();
    fx.write(&[
        ("a.txt", "a\n"),
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
    ]);
    let dest = format!("{}/viaoutput:latest", reg.host());
    let ctx = fx.ctx();
    let digest = kiln_ok(
        &fx.cache(),
        &[
            "build",
            "--progress=quiet",
            "--output",
            &format!("type=registry,name={dest}"),
            ctx.to_str().unwrap(),
        ],
    )
    .trim()
    .to_string();
    assert_eq!(skopeo_digest(&dest), digest);

    // type=image without push names the image locally, pushes nothing.
    let local = format!("{}/notpushed:1", reg.host());
    kiln_ok(
        &fx.cache(),
        &[
            "build",
            "--progress=quiet",
            "--output",
            &format!("type=image,name={local}"),
            ctx.to_str().unwrap(),
        ],
    );
    let images = kiln_ok(&fx.cache(), &["images"]);
    assert!(images.contains(&local), "{images}");
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{local}"),
    ]));
    assert!(!out.status.success(), "type=image alone must not push");
}

#[test]
fn htpasswd_registry_needs_the_right_credentials() {
    if !registry_available(true) || !require_tool("skopeo") {
        return;
    }
    let reg = TestRegistry::start_with_auth("kiln", "s3cret");
    let fx = Fixture::new();
    fx.write(&[
        ("a.txt", "auth\n"),
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
    ]);
    let dest = format!("{}/private:1", reg.host());
    let ctx = fx.ctx();
    let build = |user: Option<(&str, &str)>| {
        let mut cmd = kiln_cmd(
            &fx.cache(),
            &[
                "build",
                "--progress=plain",
                "-t",
                &dest,
                "--push",
                ctx.to_str().unwrap(),
            ],
        );
        // Credentials come from the Docker config, as `docker login` or
        // `kiln login` leave them.
        let config = fx.tmp.path().join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let auths = match user {
            Some((u, p)) => {
                use base64::Engine as _;
                let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                serde_json::json!({ "auths": { reg.host(): { "auth": auth } } })
            }
            None => serde_json::json!({}),
        };
        std::fs::write(config.join("config.json"), auths.to_string()).unwrap();
        cmd.env("DOCKER_CONFIG", &config);
        run(&mut cmd)
    };
    let wrong = build(Some(("kiln", "wrong")));
    let err = assert_failed_cleanly(&wrong, "push with a wrong password");
    assert!(
        err.contains(&format!("authentication failed for {}", reg.host()))
            && err.contains("refused the credentials"),
        "{err}"
    );
    let anon = build(None);
    let err = assert_failed_cleanly(&anon, "anonymous push");
    assert!(
        err.contains("authentication failed") && err.contains("kiln login"),
        "{err}"
    );

    let ok = build(Some(("kiln", "s3cret")));
    let digest = assert_ok(&ok, "push with the right password");
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "kiln:s3cret",
        &format!("docker://{dest}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], digest);
}

#[test]
fn unreachable_registry_and_unknown_name_are_clear_errors() {
    let fx = Fixture::new();
    fx.write(&[
        ("a.txt", "down\n"),
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
    ]);
    let port = free_port();
    let dest = format!("127.0.0.1:{port}/down:1");
    let ctx = fx.ctx();
    kiln_ok(
        &fx.cache(),
        &[
            "build",
            "--progress=quiet",
            "-t",
            &dest,
            ctx.to_str().unwrap(),
        ],
    );
    let out = run(&mut kiln_cmd(&fx.cache(), &["push", &dest]));
    let err = assert_failed_cleanly(&out, "push to a registry that is down");
    assert!(
        err.contains(&format!("registry 127.0.0.1:{port} is unreachable")),
        "{err}"
    );

    let err = kiln_err(&fx.cache(), &["push", "never/built:1"]);
    assert!(err.contains("no image named never/built:1"), "{err}");
    let err = kiln_err(
        &fx.cache(),
        &["build", "--push", "--progress=quiet", ctx.to_str().unwrap()],
    );
    assert!(err.contains("--push needs an image name"), "{err}");
}

#[test]
fn an_image_index_pushes_its_manifests_first_by_digest() {
    use kiln::registry::push::{push_image, PushOptions};
    if !registry_available(false) || !require_tool("skopeo") {
        return;
    }
    let reg = TestRegistry::start();
    let fx = Fixture::new();
    fx.write(&[
        ("a.txt", "index\n"),
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
    ]);
    let ctx = fx.ctx();
    let manifest_digest = kiln_ok(
        &fx.cache(),
        &["build", "--progress=quiet", ctx.to_str().unwrap()],
    )
    .trim()
    .to_string();
    let store = kiln::store::BlobStore::open(&fx.cache()).unwrap();
    let digest: kiln::digest::Digest = manifest_digest.parse().unwrap();
    let manifest_bytes = store.read(&digest).unwrap();
    let index: kiln::oci::image::Index = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    }))
    .unwrap();
    let index_bytes = kiln::oci::config::canonical_json(&index).unwrap();
    let index_digest = store.put_bytes(&index_bytes).unwrap();

    let dest = format!("{}/multi:1", reg.host());
    let report = push_image(&store, &index_digest, &dest, &PushOptions::default()).unwrap();
    assert_eq!(report.manifests, 2, "{report:?}");
    assert_eq!(report.uploaded, 2, "config and one layer: {report:?}");
    assert_eq!(report.manifest_digest.as_ref(), Some(&index_digest));

    let raw = |reference: &str| {
        run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]))
    };
    assert_eq!(raw(&dest).as_bytes(), &index_bytes[..], "index bytes kept");
    assert_eq!(
        raw(&format!("{}/multi@{manifest_digest}", reg.host())).as_bytes(),
        &manifest_bytes[..],
        "image manifest pushed by digest"
    );
    // Again: everything is present, nothing is uploaded.
    let report = push_image(&store, &index_digest, &dest, &PushOptions::default()).unwrap();
    assert_eq!((report.uploaded, report.skipped), (0, 2), "{report:?}");
}
