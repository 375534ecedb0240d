//! grep: GNU grep's common options over the `regex` crate. Patterns are
//! POSIX BRE (default, `-G`), ERE (`-E`) or fixed strings (`-F`), matched
//! per line in the C locale (bytes; `-i` folds ASCII only). Differences from
//! GNU: no back-references, no context (`-A/-B/-C`), no `-P`, no `-z`.

use super::common::why;
use super::glob;
use super::posix_regex::{self, Syntax};
use regex::bytes::{Regex, RegexBuilder};
use std::ffi::OsString;
use std::io::{self, Read as _, Write as _};
use std::path::Path;

/// Exit statuses, as GNU grep.
const MATCHED: i32 = 0;
const NO_MATCH: i32 = 1;
const TROUBLE: i32 = 2;

#[derive(Default)]
struct Options {
    syntax: Option<Syntax>,
    fixed: bool,
    patterns: Vec<Vec<u8>>,
    pattern_given: bool,
    invert: bool,
    count: bool,
    line_numbers: bool,
    recursive: bool,
    dereference: bool,
    quiet: bool,
    ignore_case: bool,
    words: bool,
    lines: bool,
    list_matching: bool,
    list_nonmatching: bool,
    with_filename: Option<bool>,
    only_matching: bool,
    no_messages: bool,
    max_count: Option<u64>,
    binary_text: bool,
    include: Vec<String>,
    exclude: Vec<String>,
    exclude_dir: Vec<String>,
    files: Vec<String>,
}

const HELP: &str = "\
Usage: grep [OPTION]... PATTERNS [FILE]...
Search for PATTERNS in each FILE (or standard input).

  -E, -F, -G      PATTERNS are extended regexps, fixed strings, basic regexps
  -e PATTERNS     use PATTERNS for matching;  -f FILE  take PATTERNS from FILE
  -i, -w, -x      ignore case; match whole words; match whole lines
  -v, -c, -n      select non-matching lines; count; prefix line numbers
  -o, -q, -s      only the matches; quiet; no messages about files
  -l, -L          list files with / without matches
  -h, -H          without / with file names;  -m NUM  stop after NUM lines
  -r, -R          search directories (-R follows all symlinks)
      --include=GLOB --exclude=GLOB --exclude-dir=GLOB  filter -r
