//! kiln-runtime: the sandbox that will execute RUN steps as WASI programs.
//!
//! The foundation issue ships everything except RUN; this crate holds the
//! pieces of the RUN contract that the builder already needs, so that the
//! builder does not change shape when the wasmtime sandbox lands.

/// Error text for RUN until the WASI sandbox exists: names the step so the
/// user sees which instruction kiln could not execute.
pub fn run_unsupported_message(instruction: &str) -> String {
    format!(
        "RUN is not supported yet: kiln executes RUN steps as WebAssembly programs and that runtime has not landed ({instruction})"
    )
}
pub mod shell;
