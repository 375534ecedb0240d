//! chmod: sets kiln's mode bits (WASI has none) through `kiln.owner_set`.

use super::common::{scan, strings, usage, walk, why, Info, Spec, UMASK};
use super::modes::{self, Mode};
use std::ffi::OsString;

const APPLET: &str = "chmod";

const SPEC: Spec = Spec {
    flags: "RcfvHLP",
    valued: "",
    long: &[
        ("recursive", 'R', false),
        ("changes", 'c', false),
        ("silent", 'f', false),
        ("quiet", 'f', false),
        ("verbose", 'v', false),
        ("reference", 'r', true),
        ("help", 'h', false),
    ],
};

/// A dash argument that is a mode (`-w`, `-x,g+w`), not options.
fn is_mode_arg(a: &str) -> bool {
    let body = &a[1..];
    !body.chars().all(|c| SPEC.flags.contains(c)) && modes::parse(a).is_ok()
}

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = match strings(APPLET, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (opts, mut operands) = match scan(&args, &SPEC, is_mode_arg) {
        Ok(x) => x,
        Err(e) => return usage(APPLET, &e),
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    if has('h') {
        println!("Usage: chmod [-R] [-c|-v] [-f] MODE[,MODE]... FILE...\n  or:  chmod [-R] --reference=RFILE FILE...\nMODE is octal (755) or symbolic ([ugoa]*[-+=]([rwxXst]*|[ugo]), comma-separated).");
        return 0;
    }
    let (recursive, verbose, changes, quiet) = (has('R'), has('v'), has('c'), has('f'));
    let reference = opts
        .iter()
        .find(|(o, _)| *o == 'r')
        .and_then(|(_, v)| v.clone());
    let mode = match reference {
        Some(r) => match Info::of(&r, true) {
            Ok(i) => Mode::Octal(i.owner.mode, 5),
            Err(e) => {
                eprintln!("{APPLET}: failed to get attributes of '{r}': {}", why(&e));
                return 1;
            }
        },
        None => {
            if operands.is_empty() {
                return usage(APPLET, "missing operand");
            }
            let text = operands.remove(0);
            match modes::parse(&text) {
                Ok(m) => m,
                Err(e) => return usage(APPLET, &e),
            }
        }
    };
    if operands.is_empty() {
        return usage(APPLET, "missing operand");
    }
    let mut ok = true;
    for file in &operands {
        let one = |path: &str, _dir: bool| change(path, &mode, (verbose, changes, quiet));
        ok &= if recursive {
            // Symlinks met on the way are skipped, as GNU chmod -R does.
            walk(file, &mut |p, d| {
                if p != file && Info::of(p, false).is_ok_and(|i| i.is_symlink()) {
                    return true;
                }
                one(p, d)
            })
        } else {
            one(file, false)
        };
    }
    i32::from(!ok)
}

fn change(path: &str, mode: &Mode, (verbose, changes, quiet): (bool, bool, bool)) -> bool {
    let info = match Info::of(path, true) {
        Ok(i) => i,
        Err(e) => {
            if !quiet {
                eprintln!("{APPLET}: cannot access '{path}': {}", why(&e));
            }
            return false;
        }
    };
    let old = info.owner.mode;
    let new = modes::apply(mode, old, info.is_dir(), UMASK);
    // GNU: when the umask kept a "who"-less change from doing all it said,
    // say so and fail (the change made stays).
    let naive = modes::apply(mode, old, info.is_dir(), 0);
    if let Err(e) = super::common::set_owner(path, true, Some(new), None, None) {
        if !quiet {
            eprintln!("{APPLET}: changing permissions of '{path}': {}", why(&e));
        }
        return false;
    }
    if new != naive && !quiet {
        let t = info.type_char();
        let (nt, want) = (
            super::common::perm_text(new),
            super::common::perm_text(naive),
        );
        eprintln!("{APPLET}: {path}: new permissions are {t}{nt}, not {t}{want}");
        return false;
    }
    if verbose || (changes && new != old) {
        let t = info.type_char();
        let (pt, nt) = (super::common::perm_text(old), super::common::perm_text(new));
        if new == old {
            println!("mode of '{path}' retained as {new:04o} ({t}{nt})");
        } else {
            println!("mode of '{path}' changed from {old:04o} ({t}{pt}) to {new:04o} ({t}{nt})");
        }
    }
    true
}
