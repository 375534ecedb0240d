//! Stages and named contexts on built images: ONBUILD triggers through a
//! local OCI layout, `--build-context NAME=DIR`, `COPY --from=INDEX`, and
//! `--target`.

mod common;

use common::image::{build_layout, Fixture};
use common::*;

#[test]
fn onbuild_triggers_run_when_the_image_is_a_base() {
    let fx = Fixture::new();
    // Base image: records the trigger (and has a file of its own).
    let base_ctx = fx.fresh("base-ctx");
    write_tree(
        &base_ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY own.txt /own.txt\nONBUILD COPY trigger.txt /t.txt\n",
            ),
            ("own.txt", "base\n"),
        ],
    );
    let layout = fx.fresh("base-layout");
    let base = build_layout(&fx.cache(), &base_ctx, &layout, "base:1", &[]);
    assert_eq!(
        base.cfg()["OnBuild"],
        serde_json::json!(["COPY trigger.txt /t.txt"]),
        "the base records the trigger"
    );
    assert!(
        !base.files().contains_key("t.txt"),
        "the trigger does not run in the image that declares it"
    );

    // Child: FROM the layout; its context has trigger.txt.
    fx.write(&[("trigger.txt", "fired\n")]);
    let ctx_arg = format!("base=oci-layout://{}:1", layout.display());
    let child = fx.build(
        "FROM base\nLABEL child=yes\n",
        &["--build-context", &ctx_arg],
    );
    assert_eq!(child.file("t.txt").text(), "fired\n", "trigger ran");
    assert_eq!(child.file("own.txt").text(), "base\n", "base layer kept");
    let onbuild = &child.cfg()["OnBuild"];
    assert!(
        onbuild.is_null() || onbuild == &serde_json::json!([]),
        "triggers are consumed, not inherited: {onbuild}"
    );
    assert_eq!(child.cfg()["Labels"]["child"], "yes");
    // Base layers are kept byte for byte.
    assert_eq!(child.layer_blobs[0], base.layer_blobs[0]);
}

#[test]
fn build_context_dir_is_usable_with_copy_from() {
    let fx = Fixture::new();
    let extra = fx.fresh("extra");
    write_tree(&extra, &[("lib/one.txt", "one\n"), ("two.txt", "two\n")]);
    fx.write(&[("main.txt", "main\n")]);
    let arg = format!("assets={}", extra.display());
    let img = fx.build(
        "FROM scratch\nCOPY main.txt /\nCOPY --from=assets lib /lib/\nCOPY --from=assets two.txt /x/\n",
        &["--build-context", &arg],
    );
    assert_eq!(img.file("main.txt").text(), "main\n");
    assert_eq!(img.file("lib/one.txt").text(), "one\n");
    assert_eq!(img.file("x/two.txt").text(), "two\n");
}

/// A named directory context is filtered by its own `.dockerignore`, as
/// BuildKit reads one for every local named context (COPY --from and FROM
/// alike); the main context's file does not apply to it.
#[test]
fn a_named_context_dir_honours_its_own_dockerignore() {
    let fx = Fixture::new();
    let extra = fx.fresh("extra");
    write_tree(
        &extra,
        &[
            (".dockerignore", "*.log\nsecret/\n"),
            ("keep.txt", "keep\n"),
            ("debug.log", "noise\n"),
            ("secret/key", "k\n"),
        ],
    );
    fx.write(&[(".dockerignore", "keep.txt\n"), ("main.txt", "main\n")]);
    let arg = format!("assets={}", extra.display());
    let img = fx.build(
        "FROM scratch\nCOPY --from=assets / /a/\nFROM assets\nCOPY --from=0 /a /a\n",
        &["--build-context", &arg],
    );
    let files = img.files();
    for base in ["", "a/"] {
        assert_eq!(img.file(&format!("{base}keep.txt")).text(), "keep\n");
        assert!(
            !files.contains_key(&format!("{base}debug.log")),
            "{:?}",
            files.keys()
        );
        assert!(
            !files.contains_key(&format!("{base}secret/key")),
            "{:?}",
            files.keys()
        );
    }
}

