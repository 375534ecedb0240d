#![allow(dead_code)] // each test binary uses part of it
//! Builds the test guests (tests/guests) for wasm32-wasip1 with the same
//! toolchain that runs the tests, once per test process; cargo keeps the
//! result under target/ so later processes only check it is fresh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[path = "../../build_support/null_device.rs"]
mod null_device;

/// Path of the compiled guest `name` (`probe` or `true`).
pub fn guest(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build).join(format!("{name}.wasm"))
}

/// The bytes of guest `name`.
pub fn guest_bytes(name: &str) -> Vec<u8> {
    let path = guest(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn build() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/Cargo.toml");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-runtime-guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--release",
        "--target",
        "wasm32-wasip1",
        "--manifest-path",
    ])
    .arg(&manifest)
    .arg("--target-dir")
    .arg(&target_dir)
    // The outer cargo's flags are for the host, not for the guest.
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("CARGO_BUILD_TARGET")
    // The outer jobserver is not this build's.
    .env_remove("CARGO_MAKEFLAGS")
    .env_remove("MAKEFLAGS")
    .env_remove("MFLAGS");
    let out = cmd
        .output()
        .expect("cannot run cargo to build the test guests");
    assert!(
        out.status.success(),
        "building the test guests failed (is the wasm32-wasip1 target installed? \
         `rustup target add wasm32-wasip1`):\n{}{}",
        String::from_utf8_lossy(&out.stderr),
        null_device::null_device_problem().unwrap_or_default()
    );
    target_dir.join("wasm32-wasip1/release")
}
