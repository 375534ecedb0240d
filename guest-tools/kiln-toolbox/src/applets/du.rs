//! du: disk usage of files and directory trees, GNU-compatible for the
//! common flags.
//!
//! WASI p1 reports no allocated block counts, and kiln's answers must not
//! depend on the host's filesystem, so "disk usage" is defined
//! deterministically (ext4's usual numbers): a regular file uses its apparent
//! size rounded up to whole 4 KiB blocks, a directory one 4 KiB block, and
//! anything else (symbolic links, devices) none. `-b`/`--apparent-size`
//! count `st_size` instead (kiln reports 4096 for directories). Entries are
//! visited in kiln's (sorted) directory order and printed like GNU: a
//! directory after its contents. Hard-linked files count once.

use super::common::{children, scan, strings, usage, why, Info, Spec};
use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;

const SPEC: Spec = Spec {
    flags: "0abchklmsxDHLPS",
    valued: "dB",
    long: &[
        ("all", 'a', false),
        ("apparent-size", 'A', false),
        ("block-size", 'B', true),
        ("bytes", 'b', false),
        ("total", 'c', false),
        ("count-links", 'l', false),
        ("dereference", 'L', false),
        ("dereference-args", 'D', false),
        ("human-readable", 'h', false),
        ("max-depth", 'd', true),
        ("no-dereference", 'P', false),
        ("null", '0', false),
        ("one-file-system", 'x', false),
        ("separate-dirs", 'S', false),
        ("summarize", 's', false),
    ],
};

/// Which symbolic links du follows.
#[derive(Clone, Copy, PartialEq)]
enum Follow {
    Never,
    Operands,
    Always,
}

struct Du {
    apparent: bool,
    /// Output unit in bytes; `None` for `-h`.
    block: Option<u64>,
    all: bool,
    max_depth: Option<usize>,
    follow: Follow,
    count_links: bool,
    /// With several operands GNU counts every file once, not only hard links.
    hash_all: bool,
    separate_dirs: bool,
    eol: char,
    seen: HashSet<(u64, u64)>,
    failed: bool,
}

/// Runs du.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = match strings("du", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (opts, mut operands) = match scan(&args, &SPEC, |_| false) {
        Ok(x) => x,
        Err(msg) => return usage("du", &msg),
    };
    let mut du = Du {
        apparent: false,
        block: Some(1024),
        all: false,
        max_depth: None,
        follow: Follow::Never,
        count_links: false,
        hash_all: operands.len() > 1,
        separate_dirs: false,
        eol: '\n',
        seen: HashSet::new(),
        failed: false,
    };
    let mut summarize = false;
    let mut total = false;
    for (c, value) in opts {
        match c {
            '0' => du.eol = '\0',
            'a' => du.all = true,
            'A' => du.apparent = true,
            'b' => {
                du.apparent = true;
                du.block = Some(1);
            }
            'c' => total = true,
            'h' => du.block = None,
            'k' => du.block = Some(1024),
            'm' => du.block = Some(1024 * 1024),
            'B' => match value.as_deref().and_then(parse_size) {
                Some(b) => du.block = Some(b),
                None => {
                    eprintln!(
                        "du: invalid -B argument '{}'",
                        value.as_deref().unwrap_or("")
                    );
                    return 1;
                }
            },
            'l' => du.count_links = true,
            's' => summarize = true,
            'd' => {
                let v = value.unwrap_or_default();
                match v.parse::<usize>() {
                    Ok(n) => du.max_depth = Some(n),
                    Err(_) => {
                        eprintln!("du: invalid maximum depth '{v}'");
                        return 1;
                    }
                }
            }
            'L' => du.follow = Follow::Always,
            'D' | 'H' => du.follow = Follow::Operands,
            'P' => du.follow = Follow::Never,
            'S' => du.separate_dirs = true,
            // -x: kiln's image is one file system.
            _ => {}
        }
    }
    if summarize {
        if du.all {
            return usage("du", "cannot both summarize and show all entries");
        }
        if du.max_depth.is_some_and(|d| d != 0) {
            eprintln!(
                "du: warning: summarizing conflicts with --max-depth={}",
                du.max_depth.unwrap_or(0)
            );
            eprintln!("Try 'du --help' for more information.");
            return 1;
        }
        du.max_depth = Some(0);
    }
    if operands.is_empty() {
        operands.push(".".into());
    }
    let mut sum = 0u64;
    for op in &operands {
        sum += du.visit(op, 0);
    }
    if total {
        du.print(sum, "total");
    }
    i32::from(du.failed)
}

