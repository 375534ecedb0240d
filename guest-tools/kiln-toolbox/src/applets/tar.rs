//! tar: create (-c), extract (-x) and list (-t) archives, with GNU tar's
//! common options, on the `tar` crate (and flate2 for -z, pure Rust).
//!
//! Creating writes operands in the order given and directories recursively
//! in sorted name order, GNU-format headers owned by root/root (WASI has no
//! owners or modes: files are 0644, directories 0755), padded to GNU's 10240
//! byte record. Extracting refuses members whose name contains `..`, strips a
//! leading `/`, and never writes through a symbolic link, so nothing lands
//! outside the destination. Reading detects gzip by its magic bytes.

use super::common::why;
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

const PROG: &str = "tar";
/// GNU tar's record size: archives are padded to a multiple of it.
const RECORD: u64 = 10240;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Create,
    Extract,
    List,
}

struct Options {
    mode: Option<Mode>,
    file: Option<String>,
    gzip: bool,
    verbose: bool,
    /// `-O`: extracted members' contents go to stdout, nothing to disk.
    to_stdout: bool,
    directory: Option<String>,
    strip: usize,
    operands: Vec<String>,
}

/// Entry point for `tar`.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.iter().any(|a| a == "--help") {
        println!("Usage: tar [OPTION...] [FILE]...\n\n  -c, --create              create a new archive\n  -x, --extract, --get      extract files from an archive\n  -t, --list                list the contents of an archive\n  -f, --file=ARCHIVE        use archive file ARCHIVE (- for stdin/stdout)\n  -z, --gzip                filter the archive through gzip\n  -C, --directory=DIR       change to directory DIR\n      --strip-components=N strip N leading components from names on extraction\n  -v, --verbose             verbosely list files processed\n  -O, --to-stdout           extract files to standard output\n  -p, --preserve-permissions  accepted (WASI has no modes)");
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{PROG}: {msg}");
            eprintln!("Try 'tar --help' for more information.");
            return 2;
        }
    };
    let mut tar = Tar {
        opts,
        failed: false,
    };
    let result = match tar.opts.mode {
        Some(Mode::Create) => tar.create(),
        Some(Mode::Extract) => tar.read(true),
        Some(Mode::List) => tar.read(false),
        None => Err(
            "You must specify one of the '-Acdtrux', '--delete' or '--test-label' options".into(),
        ),
    };
    match result {
        Ok(()) if !tar.failed => 0,
        Ok(()) => {
            eprintln!("{PROG}: Exiting with failure status due to previous errors");
            2
        }
        Err(msg) => {
            eprintln!("{PROG}: {msg}");
            eprintln!("{PROG}: Error is not recoverable: exiting now");
            2
        }
    }
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut opts = Options {
        mode: None,
        file: None,
        gzip: false,
        verbose: false,
        to_stdout: false,
        directory: None,
        strip: 0,
        operands: Vec::new(),
    };
    let mut args = args.into_iter().peekable();
    let mut first = true;
    let mut only_operands = false;
    while let Some(arg) = args.next() {
        // Old style: the first word is a cluster of letters without a dash.
        let cluster = if first && !arg.starts_with('-') {
            Some(arg.as_str())
        } else if !only_operands && arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 1
        {
            Some(&arg[1..])
        } else {
            None
        };
        first = false;
        if arg == "--" {
            only_operands = true;
            continue;
        }
        if let Some(cluster) = cluster {
            let chars: Vec<char> = cluster.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                i += 1;
                // A letter taking a value: the rest of the cluster (dash form)
                // or the next word.
                let mut value = |name: char| -> Result<String, String> {
                    if arg.starts_with('-') && i < chars.len() {
                        let v: String = chars[i..].iter().collect();
                        i = chars.len();
                        Ok(v)
                    } else {
                        args.next()
                            .ok_or_else(|| format!("option requires an argument -- '{name}'"))
                    }
                };
                match c {
                    'c' => set_mode(&mut opts, Mode::Create)?,
                    'x' => set_mode(&mut opts, Mode::Extract)?,
                    't' => set_mode(&mut opts, Mode::List)?,
                    'z' => opts.gzip = true,
                    'v' => opts.verbose = true,
                    'O' => opts.to_stdout = true,
                    'p' | 'o' => {}
                    'f' => opts.file = Some(value('f')?),
                    'C' => opts.directory = Some(value('C')?),
                    _ => return Err(format!("invalid option -- '{c}'")),
                }
            }
            continue;
        }
        if !only_operands && arg.starts_with("--") {
            let (name, inline) = match arg[2..].split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg[2..].to_owned(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("option '--{name}' requires an argument"))
            };
            match name.as_str() {
                "create" => set_mode(&mut opts, Mode::Create)?,
                "extract" | "get" => set_mode(&mut opts, Mode::Extract)?,
                "list" => set_mode(&mut opts, Mode::List)?,
                "gzip" | "gunzip" | "ungzip" => opts.gzip = true,
                "verbose" => opts.verbose = true,
                "to-stdout" => opts.to_stdout = true,
                "file" => opts.file = Some(value()?),
                "directory" => opts.directory = Some(value()?),
                "strip-components" => {
                    let v = value()?;
                    opts.strip = v
                        .parse()
                        .map_err(|_| format!("Invalid number of elements: '{v}'"))?;
                }
                "preserve-permissions"
                | "same-permissions"
                | "no-same-owner"
                | "same-owner"
                | "numeric-owner"
                | "no-same-permissions" => {}
                _ => return Err(format!("unrecognized option '{arg}'")),
            }
            continue;
        }
        opts.operands.push(arg);
    }
    Ok(opts)
}

