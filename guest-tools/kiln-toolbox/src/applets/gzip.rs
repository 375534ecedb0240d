//! gzip, gunzip and zcat: GNU gzip's common options on flate2 (pure Rust).
//!
//! Output is reproducible: the header never records a name or a time (GNU's
//! `-n`, here the default and the only mode), and the OS byte is Unix (3) as
//! GNU writes it. The deflate stream itself is zlib-rs's, not GNU's, so bytes
//! differ from GNU gzip's while decompressing to the same data.

use super::common::why;
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Exit status when something failed.
const ERROR: i32 = 1;
/// Exit status when something was skipped with a warning (GNU's 2).
const WARNING: i32 = 2;

/// What the command line asked for.
struct Options {
    decompress: bool,
    stdout: bool,
    keep: bool,
    force: bool,
    quiet: bool,
    level: u32,
    files: Vec<String>,
}

/// Entry point for `gzip`.
pub fn gzip(args: Vec<OsString>) -> i32 {
    run("gzip", false, false, args)
}

/// Entry point for `gunzip` (`gzip -d`).
pub fn gunzip(args: Vec<OsString>) -> i32 {
    run("gunzip", true, false, args)
}

/// Entry point for `zcat` (`gzip -dc`).
pub fn zcat(args: Vec<OsString>) -> i32 {
    run("zcat", true, true, args)
}

fn run(prog: &'static str, decompress: bool, stdout: bool, args: Vec<OsString>) -> i32 {
    let mut opts = Options {
        decompress,
        stdout,
        keep: false,
        force: false,
        quiet: false,
        level: 6,
        files: Vec::new(),
    };
    if args.iter().skip(1).any(|a| a == "--help") {
        println!("Usage: {prog} [OPTION]... [FILE]...\nCompress or uncompress FILEs (by default, compress FILES in-place).\n\n  -c, --stdout      write on standard output, keep original files unchanged\n  -d, --decompress  decompress\n  -f, --force       force overwrite of output file\n  -k, --keep        keep (don't delete) input files\n  -n, --no-name     do not save the original name and timestamp (always)\n  -q, --quiet       suppress all warnings\n  -1, --fast        compress faster\n  -9, --best        compress better\n\nWith no FILE, or when FILE is -, read standard input.");
        return 0;
    }
    if let Err(msg) = parse(&mut opts, args) {
        eprintln!("{prog}: {msg}");
        eprintln!("Try '{prog} --help' for more information.");
        return ERROR;
    }
    if opts.files.is_empty() {
        opts.files.push("-".into());
    }
    let mut status = 0;
    for file in opts.files.clone() {
        let result = if file == "-" {
            stream(&opts, io::stdin().lock(), io::stdout().lock())
        } else {
            one_file(&opts, &file)
        };
        match result {
            Ok(()) => {}
            Err(Failure::Warn(msg)) => {
                if !opts.quiet {
                    eprintln!("{prog}: {msg}");
                }
                status = status.max(WARNING);
            }
            Err(Failure::Error(msg)) => {
                eprintln!("{prog}: {msg}");
                status = ERROR;
            }
        }
    }
    status
}

fn parse(opts: &mut Options, args: Vec<OsString>) -> Result<(), String> {
    let mut only_files = false;
    for arg in args.into_iter().skip(1) {
        let arg = arg.to_string_lossy().into_owned();
        if only_files || arg == "-" || !arg.starts_with('-') {
            opts.files.push(arg);
            continue;
        }
        if arg == "--" {
            only_files = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            match long {
                "decompress" | "uncompress" => opts.decompress = true,
                "stdout" | "to-stdout" => opts.stdout = true,
                "keep" => opts.keep = true,
                "force" => opts.force = true,
                "no-name" => {}
                "quiet" | "silent" => opts.quiet = true,
                "fast" => opts.level = 1,
                "best" => opts.level = 9,
                _ => return Err(format!("unrecognized option '{arg}'")),
            }
            continue;
        }
        for c in arg.chars().skip(1) {
            match c {
                'd' => opts.decompress = true,
                'c' => opts.stdout = true,
                'k' => opts.keep = true,
                'f' => opts.force = true,
                'n' => {}
                'q' => opts.quiet = true,
                '1'..='9' => opts.level = c.to_digit(10).unwrap_or(6),
                _ => return Err(format!("invalid option -- '{c}'")),
            }
        }
    }
    Ok(())
}

