//! xargs: builds command lines from standard input and runs them through
//! kiln (`kiln.spawn`). Input is split like GNU xargs: blanks and newlines
//! with '…', "…" and backslash quoting; `-0`/`-d` split on one byte only.

use super::command;
use super::common::why;
use std::ffi::OsString;
use std::io::{self, Read as _};

/// GNU's default command-line size limit (bytes of the arguments, each
/// with its terminating NUL).
const MAX_CHARS: usize = 128 * 1024;
/// Linux's ARG_MAX and the 2048 bytes of headroom POSIX asks xargs for:
/// with the environment's size, the upper bound of `-s`.
const ARG_MAX: usize = 2 * 1024 * 1024;
const HEADROOM: usize = 2048;

/// Exit statuses, as GNU xargs.
const SOME_FAILED: i32 = 123;
const STOPPED: i32 = 124;
const USAGE: i32 = 1;

#[derive(Default)]
struct Options {
    delimiter: Option<u8>,
    max_args: Option<usize>,
    max_lines: Option<usize>,
    replace: Option<String>,
    no_run_if_empty: bool,
    trace: bool,
    eof: Option<String>,
    input_file: Option<String>,
    /// `-s`: the size limit of a command line.
    max_chars: usize,
    /// `-x`: exit when a -n/-L command line would exceed the size limit.
    exit_if_exceeded: bool,
    command: Vec<String>,
}

const HELP: &str = "\
Usage: xargs [OPTION]... [COMMAND [INITIAL-ARGS]...]
Run COMMAND (default echo) with arguments read from standard input.

  -0, --null          items are separated by NUL, not whitespace
  -d DELIM            items are separated by DELIM
  -n MAX-ARGS         at most MAX-ARGS arguments per command line
  -L MAX-LINES        at most MAX-LINES input lines per command line
  -I R                replace R in INITIAL-ARGS with each input line
  -r, --no-run-if-empty  do not run COMMAND if the input is empty
  -s, --max-chars=N   at most N bytes per command line
  -x, --exit          exit if a command line would exceed the size (-n, -L)
  -t, --verbose       print each command line on standard error first
  -a FILE             read items from FILE
Exit status: 123 if a command failed, 124 if one exited 255, 127 if not found.
";

/// Runs xargs.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = command::strings(args.skip(1));
    if command::help(&args, HELP) {
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("xargs: {msg}");
            return USAGE;
        }
    };
    let mut input = Vec::new();
    let read = match &opts.input_file {
        Some(file) => std::fs::read(file).map(|b| input = b),
        None => io::stdin().read_to_end(&mut input).map(|_| ()),
    };
    if let Err(e) = read {
        let name = opts.input_file.as_deref().unwrap_or("standard input");
        eprintln!("xargs: {name}: {}", why(&e));
        return USAGE;
    }
    let items = match split(&input, &opts) {
        Ok(items) => items,
        Err(msg) => {
            eprintln!("xargs: {msg}");
            return USAGE;
        }
    };
    run(&opts, items)
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options::default();
    let env: usize = std::env::vars_os()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    let posix_max = ARG_MAX.saturating_sub(env + HEADROOM).max(1);
    o.max_chars = MAX_CHARS.min(posix_max);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            o.command.push(arg);
            break;
        }
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
            match name {
                "null" => o.delimiter = Some(0),
                "no-run-if-empty" => o.no_run_if_empty = true,
                "verbose" => o.trace = true,
                "max-args" => o.max_args = Some(count(&need()?)?),
                "max-lines" => o.max_lines = Some(value.as_deref().map_or(Ok(1), count)?),
                "delimiter" => o.delimiter = Some(delimiter(&need()?)?),
                "replace" => o.replace = Some(value.unwrap_or_else(|| "{}".into())),
                "arg-file" => o.input_file = Some(need()?),
                "max-chars" => o.max_chars = max_chars(&need()?, posix_max)?,
                "max-procs" => {
                    need()?;
                }
                "exit" => o.exit_if_exceeded = true,
                _ => return Err(format!("unrecognized option '--{name}'")),
            }
            continue;
        }
        let flags: Vec<char> = arg[1..].chars().collect();
        let mut k = 0;
        while k < flags.len() {
            let f = flags[k];
            k += 1;
            let rest: String = flags[k..].iter().collect();
            let mut value = |k: &mut usize| -> Result<String, String> {
                *k = flags.len();
                if rest.is_empty() {
                    it.next()
                        .ok_or_else(|| format!("option requires an argument -- '{f}'"))
                } else {
                    Ok(rest.clone())
                }
            };
            match f {
                '0' => o.delimiter = Some(0),
                'r' => o.no_run_if_empty = true,
                't' => o.trace = true,
                'x' => o.exit_if_exceeded = true,
                'n' => o.max_args = Some(count(&value(&mut k)?)?),
                'L' => o.max_lines = Some(count(&value(&mut k)?)?),
                'l' => {
                    k = flags.len();
                    o.max_lines = Some(if rest.is_empty() { 1 } else { count(&rest)? });
                }
                'I' => o.replace = Some(value(&mut k)?),
                'i' => {
                    k = flags.len();
                    o.replace = Some(if rest.is_empty() { "{}".into() } else { rest });
                }
                'd' => o.delimiter = Some(delimiter(&value(&mut k)?)?),
                'E' => o.eof = Some(value(&mut k)?),
                'e' => {
                    k = flags.len();
                    o.eof = (!rest.is_empty()).then_some(rest);
                }
                'a' => o.input_file = Some(value(&mut k)?),
                's' => o.max_chars = max_chars(&value(&mut k)?, posix_max)?,
                'P' => {
                    value(&mut k)?;
                }
                _ => return Err(format!("invalid option -- '{f}'")),
            }
        }
    }
    o.command.extend(it);
    if o.command.is_empty() {
        o.command.push("echo".into());
    }
    if o.replace.is_some() || o.max_lines.is_some() {
        // GNU: -I and -L imply -x.
        o.exit_if_exceeded = true;
    }
    if o.replace.is_some() {
        // -I: one input line per command.
        o.max_lines = Some(1);
        o.max_args = None;
    }
    Ok(o)
}

