//! Builds the toolbox (`guest-tools/`, its own cargo workspace) for
//! wasm32-wasip1 with the same cargo, copies the module to
//! `OUT_DIR/toolbox.wasm` for `include_bytes!`, and writes the applet names
//! from `guest-tools/kiln-toolbox/applets.txt`, the list the toolbox itself is
//! generated from, so the two cannot drift.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build_support/null_device.rs"]
mod null_device;

const WASM_TARGET: &str = "wasm32-wasip1";
const TOOLBOX: &str = "kiln-toolbox";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let guest = manifest_dir
        .parent()
        .expect("runtime/ lives inside the repository")
        .join("guest-tools");
    rerun_if_changed(&guest);

    write_names(&guest, &out_dir);
    check_target_installed();
    let target_dir = inner_target_dir(&out_dir);
    share_lock_file(&guest, &target_dir);
    let wasm = build_toolbox(&guest, &target_dir);
    let dest = out_dir.join("toolbox.wasm");
    if let Err(e) = std::fs::copy(&wasm, &dest) {
        fail(&format!(
            "cannot copy {} to {}: {e}",
            wasm.display(),
            dest.display()
        ));
    }
    write_digest(&dest, &out_dir);
}

/// `OUT_DIR/toolbox_sha256.rs`: the module's digest as a string literal,
/// so step cache keys name the toolbox without hashing 10 MB per build.
fn write_digest(wasm: &Path, out_dir: &Path) {
    use sha2::Digest as _;
    let bytes = std::fs::read(wasm)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", wasm.display())));
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dest = out_dir.join("toolbox_sha256.rs");
    if let Err(e) = std::fs::write(&dest, format!("{hex:?}\n")) {
        fail(&format!("cannot write {}: {e}", dest.display()));
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: kiln-runtime's build script: {message}");
    std::process::exit(1);
}

/// Every input of the toolbox build: the workspace manifest and lock file and,
/// for each member crate, its manifest, build script, applet list and sources.
fn rerun_if_changed(guest: &Path) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", guest.join(file).display());
    }
    let Ok(entries) = std::fs::read_dir(guest) else {
        fail(&format!("cannot read {}", guest.display()));
    };
    let mut members: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    members.sort();
    for member in members {
        for input in ["Cargo.toml", "build.rs", "applets.txt", "src"] {
            let path = member.join(input);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

/// `OUT_DIR/toolbox_names.rs`: the sorted applet names as a slice literal.
fn write_names(guest: &Path, out_dir: &Path) {
    let list_path = guest.join(TOOLBOX).join("applets.txt");
    let list = std::fs::read_to_string(&list_path)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", list_path.display())));
    let mut names: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort_unstable();
    names.dedup();
    let body: String = names.iter().map(|n| format!("    {n:?},\n")).collect();
    let dest = out_dir.join("toolbox_names.rs");
    if let Err(e) = std::fs::write(&dest, format!("&[\n{body}]\n")) {
        fail(&format!("cannot write {}: {e}", dest.display()));
    }
}

/// A missing wasm32-wasip1 standard library is the common setup mistake:
/// say how to fix it instead of showing a page of "can't find crate for std".
fn check_target_installed() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output();
    let installed = match libdir {
        Ok(out) if out.status.success() => {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            Path::new(&dir).is_dir()
        }
        _ => false,
    };
    if !installed {
        fail(&format!(
            "the {WASM_TARGET} target is not installed for this toolchain; kiln builds its \
             toolbox for it. Install it with `rustup target add {WASM_TARGET}`"
        ));
    }
}

/// Where the toolbox is built: beside the outer build, under the outer target
/// directory (found by cargo's CACHEDIR.TAG above OUT_DIR), so the inner
/// build is incremental and shared by every profile of the outer one.
fn inner_target_dir(out_dir: &Path) -> PathBuf {
    // Several checkouts sharing one CARGO_TARGET_DIR (worktrees) would
    // otherwise overwrite each other's toolbox: let each name its own.
    println!("cargo:rerun-if-env-changed=KILN_TOOLBOX_TARGET_DIR");
    if let Some(dir) = std::env::var_os("KILN_TOOLBOX_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let root = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        // OUT_DIR is <profile dir>/build/<pkg>-<hash>/out.
        .or_else(|| out_dir.ancestors().nth(3))
        .unwrap_or(out_dir);
    root.join(TOOLBOX)
}

/// uucore's build script embeds the messages of the utilities it finds and
/// reruns only when the first `Cargo.lock` above its OUT_DIR changes. Put
/// the toolbox's lock file there (rewritten only when it differs, so cargo
/// sees no change otherwise); without it an applet added later would print
/// raw message ids until uucore happened to be rebuilt.
fn share_lock_file(guest: &Path, target_dir: &Path) {
    let lock = guest.join("Cargo.lock");
    let bytes = std::fs::read(&lock)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", lock.display())));
    let dest = target_dir.join("Cargo.lock");
    if std::fs::read(&dest).ok().as_deref() == Some(&bytes[..]) {
        return;
    }
    let written = std::fs::create_dir_all(target_dir).and_then(|()| std::fs::write(&dest, &bytes));
    if let Err(e) = written {
        fail(&format!("cannot write {}: {e}", dest.display()));
    }
}

/// Runs the inner `cargo build` and returns the path of the module.
fn build_toolbox(guest: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--locked", "--release", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings are for the host and for kiln-runtime, not
    // for the guest; the outer jobserver (CARGO_MAKEFLAGS/MAKEFLAGS) is
    // dropped too, the inner build runs its own jobs.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let outer = [
            "CARGO_FEATURE_",
            "CARGO_CFG_",
            "CARGO_PKG_",
            "CARGO_PROFILE_",
            "CARGO_BUILD_",
            "DEP_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix));
        if outer {
            cmd.env_remove(key);
        }
    }
    for key in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PRIMARY_PACKAGE",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        // uucore's build script embeds the messages of the language in LANG;
        // the toolbox must be the same bytes on every machine.
        "LANG",
        "LC_ALL",
        "LC_MESSAGES",
    ] {
        cmd.env_remove(key);
    }
    // Its own CARGO_HOME: uucore's build script embeds the messages of every
    // `uu_*` crate unpacked beside it in the registry, so with the user's
    // CARGO_HOME the toolbox's bytes would depend on what else was ever
    // downloaded there. This one holds only what the lock file names.
    let cargo_home = target_dir.join("cargo-home");
    cmd.env("CARGO_HOME", &cargo_home);
    cmd.env("CARGO_ENCODED_RUSTFLAGS", remap_flags(&cargo_home, guest));
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo to build the toolbox: {e}")));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("can't find crate for `std`")
            || stderr.contains("may not be installed")
        {
            format!("\nhint: `rustup target add {WASM_TARGET}`")
        } else if let Some(problem) = null_device::null_device_problem() {
            format!("\nhint: {problem}")
        } else {
            String::new()
        };
        fail(&format!(
            "building the toolbox ({}) for {WASM_TARGET} failed:\n{stderr}{hint}",
            guest.display()
        ));
    }
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{TOOLBOX}.wasm"))
}

/// Panic locations name source files; without remapping the toolbox would
/// carry this machine's target directory and checkout path, so its bytes (and every
/// cache key that includes its digest) would differ between machines.
fn remap_flags(cargo_home: &Path, guest: &Path) -> String {
    let flags = [
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
        format!("--remap-path-prefix={}=/guest-tools", guest.display()),
    ];
    // CARGO_ENCODED_RUSTFLAGS separates flags with 0x1f.
    flags.join("\u{1f}")
}
