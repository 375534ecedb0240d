//! End-to-end: `kiln cache du` and `kiln cache prune` on a cache dir made
//! by real builds (FROM scratch + COPY: no WebAssembly needed).

mod common;

use common::*;
use kiln::digest::Digest;
use kiln::oci::export::{export, OutputKind, OutputSpec};
use kiln::oci::image::ImageRecord;
use kiln::store::BlobStore;
use std::path::Path;

/// Builds `FROM scratch; COPY FILE /` with `file` holding `body`; returns
/// the manifest digest.
fn build(cache: &Path, ctx: &Path, file: &str, body: &str, tag: Option<&str>) -> Digest {
    write_tree(
        ctx,
        &[
            (file, body),
            ("Dockerfile", &format!("FROM scratch\nCOPY {file} /\n")),
        ],
    );
    let mut args = vec!["build", "--progress=quiet"];
    if let Some(t) = tag {
        args.extend(["-t", t]);
    }
    args.push(ctx.to_str().unwrap());
    kiln_ok(cache, &args)
        .trim()
        .parse()
        .expect("a manifest digest")
}

/// Manifest, config and layer digests of an image, via `kiln inspect`.
fn image_blobs(cache: &Path, name: &str) -> Vec<Digest> {
    let v: serde_json::Value = serde_json::from_str(&kiln_ok(cache, &["inspect", name])).unwrap();
    let mut out = vec![v["digest"].as_str().unwrap().parse().unwrap()];
    out.push(
        v["manifest"]["config"]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    for l in v["manifest"]["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().parse().unwrap());
    }
    out
}

fn blob_file(cache: &Path, d: &Digest) -> std::path::PathBuf {
    cache.join("blobs/sha256").join(d.hex())
}

#[test]
fn du_and_prune_all_keep_named_images_and_collect_unnamed_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // Left by a build killed with kill -9 (no lock file): the next build sweeps it.
    let dead = cache.join("tmp/build-killed");
    std::fs::create_dir_all(dead.join("rootfs")).unwrap();

    let named = build(
        &cache,
        &tmp.path().join("a"),
        "a.txt",
        "named\n",
        Some("app:v1"),
    );
    assert!(
        !dead.exists(),
        "the build swept the killed build's scratch dir"
    );
    let unnamed = build(&cache, &tmp.path().join("b"), "b.txt", "unnamed!\n", None);
    let named_blobs = image_blobs(&cache, "app:v1");
    let unnamed_blobs = image_blobs(&cache, &unnamed.to_string());
    assert_eq!(named_blobs[0], named);
    assert!(unnamed_blobs.iter().all(|d| blob_file(&cache, d).is_file()));

    let table = kiln_ok(&cache, &["cache", "du"]);
    assert!(
        table.contains("blobs of named images") && table.contains("total"),
        "{table}"
    );
    let du: serde_json::Value =
        serde_json::from_str(&kiln_ok(&cache, &["cache", "du", "--json"])).unwrap();
    let cat = |name: &str| {
        du["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no category {name} in {du}"))
            .clone()
    };
    assert_eq!(cat("images")["count"], named_blobs.len() as u64);
    let on_disk: u64 = named_blobs
        .iter()
        .map(|d| std::fs::metadata(blob_file(&cache, d)).unwrap().len())
        .sum();
    assert_eq!(cat("images")["bytes"], on_disk);
    assert_eq!(
        cat("temporary")["count"],
        0,
        "builds leave no scratch: {du}"
    );

    let err = kiln_err(
        &cache,
        &["cache", "prune", "--all", "--keep-duration", "1h"],
    );
    assert!(err.contains("cannot be used with"), "{err}");
    let err = kiln_err(&cache, &["cache", "prune", "--keep-duration", "3 weeks"]);
    assert!(err.contains("invalid --keep-duration"), "{err}");
    let err = kiln_err(&cache, &["cache", "prune", "--keep", "nosuch"]);
    assert!(err.contains("no image has that name"), "{err}");

    let report = kiln_ok(&cache, &["cache", "prune", "--all"]);
    assert!(report.contains("total freed"), "{report}");
    for d in &unnamed_blobs {
        assert!(
            !blob_file(&cache, d).exists(),
            "blob {d} of the unnamed build is gone"
        );
    }
    for d in &named_blobs {
        assert!(blob_file(&cache, d).is_file(), "blob {d} of app:v1 kept");
    }
    let du: serde_json::Value =
        serde_json::from_str(&kiln_ok(&cache, &["cache", "du", "--json"])).unwrap();
    let unreferenced = du["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unreferenced_blobs")
        .unwrap()
        .clone();
    assert_eq!(unreferenced["count"], 0, "{du}");

    // The named image still inspects and exports whole.
    kiln_ok(&cache, &["inspect", "app:v1"]);
    let store = BlobStore::open(&cache).unwrap();
    let record = ImageRecord {
        manifest_size: store.size(&named).unwrap(),
        manifest_digest: named,
        config_digest: named_blobs[1].clone(),
    };
    let out = tmp.path().join("layout");
    let spec = OutputSpec {
        kind: OutputKind::Oci,
        dest: out.clone(),
        tar: false,
    };
    export(&store, &record.descriptor(), Some("app:v1"), &spec, 0).unwrap();
    let image = image::Image::open(&out);
    assert_eq!(image.file("a.txt").text(), "named\n");
}

