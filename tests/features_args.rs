//! ARG scoping on built images: `--build-arg`, global ARGs in FROM and
//! re-declared in stages, predefined platform args, `--platform`, and ENV
//! taking precedence over ARG.

mod common;

use common::image::Fixture;

#[test]
fn build_arg_overrides_the_default() {
    let fx = Fixture::new();
    let dockerfile =
        "FROM scratch\nARG NAME=default\nARG UNSET\nENV GOT=${NAME} EMPTY=x${UNSET}x\n";
    let img = fx.build(dockerfile, &[]);
    assert_eq!(img.env("GOT").as_deref(), Some("default"));
    assert_eq!(img.env("EMPTY").as_deref(), Some("xx"));
    let img = fx.build(
        dockerfile,
        &["--build-arg", "NAME=override", "--build-arg", "UNSET=set"],
    );
    assert_eq!(img.env("GOT").as_deref(), Some("override"));
    assert_eq!(img.env("EMPTY").as_deref(), Some("xsetx"));
    // ARG values never leak into the config's Env by themselves.
    assert_eq!(img.env("NAME"), None);
}

#[test]
fn global_arg_selects_the_base_stage() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "assets\n"), ("b.txt", "other\n")]);
    let dockerfile = "ARG BASE=assets\n\
         FROM scratch AS assets\nCOPY a.txt /which.txt\n\
         FROM scratch AS other\nCOPY b.txt /which.txt\n\
         FROM ${BASE}\nLABEL final=1\n";
    let img = fx.build(dockerfile, &[]);
    assert_eq!(img.file("which.txt").text(), "assets\n");
    let img = fx.build(dockerfile, &["--build-arg", "BASE=other"]);
    assert_eq!(img.file("which.txt").text(), "other\n");
}

#[test]
fn global_arg_is_visible_in_a_stage_only_when_redeclared() {
    let fx = Fixture::new();
    let dockerfile = "ARG VERSION=1.2\nFROM scratch\nENV BEFORE=[${VERSION}]\nARG VERSION\nENV AFTER=[${VERSION}]\n";
    let img = fx.build(dockerfile, &[]);
    assert_eq!(img.env("BEFORE").as_deref(), Some("[]"));
    assert_eq!(img.env("AFTER").as_deref(), Some("[1.2]"));
    let img = fx.build(dockerfile, &["--build-arg", "VERSION=9"]);
    assert_eq!(img.env("AFTER").as_deref(), Some("[9]"));
}

#[test]
fn predefined_platform_args_and_platform_flag() {
    let fx = Fixture::new();
    let dockerfile = "FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nARG TARGETOS\n\
         ENV ARCH=${TARGETARCH} PLAT=${TARGETPLATFORM} OS=${TARGETOS}\n";
    let img = fx.build(dockerfile, &[]);
    assert_eq!(img.env("ARCH").as_deref(), Some("amd64"));
    assert_eq!(img.env("PLAT").as_deref(), Some("linux/amd64"));
    assert_eq!(img.env("OS").as_deref(), Some("linux"));
    assert_eq!(img.config["architecture"], "amd64");

    let img = fx.build(dockerfile, &["--platform", "linux/arm64"]);
    assert_eq!(img.env("ARCH").as_deref(), Some("arm64"));
    assert_eq!(img.env("PLAT").as_deref(), Some("linux/arm64"));
    assert_eq!(img.config["architecture"], "arm64");
    assert_eq!(img.config["os"], "linux");
}

#[test]
fn predefined_args_are_not_visible_without_declaration() {
    let fx = Fixture::new();
    let img = fx.build("FROM scratch\nENV ARCH=[${TARGETARCH}]\n", &[]);
    assert_eq!(img.env("ARCH").as_deref(), Some("[]"));
}

#[test]
fn env_overrides_arg_of_the_same_name() {
    let fx = Fixture::new();
    let dockerfile =
        "FROM scratch\nARG MODE=arg\nENV MODE=env\nARG MODE=arg2\nLABEL mode=${MODE}\n";
    let img = fx.build(dockerfile, &["--build-arg", "MODE=cli"]);
    assert_eq!(img.cfg()["Labels"]["mode"], "env");
    assert_eq!(img.env("MODE").as_deref(), Some("env"));
}

#[test]
fn arg_scope_ends_at_the_stage() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch AS a\nARG LOCAL=x\nFROM a\nLABEL local=[${LOCAL}]\n",
        &[],
    );
    assert_eq!(img.cfg()["Labels"]["local"], "[]");
}

/// BuildKit makes the platform args available in FROM lines without a
/// global ARG (the `FROM build-${TARGETARCH}` pattern).
#[test]
fn platform_args_select_a_stage_in_from() {
    let fx = Fixture::new();
    let dockerfile = "FROM scratch AS build-amd64\nLABEL arch=amd64\n\
         FROM scratch AS build-arm64\nLABEL arch=arm64\n\
         FROM build-${TARGETARCH}\nLABEL final=1\n";
    let img = fx.build(dockerfile, &[]);
    assert_eq!(img.cfg()["Labels"]["arch"], "amd64");
    let img = fx.build(dockerfile, &["--platform", "linux/arm64"]);
    assert_eq!(img.cfg()["Labels"]["arch"], "arm64");
}

/// `FROM --platform=$BUILDPLATFORM` selects that stage's platform; no
/// emulation is involved, so any combination builds.
#[test]
fn from_platform_sets_the_stage_platform() {
    let fx = Fixture::new();
    fx.write(&[("a.txt", "a\n")]);
    let dockerfile = "FROM --platform=$BUILDPLATFORM scratch AS build\n\
         ARG TARGETARCH\nCOPY a.txt /a-for-${TARGETARCH}\n\
         FROM scratch\nCOPY --from=build /a-for-arm64 /a\n";
    let img = fx.build(dockerfile, &["--platform", "linux/arm64"]);
    assert_eq!(img.config["architecture"], "arm64");
    assert_eq!(img.file("a").text(), "a\n");

    let img = fx.build("FROM --platform=linux/arm/v7 scratch\nLABEL x=1\n", &[]);
    assert_eq!(img.config["architecture"], "arm");
    assert_eq!(img.config["variant"], "v7");
    let err = fx.build_err("FROM --platform=nonsense scratch\n", &[]);
    assert!(
        err.contains("nonsense") && err.contains("Dockerfile:1"),
        "{err}"
    );
}
