//! nice: runs a command "with a niceness". kiln runs one command at a time
//! with no scheduler to tell, so the niceness is always 0 and the command
//! runs through kiln's spawn (WASI cannot exec), which uu_nice attempts.

use super::command;
use super::common::why;
use std::ffi::OsString;

/// GNU nice's status when nice itself fails.
const FAILED: i32 = 125;

const HELP: &str = "\
Usage: nice [OPTION] [COMMAND [ARG]...]
Run COMMAND with an adjusted niceness (kiln has no scheduler: the
niceness stays 0). With no COMMAND, print the current niceness.

  -n, --adjustment=N   add integer N to the niceness (default 10)
";

/// Runs nice.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = command::strings(args.skip(1));
    if command::help(&args, HELP) {
        return 0;
    }
    let mut adjustment: Option<String> = None;
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.peek().cloned() {
        if arg == "--" {
            it.next();
            break;
        }
        let value = if let Some(v) = arg.strip_prefix("--adjustment=") {
            it.next();
            v.to_owned()
        } else if arg == "-n" || arg == "--adjustment" {
            it.next();
            match it.next() {
                Some(v) => v,
                None => {
                    return usage(&format!("option requires an argument -- '{}'", 'n'));
                }
            }
        } else if let Some(v) = arg.strip_prefix("-n") {
            it.next();
            v.to_owned()
        } else if is_old_style(&arg) {
            it.next();
            arg[1..].to_owned()
        } else if arg.starts_with('-') && arg.len() > 1 {
            return usage(&format!("invalid option -- '{}'", &arg[1..2]));
        } else {
            break;
        };
        if value.trim().parse::<i64>().is_err() {
            eprintln!("nice: invalid adjustment '{value}'");
            return FAILED;
        }
        adjustment = Some(value);
    }
    let argv: Vec<String> = it.collect();
    if argv.is_empty() {
        if adjustment.is_some() {
            return usage("a command must be given with an adjustment");
        }
        println!("0");
        return 0;
    }
    run("nice", &argv)
}

/// `-5`, `--5`, `-+5`: GNU's old-style adjustment.
fn is_old_style(arg: &str) -> bool {
    let rest = arg.strip_prefix('-').unwrap_or("");
    let digits = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn usage(msg: &str) -> i32 {
    eprintln!("nice: {msg}");
    eprintln!("Try 'nice --help' for more information.");
    FAILED
}

/// Runs `argv` through kiln and returns its status; 126 (with a message)
/// when kiln cannot start it. nice and nohup share this.
pub(super) fn run(applet: &str, argv: &[String]) -> i32 {
    match command::run(argv) {
        Ok(status) => i32::from(status),
        Err(e) => {
            eprintln!("{applet}: '{}': {}", argv[0], why(&e));
            i32::from(command::CANNOT_RUN)
        }
    }
}