#[test]
fn build_context_dir_replaces_a_from_image_name() {
    let fx = Fixture::new();
    let extra = fx.fresh("extra");
    write_tree(&extra, &[("f.txt", "from-named\n")]);
    let arg = format!("tools={}", extra.display());
    // A named context also shadows a stage-less name used with COPY --from.
    let img = fx.build(
        "FROM scratch AS a\nCOPY --from=tools f.txt /a.txt\nFROM a\nCOPY --from=tools f.txt /b.txt\n",
        &["--build-context", &arg],
    );
    assert_eq!(img.file("a.txt").text(), "from-named\n");
    assert_eq!(img.file("b.txt").text(), "from-named\n");
}

#[test]
fn copy_from_a_stage_index() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "stage zero\n"), ("b.txt", "stage one\n")]);
    let img = fx.build(
        "FROM scratch\nCOPY a.txt /built/a.txt\n\
         FROM scratch AS named\nCOPY b.txt /built/b.txt\n\
         FROM scratch\nCOPY --from=0 /built/a.txt /from0.txt\nCOPY --from=1 /built/b.txt /from1.txt\n",
        &[],
    );
    assert_eq!(img.file("from0.txt").text(), "stage zero\n");
    assert_eq!(img.file("from1.txt").text(), "stage one\n");
    assert!(!img.files().contains_key("built"), "final stage only");
}

#[test]
fn target_builds_only_what_it_needs() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let dockerfile = "FROM scratch AS dep\nCOPY a.txt /a.txt\n\
         FROM scratch AS broken_unrelated\nCOPY does-not-exist /\n\
         FROM dep AS want\nCOPY b.txt /b.txt\nLABEL stage=want\n\
         FROM want AS broken_later\nCOPY also-missing /\nLABEL stage=later\n";
    let img = fx.build(dockerfile, &["--target", "want"]);
    assert_eq!(img.cfg()["Labels"]["stage"], "want");
    assert_eq!(img.file("a.txt").text(), "a\n");
    assert_eq!(img.file("b.txt").text(), "b\n");
    // Without --target the last (broken) stage is built and fails.
    let err = fx.build_err(dockerfile, &[]);
    assert!(err.contains("also-missing"), "{err}");
}

