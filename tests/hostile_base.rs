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

/// One tar entry as written: kind, name, link target, bytes.
type Raw<'a> = (tar::EntryType, &'a str, Option<&'a str>, &'a [u8]);

/// A tar of `entries` with header names and link names as written (the tar
/// crate refuses to build such names itself).
fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(kind, name, link, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        let old = header.as_old_mut();
        old.name.fill(0);
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname.fill(0);
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A one-file tar whose header name is `name`.
fn hostile_tar(name: &str, data: &[u8]) -> Vec<u8> {
    raw_tar(&[(tar::EntryType::Regular, name, None, data)])
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

/// Symlinked parents and hard links that point at host paths: the layer is
/// refused or its entries land inside the rootfs; a host directory and a
/// host file next to the build are neither written nor read into a layer.
#[test]
fn symlinked_parents_and_hard_links_never_reach_host_files() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "host secret\n").unwrap();
    let outside_abs = outside.to_str().unwrap().to_owned();
    let secret_abs = secret.to_str().unwrap().to_owned();
    let cases: Vec<(&str, Vec<Raw<'_>>)> = vec![
        (
            "absolute symlinked parent",
            vec![
                (tar::EntryType::Symlink, "evil", Some(&outside_abs), b""),
                (tar::EntryType::Regular, "evil/pwned.txt", None, b"pwned\n"),
            ],
        ),
        (
            "relative symlinked parent",
            vec![
                (
                    tar::EntryType::Symlink,
                    "up",
                    Some("../../../../../../.."),
                    b"",
                ),
                (tar::EntryType::Regular, "up/pwned.txt", None, b"pwned\n"),
            ],
        ),
        (
            "hard link to a host file",
            vec![(tar::EntryType::Link, "hl", Some(&secret_abs), b"")],
        ),
        (
            "hard link through a symlink",
            vec![
                (tar::EntryType::Symlink, "out", Some(&outside_abs), b""),
                (tar::EntryType::Link, "hl", Some("out/secret.txt"), b""),
            ],
        ),
    ];
    for (what, entries) in cases {
        let dir = tmp.path().join(what.replace(' ', "-"));
        let layout = dir.join("layout");
        write_layout(&layout, &raw_tar(&entries));
        let ctx = dir.join("ctx");
        write_tree(
            &ctx,
            &[(
                "Dockerfile",
                "FROM base\nRUN cat /hl /evil/pwned.txt /up/pwned.txt > /seen 2>/dev/null; \
                 echo step > /evil/written 2>/dev/null; true\n",
            )],
        );
        let out = dir.join("image");
        let o = kiln_cmd(
            &dir.join("cache"),
            &[
                "build",
                "--progress=plain",
                "--build-context",
                &format!("base=oci-layout://{}:hostile", layout.display()),
                "--output",
                &format!("type=oci,dest={},tar=false", out.display()),
                ctx.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
        if o.status.success() {
            // Built: the entry landed inside the rootfs, where the step
            // found it, and nothing of the host's reached a layer.
            let img = common::image::Image::open(&out);
            let seen = img.files()["seen"].text();
            assert_eq!(seen, "pwned\n", "{what}");
            for layer in img.layers() {
                for e in layer {
                    assert!(
                        !e.text().contains("host secret"),
                        "{what}: host bytes in {}",
                        e.path
                    );
                }
            }
        } else {
            assert_failed_cleanly(&o, what);
            let err = stderr(&o);
            assert!(err.contains("Dockerfile:"), "{what}: {err}");
            assert!(
                err.contains("entry \"hl\""),
                "{what}: the entry is named: {err}"
            );
        }
        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec!["secret.txt"], "{what}: the host dir changed");
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            "host secret\n",
            "{what}"
        );
    }
    assert!(!tmp.path().join("pwned.txt").exists());
}
