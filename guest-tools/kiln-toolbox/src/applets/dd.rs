//! dd: copies and converts blocks, GNU-compatible for what Dockerfiles use.
//! uu_dd always starts a progress thread, which WASI p1 cannot, so kiln
//! has its own: operands are parsed into [`Options`] first, then
//! [`copy`] moves the blocks and [`Stats`] renders GNU's report.

use super::common::why;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::os::fd::FromRawFd;
use std::time::Instant;

const HELP: &str = "\
Usage: dd [OPERAND]...
Copy a file, converting and formatting according to the operands.

  bs=BYTES        read and write up to BYTES bytes at a time (default: 512)
  count=N         copy only N input blocks
  ibs=BYTES       read up to BYTES bytes at a time (default: 512)
  if=FILE         read from FILE instead of stdin
  iflag=FLAGS     fullblock, count_bytes, skip_bytes (others accepted)
  obs=BYTES       write BYTES bytes at a time (default: 512)
  of=FILE         write to FILE instead of stdout
  oflag=FLAGS     append, seek_bytes (others accepted)
  seek=N          skip N obs-sized blocks at start of output
  skip=N          skip N ibs-sized blocks at start of input
  status=LEVEL    none, noxfer or progress (no extra output here)
  conv=CONVS      notrunc, sync, noerror, excl, nocreat, ucase, lcase,
                  fsync, fdatasync, sparse

N and BYTES may be followed by c=1, w=2, b=512, kB=1000, K=1024, MB, M,
GB, G, T, P, E (xB = powers of 1000, x or xiB = powers of 1024), and may
be a product like 2x512.
";

/// Runs dd.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args: Vec<String> = args
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.first().map(String::as_str) {
        Some("--help") => {
            print!("{HELP}");
            return 0;
        }
        Some("--version") => {
            println!("dd (kiln toolbox)");
            return 0;
        }
        _ => {}
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("dd: {e}");
            if e.hint() {
                eprintln!("Try 'dd --help' for more information.");
            }
            return 1;
        }
    };
    run(&opts)
}

// ---------------------------------------------------------------- operands

/// Why the operands are unusable; the text after `dd: `.
#[derive(Debug)]
enum UsageError {
    Operand(String),
    Option(String),
    Number(String),
    Conversion(String),
    InputFlag(String),
    OutputFlag(String),
    Status(String),
    Combine(&'static str, &'static str),
}

impl UsageError {
    /// Whether GNU adds the `Try 'dd --help'` line.
    fn hint(&self) -> bool {
        !matches!(self, UsageError::Number(_) | UsageError::Combine(..))
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageError::Operand(s) => write!(f, "unrecognized operand '{s}'"),
            UsageError::Option(s) => write!(f, "invalid option -- '{s}'"),
            UsageError::Number(s) => write!(f, "invalid number: '{s}'"),
            UsageError::Conversion(s) => write!(f, "invalid conversion: '{s}'"),
            UsageError::InputFlag(s) => write!(f, "invalid input flag: '{s}'"),
            UsageError::OutputFlag(s) => write!(f, "invalid output flag: '{s}'"),
            UsageError::Status(s) => write!(f, "invalid status level: '{s}'"),
            UsageError::Combine(a, b) => write!(f, "cannot combine {a} and {b}"),
        }
    }
}

/// How much of the final report to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Full,
    NoXfer,
    None,
}

/// The `conv=` symbols dd acts on (fsync, fdatasync and sparse change
/// nothing visible in a layer and are accepted only).
#[derive(Debug, Default, Clone, Copy)]
struct Conv {
    notrunc: bool,
    sync: bool,
    noerror: bool,
    excl: bool,
    nocreat: bool,
    ucase: bool,
    lcase: bool,
}

/// The `iflag=`/`oflag=` symbols dd acts on; the rest (direct, dsync, ...)
/// concern caching and are accepted only.
#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    fullblock: bool,
    count_bytes: bool,
    skip_bytes: bool,
    seek_bytes: bool,
    append: bool,
}

/// Every operand, resolved to bytes where dd needs bytes.
#[derive(Debug)]
struct Options {
    input: Option<String>,
    output: Option<String>,
    ibs: usize,
    obs: usize,
    /// `bs=` given: each input block is written as one output block.
    direct: bool,
    /// `count=`: input records (each read, however short, is one), or
    /// bytes with iflag=count_bytes.
    count: Option<Limit>,
    /// Input offset in bytes, and output offset in bytes.
    skip: Skip,
    seek: u64,
    conv: Conv,
    iflag: Flags,
    oflag: Flags,
    status: Status,
}

