//! Running a command through kiln (`kiln.spawn`) for find -exec, xargs and
//! env: the current environment and working directory go with it.

use crate::kiln_sys;
use std::io::{self, Write as _};

/// Exit status kiln reports for a command it cannot find.
pub const NOT_FOUND: u8 = 127;
/// Exit status kiln reports for a command it found but cannot run.
pub const CANNOT_RUN: u8 = 126;

/// The process's working directory as an absolute image path.
pub fn current_dir() -> String {
    match std::env::current_dir() {
        Ok(dir) => dir.to_string_lossy().into_owned(),
        Err(_) => kiln_sys::cwd().unwrap_or_else(|_| "/".to_owned()),
    }
}

/// The whole current environment.
pub fn current_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// Runs `argv` in `cwd` with `env` and returns its exit status. Our own
/// buffered output is flushed first so it comes before the child's.
pub fn run_in(argv: &[String], env: &[(String, String)], cwd: &str) -> io::Result<u8> {
    io::stdout().flush()?;
    kiln_sys::spawn(argv, env, cwd)
}

/// Runs `argv` with the current environment and working directory.
pub fn run(argv: &[String]) -> io::Result<u8> {
    run_in(argv, &current_env(), &current_dir())
}

/// The `uumain` arguments as strings (file names that are not UTF-8 are
/// replaced lossily: kiln's spawn ABI carries UTF-8 only).
pub fn strings(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<String> {
    args.map(|a| a.to_string_lossy().into_owned()).collect()
}

/// Prints `text` and returns true when the first argument is `--help`.
pub fn help(args: &[String], text: &str) -> bool {
    if args.first().map(String::as_str) != Some("--help") {
        return false;
    }
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    true
}