#[test]
fn target_unknown_stage_is_an_error() {
    let fx = Fixture::new();
    let err = fx.build_err("FROM scratch AS a\nLABEL a=1\n", &["--target", "nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn onbuild_of_an_earlier_stage_runs_in_the_stage_built_from_it() {
    let fx = Fixture::new();
    fx.write(&[("trigger.txt", "fired\n")]);
    let img = fx.build(
        "FROM scratch AS base\nONBUILD COPY trigger.txt /t.txt\nFROM base\nLABEL x=1\n",
        &[],
    );
    assert_eq!(img.file("t.txt").text(), "fired\n");
    let onbuild = &img.cfg()["OnBuild"];
    assert!(
        onbuild.is_null() || onbuild == &serde_json::json!([]),
        "{onbuild}"
    );
}

/// The Dockerfile of a CI that compiles natively: its `builder` stage is
/// replaced by `--build-context builder=...`, so golang:1.22 is never
/// pulled (no registry is reachable from the tests: a pull would fail).
const GO_BUILDER: &str = "FROM golang:1.22 AS builder\nWORKDIR /src\nCOPY . .\n\
     RUN go build -o /out/app ./cmd/app\n";

/// Bytes no text tool would make: what CI compiled.
const APP: &[u8] = b"\x7fELF\x02\x01\x01\x00compiled natively\x00\xff\xfe\n";

/// A directory holding `out/app`, as CI leaves it.
fn native_artifacts(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.fresh("artifacts");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(dir.join("out/app"), APP).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("out/app"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    dir
}

/// Builds `dockerfile` with plain progress; returns the image and stderr.
fn build_showing_progress(
    fx: &Fixture,
    dockerfile: &str,
    extra: &[&str],
) -> (common::image::Image, String) {
    std::fs::write(fx.ctx().join("Dockerfile"), dockerfile).unwrap();
    let out = fx.fresh("out");
    let output = format!("type=oci,dest={},tar=false", out.display());
    let mut args = vec!["build", "--progress=plain", "--output", &output];
    args.extend_from_slice(extra);
    let ctx = fx.ctx();
    args.push(ctx.to_str().unwrap());
    let o = kiln(&fx.cache(), &args);
    assert_ok(&o, "kiln build");
    (common::image::Image::open(&out), stderr(&o))
}

fn go_sources(fx: &Fixture) {
    fx.write(&[
        ("cmd/app/main.go", "package main\nfunc main() {}\n"),
        ("go.mod", "module example.com/app\n"),
    ]);
}

#[test]
fn a_named_context_replaces_the_stage_of_that_name_in_copy_from() {
    let fx = Fixture::new();
    go_sources(&fx);
    let dir = native_artifacts(&fx);
    let arg = format!("builder={}", dir.display());
    let dockerfile =
        format!("{GO_BUILDER}FROM scratch\nCOPY --from=builder /out/app /usr/local/bin/app\n");
    let (img, progress) = build_showing_progress(&fx, &dockerfile, &["--build-context", &arg]);
    let app = img.file("usr/local/bin/app");
    assert_eq!(app.data, APP, "the natively compiled bytes");
    #[cfg(unix)]
    assert_eq!(app.mode, 0o755);
    let paths: Vec<String> = img.files().into_keys().collect();
    assert_eq!(
        paths,
        ["usr", "usr/local", "usr/local/bin", "usr/local/bin/app"],
        "nothing of the builder stage (no /src, no go sources)"
    );
    assert_eq!(img.layer_blobs.len(), 1);
    // One line says where the stage came from, and nothing was pulled.
    let line = format!(
        "stage \"builder\" is not built: --build-context builder={} provides it",
        dir.display()
    );
    assert_eq!(progress.matches(&line).count(), 1, "{progress}");
    assert!(!progress.contains("pulling"), "{progress}");
    assert!(!progress.contains("go build"), "{progress}");
}

#[test]
fn a_named_context_replaces_a_stage_used_as_a_base() {
    let fx = Fixture::new();
    go_sources(&fx);
    fx.write(&[("extra.txt", "extra\n")]);
    let dir = native_artifacts(&fx);
    let arg = format!("builder={}", dir.display());
    // BuildKit: a local context used as a base is an image with an empty
    // config whose root filesystem is the directory.
    let dockerfile =
        format!("{GO_BUILDER}FROM builder\nCOPY extra.txt /extra.txt\nRUN cp /out/app /copied\n");
    let (img, progress) = build_showing_progress(&fx, &dockerfile, &["--build-context", &arg]);
    assert_eq!(img.file("out/app").data, APP);
    assert_eq!(img.file("copied").data, APP, "RUN sees the directory as /");
    assert_eq!(img.file("extra.txt").text(), "extra\n");
    assert!(!img.files().contains_key("src"), "WORKDIR /src never ran");
    let base: Vec<String> = img.layers()[0].iter().map(|e| e.path.clone()).collect();
    assert_eq!(base, ["out", "out/app"], "the directory is the first layer");
    let cfg = img.cfg();
    assert!(cfg["WorkingDir"].is_null(), "{cfg}");
    assert_eq!(img.env("PATH").as_deref(), Some(kiln::exec::DEFAULT_PATH));
    let history = img.history();
    assert_eq!(history.len(), 3);
    assert_eq!(
        history[0]["created_by"],
        "[context builder] load from client"
    );
    assert!(
        progress.contains("stage \"builder\" is not built"),
        "{progress}"
    );
    assert!(!progress.contains("pulling"), "{progress}");
}

#[test]
fn a_named_context_replaces_the_stage_a_run_mount_reads() {
    let fx = Fixture::new();
    go_sources(&fx);
    let dir = native_artifacts(&fx);
    let arg = format!("builder={}", dir.display());
    let dockerfile = format!(
        "{GO_BUILDER}FROM scratch\n\
         RUN --mount=type=bind,from=builder,source=/out,target=/in cp /in/app /app\n"
    );
    let (img, progress) = build_showing_progress(&fx, &dockerfile, &["--build-context", &arg]);
    assert_eq!(img.file("app").data, APP);
    let files = img.files();
    assert!(
        !files.contains_key("in") && !files.contains_key("out"),
        "{:?}",
        files.keys()
    );
    assert!(
        progress.contains("stage \"builder\" is not built"),
        "{progress}"
    );
    assert!(!progress.contains("pulling"), "{progress}");
}

#[test]
fn target_of_a_replaced_stage_is_the_named_context() {
    let fx = Fixture::new();
    go_sources(&fx);
    let dir = native_artifacts(&fx);
    let arg = format!("builder={}", dir.display());
    let dockerfile = format!("{GO_BUILDER}FROM scratch\nCOPY --from=builder /out/app /app\n");
    // BuildKit exports the named context itself.
    let (img, progress) = build_showing_progress(
        &fx,
        &dockerfile,
        &["--build-context", &arg, "--target", "builder"],
    );
    let paths: Vec<String> = img.files().into_keys().collect();
    assert_eq!(paths, ["out", "out/app"]);
    assert_eq!(img.file("out/app").data, APP);
    assert!(
        progress.contains("stage \"builder\" is not built"),
        "{progress}"
    );
}

#[test]
fn an_image_context_replaces_a_stage_as_that_image() {
    let fx = Fixture::new();
    // The "builder" image CI made, as an OCI layout.
    let prebuilt = fx.fresh("prebuilt");
    write_tree(
        &prebuilt,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY app /out/app\nLABEL made=ci\nWORKDIR /out\n",
            ),
            ("app", "from the image\n"),
        ],
    );
    let layout = fx.fresh("layout");
    let base = build_layout(&fx.cache(), &prebuilt, &layout, "builder:ci", &[]);
    go_sources(&fx);
    fx.write(&[("extra.txt", "extra\n")]);
    let arg = format!("builder=oci-layout://{}:ci", layout.display());
    // Stage names are case-insensitive: `AS Builder` is the stage `builder`.
    let dockerfile = "FROM golang:1.22 AS Builder\nRUN go build -o /out/app ./cmd/app\n\
         FROM BUILDER\nCOPY --from=builder /out/app /again\nCOPY extra.txt .\n";
    let (img, progress) = build_showing_progress(&fx, dockerfile, &["--build-context", &arg]);
    assert_eq!(img.file("out/app").text(), "from the image\n");
    assert_eq!(img.file("again").text(), "from the image\n");
    assert_eq!(
        img.file("out/extra.txt").text(),
        "extra\n",
        "WORKDIR of the image"
    );
    assert_eq!(img.cfg()["Labels"]["made"], "ci");
    assert_eq!(
        img.layer_blobs[0], base.layer_blobs[0],
        "the image's layers, byte for byte"
    );
    assert!(
        progress.contains("stage \"builder\" is not built: --build-context builder=oci-layout://"),
        "{progress}"
    );
    assert!(!progress.contains("pulling"), "{progress}");
}

#[test]
fn a_context_name_must_be_lower_case_as_in_buildx() {
    let fx = Fixture::new();
    let dir = native_artifacts(&fx);
    let arg = format!("Builder={}", dir.display());
    let err = fx.build_err(
        &format!("{GO_BUILDER}FROM scratch\nCOPY --from=builder /out/app /app\n"),
        &["--build-context", &arg],
    );
    assert!(
        err.contains("lower-case") && err.contains("builder=..."),
        "{err}"
    );
    assert!(!err.contains("pulling"), "{err}");
}

#[test]
fn a_replaced_stage_is_reported_once_for_several_platforms() {
    let fx = Fixture::new();
    go_sources(&fx);
    let dir = native_artifacts(&fx);
    let arg = format!("builder={}", dir.display());
    let dockerfile = format!("{GO_BUILDER}FROM scratch\nCOPY --from=builder /out/app /app\n");
    let (img, progress) = build_showing_progress(
        &fx,
        &dockerfile,
        &[
            "--build-context",
            &arg,
            "--platform",
            "linux/amd64,linux/arm64",
        ],
    );
    assert_eq!(img.file("app").data, APP);
    assert_eq!(
        progress.matches("stage \"builder\" is not built").count(),
        1,
        "{progress}"
    );
}