/// `-s`'s argument, as GNU checks it: at least 1, at most what the
/// environment leaves of ARG_MAX (with a warning).
fn max_chars(s: &str, posix_max: usize) -> Result<usize, String> {
    let Ok(n) = s.trim().parse::<i64>() else {
        return Err(format!(
            "invalid number \"{s}\" for -s option\nTry 'xargs --help' for more information."
        ));
    };
    if n < 1 {
        return Err(format!("value {s} for -s option should be >= 1"));
    }
    let n = n as usize;
    if n > posix_max {
        eprintln!("xargs: value {n} for -s option should be <= {posix_max}");
        return Ok(posix_max);
    }
    Ok(n)
}

fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid number \"{s}\": must be a positive integer"
        )),
    }
}

/// `-d`'s argument: one character or a C escape (`\n`, `\t`, `\0`, `\\`).
fn delimiter(s: &str) -> Result<u8, String> {
    Ok(match s {
        "\\n" => b'\n',
        "\\t" => b'\t',
        "\\0" => 0,
        "\\\\" => b'\\',
        _ if s.len() == 1 => s.as_bytes()[0],
        _ => return Err(format!("invalid input delimiter specification {s}: the delimiter must be either a single character or an escape sequence starting with \\.")),
    })
}

/// One argument and whether it ended a (logical) input line, for `-L`.
struct Item {
    text: String,
    line_end: bool,
}

fn split(input: &[u8], o: &Options) -> Result<Vec<Item>, String> {
    if let Some(d) = o.delimiter {
        let body = input.strip_suffix(&[d]).unwrap_or(input);
        if input.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(body
            .split(|&b| b == d)
            .map(|s| Item {
                text: String::from_utf8_lossy(s).into_owned(),
                line_end: true,
            })
            .collect());
    }
    if o.replace.is_some() {
        // -I: each line is one argument, leading blanks dropped.
        return Ok(input
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).trim_start().to_owned())
            .filter(|l| !l.is_empty())
            .take_while(|l| o.eof.as_deref() != Some(l.as_str()))
            .map(|text| Item {
                text,
                line_end: true,
            })
            .collect());
    }
    let mut items: Vec<Item> = Vec::new();
    let mut word: Vec<u8> = Vec::new();
    let mut in_word = false;
    let mut quote: Option<u8> = None;
    let mut bytes = input.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if let Some(q) = quote {
            if b == q {
                quote = None;
            } else if b == b'\n' {
                let kind = if q == b'\'' { "single" } else { "double" };
                return Err(format!("unmatched {kind} quote; by default quotes are special to xargs unless you use the -0 option"));
            } else {
                word.push(b);
            }
            continue;
        }
        match b {
            b'\'' | b'"' => {
                quote = Some(b);
                in_word = true;
            }
            b'\\' => {
                if let Some(next) = bytes.next() {
                    word.push(next);
                }
                in_word = true;
            }
            b' ' | b'\t' | b'\n' => {
                if in_word {
                    let text = String::from_utf8_lossy(&word).into_owned();
                    if o.eof.as_deref() == Some(text.as_str()) {
                        return Ok(items);
                    }
                    // A line ending in a blank continues on the next (-L).
                    items.push(Item {
                        text,
                        line_end: b == b'\n',
                    });
                    word.clear();
                    in_word = false;
                }
            }
            _ => {
                word.push(b);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(
            "unmatched quote; by default quotes are special to xargs unless you use the -0 option"
                .into(),
        );
    }
    if in_word {
        let text = String::from_utf8_lossy(&word).into_owned();
        if o.eof.as_deref() != Some(text.as_str()) {
            items.push(Item {
                text,
                line_end: true,
            });
        }
    }
    Ok(items)
}