impl Du {
    /// Counts `path` (and what is under it), printing lines as GNU does;
    /// returns its size in bytes.
    fn visit(&mut self, path: &str, depth: usize) -> u64 {
        let follow = match self.follow {
            Follow::Always => true,
            Follow::Operands => depth == 0,
            Follow::Never => false,
        };
        let info = match Info::of(path, follow) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("du: cannot access '{path}': {}", why(&e));
                self.failed = true;
                return 0;
            }
        };
        let once = info.is_dir() || self.hash_all || info.nlink > 1;
        if !self.count_links && once && !self.seen.insert((info.dev, info.ino)) {
            return 0;
        }
        let mut size = self.size_of(&info);
        if info.is_dir() {
            let children = match children(path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("du: cannot read directory '{path}': {}", why(&e));
                    self.failed = true;
                    Vec::new()
                }
            };
            for child in children {
                let is_dir =
                    Info::of(&child, self.follow == Follow::Always).is_ok_and(|i| i.is_dir());
                let below = self.visit(&child, depth + 1);
                if !(self.separate_dirs && is_dir) {
                    size += below;
                }
            }
        }
        let shown = self.max_depth.is_none_or(|m| depth <= m);
        if shown && (depth == 0 || info.is_dir() || self.all) {
            self.print(size, path);
        }
        size
    }

    /// One entry's own size: apparent, or the deterministic disk usage.
    fn size_of(&self, info: &Info) -> u64 {
        if self.apparent {
            info.size
        } else {
            info.blocks() * 512
        }
    }

    fn print(&self, bytes: u64, name: &str) {
        let amount = match self.block {
            Some(b) => bytes.div_ceil(b.max(1)).to_string(),
            None => human(bytes),
        };
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{amount}\t{name}{}", self.eol);
    }
}

/// `-B`'s SIZE: a number with an optional K, M, G, T (powers of 1024,
/// optionally followed by `iB`) or KB, MB... (powers of 1000) suffix.
fn parse_size(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits);
    let n: u64 = if num.is_empty() { 1 } else { num.parse().ok()? };
    let (letter, rest) = match suffix.chars().next() {
        Some(c) => (Some(c.to_ascii_uppercase()), &suffix[c.len_utf8()..]),
        None => (None, ""),
    };
    let power = match letter {
        None => 0,
        Some(c) => "KMGTPE".find(c)? as u32 + 1,
    };
    let base: u64 = match rest {
        "" | "iB" => 1024,
        "B" => 1000,
        _ => return None,
    };
    let size = n.checked_mul(base.checked_pow(power)?)?;
    (size > 0).then_some(size)
}

/// GNU's `-h`: bytes below 1024 as they are, then K, M, G...; one decimal
/// below 10, both rounded up.
pub fn human(bytes: u64) -> String {
    const UNITS: &[char] = &['K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let b = u128::from(bytes);
    let mut p = 1;
    while p < UNITS.len() && b >= 1024u128.pow(p as u32 + 1) {
        p += 1;
    }
    loop {
        let unit = 1024u128.pow(p as u32);
        let tenths = (b * 10).div_ceil(unit);
        if tenths < 100 {
            return format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[p - 1]);
        }
        let whole = b.div_ceil(unit);
        if whole >= 1024 && p < UNITS.len() {
            p += 1;
            continue;
        }
        return format!("{whole}{}", UNITS[p - 1]);
    }
}