/// How much input `count=` lets dd read.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Records(u64),
    Bytes(u64),
}

/// `skip=`: whole ibs-sized blocks (each one read, when reading, however
/// short, as GNU counts them) and a byte tail.
#[derive(Debug, Default, Clone, Copy)]
struct Skip {
    blocks: u64,
    bytes: u64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, UsageError> {
        let mut input = None;
        let mut output = None;
        let (mut bs, mut ibs, mut obs) = (None, None, None);
        let (mut count, mut skip, mut seek) = (None, 0, 0);
        let mut conv = Conv::default();
        let mut iflag = Flags::default();
        let mut oflag = Flags::default();
        let mut status = Status::Full;
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                if let Some(rest) = arg.strip_prefix('-').filter(|r| !r.is_empty()) {
                    let first = rest.chars().next().unwrap_or('-');
                    return Err(UsageError::Option(first.to_string()));
                }
                return Err(UsageError::Operand(arg.clone()));
            };
            let size = || block_size(value);
            match key {
                "if" => input = Some(value.to_owned()),
                "of" => output = Some(value.to_owned()),
                "bs" => bs = Some(size()?),
                "ibs" => ibs = Some(size()?),
                "obs" => obs = Some(size()?),
                "count" => count = Some(number(value)?),
                "skip" | "iseek" => skip = number(value)?,
                "seek" | "oseek" => seek = number(value)?,
                "conv" => parse_conv(value, &mut conv)?,
                "iflag" => parse_flags(value, &mut iflag, true)?,
                "oflag" => parse_flags(value, &mut oflag, false)?,
                "status" => {
                    status = match value {
                        "none" => Status::None,
                        "noxfer" => Status::NoXfer,
                        "progress" => Status::Full,
                        _ => return Err(UsageError::Status(value.to_owned())),
                    }
                }
                _ => return Err(UsageError::Operand(arg.clone())),
            }
        }
        if conv.excl && conv.nocreat {
            return Err(UsageError::Combine("excl", "nocreat"));
        }
        if conv.lcase && conv.ucase {
            return Err(UsageError::Combine("lcase", "ucase"));
        }
        let (ibs, obs) = match bs {
            Some(b) => (b, b),
            None => (ibs.unwrap_or(512), obs.unwrap_or(512)),
        };
        let ibs64 = ibs as u64;
        let count = count.map(|n| {
            if iflag.count_bytes {
                Limit::Bytes(n)
            } else {
                Limit::Records(n)
            }
        });
        let skip = if iflag.skip_bytes {
            Skip {
                blocks: skip / ibs64,
                bytes: skip % ibs64,
            }
        } else {
            Skip {
                blocks: skip,
                bytes: 0,
            }
        };
        let seek = if oflag.seek_bytes {
            seek
        } else {
            seek.saturating_mul(obs as u64)
        };
        Ok(Options {
            input,
            output,
            ibs,
            obs,
            direct: bs.is_some(),
            count,
            skip,
            seek,
            conv,
            iflag,
            oflag,
            status,
        })
    }
}

fn parse_conv(value: &str, conv: &mut Conv) -> Result<(), UsageError> {
    for sym in value.split(',') {
        match sym {
            "notrunc" => conv.notrunc = true,
            "sync" => conv.sync = true,
            "noerror" => conv.noerror = true,
            "excl" => conv.excl = true,
            "nocreat" => conv.nocreat = true,
            "ucase" => conv.ucase = true,
            "lcase" => conv.lcase = true,
            "fsync" | "fdatasync" | "sparse" => {}
            _ => return Err(UsageError::Conversion(sym.to_owned())),
        }
    }
    Ok(())
}

fn parse_flags(value: &str, flags: &mut Flags, input: bool) -> Result<(), UsageError> {
    for sym in value.split(',') {
        match (sym, input) {
            ("fullblock", true) => flags.fullblock = true,
            ("count_bytes", true) => flags.count_bytes = true,
            ("skip_bytes", true) => flags.skip_bytes = true,
            ("seek_bytes", false) => flags.seek_bytes = true,
            ("append", _) => flags.append = true,
            (
                "direct" | "dsync" | "sync" | "nonblock" | "noatime" | "nocache" | "noctty"
                | "nofollow" | "binary" | "text" | "directory",
                _,
            ) => {}
            _ if input => return Err(UsageError::InputFlag(sym.to_owned())),
            _ => return Err(UsageError::OutputFlag(sym.to_owned())),
        }
    }
    Ok(())
}

