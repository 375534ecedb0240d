//! Why a nested `cargo build` can fail on a machine whose `/dev/null` is a
//! regular file (seen on this project's machines: a test exported an image
//! to `dest=/dev/null` and the exporter renamed its archive over the device;
//! the exporter now writes into devices instead).
//!
//! cargo asks rustc about a target with `rustc - --print=cfg …`, stdin opened
//! from `/dev/null`. Build-script probes (anyhow, thiserror, …) send their
//! compiler errors to `/dev/null` too. When it is a file, those errors pile up
//! in it and the next target-info query compiles them as Rust source, so the
//! build fails with "failed to run `rustc` to learn about target-specific
//! information … unknown start of token". Nothing kiln does can route around
//! that query; the fix is to restore the device.

/// A sentence explaining the failure when `/dev/null` is not the null
/// device, `None` when it is (or when that cannot be told).
pub fn null_device_problem() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata("/dev/null").ok()?;
        if meta.file_type().is_char_device() {
            return None;
        }
        Some(format!(
            "/dev/null on this machine is not the null device but a regular file \
             ({} bytes). cargo's rustc target-info query reads it as Rust source, \
             and build scripts' compiler errors written to it make that query fail. \
             Restore the device (as root: `rm /dev/null && mknod -m 666 /dev/null c 1 3`) \
             and build again.",
            meta.len()
        ))
    }
    #[cfg(not(unix))]
    {
        None
    }
}