fn run(o: &Options, items: Vec<Item>) -> i32 {
    // Bytes of the command and its initial arguments, each with its NUL.
    let base_len: usize = o.command.iter().map(|a| a.len() + 1).sum();
    if o.replace.is_none() && base_len > o.max_chars {
        eprintln!("xargs: cannot fit single argument within argument list size limit");
        return USAGE;
    }
    if items.is_empty() {
        if o.no_run_if_empty || o.replace.is_some() {
            return 0;
        }
        return finish(invoke(o, o.command.clone()));
    }
    let mut status = 0;
    let mut batch: Vec<String> = Vec::new();
    let mut lines = 0;
    let mut len = base_len;
    let mut iter = items.into_iter().peekable();
    while let Some(item) = iter.next() {
        if let Some(r) = &o.replace {
            let argv = o
                .command
                .iter()
                .map(|a| a.replace(r.as_str(), &item.text))
                .collect::<Vec<String>>();
            if argv.iter().map(|a| a.len() + 1).sum::<usize>() > o.max_chars {
                eprintln!("xargs: argument list too long");
                return USAGE;
            }
            match invoke(o, argv) {
                Outcome::Ok => {}
                Outcome::Failed => status = SOME_FAILED,
                stop => return finish(stop),
            }
            continue;
        }
        let need = item.text.len() + 1;
        if need > o.max_chars - base_len {
            // As GNU: the line is run if it can be, then xargs gives up.
            if !o.exit_if_exceeded && !batch.is_empty() {
                let mut argv = o.command.clone();
                argv.append(&mut batch);
                if let Outcome::Stop(code) = invoke(o, argv) {
                    return code;
                }
            }
            eprintln!("xargs: argument line too long");
            return USAGE;
        }
        if len + need > o.max_chars {
            if o.exit_if_exceeded && (o.max_lines.is_some() || o.max_args.is_some()) {
                eprintln!("xargs: argument list too long");
                return USAGE;
            }
            let mut argv = o.command.clone();
            argv.append(&mut batch);
            len = base_len;
            match invoke(o, argv) {
                Outcome::Ok => {}
                Outcome::Failed => status = SOME_FAILED,
                stop => return finish(stop),
            }
        }
        len += need;
        batch.push(item.text);
        if item.line_end {
            lines += 1;
        }
        let full =
            o.max_args.is_some_and(|n| batch.len() >= n) || o.max_lines.is_some_and(|n| lines >= n);
        if full || iter.peek().is_none() {
            let mut argv = o.command.clone();
            argv.append(&mut batch);
            lines = 0;
            len = base_len;
            match invoke(o, argv) {
                Outcome::Ok => {}
                Outcome::Failed => status = SOME_FAILED,
                stop => return finish(stop),
            }
        }
    }
    status
}

enum Outcome {
    Ok,
    Failed,
    /// xargs stops with this status (255 from a command, not found, ...).
    Stop(i32),
}

fn finish(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Ok => 0,
        Outcome::Failed => SOME_FAILED,
        Outcome::Stop(status) => status,
    }
}

fn invoke(o: &Options, argv: Vec<String>) -> Outcome {
    if o.trace {
        eprintln!("{}", argv.join(" "));
    }
    let name = argv.first().cloned().unwrap_or_default();
    match command::run(&argv) {
        Ok(0) => Outcome::Ok,
        Ok(255) => {
            eprintln!("xargs: {name}: exited with status 255; aborting");
            Outcome::Stop(STOPPED)
        }
        Ok(s @ (command::NOT_FOUND | command::CANNOT_RUN)) => Outcome::Stop(i32::from(s)),
        Ok(_) => Outcome::Failed,
        Err(e) => {
            eprintln!("xargs: {name}: {}", why(&e));
            Outcome::Stop(i32::from(command::CANNOT_RUN))
        }
    }
}
