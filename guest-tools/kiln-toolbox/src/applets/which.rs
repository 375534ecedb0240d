//! which: prints where each name is found in `$PATH` (the image's files,
//! not the toolbox's applets; WASI has no execute bits, so any regular
//! file counts).

use super::command;
use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::Path;

const HELP: &str = "\
Usage: which [-a] NAME...
Print the first file named NAME in the directories of $PATH (-a: every one).
Exit status: 1 if some NAME was not found.
";

/// Runs which.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = command::strings(args.skip(1));
    if command::help(&args, HELP) {
        return 0;
    }
    let mut all = false;
    let mut names = Vec::new();
    for arg in args {
        match arg.as_str() {
            "-a" | "--all" => all = true,
            "-s" => {}
            _ if arg.starts_with('-') && arg.len() > 1 => {
                eprintln!("which: invalid option -- '{}'", &arg[1..]);
                return 2;
            }
            _ => names.push(arg),
        }
    }
    if names.is_empty() {
        return 1;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let mut out = io::stdout().lock();
    let mut status = 0;
    for name in names {
        let mut found = false;
        if name.contains('/') {
            if Path::new(&name).is_file() {
                found = true;
                let _ = writeln!(out, "{name}");
            }
        } else {
            for dir in path.split(':') {
                let dir = if dir.is_empty() { "." } else { dir };
                let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
                if Path::new(&candidate).is_file() {
                    found = true;
                    let _ = writeln!(out, "{candidate}");
                    if !all {
                        break;
                    }
                }
            }
        }
        if !found {
            status = 1;
        }
    }
    if out.flush().is_err() {
        return 1;
    }
    status
}