/// A block size: a positive number that fits in memory.
fn block_size(text: &str) -> Result<usize, UsageError> {
    match number(text)? {
        0 => Err(UsageError::Number(text.to_owned())),
        n => usize::try_from(n).map_err(|_| UsageError::Number(text.to_owned())),
    }
}

/// A GNU dd number: decimal digits with an optional size suffix, or two
/// such factors joined by `x` (`2x512`).
fn number(text: &str) -> Result<u64, UsageError> {
    let bad = || UsageError::Number(text.to_owned());
    let trimmed = text.trim_start();
    let trimmed = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let (a, b) = match trimmed.split_once('x') {
        Some((a, b)) => (a, Some(b)),
        None => (trimmed, None),
    };
    let mut n = factor(a).ok_or_else(bad)?;
    if let Some(b) = b {
        n = n.checked_mul(factor(b).ok_or_else(bad)?).ok_or_else(bad)?;
    }
    Ok(n)
}

/// Digits and a suffix: c, w, b, B, or K/k, M, G, T, P, E (optionally
/// followed by `B` or `D` for powers of 1000, or `iB`).
fn factor(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = text[..digits].parse().ok()?;
    let suffix = &text[digits..];
    let unit: u64 = match suffix.as_bytes() {
        [] => 1,
        [b'c'] | [b'c', b'B'] | [b'B'] => 1,
        [b'w'] | [b'w', b'B'] => 2,
        [b'b'] | [b'b', b'B'] => 512,
        [letter, rest @ ..] => {
            let power = b"KMGTPEZY"
                .iter()
                .position(|p| *p == letter.to_ascii_uppercase())
                .filter(|_| *letter != b'm' && *letter != b'g')?;
            if letter.is_ascii_lowercase() && *letter != b'k' {
                return None;
            }
            let base: u64 = match rest {
                [] | [b'i', b'B'] => 1024,
                [b'B'] | [b'D'] => 1000,
                _ => return None,
            };
            base.checked_pow(u32::try_from(power + 1).ok()?)?
        }
    };
    n.checked_mul(unit)
}

// ---------------------------------------------------------------- files

/// A file dd opened, or one of the standard descriptors (never closed).
enum Handle {
    Owned(File),
    Std(ManuallyDrop<File>),
}

impl Handle {
    fn std(fd: i32) -> Handle {
        // SAFETY: descriptors 0 and 1 stay open for the whole process, and
        // ManuallyDrop keeps this File from closing them.
        Handle::Std(ManuallyDrop::new(unsafe { File::from_raw_fd(fd) }))
    }
}

impl Deref for Handle {
    type Target = File;
    fn deref(&self) -> &File {
        match self {
            Handle::Owned(f) => f,
            Handle::Std(f) => f,
        }
    }
}

impl DerefMut for Handle {
    fn deref_mut(&mut self) -> &mut File {
        match self {
            Handle::Owned(f) => f,
            Handle::Std(f) => f,
        }
    }
}

/// An open end of the copy and the name messages give it.
struct End {
    file: Handle,
    name: String,
}

fn open_input(opts: &Options) -> Result<End, String> {
    match &opts.input {
        None => Ok(End {
            file: Handle::std(0),
            name: "standard input".into(),
        }),
        Some(path) => File::open(path)
            .map(|f| End {
                file: Handle::Owned(f),
                name: path.clone(),
            })
            .map_err(|e| format!("failed to open '{path}': {}", why(&e))),
    }
}

/// Opens `of=` like GNU: created unless nocreat, truncated at the seek
/// offset unless notrunc (only regular files are truncated).
fn open_output(opts: &Options) -> Result<End, String> {
    let Some(path) = &opts.output else {
        return Ok(End {
            file: Handle::std(1),
            name: "standard output".into(),
        });
    };
    let mut oo = OpenOptions::new();
    oo.write(true);
    if opts.oflag.append {
        oo.append(true);
    }
    if opts.conv.excl {
        oo.create_new(true);
    } else if !opts.conv.nocreat {
        oo.create(true);
    }
    let fail = |e: io::Error| format!("failed to open '{path}': {}", why(&e));
    let file = oo.open(path).map_err(fail)?;
    if !opts.conv.notrunc && file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        file.set_len(opts.seek).map_err(|e| {
            format!(
                "failed to truncate to {} bytes in output file '{path}': {}",
                opts.seek,
                why(&e)
            )
        })?;
    }
    Ok(End {
        file: Handle::Owned(file),
        name: path.clone(),
    })
}

