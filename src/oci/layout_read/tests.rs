use super::*;
use serde_json::{json, Value};

/// A layout built by hand in a temp dir.
struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn blob(&self, bytes: &[u8]) -> (Digest, u64) {
        let d = Digest::of(bytes);
        fs::write(blob_path(self.path(), &d), bytes).unwrap();
        (d, bytes.len() as u64)
    }
    fn json_blob(&self, v: &Value, media_type: &str) -> Value {
        let bytes = serde_json::to_vec(v).unwrap();
        let (d, n) = self.blob(&bytes);
        json!({"mediaType": media_type, "digest": d.to_string(), "size": n})
    }
    /// An image (manifest + config + one layer) for a platform; returns the
    /// manifest descriptor.
    fn image(&self, arch: &str, variant: Option<&str>, docker: bool) -> Value {
        let mut cfg = json!({"architecture": arch, "os": "linux",
            "config": {"Env": [format!("ARCH={arch}")]},
            "rootfs": {"type": "layers", "diff_ids": []}});
        if let Some(v) = variant {
            cfg["variant"] = json!(v);
        }
        let (cfg_mt, layer_mt, man_mt) = if docker {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                DOCKER_MANIFEST,
            )
        } else {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
                OCI_MANIFEST,
            )
        };
        let config = self.json_blob(&cfg, cfg_mt);
        let (ld, ln) = self.blob(format!("layer for {arch}").as_bytes());
        let manifest = json!({"schemaVersion": 2, "mediaType": man_mt, "config": config,
            "layers": [{"mediaType": layer_mt, "digest": ld.to_string(), "size": ln}]});
        let mut desc = self.json_blob(&manifest, man_mt);
        let mut platform = json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = json!(v);
        }
        desc["platform"] = platform;
        desc
    }
    fn index(&self, manifests: Vec<Value>) {
        let v = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        fs::write(
            self.path().join("index.json"),
            serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
    }
}

fn amd64() -> Platform {
    "linux/amd64".parse::<Platform>().unwrap()
}

fn tagged(mut d: Value, name: &str) -> Value {
    d["annotations"] = json!({ REF_NAME: name });
    d
}

#[test]
fn single_image_resolves_with_config_and_layers() {
    let l = Layout::new();
    let mut d = l.image("amd64", None, false);
    d.as_object_mut().unwrap().remove("platform");
    l.index(vec![d.clone()]);
    let img = resolve(l.path(), None, &amd64()).unwrap();
    assert_eq!(img.manifest_digest.to_string(), d["digest"]);
    assert_eq!(Digest::of(&img.manifest), img.manifest_digest);
    assert_eq!(img.config.architecture, "amd64");
    assert_eq!(img.config.config.env, Some(vec!["ARCH=amd64".to_string()]));
    assert_eq!(img.layers.len(), 1);
    let layer = &img.layers[0];
    assert_eq!(
        layer.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let path = verify_blob(l.path(), &layer.digest, layer.size).unwrap();
    assert_eq!(fs::read(path).unwrap(), b"layer for amd64");
}

#[test]
fn tags_match_full_names_or_tag_parts() {
    let l = Layout::new();
    let a = tagged(l.image("amd64", None, false), "docker.io/library/app:1.0");
    let b = tagged(l.image("arm64", None, false), "other");
    l.index(vec![a.clone(), b.clone()]);
    let arm = "linux/arm64".parse::<Platform>().unwrap();
    for (sel, want) in [
        ("1.0", &a),
        ("docker.io/library/app:1.0", &a),
        ("other", &b),
    ] {
        let platform = if sel == "other" { arm.clone() } else { amd64() };
        let img = resolve(l.path(), Some(&Selector::Tag(sel.into())), &platform).unwrap();
        assert_eq!(img.manifest_digest.to_string(), want["digest"], "{sel}");
    }
    let err = resolve(l.path(), Some(&Selector::Tag("nope".into())), &amd64()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("nope") && msg.contains("other"), "{msg}");
}

#[test]
fn several_untagged_images_without_platforms_need_a_selector() {
    let l = Layout::new();
    let mut a = l.image("amd64", None, false);
    let mut b = l.image("amd64", Some("v2"), false);
    a.as_object_mut().unwrap().remove("platform");
    b.as_object_mut().unwrap().remove("platform");
    l.index(vec![a, b]);
    let msg = resolve(l.path(), None, &amd64()).unwrap_err().to_string();
    assert!(msg.contains("choose one"), "{msg}");
}

#[test]
fn nested_index_selects_the_platform() {
    for docker in [false, true] {
        let l = Layout::new();
        let amd = l.image("amd64", None, docker);
        let arm = l.image("arm64", Some("v8"), docker);
        let list_mt = if docker { DOCKER_LIST } else { OCI_INDEX };
        let inner = json!({"schemaVersion": 2, "mediaType": list_mt, "manifests": [amd, arm]});
        l.index(vec![tagged(l.json_blob(&inner, list_mt), "latest")]);
        let sel = Selector::Tag("latest".into());
        for (p, want) in [
            ("linux/amd64", &amd),
            ("linux/arm64", &arm),
            ("linux/arm64/v8", &arm),
        ] {
            let img = resolve(l.path(), Some(&sel), &p.parse::<Platform>().unwrap()).unwrap();
            assert_eq!(img.manifest_digest.to_string(), want["digest"], "{p}");
            assert_eq!(img.config.architecture, want["platform"]["architecture"]);
        }
        let msg = resolve(
            l.path(),
            Some(&sel),
            &"linux/s390x".parse::<Platform>().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("linux/s390x") && msg.contains("linux/arm64/v8"),
            "{msg}"
        );
        // A nested manifest named by digest, though index.json does not list it.
        let d: Digest = arm["digest"].as_str().unwrap().parse().unwrap();
        let img = resolve(l.path(), Some(&Selector::Digest(d.clone())), &amd64()).unwrap();
        assert_eq!(img.manifest_digest, d);
    }
}

#[test]
fn corrupted_blobs_are_refused_naming_layout_and_digest() {
    let l = Layout::new();
    let d = l.image("amd64", None, false);
    l.index(vec![d.clone()]);
    let img = resolve(l.path(), None, &amd64()).unwrap();
    // Same size, different bytes: the digest check must catch it.
    let cfg_path = blob_path(l.path(), &img.config_digest);
    let mut bytes = fs::read(&cfg_path).unwrap();
    bytes[0] = b' ';
    fs::write(&cfg_path, &bytes).unwrap();
    let msg = resolve(l.path(), None, &amd64()).unwrap_err().to_string();
    assert!(msg.contains(&img.config_digest.to_string()), "{msg}");
    assert!(msg.contains(&l.path().display().to_string()), "{msg}");
    assert!(msg.contains("does not match"), "{msg}");
    // Truncated layer: size check.
    let layer = &img.layers[0];
    fs::write(blob_path(l.path(), &layer.digest), b"short").unwrap();
    let msg = verify_blob(l.path(), &layer.digest, layer.size)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("size is 5 bytes"), "{msg}");
    // Same size, wrong content.
    fs::write(blob_path(l.path(), &layer.digest), b"layer for arm64").unwrap();
    assert!(verify_blob(l.path(), &layer.digest, layer.size).is_err());
}

