//! Bad input gets a clear error naming what and where, a non-zero exit,
//! no panic, and nothing written outside the output and cache dirs.

mod common;

use common::*;
use std::path::Path;

fn ctx_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), files);
    dir
}

fn build_err(ctx: &Path, extra: &[&str]) -> String {
    let cache = tempfile::tempdir().unwrap();
    let mut args = vec!["build", "--progress=quiet"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    kiln_err(cache.path(), &args)
}

#[test]
fn unknown_instruction_names_file_and_line() {
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\n\nFROBNICATE x\n")]);
    let err = build_err(ctx.path(), &[]);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.to_lowercase().contains("frobnicate"), "{err}");
}

#[test]
fn unknown_flag_is_an_error() {
    let ctx = ctx_with(&[
        ("Dockerfile", "FROM scratch\nCOPY --bogus=1 a /a\n"),
        ("a", "x"),
    ]);
    let err = build_err(ctx.path(), &[]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("bogus"),
        "{err}"
    );
}

#[test]
fn missing_copy_source_shows_the_line() {
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\nCOPY nothere.txt /x\n")]);
    let err = build_err(ctx.path(), &[]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("nothere.txt"), "{err}");
    assert!(
        err.contains("COPY nothere.txt /x"),
        "the offending line is shown: {err}"
    );
}

/// A missing source names where it was looked for: the context (and
/// .dockerignore) only when it was the context, else the stage or the
/// named context.
#[test]
fn missing_copy_sources_name_the_tree_they_were_missing_from() {
    let ctx = ctx_with(&[
        (
            "Dockerfile",
            "FROM scratch AS builder\nCOPY a.txt /a.txt\nFROM scratch\nCOPY --from=builder /nope /x\n",
        ),
        ("a.txt", "a\n"),
    ]);
    let err = build_err(ctx.path(), &[]);
    assert!(
        err.contains("\"/nope\": not found in stage \"builder\""),
        "{err}"
    );
    assert!(!err.contains("dockerignore"), "{err}");

    let tools = ctx.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY --from=tools /bin/x /x\n",
    )
    .unwrap();
    let arg = format!("tools={}", tools.display());
    let err = build_err(ctx.path(), &["--build-context", &arg]);
    assert!(err.contains("not found in build context tools="), "{err}");

    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY nope /x\n",
    )
    .unwrap();
    let err = build_err(ctx.path(), &[]);
    assert!(
        err.contains("\"nope\": not found in the build context (or excluded by .dockerignore)"),
        "{err}"
    );
}

#[test]
fn ignored_files_are_not_copyable() {
    let ctx = ctx_with(&[
        ("Dockerfile", "FROM scratch\nCOPY secret.key /\n"),
        ("secret.key", "hunter2"),
        (".dockerignore", "*.key\n"),
    ]);
    let err = build_err(ctx.path(), &[]);
    assert!(err.contains("secret.key"), "{err}");
}

#[test]
fn missing_dockerfile_and_context() {
    let ctx = ctx_with(&[("a", "x")]);
    let err = build_err(ctx.path(), &[]);
    assert!(err.contains("Dockerfile"), "{err}");
    let cache = tempfile::tempdir().unwrap();
    let err = kiln_err(cache.path(), &["build", "/nonexistent/kiln-ctx"]);
    assert!(err.contains("/nonexistent/kiln-ctx"), "{err}");
}

#[test]
fn bad_flags_are_rejected() {
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\n")]);
    for (flags, needle) in [
        (vec!["--output", "type=bogus,dest=x"], "bogus"),
        (vec!["--target", "nope"], "nope"),
        (vec!["--platform", "linux"], "linux"),
        (vec!["--build-context", "=x"], "build-context"),
        (vec!["--source-date-epoch", "yesterday"], "yesterday"),
        (vec!["--push"], "push"),
    ] {
        let err = build_err(ctx.path(), &flags);
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
}

#[test]
fn registry_base_image_explains_the_alternative() {
    let ctx = ctx_with(&[("Dockerfile", "FROM alpine:3.20\n")]);
    let err = build_err(ctx.path(), &[]);
    assert!(
        err.contains("alpine") && err.contains("--build-context"),
        "{err}"
    );
}

/// Each cause of a failed pull is said once (the registry client's request
/// error shows its cause in its own text and as its source).
#[test]
fn an_unreachable_registry_says_each_cause_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx = ctx_with(&[("Dockerfile", &format!("FROM 127.0.0.1:{port}/app:1\n"))]);
    let err = build_err(ctx.path(), &[]);
    let final_line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
    assert_eq!(
        final_line.matches("error sending request").count(),
        1,
        "{err}"
    );
    assert!(final_line.contains("Connection refused"), "{err}");
}