/// One read of up to `buf.len()` bytes; with `full`, reads until the
/// buffer is full or the input ends.
fn read_block(file: &mut File, buf: &mut [u8], full: bool) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if !full {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Whether `file` is a regular file, whose offsets lseek can move.
fn is_regular(file: &File) -> bool {
    file.metadata().map(|m| m.is_file()).unwrap_or(false)
}

/// Moves the input past `skip`: by seeking in a regular file, else by
/// reading. Returns false when the input ended first (GNU warns).
fn skip_input(input: &mut End, opts: &Options, buf: &mut [u8]) -> io::Result<bool> {
    let ibs = opts.ibs as u64;
    let total = opts.skip.blocks.saturating_mul(ibs) + opts.skip.bytes;
    if total == 0 {
        return Ok(true);
    }
    if is_regular(&input.file) {
        let len = input.file.metadata()?.len();
        let pos = input.file.stream_position()?;
        let offset = i64::try_from(total).map_err(io::Error::other)?;
        input.file.seek(SeekFrom::Current(offset))?;
        return Ok(pos.saturating_add(total) <= len);
    }
    let full = opts.iflag.fullblock;
    for _ in 0..opts.skip.blocks {
        if read_block(&mut input.file, buf, full)? == 0 {
            return Ok(false);
        }
    }
    let mut left = opts.skip.bytes as usize;
    while left > 0 {
        let n = read_block(&mut input.file, &mut buf[..left], true)?;
        if n == 0 {
            return Ok(false);
        }
        left -= n;
    }
    Ok(true)
}

/// Moves the output past `seek`; like GNU, an output that cannot seek (a
/// pipe) is an error, not padded.
fn seek_output(output: &mut End, seek: u64) -> io::Result<()> {
    if seek == 0 {
        return Ok(());
    }
    let offset = i64::try_from(seek).map_err(io::Error::other)?;
    output.file.seek(SeekFrom::Current(offset)).map(|_| ())
}

/// An error as GNU's strerror words it.
fn strerror(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotSeekable => "Illegal seek".into(),
        io::ErrorKind::StorageFull => "No space left on device".into(),
        _ => why(e),
    }
}

// ---------------------------------------------------------------- copying

/// Record counts and bytes written, for the report.
#[derive(Debug, Default)]
struct Stats {
    in_full: u64,
    in_partial: u64,
    out_full: u64,
    out_partial: u64,
    bytes: u64,
}

