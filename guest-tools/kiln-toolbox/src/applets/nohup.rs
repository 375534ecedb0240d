//! nohup: runs a command immune to hangups. A RUN step gets no hangups,
//! and its stdin and stdout are never terminals, so GNU nohup would print
//! nothing and redirect nothing; the command just runs through kiln.

use super::command;
use std::ffi::OsString;

/// GNU nohup's status when nohup itself fails.
const FAILED: i32 = 125;

const HELP: &str = "\
Usage: nohup COMMAND [ARG]...
Run COMMAND, ignoring hangup signals (in kiln there are none; output stays
where it is, since it is never a terminal).
";

/// Runs nohup.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let mut args = command::strings(args.skip(1));
    if command::help(&args, HELP) {
        return 0;
    }
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    } else if let Some(opt) = args.first().filter(|a| a.starts_with('-') && a.len() > 1) {
        eprintln!("nohup: unrecognized option '{opt}'");
        eprintln!("Try 'nohup --help' for more information.");
        return FAILED;
    }
    if args.is_empty() {
        eprintln!("nohup: missing operand");
        eprintln!("Try 'nohup --help' for more information.");
        return FAILED;
    }
    super::nice::run("nohup", &args)
}