Exit status: 0 if a line is selected, 1 if none, 2 on trouble.
Back-references are not supported (kiln's grep uses the regex crate).
";

/// Runs grep.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = super::command::strings(args.skip(1));
    if super::command::help(&args, HELP) {
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("grep: {msg}");
            eprintln!("Usage: grep [OPTION]... PATTERNS [FILE]...");
            return TROUBLE;
        }
    };
    let regex = match build(&opts) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("grep: {msg}");
            return TROUBLE;
        }
    };
    let mut grep = Grep {
        regex,
        out: io::BufWriter::new(io::stdout().lock()),
        matched: false,
        trouble: false,
        opts,
    };
    let status = grep.run_all();
    if grep.out.flush().is_err() {
        return TROUBLE;
    }
    status
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut operands = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            operands.extend(it.by_ref());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let mut need = |value: Option<String>| {
                value
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("option '--{name}' requires an argument"))
            };
            match name {
                "extended-regexp" => o.syntax = Some(Syntax::Extended),
                "basic-regexp" => o.syntax = Some(Syntax::Basic),
                "fixed-strings" => o.fixed = true,
                "invert-match" => o.invert = true,
                "count" => o.count = true,
                "line-number" => o.line_numbers = true,
                "recursive" => o.recursive = true,
                "dereference-recursive" => {
                    o.recursive = true;
                    o.dereference = true;
                }
                "quiet" | "silent" => o.quiet = true,
                "ignore-case" => o.ignore_case = true,
                "no-ignore-case" => o.ignore_case = false,
                "word-regexp" => o.words = true,
                "line-regexp" => o.lines = true,
                "files-with-matches" => o.list_matching = true,
                "files-without-match" => o.list_nonmatching = true,
                "with-filename" => o.with_filename = Some(true),
                "no-filename" => o.with_filename = Some(false),
                "only-matching" => o.only_matching = true,
                "no-messages" => o.no_messages = true,
                "text" => o.binary_text = true,
                "regexp" => {
                    o.patterns.push(need(value)?.into_bytes());
                    o.pattern_given = true;
                }
                "file" => {
                    read_pattern_file(&need(value)?, &mut o)?;
                }
                "max-count" => o.max_count = Some(number(&need(value)?)?),
                "include" => o.include.push(need(value)?),
                "exclude" => o.exclude.push(need(value)?),
                "exclude-dir" => o.exclude_dir.push(need(value)?),
                "color" | "colour" => match value.as_deref() {
                    None | Some("never" | "auto" | "always" | "none" | "no" | "tty" | "if-tty") => {
                    }
                    Some(other) => return Err(format!("invalid argument '{other}' for '--color'")),
                },
                _ => return Err(format!("unrecognized option '--{name}'")),
            }
            continue;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            operands.push(arg);
            continue;
        }
        let flags: Vec<char> = arg[1..].chars().collect();
        let mut k = 0;
        while k < flags.len() {
            let f = flags[k];
            k += 1;
            // Options with an argument take the rest of the word or the next one.
            let mut value = || -> Result<String, String> {
                let rest: String = flags[k..].iter().collect();
                k = flags.len();
                if rest.is_empty() {
                    it.next()
                        .ok_or_else(|| format!("option requires an argument -- '{f}'"))
                } else {
                    Ok(rest)
                }
            };
            match f {
                'E' => o.syntax = Some(Syntax::Extended),
                'G' => o.syntax = Some(Syntax::Basic),
                'F' => o.fixed = true,
                'v' => o.invert = true,
                'c' => o.count = true,
                'n' => o.line_numbers = true,
                'r' => o.recursive = true,
                'R' => {
                    o.recursive = true;
                    o.dereference = true;
                }
                'q' => o.quiet = true,
                'i' | 'y' => o.ignore_case = true,
                'w' => o.words = true,
                'x' => o.lines = true,
                'l' => o.list_matching = true,
                'L' => o.list_nonmatching = true,
                'H' => o.with_filename = Some(true),
                'h' => o.with_filename = Some(false),
                'o' => o.only_matching = true,
                's' => o.no_messages = true,
                'a' => o.binary_text = true,
                'e' => {
                    o.patterns.push(value()?.into_bytes());
                    o.pattern_given = true;
                }
                'f' => {
                    let file = value()?;
                    read_pattern_file(&file, &mut o)?;
                }
                'm' => o.max_count = Some(number(&value()?)?),
                'A' | 'B' | 'C' | 'P' | 'z' => {
                    return Err(format!("option -{f} is not supported by kiln's grep"))
                }
                _ => return Err(format!("invalid option -- '{f}'")),
            }
        }
    }
    let mut operands = operands.into_iter();
    if !o.pattern_given {
        let Some(p) = operands.next() else {
            return Err("no pattern given".into());
        };
        o.patterns.push(p.into_bytes());
    }
    o.files = operands.collect();
    // A pattern with newlines is one pattern per line, as in GNU grep.
    o.patterns = o
        .patterns
        .iter()
        .flat_map(|p| {
            p.split(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(o)
}

fn number(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("invalid max count '{s}'"))
}

fn read_pattern_file(file: &str, o: &mut Options) -> Result<(), String> {
    let bytes = if file == "-" {
        let mut buf = Vec::new();
        io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("(standard input): {}", why(&e)))?;
        buf
    } else {
        std::fs::read(file).map_err(|e| format!("{file}: {}", why(&e)))?
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if !bytes.is_empty() {
        o.patterns
            .extend(body.split(|&b| b == b'\n').map(<[u8]>::to_vec));
    }
    o.pattern_given = true;
    Ok(())
}

/// One regex for all patterns; `None` when there are none (`-f /dev/null`
/// matches nothing).
fn build(o: &Options) -> Result<Option<Regex>, String> {
    if o.patterns.is_empty() {
        return Ok(None);
    }
    let syntax = o.syntax.unwrap_or(Syntax::Basic);
    let mut alternatives = Vec::new();
    for p in &o.patterns {
        let translated = if o.fixed {
            posix_regex::literal(p)
        } else {
            posix_regex::translate(p, syntax)?
        };
        alternatives.push(format!("(?:{translated})"));
    }
    let mut re = alternatives.join("|");
    if o.lines {
        re = format!("^(?:{re})$");
    } else if o.words {
        re = format!("\\b{{start-half}}(?:{re})\\b{{end-half}}");
    }
    RegexBuilder::new(&re)
        .unicode(false)
        .case_insensitive(o.ignore_case)
        .size_limit(64 << 20)
        .build()
        .map(Some)
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "regular expression too big".to_owned(),
            other => format!("invalid regular expression: {other}"),
        })
}

