//! The toolbox: kiln's own WASI programs (coreutils, sed, ...) as one
//! multicall module, built from `guest-tools/` by `build.rs` and embedded
//! here, so every RUN step can call them without them being in any layer.
//! The module runs the applet named by its argv[0]'s basename.

/// The toolbox module (wasm32-wasip1). Load it with
/// [`Runtime::load`](crate::Runtime::load) and run it with argv[0] set to the
/// applet name, e.g. `["ls", "-a", "/"]`.
pub static TOOLBOX_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/toolbox.wasm"));

/// The sha256 of [`TOOLBOX_WASM`] (hex), computed when it was built.
pub static TOOLBOX_SHA256: &str = include!(concat!(env!("OUT_DIR"), "/toolbox_sha256.rs"));

/// Sorted bytewise; generated from the list the toolbox is built from.
static NAMES: &[&str] = include!(concat!(env!("OUT_DIR"), "/toolbox_names.rs"));

/// The applets in [`TOOLBOX_WASM`], sorted bytewise.
pub fn names() -> &'static [&'static str] {
    NAMES
}

/// Whether the toolbox has an applet called `name` (a bare name, not a path).
pub fn provides(name: &str) -> bool {
    NAMES.binary_search(&name).is_ok()
}