/// Why one operand was not processed.
enum Failure {
    Warn(String),
    Error(String),
}

/// Compresses or decompresses `input` into `output`.
fn stream(opts: &Options, input: impl Read, output: impl Write) -> Result<(), Failure> {
    let mut output = BufWriter::new(output);
    let result = if opts.decompress {
        let mut decoder = MultiGzDecoder::new(BufReader::new(input));
        io::copy(&mut decoder, &mut output).map(|_| ())
    } else {
        let mut encoder = GzBuilder::new()
            .operating_system(3)
            .write(&mut output, Compression::new(opts.level));
        io::copy(&mut BufReader::new(input), &mut encoder)
            .and_then(|_| encoder.finish().map(|_| ()))
    };
    result
        .and_then(|()| output.flush())
        .map_err(|e| Failure::Error(format!("stdin: {}", describe(&e))))
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => "not in gzip format".into(),
        io::ErrorKind::UnexpectedEof => "unexpected end of file".into(),
        _ => why(e),
    }
}

fn one_file(opts: &Options, name: &str) -> Result<(), Failure> {
    let path = Path::new(name);
    if path.is_dir() {
        return Err(Failure::Warn(format!("{name} is a directory -- ignored")));
    }
    let target = if opts.decompress {
        if let Some(stem) = name.strip_suffix(".gz").filter(|s| !s.is_empty()) {
            stem.to_owned()
        } else if let Some(stem) = name.strip_suffix(".tgz").filter(|s| !s.is_empty()) {
            format!("{stem}.tar")
        } else if opts.stdout {
            String::new()
        } else {
            return Err(Failure::Warn(format!("{name}: unknown suffix -- ignored")));
        }
    } else {
        if name.ends_with(".gz") && !opts.stdout && !opts.force {
            return Err(Failure::Warn(format!(
                "{name} already has .gz suffix -- unchanged"
            )));
        }
        format!("{name}.gz")
    };
    let input = File::open(path).map_err(|e| Failure::Error(format!("{name}: {}", why(&e))))?;
    if opts.stdout {
        return stream(opts, input, io::stdout().lock()).map_err(|f| rename(f, name));
    }
    if Path::new(&target).exists() && !opts.force {
        return Err(Failure::Warn(format!(
            "{target} already exists; not overwritten"
        )));
    }
    let output =
        File::create(&target).map_err(|e| Failure::Error(format!("{target}: {}", why(&e))))?;
    if let Err(f) = stream(opts, input, output) {
        let _ = std::fs::remove_file(&target);
        return Err(rename(f, name));
    }
    if !opts.keep {
        std::fs::remove_file(path).map_err(|e| Failure::Error(format!("{name}: {}", why(&e))))?;
    }
    Ok(())
}

/// Names the file instead of stdin in a stream failure.
fn rename(f: Failure, name: &str) -> Failure {
    match f {
        Failure::Error(m) => Failure::Error(m.replacen("stdin", name, 1)),
        w => w,
    }
}

/// The dispatcher's entry point for `gzip` (applets.txt).
pub mod compress {
    use std::ffi::OsString;

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        super::gzip(args.collect())
    }
}

/// The dispatcher's entry point for `gunzip` (applets.txt).
pub mod decompress {
    use std::ffi::OsString;

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        super::gunzip(args.collect())
    }
}

/// The dispatcher's entry point for `zcat` (applets.txt).
pub mod decompress_to_stdout {
    use std::ffi::OsString;

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        super::zcat(args.collect())
    }
}
