use super::*;
use crate::oci::config::ImageConfig;
use crate::oci::image::{write_image, Descriptor, ImageRecord};
use crate::oci::layer::{write_layer, LayerOptions};
use crate::snapshot::{Content, Entry, EntryKind, Meta};
use std::process::Command;
use std::sync::Arc;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: BlobStore,
    image: ImageRecord,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let store = BlobStore::open(&dir.join("store")).unwrap();
    let p = |s: &str| ImagePath::parse(s).unwrap();
    let entries = vec![
        Entry {
            path: p("app"),
            kind: EntryKind::Dir,
            meta: Meta::new(0o755),
        },
        Entry {
            path: p("app/hello.txt"),
            kind: EntryKind::File {
                size: 6,
                content: Content::Inline(Arc::from(&b"hello\n"[..])),
            },
            meta: Meta::new(0o644),
        },
    ];
    let layer = write_layer(
        &store,
        entries,
        &LayerOptions {
            source_date_epoch: 0,
        },
    )
    .unwrap();
    let mut cfg = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        created: Some("1970-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    cfg.rootfs.diff_ids = vec![layer.diff_id.clone()];
    cfg.config.cmd = Some(vec!["/bin/sh".into()]);
    let image = write_image(&store, &cfg, &[Descriptor::for_layer(&layer)]).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        store,
        image,
    }
}

/// Parses `--output` the way the CLI does, into the exporter's spec.
fn spec(s: &str) -> OutputSpec {
    use crate::exec::options::OutputSpec as Cli;
    match Cli::parse(s).unwrap() {
        Cli::Oci { dest, tar, .. } => OutputSpec {
            kind: OutputKind::Oci,
            dest,
            tar,
        },
        Cli::Docker { dest, tar, .. } => OutputSpec {
            kind: OutputKind::Docker,
            dest,
            tar,
        },
        Cli::Local { .. } | Cli::Image { .. } => panic!("not an archive output: {s}"),
    }
}

/// Whether `tool` runs; in CI a missing tool fails the test instead.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{tool} is required in CI");
        eprintln!("skipping: {tool} not installed");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn oci_archive_is_deterministic_and_ordered() {
    let f = fixture();
    let a = f.dir.join("a.tar");
    let b = f.dir.join("b.tar");
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app"),
        &spec(&format!("type=oci,dest={}", a.display())),
        7,
    )
    .unwrap();
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app"),
        &spec(&format!("type=oci,dest={}", b.display())),
        7,
    )
    .unwrap();
    let bytes = fs::read(&a).unwrap();
    assert_eq!(bytes, fs::read(&b).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "not the temp file's 0600");
    }
    let mut ar = ::tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(
            (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (7, 0, 0)
        );
        let want = if h.entry_type().is_dir() {
            0o755
        } else {
            0o644
        };
        assert_eq!(h.mode().unwrap(), want);
        names.push(e.path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(&names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(&names[names.len() - 2..], ["index.json", "oci-layout"]);
    assert_eq!(names.len(), 2 + 3 + 2, "manifest, config, one layer");
    let index = f.dir.join("idx");
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app:v1"),
        &spec(&format!("type=oci,dest={},tar=false", index.display())),
        0,
    )
    .unwrap();
    let idx: Index = serde_json::from_slice(&fs::read(index.join("index.json")).unwrap()).unwrap();
    assert_eq!(idx.manifests[0].digest, f.image.manifest_digest);
    assert_eq!(idx.manifests[0].annotations[REF_NAME], "v1");
    assert_eq!(idx.manifests[0].annotations[CONTAINERD_NAME], "app:v1");
}

#[test]
fn skopeo_reads_oci_dir_oci_archive_and_docker_archive() {
    if !have("skopeo") {
        return;
    }
    let f = fixture();
    let dir = f.dir.join("layout");
    let archive = f.dir.join("image.tar");
    let docker = f.dir.join("docker.tar");
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app"),
        &spec(&format!("type=oci,dest={},tar=false", dir.display())),
        0,
    )
    .unwrap();
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app"),
        &spec(&format!("type=oci,dest={}", archive.display())),
        0,
    )
    .unwrap();
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app:v2"),
        &spec(&format!("type=docker,dest={}", docker.display())),
        0,
    )
    .unwrap();
    let want = f.image.manifest_digest.to_string();
    for src in [
        format!("oci:{}:latest", dir.display()),
        format!("oci-archive:{}:latest", archive.display()),
    ] {
        let out = run(Command::new("skopeo").args(["inspect", &src]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Digest"], want.as_str(), "{src}");
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    }
    // Selecting the image by its RepoTags entry checks the tag too.
    let by_tag = format!("docker-archive:{}:app:v2", docker.display());
    let out = run(Command::new("skopeo").args(["inspect", &by_tag]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1, "{out}");
    let wrong = format!("docker-archive:{}:app:nope", docker.display());
    let st = Command::new("skopeo")
        .args(["inspect", &wrong])
        .output()
        .unwrap();
    assert!(!st.status.success(), "a tag not in RepoTags must not match");
    // A full copy reads and verifies every layer.
    let copied = f.dir.join("copied");
    run(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", docker.display()),
        &format!("oci:{}:x", copied.display()),
    ]));
}

#[test]
fn umoci_unpacks_the_layout() {
    if !have("umoci") {
        return;
    }
    let f = fixture();
    let dir = f.dir.join("layout");
    export(
        &f.store,
        &f.image.descriptor(),
        Some("app:t"),
        &spec(&format!("type=oci,dest={},tar=false", dir.display())),
        0,
    )
    .unwrap();
    let bundle = f.dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:t", dir.display()))
        .arg(&bundle));
    assert_eq!(
        fs::read(bundle.join("rootfs/app/hello.txt")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn an_archive_to_a_fifo_is_written_through_it_not_renamed_over_it() {
    use std::os::unix::fs::FileTypeExt;
    let f = fixture();
    let regular = f.dir.join("regular.tar");
    export(
        &f.store,
        &f.image.descriptor(),
        None,
        &spec(&format!("type=oci,dest={}", regular.display())),
        0,
    )
    .unwrap();
    let fifo = f.dir.join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    export(
        &f.store,
        &f.image.descriptor(),
        None,
        &spec(&format!("type=oci,dest={}", fifo.display())),
        0,
    )
    .unwrap();
    // Checked first: had the export renamed a file over the fifo, the
    // reader would wait for a writer forever.
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(meta.file_type().is_fifo(), "the fifo was replaced");
    let through_pipe = reader.join().unwrap();
    assert_eq!(through_pipe, std::fs::read(&regular).unwrap());
}
