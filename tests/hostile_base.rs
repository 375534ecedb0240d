//! A base image whose layer holds hostile tar entries (`../`, absolute
//! names): kiln never unpacks it when it does not need the tree, and when it
//! does, it refuses the entry by name and writes nothing outside.

mod common;

use common::*;
use sha2::Digest as _;
use std::io::Write;
use std::path::Path;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A one-file tar whose header name is `name`, bytes as written (the tar
/// crate refuses to build such names itself).
fn hostile_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    let mut out = Vec::new();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// Writes an OCI layout at `dir` tagged `hostile` with one layer.
fn write_layout(dir: &Path, layer_tar: &[u8]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha(bytes);
        std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
        d
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(layer_tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer_tar)]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "hostile"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn hostile_base_layers_are_never_followed_outside() {
    for name in ["../../escaped.txt", "/abs-escaped.txt"] {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        write_layout(&layout, &hostile_tar(name, b"pwned\n"));
        let ctx = tmp.path().join("ctx");
        write_tree(&ctx, &[("a.txt", "a\n")]);
        let cache = tmp.path().join("cache");
        let context_arg = format!("base=oci-layout://{}:hostile", layout.display());

        // Metadata only: the base's tree is never unpacked, so the build
        // succeeds and keeps the base layer byte for byte.
        std::fs::write(ctx.join("Dockerfile"), "FROM base\nLABEL ok=1\n").unwrap();
        let out = tmp.path().join("image");
        kiln_ok(
            &cache,
            &[
                "build",
                "--progress=quiet",
                "--build-context",
                &context_arg,
                "--output",
                &format!("type=oci,dest={},tar=false", out.display()),
                ctx.to_str().unwrap(),
            ],
        );

        // COPY needs the tree: the hostile entry is refused by name.
        std::fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY a.txt /a.txt\n").unwrap();
        let err = kiln_err(
            &cache,
            &[
                "build",
                "--progress=quiet",
                "--build-context",
                &context_arg,
                ctx.to_str().unwrap(),
            ],
        );
        assert!(err.contains("Dockerfile:"), "{err}");
        assert!(err.contains("escaped.txt"), "the entry is named: {err}");

        // Nothing was written next to or above the cache, context or layout.
        for dir in [
            tmp.path().to_path_buf(),
            tmp.path().join("cache"),
            tmp.path().join("cache/tmp"),
        ] {
            assert!(!dir.join("escaped.txt").exists(), "{}", dir.display());
        }
        assert!(!Path::new("/abs-escaped.txt").exists());
    }
}