/// Writes one output record, counting it as full when it is `obs` long.
fn write_record(
    output: &mut End,
    data: &[u8],
    obs: usize,
    stats: &mut Stats,
) -> Result<(), String> {
    if data.is_empty() {
        return Ok(());
    }
    let mut done = 0;
    while done < data.len() {
        match output.file.write(&data[done..]) {
            Ok(0) => {
                stats.bytes += done as u64;
                return Err(format!(
                    "error writing '{}': No space left on device",
                    output.name
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                stats.bytes += done as u64;
                return Err(format!("error writing '{}': {}", output.name, strerror(&e)));
            }
        }
    }
    stats.bytes += data.len() as u64;
    if data.len() == obs {
        stats.out_full += 1;
    } else {
        stats.out_partial += 1;
    }
    Ok(())
}

/// A persistent read error (a directory) would repeat forever under
/// conv=noerror; give up after this many in a row.
const MAX_ERRORS_IN_A_ROW: u32 = 16;

/// Copies input to output; the error that ended the copy, if any (the
/// report is printed either way).
fn copy(
    input: &mut End,
    output: &mut End,
    opts: &Options,
    buf: &mut [u8],
    stats: &mut Stats,
) -> Result<(), String> {
    let ibs = opts.ibs;
    let mut pending: Vec<u8> = Vec::new();
    let mut left = opts.count;
    let mut errors = 0;
    loop {
        let want = match left {
            Some(Limit::Records(0) | Limit::Bytes(0)) => break,
            Some(Limit::Bytes(n)) => usize::try_from(n).map_or(ibs, |n| n.min(ibs)),
            Some(Limit::Records(_)) | None => ibs,
        };
        let got = match read_block(&mut input.file, &mut buf[..want], opts.iflag.fullblock) {
            Ok(0) => break,
            Ok(n) => {
                errors = 0;
                n
            }
            Err(e) => {
                let msg = format!("error reading '{}': {}", input.name, why(&e));
                errors += 1;
                if !opts.conv.noerror || errors >= MAX_ERRORS_IN_A_ROW {
                    return Err(msg);
                }
                eprintln!("dd: {msg}");
                let _ = input.file.seek(SeekFrom::Current(want as i64));
                continue;
            }
        };
        match left.as_mut() {
            Some(Limit::Records(n)) => *n -= 1,
            Some(Limit::Bytes(n)) => *n -= got as u64,
            None => {}
        }
        if got == ibs {
            stats.in_full += 1;
        } else {
            stats.in_partial += 1;
        }
        let mut len = got;
        if opts.conv.sync && len < ibs {
            buf[len..].fill(0);
            len = ibs;
        }
        let block = &mut buf[..len];
        if opts.conv.ucase {
            block.make_ascii_uppercase();
        } else if opts.conv.lcase {
            block.make_ascii_lowercase();
        }
        if opts.direct {
            write_record(output, block, opts.obs, stats)?;
        } else {
            pending.extend_from_slice(block);
            let mut start = 0;
            while pending.len() - start >= opts.obs {
                write_record(output, &pending[start..start + opts.obs], opts.obs, stats)?;
                start += opts.obs;
            }
            pending.drain(..start);
        }
    }
    write_record(output, &pending, opts.obs, stats)
}

/// Opens both ends, skips and seeks, copies and reports.
fn run(opts: &Options) -> i32 {
    let mut input = match open_input(opts) {
        Ok(i) => i,
        Err(msg) => return fail(&msg),
    };
    let mut output = match open_output(opts) {
        Ok(o) => o,
        Err(msg) => return fail(&msg),
    };
    let start = Instant::now();
    let mut stats = Stats::default();
    let mut status = 0;
    let mut buf = match buffer(opts.ibs) {
        Some(b) => b,
        None => {
            return fail(&format!(
                "memory exhausted by input buffer of size {} bytes",
                opts.ibs
            ))
        }
    };
    match skip_input(&mut input, opts, &mut buf) {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "dd: {}: cannot skip to specified offset",
            quote_if_needed(&input.name)
        ),
        Err(e) => {
            status = fail(&format!("'{}': cannot skip: {}", input.name, why(&e)));
        }
    }
    if status == 0 {
        if let Err(e) = seek_output(&mut output, opts.seek) {
            status = fail(&format!("'{}': cannot seek: {}", output.name, strerror(&e)));
        }
    }
    if status == 0 {
        if let Err(msg) = copy(&mut input, &mut output, opts, &mut buf, &mut stats) {
            status = fail(&msg);
        }
    }
    if opts.status != Status::None {
        let transfer = (opts.status == Status::Full).then(|| start.elapsed().as_nanos());
        eprint!("{}", stats.report(transfer));
    }
    status
}

/// A zeroed buffer of `len` bytes, or None when memory runs out (bs=4G
/// in a 32-bit guest), which GNU reports instead of aborting.
fn buffer(len: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).ok()?;
    buf.resize(len, 0);
    Some(buf)
}

fn fail(msg: &str) -> i32 {
    eprintln!("dd: {msg}");
    1
}

/// A name as GNU's `quotef` shows it: bare unless the shell needs quotes.
fn quote_if_needed(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+,:=@%^".contains(c));
    if plain {
        name.to_owned()
    } else {
        format!("'{name}'")
    }
}

// ---------------------------------------------------------------- report

impl Stats {
    /// GNU's report: the records lines, then (unless `status=noxfer`,
    /// `elapsed_ns` None) bytes, seconds and rate.
    fn report(&self, elapsed_ns: Option<u128>) -> String {
        let mut out = format!(
            "{}+{} records in\n{}+{} records out\n",
            self.in_full, self.in_partial, self.out_full, self.out_partial
        );
        let Some(ns) = elapsed_ns else {
            return out;
        };
        let n = self.bytes;
        let si = human(n, 1, 1, 1000);
        let iec = human(n, 1, 1, 1024);
        let plural = if n == 1 { "byte" } else { "bytes" };
        let _ = if !has_prefix(&si) {
            write!(out, "{n} {plural} copied")
        } else if !has_prefix(&iec) {
            write!(out, "{n} bytes ({si}) copied")
        } else {
            write!(out, "{n} bytes ({si}, {iec}) copied")
        };
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        if ns == 0 {
            out.push_str(", 0 s, Infinity B/s\n");
        } else {
            let secs = format_g(ns as f64 / 1e9);
            let rate = human(n, 1_000_000_000, ns, 1000);
            let _ = writeln!(out, ", {secs} s, {rate}/s");
        }
        out
    }
}

