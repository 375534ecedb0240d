//! `--cache-to` / `--cache-from type=registry`: a second machine (a fresh
//! cache dir) hits the cache another one pushed to a real registry.

mod common;

use common::image::{Fixture, Image};
use common::registry::{registry_available, TestRegistry};
use common::*;
use std::path::Path;

/// Two stages; the final one copies from the first and runs a step.
const DOCKERFILE: &str = "\
FROM scratch AS build
COPY src.txt /src.txt
RUN wc -l /src.txt > /count && echo build-ran
FROM scratch
COPY --from=build /count /count
RUN cat /count > /final && echo final-ran
";

/// `kiln build` into an OCI layout with `extra` flags; returns (stderr, image).
fn build(fx: &Fixture, cache: &Path, extra: &[&str]) -> (String, Image) {
    let out = fx.fresh("out");
    let output = format!("type=oci,dest={},tar=false", out.display());
    let mut args = vec!["build", "--progress=plain", "--output", &output];
    args.extend_from_slice(extra);
    let ctx = fx.ctx();
    args.push(ctx.to_str().unwrap());
    let o = kiln(cache, &args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "kiln build failed:\n{err}");
    (err, Image::open(&out))
}

/// The plain-progress lines of the step whose text contains `step`:
/// whether it was answered from the cache.
fn cached(log: &str, step: &str) -> bool {
    let id = log
        .lines()
        .find(|l| l.contains(step) && l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step {step:?} in:\n{log}"));
    log.lines().any(|l| l == format!("{id} CACHED"))
}

/// Whether a RUN step printed `word` (its output, not its command line).
fn printed(log: &str, word: &str) -> bool {
    log.lines()
        .any(|l| l.ends_with(&format!(" {word}")) && !l.contains("RUN "))
}

fn setup() -> Option<(TestRegistry, Fixture)> {
    if !registry_available(false) {
        return None;
    }
    let fx = Fixture::new();
    fx.write(&[("src.txt", "one\ntwo\n"), ("Dockerfile", DOCKERFILE)]);
    Some((TestRegistry::start(), fx))
}

#[test]
fn a_fresh_machine_hits_a_mode_max_cache_and_builds_the_same_image() {
    let Some((reg, fx)) = setup() else { return };
    let cache_ref = format!("{}/kiln/cache:max", reg.host());
    let to = format!("type=registry,ref={cache_ref},mode=max");
    let (log, first) = build(&fx, &fx.tmp.path().join("machine-a"), &["--cache-to", &to]);
    assert!(
        printed(&log, "build-ran") && printed(&log, "final-ran"),
        "{log}"
    );
    assert!(log.contains(&format!("cache {cache_ref}")), "{log}");

    // Machine B: empty cache dir, same sources.
    let from = format!("type=registry,ref={cache_ref}");
    let b = fx.tmp.path().join("machine-b");
    let (log, second) = build(&fx, &b, &["--cache-from", &from]);
    for step in [
        "COPY src.txt",
        "RUN wc -l",
        "COPY --from=build",
        "RUN cat /count",
    ] {
        assert!(
            cached(&log, step),
            "{step} should hit the registry cache:\n{log}"
        );
    }
    assert!(
        !printed(&log, "build-ran") && !printed(&log, "final-ran"),
        "{log}"
    );
    assert_eq!(second.top_digest(), first.top_digest());
    assert_eq!(second.layer_blobs, first.layer_blobs);

    // The hits were copied into B's local cache: no registry needed now.
    drop(reg);
    let (log, third) = build(&fx, &b, &[]);
    assert!(cached(&log, "RUN cat /count"), "{log}");
    assert_eq!(third.top_digest(), first.top_digest());

    // A changed input misses from there on, and the image changes.
    fx.write(&[("src.txt", "one\ntwo\nthree\n")]);
    let c = fx.tmp.path().join("machine-c");
    let (log, changed) = build(&fx, &c, &["--cache-from", &from]);
    assert!(!cached(&log, "RUN wc -l"), "{log}");
    assert!(printed(&log, "build-ran"), "{log}");
    assert_ne!(changed.top_digest(), first.top_digest());
}

#[test]
fn mode_min_exports_only_the_image_stages() {
    let Some((reg, fx)) = setup() else { return };
    let cache_ref = format!("{}/kiln/cache:min", reg.host());
    let (_, first) = build(
        &fx,
        &fx.tmp.path().join("a"),
        &["--cache-to", &format!("type=registry,ref={cache_ref}")],
    );
    let (log, second) = build(&fx, &fx.tmp.path().join("b"), &["--cache-from", &cache_ref]);
    // The build stage is not in the image, so it runs again; the final
    // stage's steps hit (COPY --from is keyed by the files it takes).
    assert!(!cached(&log, "RUN wc -l"), "{log}");
    assert!(printed(&log, "build-ran"), "{log}");
    assert!(cached(&log, "COPY --from=build"), "{log}");
    assert!(cached(&log, "RUN cat /count"), "{log}");
    assert_eq!(second.top_digest(), first.top_digest());
}

#[test]
fn cache_mounts_travel_with_mounts_true() {
    let Some((reg, fx)) = setup() else { return };
    let cache_ref = format!("{}/kiln/cache:mounts", reg.host());
    fx.write(&[(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=cache,id=dl,target=/dl echo downloaded > /dl/pkg && echo fetched\n",
    )]);
    build(
        &fx,
        &fx.tmp.path().join("a"),
        &[
            "--cache-to",
            &format!("type=registry,ref={cache_ref},mounts=true"),
        ],
    );
    // Another machine, another step (so no step hit) reads the mount.
    fx.write(&[(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=cache,id=dl,target=/dl cat /dl/pkg > /seen\n",
    )]);
    let (log, img) = build(&fx, &fx.tmp.path().join("b"), &["--cache-from", &cache_ref]);
    assert!(log.contains("filled from the registry cache"), "{log}");
    assert_eq!(img.file("seen").text(), "downloaded\n");
    // Without mounts=true the mount is not carried.
    let bare_ref = format!("{}/kiln/cache:nomounts", reg.host());
    fx.write(&[(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=cache,id=dl2,target=/dl echo x > /dl/pkg\n",
    )]);
    build(
        &fx,
        &fx.tmp.path().join("c"),
        &["--cache-to", &format!("type=registry,ref={bare_ref}")],
    );
    fx.write(&[(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=cache,id=dl2,target=/dl ls /dl > /seen\n",
    )]);
    let (log, img) = build(&fx, &fx.tmp.path().join("d"), &["--cache-from", &bare_ref]);
    assert!(!log.contains("filled from the registry cache"), "{log}");
    assert_eq!(img.file("seen").text(), "");
}

#[test]
fn missing_broken_or_tampered_caches_only_warn() {
    let Some((reg, fx)) = setup() else { return };
    // Not pushed yet: a note, and the build runs.
    let absent = format!("{}/kiln/none:1", reg.host());
    let (log, reference) = build(&fx, &fx.tmp.path().join("a"), &["--cache-from", &absent]);
    assert!(log.contains("does not exist yet"), "{log}");
    // Unreachable registry: a warning naming it, and the build runs.
    let port = common::registry::free_port();
    let down = format!("127.0.0.1:{port}/kiln/c:1");
    let (log, img) = build(&fx, &fx.tmp.path().join("b"), &["--cache-from", &down]);
    assert!(log.contains("WARNING") && log.contains(&down), "{log}");
    assert_eq!(img.top_digest(), reference.top_digest());
    // An image that is not a kiln cache is refused with a warning.
    let not_cache = format!("{}/kiln/image:1", reg.host());
    build(
        &fx,
        &fx.tmp.path().join("c"),
        &["--output", &format!("type=registry,name={not_cache}")],
    );
    let (log, _) = build(&fx, &fx.tmp.path().join("d"), &["--cache-from", &not_cache]);
    assert!(log.contains("not a kiln build cache"), "{log}");

    // A cache whose layer blob was tampered with in the registry: the
    // download is refused, the step runs, and the image is still right.
    let cache_ref = format!("{}/kiln/cache:t", reg.host());
    build(
        &fx,
        &fx.tmp.path().join("e"),
        &[
            "--cache-to",
            &format!("type=registry,ref={cache_ref},mode=max"),
        ],
    );
    let layer = reference.manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = reg.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let (log, img) = build(&fx, &fx.tmp.path().join("f"), &["--cache-from", &cache_ref]);
    assert!(
        log.contains("cannot fetch layer") && log.contains(&layer),
        "{log}"
    );
    assert!(printed(&log, "final-ran"), "{log}");
    assert_eq!(img.top_digest(), reference.top_digest());
}