struct Grep<W: io::Write> {
    regex: Option<Regex>,
    out: W,
    matched: bool,
    trouble: bool,
    opts: Options,
}

/// Stop searching: `-q` found a line, or stdout is gone.
struct Stop;

impl<W: io::Write> Grep<W> {
    fn run_all(&mut self) -> i32 {
        let mut files = std::mem::take(&mut self.opts.files);
        let implicit_dot = files.is_empty() && self.opts.recursive;
        if files.is_empty() {
            files.push(if implicit_dot { ".".into() } else { "-".into() });
        }
        let with_name = self
            .opts
            .with_filename
            .unwrap_or(files.len() > 1 || self.opts.recursive);
        self.opts.with_filename = Some(with_name);
        for file in &files {
            let result = if file == "-" {
                self.stdin()
            } else if implicit_dot {
                self.walk_dir(Path::new("."), "", true)
            } else {
                self.path(file, true)
            };
            if result.is_err() {
                break;
            }
        }
        if self.trouble && !(self.opts.quiet && self.matched) {
            TROUBLE
        } else if self.matched {
            MATCHED
        } else {
            NO_MATCH
        }
    }

    fn error(&mut self, name: &str, e: &io::Error) {
        self.trouble = true;
        if !self.opts.no_messages {
            let _ = self.out.flush();
            eprintln!("grep: {name}: {}", why(e));
        }
    }

    fn stdin(&mut self) -> Result<(), Stop> {
        let mut buf = Vec::new();
        match io::stdin().lock().read_to_end(&mut buf) {
            Ok(_) => self.search("(standard input)", &buf),
            Err(e) => {
                self.error("(standard input)", &e);
                Ok(())
            }
        }
    }