/// Whether a [`human`] amount carries a unit prefix (`1.0 kB`, not `999 B`).
fn has_prefix(text: &str) -> bool {
    !text.ends_with(" B")
}

/// `n * from / to` the way gnulib's human_readable prints it for dd
/// (autoscaled to `base`, rounded to nearest, one decimal below 10, a space
/// and `B`, `kB`/`KiB`, ...).
fn human(n: u64, from: u64, to: u64, base: u64) -> String {
    let (n, from, to, base) = (n as u128, from as u128, to as u128, base as u128);
    // (integer amount, tenths digit, rounding: 0 exact, 1 < half, 2 half, 3 > half)
    let exact = if to <= from && from % to == 0 {
        Some((n * (from / to), 0u128, 0u128))
    } else if to > from && to % from == 0 {
        let divisor = to / from;
        let r10 = (n % divisor) * 10;
        let r2 = (r10 % divisor) * 2;
        let rounding = if r2 < divisor {
            u128::from(r2 > 0)
        } else {
            2 + u128::from(r2 > divisor)
        };
        Some((n / divisor, r10 / divisor, rounding))
    } else {
        None
    };
    let (digits, exponent) = match exact {
        Some((amt, tenths, rounding)) => human_exact(amt, tenths, rounding, base),
        None => human_float(n as f64 * (from as f64 / to as f64), base),
    };
    let mut out = digits;
    out.push(' ');
    if exponent > 0 {
        let letter = if base == 1000 && exponent == 1 {
            'k'
        } else {
            char::from(b"KMGTPEZY"[(exponent - 1).min(7)])
        };
        out.push(letter);
        if base == 1024 {
            out.push('i');
        }
    }
    out.push('B');
    out
}

/// The integer path of human_readable: scale down by `base` keeping a
/// tenths digit and a rounding state, then round to nearest.
fn human_exact(mut amt: u128, mut tenths: u128, mut rounding: u128, base: u128) -> (String, usize) {
    let mut exponent = 0;
    let mut fraction = None;
    if amt >= base {
        while amt >= base && exponent < 8 {
            let r10 = (amt % base) * 10 + tenths;
            let r2 = (r10 % base) * 2 + (rounding >> 1);
            amt /= base;
            tenths = r10 / base;
            rounding = if r2 < base {
                u128::from(r2 + rounding != 0)
            } else {
                2 + u128::from(base < r2 + rounding)
            };
            exponent += 1;
        }
        if amt < 10 {
            if 2 < rounding + (tenths & 1) {
                tenths += 1;
                rounding = 0;
                if tenths == 10 {
                    amt += 1;
                    tenths = 0;
                }
            }
            if amt < 10 {
                fraction = Some(tenths);
                tenths = 0;
                rounding = 0;
            }
        }
    }
    if 5 < tenths + u128::from(0 < rounding + (amt & 1)) {
        amt += 1;
        if amt == base && exponent < 8 {
            exponent += 1;
            fraction = Some(0);
            amt = 1;
        }
    }
    let text = match fraction {
        Some(t) => format!("{amt}.{t}"),
        None => amt.to_string(),
    };
    (text, exponent)
}

/// The floating-point path of human_readable (always at least one prefix).
fn human_float(amount: f64, base: u128) -> (String, usize) {
    let base = base as f64;
    let mut e = 1.0;
    let mut exponent = 0;
    loop {
        e *= base;
        exponent += 1;
        if !(e * base <= amount && exponent < 8) {
            break;
        }
    }
    let scaled = amount / e;
    let mut text = format!("{scaled:.1}");
    let limit = if base == 1024.0 { 3 } else { 4 };
    if text.len() > limit {
        text = format!("{scaled:.0}");
    }
    (text, exponent)
}

/// C's `%g`: six significant digits, exponent form outside 1e-4..1e6,
/// trailing zeros dropped.
fn format_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        trim(&format!("{v:.decimals$}"))
    }
}
