//! A build run by an unprivileged user with no capabilities gives the same
//! image, bit for bit, as the same build run by root: kiln needs no
//! privilege, and nothing of the invoking user (ids, umask, home) reaches
//! the image.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const NOBODY: &str = "65534";

fn open_up(dir: &Path) {
    for a in dir.ancestors() {
        if let Ok(m) = std::fs::metadata(a) {
            let mode = m.permissions().mode();
            if mode & 0o005 != 0o005 {
                let _ = std::fs::set_permissions(a, std::fs::Permissions::from_mode(mode | 0o755));
            }
        }
    }
}

#[test]
fn unprivileged_build_equals_roots() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!(
            "not root: this test needs root to compare against an unprivileged user; skipped"
        );
        return;
    }
    if !require_tool("setpriv") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    open_up(tmp.path());
    let ctx = tmp.path().join("ctx");
    write_tree(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY app /app\nWORKDIR /app\n\
              RUN mkdir out && sort data.txt > out/sorted && date > out/date && \
              mktemp -u > out/tmpname && ln -s sorted out/link && ln out/sorted out/hard && \
              echo done > /done\nRUN rm data.txt && touch -d @5 stamp\n",
            ),
            ("app/data.txt", "b\na\nc\n"),
        ],
    );
    for dir in [&ctx, &ctx.join("app")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in ["Dockerfile", "app/data.txt"] {
        std::fs::set_permissions(ctx.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Compiled modules come from root's run (read-only for nobody): only the
    // images are compared, and compiling the toolbox twice costs seconds.
    let modules = tmp.path().join("modules");
    let build = |user: Option<&str>, cache: &Path, out: &Path| -> String {
        std::fs::create_dir_all(cache).unwrap();
        let mut cmd = match user {
            None => Command::new(kiln_bin()),
            Some(uid) => {
                std::os::unix::fs::chown(cache, Some(65534), Some(65534)).unwrap();
                std::os::unix::fs::chown(out.parent().unwrap(), Some(65534), Some(65534)).unwrap();
                kiln_as_user(uid.parse().unwrap())
            }
        };
        let output = cmd
            .env("KILN_CACHE_DIR", cache)
            .env("KILN_WASM_CACHE", &modules)
            .env("HOME", cache)
            .env_remove("SOURCE_DATE_EPOCH")
            .args([
                "build",
                "--progress=quiet",
                "-o",
                &format!("type=oci,dest={}", out.display()),
                ctx.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "build as {user:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    let root_dir = tmp.path().join("root");
    let user_dir = tmp.path().join("user");
    std::fs::create_dir_all(&root_dir).unwrap();
    std::fs::create_dir_all(&user_dir).unwrap();
    open_up(&user_dir);
    let as_root = build(None, &root_dir.join("cache"), &root_dir.join("image.tar"));
    let as_nobody = build(
        Some(NOBODY),
        &user_dir.join("cache"),
        &user_dir.join("image.tar"),
    );
    assert_eq!(as_root, as_nobody);
    assert_eq!(
        std::fs::read(root_dir.join("image.tar")).unwrap(),
        std::fs::read(user_dir.join("image.tar")).unwrap(),
        "the OCI archives differ"
    );
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
