//! End-to-end: kiln pushes to and pulls from a real registry (Debian's
//! docker-registry) that uses token auth: the registry answers 401 with a
//! `Bearer realm=...,service=...,scope=...` challenge and only accepts JWTs
//! signed by the test token server (tests/common/token_server.rs).

mod common;

use common::image::Image;
use common::registry::{registry_available, TestRegistry};
use common::token_server::{TokenServer, SERVICE};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: &str = "kiln";
const PASS: &str = "t0ken-s3cret";

fn tools() -> bool {
    registry_available(false) && require_tool("openssl") && require_tool("skopeo")
}

/// A token server and a registry that trusts it.
fn start() -> (TokenServer, TestRegistry) {
    let tokens = TokenServer::start(USER, PASS);
    let reg = TestRegistry::start_with_token(&tokens);
    (tokens, reg)
}

/// A Docker config dir holding `creds` for `host` (none: no `auths`).
fn docker_config(dir: &Path, host: &str, creds: Option<(&str, &str)>) -> PathBuf {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    let config = match creds {
        Some((u, p)) => {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            serde_json::json!({ "auths": { host: { "auth": auth } } })
        }
        None => serde_json::json!({}),
    };
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir.to_path_buf()
}

/// `kiln build` of `dockerfile` in a fresh context under `tmp`.
fn build(tmp: &Path, cache: &Path, config: &Path, dockerfile: &str, args: &[&str]) -> Output {
    let ctx = tmp.join(format!(
        "ctx-{}",
        cache.file_name().unwrap().to_string_lossy()
    ));
    write_tree(
        &ctx,
        &[("Dockerfile", dockerfile), ("file", "token auth\n")],
    );
    let mut all = vec!["build", "--progress=plain"];
    all.extend_from_slice(args);
    let ctx_s = ctx.to_str().unwrap().to_string();
    all.push(&ctx_s);
    kiln_cmd(cache, &all)
        .env("DOCKER_CONFIG", config)
        .output()
        .expect("start kiln")
}

/// Asserts `o` failed, without a panic, with an authentication error that
/// names `host`; returns stderr.
fn assert_auth_failure(o: &Output, host: &str, what: &str) -> String {
    let err = assert_failed_cleanly(o, what);
    assert!(
        err.contains(host) && err.contains("authentication failed"),
        "{what}: the error names the registry and says authentication failed:\n{err}"
    );
    err
}

fn has_scope(tokens: &TokenServer, repo: &str, action: &str) -> bool {
    tokens.requests().iter().any(|r| {
        r.status == 200
            && r.user.as_deref() == Some(USER)
            && r.scopes.iter().any(|s| {
                s.kind == "repository" && s.name == repo && s.actions.iter().any(|a| a == action)
            })
    })
}

