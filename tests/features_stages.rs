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
