//! env: prints the environment, or runs a command (through kiln's
//! `kiln.spawn`, since WASI cannot exec) in a modified one. uu_env builds
//! for WASI but cannot run commands there.

use super::command;
use super::common::why;
use std::ffi::OsString;
use std::io::{self, Write as _};

/// GNU env's status when env itself fails.
const FAILED: i32 = 125;

const HELP: &str = "\
Usage: env [OPTION]... [-] [NAME=VALUE]... [COMMAND [ARG]...]
Set each NAME to VALUE in the environment and run COMMAND (through kiln),
or print the resulting environment.

  -i, --ignore-environment  start with an empty environment
  -u, --unset=NAME          remove variable from the environment
  -C, --chdir=DIR           run COMMAND in DIR
  -0, --null                end each output line with NUL, not newline
";

/// Runs env.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = command::strings(args.skip(1));
    if command::help(&args, HELP) {
        return 0;
    }
    let mut vars = command::current_env();
    let mut nul = false;
    let mut dir: Option<String> = None;
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.peek().cloned() {
        if arg == "--" {
            it.next();
            break;
        }
        if arg == "-" {
            vars.clear();
            it.next();
            continue;
        }
        if !arg.starts_with('-') {
            break;
        }
        it.next();
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let mut need = || {
                value
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("option '--{name}' requires an argument"))
            };
            let result = match name {
                "ignore-environment" => {
                    vars.clear();
                    Ok(())
                }
                "null" => {
                    nul = true;
                    Ok(())
                }
                "unset" => need().map(|n| vars.retain(|(k, _)| *k != n)),
                "chdir" => need().map(|d| dir = Some(d)),
                _ => Err(format!("unrecognized option '--{name}'")),
            };
            if let Err(msg) = result {
                return usage(&msg);
            }
            continue;
        }
        let flags: Vec<char> = arg[1..].chars().collect();
        let mut k = 0;
        while k < flags.len() {
            let f = flags[k];
            k += 1;
            match f {
                'i' => vars.clear(),
                '0' => nul = true,
                'u' | 'C' => {
                    let rest: String = flags[k..].iter().collect();
                    k = flags.len();
                    let Some(value) = (!rest.is_empty()).then_some(rest).or_else(|| it.next())
                    else {
                        return usage(&format!("option requires an argument -- '{f}'"));
                    };
                    if f == 'u' {
                        vars.retain(|(k, _)| *k != value);
                    } else {
                        dir = Some(value);
                    }
                }
                _ => return usage(&format!("invalid option -- '{f}'")),
            }
        }
    }
    // NAME=VALUE assignments, then the command.
    while let Some(arg) = it.peek() {
        let Some((name, value)) = arg.split_once('=') else {
            break;
        };
        if name.is_empty() {
            break;
        }
        let (name, value) = (name.to_owned(), value.to_owned());
        it.next();
        match vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => vars.push((name, value)),
        }
    }
    let argv: Vec<String> = it.collect();
    if argv.is_empty() {
        if dir.is_some() {
            return usage("must specify command with --chdir (-C)");
        }
        return print(&vars, nul);
    }
    if nul {
        return usage("cannot specify --null (-0) with command");
    }
    let cwd = match dir {
        Some(d) => absolute(&d),
        None => command::current_dir(),
    };
    match command::run_in(&argv, &vars, &cwd) {
        Ok(status) => i32::from(status),
        Err(e) => {
            eprintln!("env: '{}': {}", argv[0], why(&e));
            i32::from(command::CANNOT_RUN)
        }
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!("env: {msg}");
    eprintln!("Try 'env --help' for more information.");
    FAILED
}

fn print(vars: &[(String, String)], nul: bool) -> i32 {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let end = if nul { '\0' } else { '\n' };
    for (k, v) in vars {
        if write!(out, "{k}={v}{end}").is_err() {
            return 1;
        }
    }
    if out.flush().is_err() {
        return 1;
    }
    0
}

fn absolute(dir: &str) -> String {
    if dir.starts_with('/') {
        return dir.to_owned();
    }
    let cwd = command::current_dir();
    format!("{}/{dir}", cwd.trim_end_matches('/'))
}
