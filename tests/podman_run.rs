//! An image built FROM a local busybox layout runs under podman: proof
//! that kiln's layers, config and layouts are what a real runtime expects.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// Builds a busybox base image from the host's static busybox (Debian's
/// busybox-static) with kiln itself: FROM scratch + COPY.
fn build_busybox_layout(tmp: &std::path::Path, cache: &std::path::Path) -> std::path::PathBuf {
    let ctx = tmp.join("bb-ctx");
    std::fs::create_dir_all(ctx.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "ls", "echo", "id", "stat"] {
        std::os::unix::fs::symlink("busybox", ctx.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY bin/ /bin/\nCMD [\"/bin/sh\"]\n",
    )
    .unwrap();
    let layout = tmp.join("busybox-layout");
    kiln_ok(
        cache,
        &[
            "build",
            "--progress=quiet",
            "--output",
            &format!(
                "type=oci,dest={},tar=false,name=busybox:latest",
                layout.display()
            ),
            ctx.to_str().unwrap(),
        ],
    );
    layout
}

#[test]
fn image_from_a_local_busybox_layout_runs_under_podman() {
    if !std::path::Path::new("/bin/busybox").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("/bin/busybox (Debian busybox-static) is required in CI");
        }
        eprintln!("SKIP: /bin/busybox missing (apt-get install busybox-static)");
        return;
    }
    if !require_tool("podman") || !require_tool("runc") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let layout = build_busybox_layout(tmp.path(), &cache);

    let app = tmp.path().join("app");
    write_tree(
        &app,
        &[
            ("greeting.txt", "hello from kiln\n"),
            (
                "Dockerfile",
                "FROM busybox\nWORKDIR /app\nCOPY --chown=1234:5678 --chmod=0640 greeting.txt .\nENV WHO=podman\nCMD [\"/bin/sh\", \"-c\", \"cat /app/greeting.txt; echo $WHO; stat -c '%u:%g %a' /app/greeting.txt\"]\n",
            ),
        ],
    );
    let archive = tmp.path().join("app.tar");
    build_app(
        &cache,
        &layout,
        &app,
        &format!("type=oci,dest={}", archive.display()),
    );

    let storage = tmp.path().join("podman");
    let expected = "hello from kiln\npodman\n1234:5678 640\n";
    let out = run_ok(
        podman(&storage)
            .args(run_flags())
            .arg(format!("oci-archive:{}", archive.display())),
    );
    assert_eq!(out, expected);

    // The same build as a docker archive: `podman load` takes it, and the
    // loaded image runs the same way.
    let docker = tmp.path().join("app-docker.tar");
    build_app(
        &cache,
        &layout,
        &app,
        &format!("type=docker,dest={},name=kiln-test/app:1", docker.display()),
    );
    let loaded = run_ok(podman(&storage).args(["load", "-i"]).arg(&docker));
    assert!(loaded.contains("kiln-test/app:1"), "{loaded}");
    let out = run_ok(
        podman(&storage)
            .args(run_flags())
            .arg("localhost/kiln-test/app:1"),
    );
    assert_eq!(out, expected);
}

/// Builds `app` FROM the busybox layout into `output`.
fn build_app(cache: &Path, layout: &Path, app: &Path, output: &str) {
    kiln_ok(
        cache,
        &[
            "build",
            "--progress=quiet",
            "--build-context",
            &format!("busybox=oci-layout://{}:latest", layout.display()),
            "--output",
            output,
            app.to_str().unwrap(),
        ],
    );
}

/// podman as DESIGN.md says it runs here, with its storage in `storage`.
fn podman(storage: &std::path::Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
        ]);
    cmd
}

fn run_flags() -> [&'static str; 7] {
    [
        "run",
        "--rm",
        "--network=none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ]
}