fn set_mode(opts: &mut Options, mode: Mode) -> Result<(), String> {
    match opts.mode {
        Some(m) if m != mode => Err(
            "You may not specify more than one '-Acdtrux', '--delete' or  '--test-label' option"
                .into(),
        ),
        _ => {
            opts.mode = Some(mode);
            Ok(())
        }
    }
}

struct Tar {
    opts: Options,
    /// A member or operand failed; tar goes on and exits 2 at the end.
    failed: bool,
}

/// Counts what passes through, to pad the archive to a whole record.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Tar {
    fn to_stdout(&self) -> bool {
        matches!(self.opts.file.as_deref(), None | Some("-"))
    }

    /// Where -v lines go: stderr when the archive itself or (`-O`) the
    /// members' contents are on stdout.
    fn say(&self, line: &str) {
        if (self.opts.mode == Some(Mode::Create) && self.to_stdout()) || self.opts.to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    fn base(&self) -> PathBuf {
        PathBuf::from(self.opts.directory.as_deref().unwrap_or("."))
    }

    fn create(&mut self) -> Result<(), String> {
        if self.opts.operands.is_empty() {
            return Err("Cowardly refusing to create an empty archive".into());
        }
        let out: Box<dyn Write> = match self.opts.file.as_deref() {
            None | Some("-") => Box::new(io::stdout().lock()),
            Some(f) => {
                Box::new(File::create(f).map_err(|e| format!("{f}: Cannot open: {}", why(&e)))?)
            }
        };
        let write_err = |e: io::Error| format!("write error: {}", why(&e));
        if self.opts.gzip {
            let encoder = GzBuilder::new()
                .operating_system(3)
                .write(BufWriter::new(out), Compression::default());
            let encoder = self.write_archive(encoder)?;
            encoder
                .finish()
                .and_then(|mut w| w.flush())
                .map_err(write_err)
        } else {
            let mut w = self.write_archive(BufWriter::new(out))?;
            w.flush().map_err(write_err)
        }
    }

    /// Writes every operand, the end blocks and the record padding to `out`.
    fn write_archive<W: Write>(&mut self, out: W) -> Result<W, String> {
        let write_err = |e: io::Error| format!("write error: {}", why(&e));
        let mut builder = tar::Builder::new(Counting {
            inner: out,
            written: 0,
        });
        let mut warned_abs = false;
        for operand in self.opts.operands.clone() {
            let name = operand.trim_start_matches('/');
            if name.len() != operand.len() && !warned_abs {
                eprintln!("{PROG}: Removing leading `/' from member names");
                warned_abs = true;
            }
            let name = if name.is_empty() { "." } else { name };
            let src = self.base().join(&operand);
            self.add(&mut builder, &src, name)?;
        }
        builder.finish().map_err(write_err)?;
        let mut counting = builder.into_inner().map_err(write_err)?;
        let pad = (RECORD - counting.written % RECORD) % RECORD;
        io::copy(&mut io::repeat(0).take(pad), &mut counting).map_err(write_err)?;
        Ok(counting.inner)
    }

    /// Appends `src` as member `name`, and a directory's contents after it.
    fn add<W: Write>(
        &mut self,
        builder: &mut tar::Builder<W>,
        src: &Path,
        name: &str,
    ) -> Result<(), String> {
        let meta = match fs::symlink_metadata(src) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{PROG}: {name}: Cannot stat: {}", why(&e));
                self.failed = true;
                return Ok(());
            }
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        let _ = header.set_username("root");
        let _ = header.set_groupname("root");
        header.set_mtime(mtime);
        let write_err = |e: io::Error| format!("{name}: write error: {}", why(&e));
        if self.opts.verbose {
            let shown = if meta.is_dir() && !name.ends_with('/') {
                format!("{name}/")
            } else {
                name.to_owned()
            };
            self.say(&shown);
        }
        if meta.file_type().is_symlink() {
            let target =
                fs::read_link(src).map_err(|e| format!("{name}: Cannot readlink: {}", why(&e)))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_link(&mut header, name, target)
                .map_err(write_err)?;
        } else if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            let dir_name = if name.ends_with('/') {
                name.to_owned()
            } else {
                format!("{name}/")
            };
            builder
                .append_data(&mut header, &dir_name, io::empty())
                .map_err(write_err)?;
            let mut children: Vec<String> = match fs::read_dir(src) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) => {
                    eprintln!("{PROG}: {name}: Cannot open: {}", why(&e));
                    self.failed = true;
                    return Ok(());
                }
            };
            children.sort();
            for child in children {
                self.add(builder, &src.join(&child), &format!("{dir_name}{child}"))?;
            }
        } else if meta.is_file() {
            let file = match File::open(src) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{PROG}: {name}: Cannot open: {}", why(&e));
                    self.failed = true;
                    return Ok(());
                }
            };
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(meta.len());
            builder
                .append_data(&mut header, name, BufReader::new(file))
                .map_err(write_err)?;
        } else {
            eprintln!("{PROG}: {name}: socket ignored");
        }
        Ok(())
    }

    /// Lists or extracts the archive.
    fn read(&mut self, extract: bool) -> Result<(), String> {
        let input: Box<dyn Read> = match self.opts.file.as_deref() {
            None | Some("-") => Box::new(io::stdin().lock()),
            Some(f) => {
                Box::new(File::open(f).map_err(|e| format!("{f}: Cannot open: {}", why(&e)))?)
            }
        };
        let mut input = BufReader::new(input);
        let magic = input
            .fill_buf()
            .map_err(|e| format!("read error: {}", why(&e)))?;
        let gz = magic.starts_with(&[0x1f, 0x8b]);
        let input: Box<dyn Read> = if gz || self.opts.gzip {
            Box::new(MultiGzDecoder::new(input))
        } else {
            Box::new(input)
        };
        let mut archive = tar::Archive::new(input);
        let entries = archive
            .entries()
            .map_err(|e| format!("This does not look like a tar archive ({e})"))?;
        let wanted = self.opts.operands.clone();
        let mut seen = vec![false; wanted.len()];
        let mut warned_abs = false;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| format!("This does not look like a tar archive ({e})"))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if !wanted.is_empty() {
                let hit = wanted.iter().position(|w| {
                    let w = w.trim_end_matches('/');
                    let r = raw.trim_end_matches('/');
                    r == w || r.starts_with(&format!("{w}/"))
                });
                match hit {
                    Some(i) => seen[i] = true,
                    None => continue,
                }
            }
            if !extract {
                self.list(&entry, &raw);
                continue;
            }
            let name = raw.trim_start_matches('/');
            if name.len() != raw.len() && !warned_abs {
                eprintln!("{PROG}: Removing leading `/' from member names");
                warned_abs = true;
            }
            if Path::new(name)
                .components()
                .any(|c| c == Component::ParentDir)
            {
                eprintln!("{PROG}: {raw}: Member name contains '..'");
                self.failed = true;
                continue;
            }
            let parts: Vec<&str> = name
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            if parts.len() <= self.opts.strip {
                continue;
            }
            let rel: PathBuf = parts[self.opts.strip..].iter().collect();
            if self.opts.verbose {
                self.say(&raw);
            }
            if self.opts.to_stdout {
                if let Err(e) = Self::contents_to_stdout(&mut entry) {
                    eprintln!("{PROG}: {}: {}", rel.display(), why(&e));
                    self.failed = true;
                }
                continue;
            }
            if let Err(msg) = self.extract(&mut entry, &rel) {
                eprintln!("{PROG}: {}: {msg}", rel.display());
                self.failed = true;
            }
        }
        for (w, s) in wanted.iter().zip(seen) {
            if !s {
                eprintln!("{PROG}: {w}: Not found in archive");
                self.failed = true;
            }
        }
        Ok(())
    }

    fn list<R: Read>(&self, entry: &tar::Entry<R>, name: &str) {
        let header = entry.header();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        if !self.opts.verbose {
            println!("{name}");
            return;
        }
        let kind = header.entry_type();
        let type_char = match kind {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            tar::EntryType::Link => 'h',
            _ => '-',
        };
        let mode = header.mode().unwrap_or(0);
        let user = header
            .username()
            .ok()
            .flatten()
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| header.uid().unwrap_or(0).to_string());
        let group = header
            .groupname()
            .ok()
            .flatten()
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| header.gid().unwrap_or(0).to_string());
        let size = header.size().unwrap_or(0).to_string();
        // GNU's padding: owner/group and size share a field of 19 columns.
        let pad = user.len() + 1 + group.len() + 1 + size.len();
        let width = 19usize.max(pad) - pad + size.len();
        let when = timestamp(header.mtime().unwrap_or(0));
        let type_char = if type_char == 'h' { '-' } else { type_char };
        let mut line = format!(
            "{type_char}{} {user}/{group} {size:>width$} {when} {name}",
            mode_string(mode)
        );
        match (kind, link) {
            (tar::EntryType::Symlink, Some(l)) => line.push_str(&format!(" -> {l}")),
            (tar::EntryType::Link, Some(l)) => line.push_str(&format!(" link to {l}")),
            _ => {}
        }
        println!("{line}");
    }

    /// `-O`: a regular member's bytes to stdout; other kinds have none.
    fn contents_to_stdout<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<()> {
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        io::copy(entry, &mut out)?;
        out.flush()
    }

    /// Writes one member at `rel` under the destination.
    fn extract<R: Read>(&self, entry: &mut tar::Entry<R>, rel: &Path) -> Result<(), String> {
        let base = self.base();
        // Never write through a symbolic link the archive may have planted.
        let mut at = base.clone();
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            at.push(c);
            let last = i + 1 == comps.len();
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() && !last => {
                    return Err(
                        "Cannot open: Not a directory (a symbolic link is in the way)".into(),
                    );
                }
                Ok(m) if !last && !m.is_dir() => {
                    return Err("Cannot open: Not a directory".into());
                }
                Ok(_) => {}
                Err(_) if !last => {
                    fs::create_dir(&at).map_err(|e| format!("Cannot mkdir: {}", why(&e)))?
                }
                Err(_) => {}
            }
        }
        let dest = base.join(rel);
        let header = entry.header();
        let kind = header.entry_type();
        let mtime = header.mtime().unwrap_or(0);
        let remove_old = |dest: &Path| {
            if let Ok(m) = fs::symlink_metadata(dest) {
                if !m.is_dir() {
                    let _ = fs::remove_file(dest);
                }
            }
        };
        match kind {
            tar::EntryType::Directory => {
                if !dest.is_dir() {
                    remove_old(&dest);
                    fs::create_dir(&dest).map_err(|e| format!("Cannot mkdir: {}", why(&e)))?;
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .ok_or("Cannot create symlink: no target")?;
                remove_old(&dest);
                symlink(&target, &dest)
                    .map_err(|e| format!("Cannot create symlink to '{target}': {}", why(&e)))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .ok_or("Cannot hard link: no target")?;
                let target = target.trim_start_matches('/');
                if Path::new(target)
                    .components()
                    .any(|c| c == Component::ParentDir)
                {
                    return Err(format!(
                        "Cannot hard link to '{target}': Member name contains '..'"
                    ));
                }
                let parts: Vec<&str> = target
                    .split('/')
                    .filter(|p| !p.is_empty() && *p != ".")
                    .collect();
                if parts.len() <= self.opts.strip {
                    return Ok(());
                }
                let from: PathBuf = parts[self.opts.strip..].iter().collect();
                remove_old(&dest);
                fs::hard_link(base.join(&from), &dest).map_err(|e| {
                    format!("Cannot hard link to '{}': {}", from.display(), why(&e))
                })?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_old(&dest);
                let mut file =
                    File::create(&dest).map_err(|e| format!("Cannot open: {}", why(&e)))?;
                io::copy(entry, &mut file).map_err(|e| format!("Cannot write: {}", why(&e)))?;
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                let _ = file.set_modified(when);
            }
            _ => return Err("Cannot create special file: not supported in the sandbox".into()),
        }
        Ok(())
    }
}

/// A symbolic link; `std::fs::soft_link` is the only stable way on WASI.
#[allow(deprecated)]
fn symlink(target: &str, dest: &Path) -> io::Result<()> {
    fs::soft_link(target, dest)
}

/// `rwxr-xr-x` for the permission bits (with setuid/setgid/sticky letters).
fn mode_string(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for (shift, special, letter) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (mode & special != 0, x) {
            (true, true) => letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM` in UTC (the sandbox's only time zone).
fn timestamp(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The dispatcher's entry point (applets.txt).
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    main(args.collect())
}