#[test]
fn a_cache_mount_left_in_a_killed_builds_scratch_dir_reaches_the_next_build() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // What a build killed with kill -9 during `RUN --mount=type=cache,id=c1`
    // leaves: the cache dir inside its scratch dir, a marker naming it, no
    // lock held (the OS released it), no lock file for the scratch dir.
    let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"c1"));
    let left = cache.join("tmp/build-killed/rootfs/cache");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("count"), "run\n").unwrap();
    std::fs::create_dir_all(cache.join("run-cache")).unwrap();
    std::fs::write(
        cache.join(format!("run-cache/{key}.mounted")),
        "tmp/build-killed/rootfs/cache",
    )
    .unwrap();

    let ctx = tmp.path().join("ctx");
    write_tree(
        &ctx,
        &[(
            "Dockerfile",
            "FROM scratch\nRUN --mount=type=cache,target=/cache,id=c1 \
             echo run >> /cache/count && wc -l < /cache/count > /count.txt\n",
        )],
    );
    let out = tmp.path().join("layout");
    let run = kiln(
        &cache,
        &[
            "build",
            "--progress=plain",
            "--output",
            &format!("type=oci,tar=false,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("recovered from an interrupted build"),
        "{stderr}"
    );
    let image = image::Image::open(&out);
    assert_eq!(
        image.file("count.txt").text().trim(),
        "2",
        "the earlier run was kept"
    );
    assert!(!cache.join("tmp/build-killed").exists());
    assert!(!cache.join(format!("run-cache/{key}.mounted")).exists());
    assert_eq!(
        std::fs::read_to_string(cache.join(format!("run-cache/{key}/count"))).unwrap(),
        "run\nrun\n"
    );
}

#[test]
fn a_held_cache_id_makes_locked_mounts_wait_and_private_mounts_start_empty() {
    use kiln::store::run_cache::RunCacheLock;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (held, _) = RunCacheLock::acquire(&cache, "c1", || {}).unwrap();
    std::fs::create_dir_all(held.home()).unwrap();
    std::fs::write(held.home().join("count"), "run\n").unwrap();
    let dockerfile = |sharing: &str| {
        format!(
            "FROM scratch\nRUN --mount=type=cache,target=/cache,id=c1,sharing={sharing} \
             echo run >> /cache/count && wc -l < /cache/count > /count.txt\n"
        )
    };
    let build = |name: &str, sharing: &str| {
        let ctx = tmp.path().join(name);
        write_tree(&ctx, &[("Dockerfile", &dockerfile(sharing))]);
        let out = tmp.path().join(format!("{name}-out"));
        let mut cmd = kiln_cmd(
            &cache,
            &[
                "build",
                "--progress=quiet",
                "--output",
                &format!("type=oci,tar=false,dest={}", out.display()),
                ctx.to_str().unwrap(),
            ],
        );
        cmd.stderr(std::process::Stdio::piped());
        (cmd.spawn().unwrap(), out)
    };

    let (private, private_out) = build("private", "private");
    let private = private.wait_with_output().unwrap();
    assert!(
        private.status.success(),
        "{}",
        String::from_utf8_lossy(&private.stderr)
    );
    let count = image::Image::open(&private_out).file("count.txt").text();
    assert_eq!(count.trim(), "1", "a busy private cache starts empty");

    let (mut locked, locked_out) = build("locked", "locked");
    let stderr = locked.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line.clone());
            all += &line;
            all += "\n";
        }
        all
    });
    let waiting = rx
        .iter()
        .any(|l| l.contains("waiting for cache mount \"c1\""));
    assert!(
        waiting,
        "the build says it waits: {}",
        reader.join().unwrap()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        locked.try_wait().unwrap().is_none(),
        "the build waits for the cache id"
    );
    drop(held);
    let status = locked.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{stderr}");
    let count = image::Image::open(&locked_out).file("count.txt").text();
    assert_eq!(
        count.trim(),
        "2",
        "the locked build used the cache once free"
    );
}

#[test]
fn one_cache_id_twice_in_a_step_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    write_tree(
        &ctx,
        &[(
            "Dockerfile",
            "FROM scratch\nRUN --mount=type=cache,target=/a,id=x \
             --mount=type=cache,target=/b,id=x true\n",
        )],
    );
    let err = kiln_err(&tmp.path().join("cache"), &["build", ctx.to_str().unwrap()]);
    assert!(err.contains("cache id \"x\" is mounted twice"), "{err}");
}