#[test]
fn media_type_disagreement_is_refused() {
    let l = Layout::new();
    let mut d = l.image("amd64", None, false);
    d["mediaType"] = json!(OCI_INDEX);
    l.index(vec![d]);
    let msg = resolve(l.path(), None, &amd64()).unwrap_err().to_string();
    assert!(msg.contains("descriptor says"), "{msg}");
}

#[test]
fn layout_version_is_checked() {
    let l = Layout::new();
    l.index(vec![l.image("amd64", None, false)]);
    fs::write(
        l.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    let msg = resolve(l.path(), None, &amd64()).unwrap_err().to_string();
    assert!(msg.contains("2.0.0"), "{msg}");
    fs::remove_file(l.path().join("oci-layout")).unwrap();
    assert!(resolve(l.path(), None, &amd64()).is_err());
}

#[test]
fn layout_references_split_path_tag_and_digest() {
    let d = Digest::of(b"x");
    let cases: Vec<(String, &str, Option<Selector>)> = vec![
        ("oci-layout://./out".into(), "./out", None),
        (
            "oci-layout:///srv/img:1.2".into(),
            "/srv/img",
            Some(Selector::Tag("1.2".into())),
        ),
        (
            format!("oci-layout://dir@{d}"),
            "dir",
            Some(Selector::Digest(d.clone())),
        ),
        ("C:\\images\\x".into(), "C:\\images\\x", None),
        ("dir/a:b/c".into(), "dir/a:b/c", None),
        (
            "me@host:dir".into(),
            "me@host",
            Some(Selector::Tag("dir".into())),
        ),
    ];
    for (input, path, sel) in cases {
        let (p, s) = parse_layout_ref(&input).unwrap();
        assert_eq!((p.to_str().unwrap(), s), (path, sel), "{input}");
    }
    assert!(parse_layout_ref("oci-layout://dir@sha256:abc").is_err());
    assert!(parse_layout_ref("oci-layout://").is_err());
}

#[test]
fn platforms_parse_and_print() {
    let p = "linux/arm/v7".parse::<Platform>().unwrap();
    assert_eq!(p.variant.as_deref(), Some("v7"));
    assert_eq!(p.to_string(), "linux/arm/v7");
    assert!("linux".parse::<Platform>().is_err());
    assert!("linux//v7".parse::<Platform>().is_err());
}
