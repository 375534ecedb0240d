//! awk: the POSIX awk language (lexer, parser, tree-walking interpreter).
//!
//! Differences from gawk, on purpose: `for (k in a)` visits keys in the
//! order they were first set (gawk's order is unspecified); srand() without
//! an argument seeds 0, not the clock, and rand() is splitmix64, so its
//! numbers differ from gawk's; pipes (`|`, `cmd | getline`) and system() are
//! errors, the sandbox has no shell for them.

mod interp;
mod lexer;
mod parser;
mod value;

use std::ffi::OsString;
use std::io;

/// Exit status of a syntax or runtime error, as gawk's.
const FATAL: i32 = 2;

/// Entry point for `awk`.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut fs: Option<String> = None;
    let mut assigns = Vec::new();
    let mut progfiles = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (flag, inline) = (&a[..2.min(a.len())], &a[2.min(a.len())..]);
        let mut value = || -> Option<String> {
            if !inline.is_empty() {
                Some(inline.to_owned())
            } else {
                i += 1;
                args.get(i).cloned()
            }
        };
        match flag {
            "-F" => match value() {
                // Escapes are processed as in a string ("\t", "\x21");
                // gawk takes `-Ft` literally (only --traditional makes it a tab).
                Some(v) => fs = Some(lexer::unescape(&v)),
                None => return usage("option requires an argument -- F"),
            },
            "-v" => match value().as_deref().and_then(assignment) {
                Some(kv) => assigns.push(kv),
                None => return usage("-v needs var=value"),
            },
            "-f" => match value() {
                Some(v) => progfiles.push(v),
                None => return usage("option requires an argument -- f"),
            },
            _ if a == "--help" => {
                println!("Usage: awk [-F fs] [-v var=value] [-f progfile | 'program'] [file ...]\nPOSIX awk: patterns and actions over records and fields.");
                return 0;
            }
            _ if a == "--version" => {
                println!("awk (kiln toolbox): POSIX awk");
                return 0;
            }
            _ => return usage(&format!("unknown option {a}")),
        }
        i += 1;
    }
    let (source, origin) = if progfiles.is_empty() {
        let Some(p) = args.get(i) else {
            return usage("no program text");
        };
        i += 1;
        (p.clone(), "cmd. line".to_owned())
    } else {
        let mut src = String::new();
        for f in &progfiles {
            let text = if f == "-" {
                io::read_to_string(io::stdin())
            } else {
                std::fs::read_to_string(f)
            };
            match text {
                Ok(t) => {
                    src.push_str(&t);
                    src.push('\n');
                }
                Err(e) => {
                    eprintln!(
                        "awk: fatal: can't open source file `{f}' for reading: {}",
                        os_msg(&e)
                    );
                    return FATAL;
                }
            }
        }
        (src, progfiles[0].clone())
    };
    let tokens = match lexer::tokenize(&source) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("awk: {origin}:{}: {}", e.line, e.msg);
            return FATAL;
        }
    };
    let program = match parser::parse(tokens) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("awk: {origin}:{}: {}", e.line, e.msg);
            if let Some(text) = source.lines().nth(e.line.saturating_sub(1)) {
                eprintln!("awk: {origin}:{}: {text}", e.line);
            }
            return FATAL;
        }
    };
    let mut argv = vec!["awk".to_owned()];
    argv.extend(args[i..].iter().cloned());
    let mut it = interp::Interp::new(&program, argv, assigns);
    if let Some(fs) = fs {
        it.set_fs(fs);
    }
    match it.run() {
        Ok(code) => code,
        Err(interp::RunError(msg)) => {
            it.flush_all();
            eprintln!("awk: fatal: {msg}");
            FATAL
        }
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!("awk: {msg}");
    eprintln!("usage: awk [-F fs][-v var=value][prog | -f progfile][file ...]");
    FATAL
}

/// `name=value` with a valid awk name: a command-line assignment.
pub(crate) fn assignment(arg: &str) -> Option<(String, String)> {
    let (name, value) = arg.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((name.to_owned(), lexer::unescape(value)))
}

/// An I/O error as the C library words it.
pub(crate) use super::common::why as os_msg;

/// The dispatcher's entry point (applets.txt).
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    main(args.collect())
}
