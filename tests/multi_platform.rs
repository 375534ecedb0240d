//! `--platform a,b`: one build per platform, an OCI image index over them,
//! base images resolved per platform, and the index pushed to a real
//! registry and read back with skopeo.

mod common;

use common::image::{Fixture, Image};
use common::registry::{registry_available, TestRegistry};
use common::*;
use std::process::Command;

const TWO: &str = "linux/amd64,linux/arm64";

/// A RUN step that records which platform it ran for.
const DOCKERFILE: &str =
    "FROM scratch\nARG TARGETARCH\nCOPY a.txt /a.txt\nRUN echo $TARGETARCH > /arch\n";

fn arch_file(img: &Image) -> String {
    img.file("arch").text()
}

#[test]
fn two_platforms_make_an_index_of_the_single_platform_images() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "same on every platform\n")]);
    let multi = fx.build(DOCKERFILE, &["--platform", TWO]);
    let platforms = Image::platforms(&multi.dir);
    let names: Vec<&str> = platforms.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        ["linux/amd64", "linux/arm64"],
        "index order = --platform order"
    );

    for (platform, digest) in &platforms {
        let img = Image::open_manifest(&multi.dir, digest);
        let arch = platform.rsplit('/').next().unwrap();
        assert_eq!(img.config["architecture"], arch, "{platform} config");
        assert_eq!(img.config["os"], "linux");
        assert_eq!(arch_file(&img), format!("{arch}\n"), "RUN saw TARGETARCH");
        // Each entry is exactly the image a single-platform build makes.
        let single = fx.build(DOCKERFILE, &["--platform", platform]);
        let single_digest = single.top_digest();
        assert_eq!(
            &single_digest, digest,
            "{platform}: index entry = single build"
        );
    }
    // The COPY layer does not depend on the platform; the RUN layer does.
    let amd = Image::open_platform(&multi.dir, "linux/amd64");
    let arm = Image::open_platform(&multi.dir, "linux/arm64");
    assert_eq!(amd.manifest["layers"][0], arm.manifest["layers"][0]);
    assert_ne!(amd.manifest["layers"][1], arm.manifest["layers"][1]);

    // Same flags again (warm cache): the same index, byte for byte; and
    // platforms built at once (-j 4) or one by one (-j 1) in fresh caches.
    let again = fx.build(DOCKERFILE, &["--platform", TWO]);
    assert_eq!(again.top_digest(), multi.top_digest());
    for jobs in ["1", "4"] {
        let fresh = Fixture::new();
        fresh.write(&[("a.txt", "same on every platform\n")]);
        let img = fresh.build(DOCKERFILE, &["--platform", TWO, "-j", jobs]);
        assert_eq!(img.top_digest(), multi.top_digest(), "-j {jobs}");
    }
    // Duplicates are dropped; a bad entry names itself.
    let dup = fx.build(
        DOCKERFILE,
        &["--platform", "linux/amd64,linux/arm64,linux/amd64"],
    );
    assert_eq!(dup.top_digest(), multi.top_digest());
    let err = fx.build_err(DOCKERFILE, &["--platform", "linux/amd64,nonsense"]);
    assert!(err.contains("nonsense"), "{err}");
}

#[test]
fn base_images_are_resolved_per_platform() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "base\n")]);
    let base = fx.build(DOCKERFILE, &["--platform", TWO]);
    let base_ctx = format!("base=oci-layout://{}", base.dir.display());
    let derived = "FROM base\nRUN cat /arch > /from-base\n";
    let img = fx.build(derived, &["--platform", TWO, "--build-context", &base_ctx]);
    for arch in ["amd64", "arm64"] {
        let one = Image::open_platform(&img.dir, &format!("linux/{arch}"));
        assert_eq!(one.file("from-base").text(), format!("{arch}\n"));
        assert_eq!(one.config["architecture"], arch);
    }
    // A platform the base image lacks is a clear error.
    let err = fx.build_err(
        derived,
        &[
            "--platform",
            "linux/amd64,linux/s390x",
            "--build-context",
            &base_ctx,
        ],
    );
    assert!(err.contains("linux/s390x"), "{err}");
}

#[test]
fn docker_exporter_refuses_several_platforms_and_local_splits_them() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "x\n"), ("Dockerfile", DOCKERFILE)]);
    let dest = fx.fresh("docker.tar");
    let out = kiln(
        &fx.cache(),
        &[
            "build",
            "--platform",
            TWO,
            "--output",
            &format!("type=docker,dest={}", dest.display()),
            fx.ctx().to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("type=docker") && err.contains("type=oci"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dest.exists(), "nothing exported");

    let local = fx.fresh("rootfs");
    kiln_ok(
        &fx.cache(),
        &[
            "build",
            "--progress=quiet",
            "--platform",
            TWO,
            "--output",
            &format!("type=local,dest={}", local.display()),
            fx.ctx().to_str().unwrap(),
        ],
    );
    for arch in ["amd64", "arm64"] {
        let f = local.join(format!("linux_{arch}")).join("arch");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{arch}\n"));
    }
}

#[test]
fn a_multi_platform_push_reads_back_with_skopeo_and_pulls_per_platform() {
    if !registry_available(false) || !require_tool("skopeo") {
        return;
    }
    let reg = TestRegistry::start();
    let fx = Fixture::new();
    fx.write(&[("a.txt", "pushed\n"), ("Dockerfile", DOCKERFILE)]);
    let dest = format!("{}/kiln/multi:1", reg.host());
    let digest = kiln_ok(
        &fx.cache(),
        &[
            "build",
            "--progress=plain",
            "--platform",
            TWO,
            "-t",
            &dest,
            "--push",
            fx.ctx().to_str().unwrap(),
        ],
    );
    let digest = digest.trim();
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]));
    let got = format!("sha256:{}", sha256_hex(raw.as_bytes()));
    assert_eq!(got, digest, "the registry holds kiln's index bytes");
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    for arch in ["amd64", "arm64"] {
        let cfg = run_ok(Command::new("skopeo").args([
            "inspect",
            "--config",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            &format!("docker://{dest}"),
        ]));
        let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(cfg["architecture"], arch);
    }
    // `kiln inspect` shows both platforms of the named index.
    let shown = kiln_ok(&fx.cache(), &["inspect", &dest]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["platforms"].as_array().unwrap().len(), 2);

    // A fresh cache pulls the index and picks the asked platform.
    let fx2 = Fixture::new();
    let img = fx2.build(
        &format!("FROM {dest}\nRUN cat /arch > /seen\n"),
        &["--platform", "linux/arm64"],
    );
    assert_eq!(img.file("seen").text(), "arm64\n");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