#[test]
fn push_then_pull_through_the_token_flow() {
    if !tools() {
        return;
    }
    let (tokens, reg) = start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let config = docker_config(&tmp.path().join("docker"), &host, Some((USER, PASS)));

    // (1) build and push with the right credentials.
    let dest = format!("{host}/token/repo:1");
    let pushed = build(
        tmp.path(),
        &tmp.path().join("cache1"),
        &config,
        "FROM scratch\nCOPY file /file\n",
        &["-t", &dest, "--push"],
    );
    let digest = assert_ok(&pushed, "kiln build --push");
    assert!(
        digest.starts_with("sha256:"),
        "kiln prints the digest: {digest}"
    );
    assert!(
        has_scope(&tokens, "token/repo", "push"),
        "kiln asked the token server for a push scope: {:?}\nregistry log:\n{}",
        tokens.requests(),
        reg.log()
    );
    assert!(
        tokens
            .requests()
            .iter()
            .all(|r| r.service.as_deref() == Some(SERVICE)),
        "every token request names the challenge's service: {:?}",
        tokens.requests()
    );
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASS}"),
        &format!("docker://{dest}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], digest.as_str(), "registry digest = kiln's");

    // Without credentials the registry refuses to show it: it really is
    // protected by the tokens.
    let anon = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--no-creds"])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert!(!anon.status.success(), "anonymous skopeo inspect must fail");

    // Another repository: the token covers only the destination, so a
    // cross-repository mount is refused and kiln must upload instead.
    let other = format!("{host}/token/other:2");
    let copied = kiln_cmd(&tmp.path().join("cache1"), &["push", &dest, &other])
        .env("DOCKER_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(assert_ok(&copied, "kiln push to another repo"), digest);
    assert!(has_scope(&tokens, "token/other", "push"));
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASS}"),
        &format!("docker://{other}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], digest.as_str(), "copy in the other repository");

    // (2) a fresh cache pulls it back as a base image.
    let before = tokens.requests().len();
    let layout = tmp.path().join("layout");
    let pulled = build(
        tmp.path(),
        &tmp.path().join("cache2"),
        &config,
        &format!("FROM {dest}\nRUN cat /file > /out\n"),
        &[
            "--output",
            &format!("type=oci,dest={},tar=false", layout.display()),
        ],
    );
    assert_ok(&pulled, "kiln build FROM the token registry");
    assert!(
        tokens.requests().len() > before && has_scope(&tokens, "token/repo", "pull"),
        "the pull went through the token server: {:?}",
        tokens.requests()
    );
    let img = Image::open(&layout);
    assert_eq!(img.file("out").text(), "token auth\n");
    assert_eq!(img.file("file").text(), "token auth\n");
    assert!(
        reg.log().contains("/v2/token/repo/manifests/1"),
        "{}",
        reg.log()
    );
}

#[test]
fn wrong_or_missing_credentials_are_clear_errors() {
    if !tools() {
        return;
    }
    let (tokens, reg) = start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let wrong = docker_config(&tmp.path().join("wrong"), &host, Some((USER, "nope")));
    let none = docker_config(&tmp.path().join("none"), &host, None);
    let right = docker_config(&tmp.path().join("right"), &host, Some((USER, PASS)));
    let dockerfile = "FROM scratch\nCOPY file /file\n";
    let dest = format!("{host}/private/app:1");

    // (3) a wrong password: the token server refuses it.
    let out = build(
        tmp.path(),
        &tmp.path().join("cache-wrong"),
        &wrong,
        dockerfile,
        &["-t", &dest, "--push"],
    );
    assert_auth_failure(&out, &host, "push with a wrong password");
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.status == 401 && r.user.as_deref() == Some(USER)),
        "the token server refused the password: {:?}",
        tokens.requests()
    );

    // (4) anonymous: the token grants nothing, the registry refuses.
    let out = build(
        tmp.path(),
        &tmp.path().join("cache-anon"),
        &none,
        dockerfile,
        &["-t", &dest, "--push"],
    );
    let err = assert_auth_failure(&out, &host, "anonymous push");
    assert!(
        err.contains("login"),
        "anonymous: suggests logging in:\n{err}"
    );

    // Push it for real, then pulling with bad or no credentials fails too.
    let ok = build(
        tmp.path(),
        &tmp.path().join("cache-right"),
        &right,
        dockerfile,
        &["-t", &dest, "--push"],
    );
    assert_ok(&ok, "push with the right password");
    let from = format!("FROM {dest}\nRUN cat /file > /out\n");
    for (name, config) in [("wrong", &wrong), ("none", &none)] {
        let out = build(
            tmp.path(),
            &tmp.path().join(format!("cache-pull-{name}")),
            config,
            &from,
            &[],
        );
        let err = assert_auth_failure(&out, &host, &format!("pull with {name} credentials"));
        assert!(err.contains("private/app"), "names the image:\n{err}");
    }
}

#[test]
fn login_checks_the_password_with_the_token_server() {
    if !tools() {
        return;
    }
    let (tokens, reg) = start();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("docker");
    let login = |pass: &str| {
        output_with_stdin(
            kiln_cmd(
                &tmp.path().join("cache"),
                &["login", &host, "-u", USER, "--password-stdin"],
            )
            .env("DOCKER_CONFIG", &config),
            format!("{pass}\n").as_bytes(),
        )
    };
    let bad = login("nope");
    let err = stderr(&bad);
    assert!(!bad.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains(&host) && err.contains("authentication failed"),
        "{err}"
    );
    let stored = std::fs::read_to_string(config.join("config.json")).unwrap_or_default();
    assert!(
        !stored.contains(&host),
        "a refused login stores nothing: {stored}"
    );
    assert_ok(&login(PASS), "kiln login with the right password");
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.status == 200 && r.user.as_deref() == Some(USER)),
        "{:?}",
        tokens.requests()
    );

    // The stored credentials push through the token flow.
    let out = build(
        tmp.path(),
        &tmp.path().join("cache"),
        &config,
        "FROM scratch\nCOPY file /file\n",
        &["-t", &format!("{host}/after/login:1"), "--push"],
    );
    assert_ok(&out, "push after kiln login");
    assert!(has_scope(&tokens, "after/login", "push"));
}