    /// A file operand or a file found by `-r`.
    fn path(&mut self, name: &str, command_line: bool) -> Result<(), Stop> {
        let path = Path::new(name);
        let follow = command_line || self.opts.dereference;
        let meta = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                self.error(name, &e);
                return Ok(());
            }
        };
        if meta.file_type().is_symlink() {
            // -r skips symlinks it meets while walking.
            return Ok(());
        }
        if meta.is_dir() {
            if self.opts.recursive {
                return self.walk_dir(path, name, command_line);
            }
            self.error(name, &io::Error::from(io::ErrorKind::IsADirectory));
            return Ok(());
        }
        if !self.included(name, command_line) {
            return Ok(());
        }
        match std::fs::read(path) {
            Ok(bytes) => self.search(name, &bytes),
            Err(e) => {
                self.error(name, &e);
                Ok(())
            }
        }
    }

    /// `--include`/`--exclude` look at the base name (and, on the command
    /// line, the whole operand too).
    fn included(&self, name: &str, command_line: bool) -> bool {
        let base = name.rsplit('/').next().unwrap_or(name).as_bytes();
        let hit = |globs: &[String]| {
            globs.iter().any(|g| {
                glob::matches(g.as_bytes(), base, false)
                    || (command_line && glob::matches(g.as_bytes(), name.as_bytes(), false))
            })
        };
        if hit(&self.opts.exclude) {
            return false;
        }
        self.opts.include.is_empty() || hit(&self.opts.include)
    }

    /// Searches a directory's entries in the order it lists them; `prefix`
    /// is how they are named (`""` for the implicit `.` of `grep -r`).
    fn walk_dir(&mut self, path: &Path, prefix: &str, command_line: bool) -> Result<(), Stop> {
        if !command_line {
            let base = prefix.rsplit('/').next().unwrap_or(prefix).as_bytes();
            if self
                .opts
                .exclude_dir
                .iter()
                .any(|g| glob::matches(g.as_bytes(), base, false))
            {
                return Ok(());
            }
        }
        let entries = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                let shown = if prefix.is_empty() { "." } else { prefix };
                self.error(shown, &e);
                return Ok(());
            }
        };
        let mut names = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e.file_name().to_string_lossy().into_owned()),
                Err(e) => self.error(prefix, &e),
            }
        }
        for name in names {
            let child = if prefix.is_empty() {
                name
            } else if prefix.ends_with('/') {
                format!("{prefix}{name}")
            } else {
                format!("{prefix}/{name}")
            };
            self.path(&child, false)?;
        }
        Ok(())
    }

    fn search(&mut self, name: &str, data: &[u8]) -> Result<(), Stop> {
        let o = &self.opts;
        let binary = !o.binary_text && data.contains(&0);
        let body = data.strip_suffix(b"\n").unwrap_or(data);
        let mut count: u64 = 0;
        let prefix_name = o.with_filename == Some(true);
        let listing = o.list_matching || o.list_nonmatching;
        let silent = o.quiet || listing || o.count || binary;
        let write = |out: &mut W, text: &[u8]| out.write_all(text).map_err(|_| Stop);
        if !data.is_empty() {
            for (index, line) in body.split(|&b| b == b'\n').enumerate() {
                if o.max_count.is_some_and(|m| count >= m) {
                    break;
                }
                let hit = self.regex.as_ref().is_some_and(|r| r.is_match(line));
                if hit == o.invert {
                    continue;
                }
                count += 1;
                self.matched = true;
                if o.quiet {
                    return Err(Stop);
                }
                if silent {
                    if listing || (binary && !o.count) {
                        break;
                    }
                    continue;
                }
                let mut head = Vec::new();
                if prefix_name {
                    head.extend_from_slice(name.as_bytes());
                    head.push(b':');
                }
                if o.line_numbers {
                    head.extend_from_slice(format!("{}:", index + 1).as_bytes());
                }
                if o.only_matching {
                    if o.invert {
                        continue;
                    }
                    if let Some(re) = &self.regex {
                        for m in re.find_iter(line).filter(|m| !m.is_empty()) {
                            write(&mut self.out, &head)?;
                            write(&mut self.out, m.as_bytes())?;
                            write(&mut self.out, b"\n")?;
                        }
                    }
                } else {
                    write(&mut self.out, &head)?;
                    write(&mut self.out, line)?;
                    write(&mut self.out, b"\n")?;
                }
            }
        }
        let o = &self.opts;
        if o.count {
            let text = if prefix_name {
                format!("{name}:{count}\n")
            } else {
                format!("{count}\n")
            };
            write(&mut self.out, text.as_bytes())?;
        }
        if (o.list_matching && count > 0) || (o.list_nonmatching && count == 0) {
            write(&mut self.out, format!("{name}\n").as_bytes())?;
        } else if binary && count > 0 && !o.count && !listing {
            let _ = self.out.flush();
            eprintln!("grep: {name}: binary file matches");
        }
        Ok(())
    }
}