#[test]
fn bad_run_lines_fail_with_their_line_and_reason() {
    // A shell syntax error: nothing runs, the shell says where.
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\nRUN if true; then echo hi\n")]);
    let err = build_err(ctx.path(), &[]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    // An unknown command: 127 and its name.
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\n\nRUN frobnicate --all\n")]);
    let err = build_err(ctx.path(), &[]);
    assert!(
        err.contains("Dockerfile:3") && err.contains("exit code: 127"),
        "{err}"
    );
    assert!(err.contains("frobnicate: not found"), "{err}");
    // Bad flags: a clear message, not a panic.
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\nRUN echo hi\n")]);
    let err = build_err(ctx.path(), &["--step-timeout", "soon"]);
    assert!(err.contains("invalid --step-timeout"), "{err}");
    let err = build_err(ctx.path(), &["--secret", "id=x,src=/nonexistent/file"]);
    assert!(
        err.contains("invalid --secret") && err.contains("/nonexistent/file"),
        "{err}"
    );
}

#[test]
fn unused_broken_stage_does_not_fail_the_build() {
    let ctx = ctx_with(&[
        (
            "Dockerfile",
            "FROM scratch AS broken\nCOPY missing /\n\nFROM scratch\nCOPY a /a\n",
        ),
        ("a", "x"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    kiln_ok(
        cache.path(),
        &["build", "--progress=quiet", ctx.path().to_str().unwrap()],
    );
}

/// Symlinks never reach outside the context: a path through a symlink and
/// a named symlink both resolve inside the context (as in BuildKit), and a
/// symlink inside a copied directory is copied as a symlink, not followed.
#[test]
fn context_symlinks_never_reach_outside() {
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\nCOPY etc/passwd /stolen\n")]);
    std::os::unix::fs::symlink("/etc", ctx.path().join("etc")).unwrap();
    // `etc -> /etc` resolves to the context's own `etc`: a loop, never the host's.
    let err = build_err(ctx.path(), &[]);
    assert!(
        err.contains("passwd") && err.contains("symbolic links"),
        "{err}"
    );

    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\nCOPY link /link\n")]);
    std::os::unix::fs::symlink("/etc/passwd", ctx.path().join("link")).unwrap();
    let err = build_err(ctx.path(), &[]);
    assert!(err.contains("link") && err.contains("not found"), "{err}");

    let ctx = ctx_with(&[
        ("Dockerfile", "FROM scratch\nCOPY dir /dir\n"),
        ("dir/a", "a"),
    ]);
    std::os::unix::fs::symlink("/etc/passwd", ctx.path().join("dir/link")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("rootfs");
    kiln_ok(
        cache.path(),
        &[
            "build",
            "--progress=quiet",
            "--output",
            &format!("type=local,dest={}", dest.display()),
            ctx.path().to_str().unwrap(),
        ],
    );
    let copied = std::fs::symlink_metadata(dest.join("dir/link")).unwrap();
    assert!(
        copied.file_type().is_symlink(),
        "copied as a symlink, not followed"
    );
    assert_eq!(
        std::fs::read_link(dest.join("dir/link")).unwrap(),
        Path::new("/etc/passwd")
    );
}

/// Builds never write into the context (or anywhere but cache and outputs).
#[test]
fn context_is_left_untouched() {
    let example = repo_root().join("examples/hello");
    let before = listing(&example);
    let cache = tempfile::tempdir().unwrap();
    kiln_ok(
        cache.path(),
        &["build", "--progress=quiet", example.to_str().unwrap()],
    );
    assert_eq!(listing(&example), before);
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            out.push((e.path().display().to_string(), m.len()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dockerfile_from_stdin() {
    let ctx = ctx_with(&[("a", "x")]);
    let cache = tempfile::tempdir().unwrap();
    let out = output_with_stdin(
        &mut kiln_cmd(
            cache.path(),
            &[
                "build",
                "--progress=quiet",
                "-f",
                "-",
                ctx.path().to_str().unwrap(),
            ],
        ),
        b"FROM scratch\nCOPY a /a\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha256:"));
}

/// Builds and returns kiln's exit code and stderr, checking it exited
/// (an abort, e.g. on a stack overflow, has no exit code) and failed.
fn build_exit(ctx: &Path) -> (i32, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = kiln(
        cache.path(),
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("kiln died on a signal ({:?}):\n{stderr}", out.status));
    assert!(code != 0 && code != 134, "exit code {code}:\n{stderr}");
    assert!(!stderr.contains("overflowed its stack"), "{stderr}");
    (code, stderr)
}

#[test]
fn deeply_nested_variables_fail_with_the_line_not_a_crash() {
    // 3,000 nested `${A:-...}` used to overflow the stack and abort kiln.
    let deep = format!("{}x{}", "${A:-".repeat(3000), "}".repeat(3000));
    let dockerfile = format!("FROM scratch\nENV X={deep}\n");
    let ctx = ctx_with(&[("Dockerfile", &dockerfile)]);
    let (_, err) = build_exit(ctx.path());
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(
        err.contains("variable expansion nested too deep (more than 100 levels)"),
        "{err}"
    );
}

#[test]
fn a_run_script_running_itself_fails_the_step_not_kiln() {
    // Every `sh /s` used to take a thread until the process aborted.
    let ctx = ctx_with(&[("Dockerfile", "FROM scratch\nRUN echo 'sh /s' > /s; sh /s\n")]);
    let (_, err) = build_exit(ctx.path());
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(
        err.contains("sh: /s: nesting too deep (more than 1000 levels"),
        "{err}"
    );
    assert!(err.contains("exit code: 2"), "{err}");
}
