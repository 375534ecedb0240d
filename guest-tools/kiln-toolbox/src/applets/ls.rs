//! ls: uutils' ls, except for long listings (`-l`, `-n`, `-g`, `-o`), which
//! show kiln's modes and owners (WASI has none, and uutils would show the
//! host's view) and are done here.

use super::common::{perm_text, scan, strings, why, Db, Info, Spec};
use super::time::{civil, month_abbr};
use std::ffi::OsString;

const APPLET: &str = "ls";

const SPEC: Spec = Spec {
    flags: "lngoaAdihrtSR1FpUL",
    valued: "",
    long: &[
        ("all", 'a', false),
        ("almost-all", 'A', false),
        ("directory", 'd', false),
        ("inode", 'i', false),
        ("human-readable", 'h', false),
        ("reverse", 'r', false),
        ("recursive", 'R', false),
        ("classify", 'F', false),
        ("numeric-uid-gid", 'n', false),
        ("full-time", 'T', false),
        ("dereference", 'L', false),
    ],
};

/// Whether `args` ask for a long listing.
fn wants_long(args: &[OsString]) -> bool {
    for a in args.iter().skip(1) {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a.starts_with("--") {
            if a == "--numeric-uid-gid"
                || a == "--full-time"
                || a == "--format=long"
                || a == "--format=verbose"
                || a == "-l"
            {
                return true;
            }
        } else if a.starts_with('-') && a[1..].chars().any(|c| "lngo".contains(c)) {
            return true;
        }
    }
    false
}

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.collect();
    if wants_long(&args) {
        long(args)
    } else {
        uu_ls::uumain(args.into_iter())
    }
}

struct Options {
    numeric: bool,
    owner: bool,
    group: bool,
    all: bool,
    almost: bool,
    dir_itself: bool,
    inode: bool,
    human: bool,
    reverse: bool,
    by_time: bool,
    by_size: bool,
    recursive: bool,
    classify: bool,
    slash: bool,
    full_time: bool,
    deref: bool,
}

/// One entry to show.
struct Entry {
    /// As shown (the operand, or the name inside its directory).
    name: String,
    path: String,
    info: Info,
}

fn long(args: Vec<OsString>) -> i32 {
    let mut args = match strings(APPLET, args.into_iter()) {
        Ok(a) => a,
        Err(code) => return if code == 0 { 0 } else { 2 },
    };
    // Colours and output formats other than long are moot here.
    args.retain(|a| !a.starts_with("--color") && !a.starts_with("--format="));
    let (opts, mut operands) = match scan(&args, &SPEC, |_| false) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{APPLET}: {e}\nTry 'ls --help' for more information.");
            return 2;
        }
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    let o = Options {
        numeric: has('n'),
        owner: !has('g'),
        group: !has('o'),
        all: has('a'),
        almost: has('A'),
        dir_itself: has('d'),
        inode: has('i'),
        human: has('h'),
        reverse: has('r'),
        by_time: has('t'),
        by_size: has('S'),
        recursive: has('R'),
        classify: has('F'),
        slash: has('p'),
        full_time: has('T'),
        deref: has('L'),
    };
    if operands.is_empty() {
        operands.push(".".into());
    }
    let db = Db::load();
    let mut status = 0;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for op in &operands {
        let follow = o.deref || op.ends_with('/');
        match Info::of(op, follow) {
            Ok(info) => {
                let entry = Entry {
                    name: op.clone(),
                    path: op.clone(),
                    info,
                };
                if info.is_dir() && !o.dir_itself {
                    dirs.push(entry);
                } else {
                    files.push(entry);
                }
            }
            Err(e) => {
                eprintln!("{APPLET}: cannot access '{op}': {}", why(&e));
                status = 2;
            }
        }
    }
    sort(&mut files, &o);
    sort(&mut dirs, &o);
    let mut out = String::new();
    if !files.is_empty() {
        table(&mut out, &files, &o, &db);
    }
    let headers = operands.len() > 1 || o.recursive;
    let mut first = files.is_empty();
    for d in &dirs {
        status = status.max(listing(&mut out, &d.path, &o, &db, headers, &mut first));
    }
    print!("{out}");
    status
}

fn sort(entries: &mut [Entry], o: &Options) {
    entries.sort_by(|a, b| {
        let by = if o.by_size {
            b.info.size.cmp(&a.info.size)
        } else if o.by_time {
            b.info.mtime.cmp(&a.info.mtime)
        } else {
            std::cmp::Ordering::Equal
        };
        by.then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });
    if o.reverse {
        entries.reverse();
    }
}

/// The listing of directory `path` (and, with -R, of those under it).
fn listing(
    out: &mut String,
    path: &str,
    o: &Options,
    db: &Db,
    header: bool,
    first: &mut bool,
) -> i32 {
    if !*first {
        out.push('\n');
    }
    *first = false;
    if header {
        out.push_str(&format!("{path}:\n"));
    }
    let mut names: Vec<String> = match std::fs::read_dir(path) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            eprintln!("{APPLET}: cannot open directory '{path}': {}", why(&e));
            return 2;
        }
    };
    if o.all {
        names.push(".".into());
        names.push("..".into());
    }
    let mut status = 0;
    let mut entries = Vec::new();
    for n in names {
        if n.starts_with('.') && !o.all && !o.almost {
            continue;
        }
        let child = if path.ends_with('/') {
            format!("{path}{n}")
        } else {
            format!("{path}/{n}")
        };
        match Info::of(&child, o.deref) {
            Ok(info) => entries.push(Entry {
                name: n,
                path: child,
                info,
            }),
            Err(e) => {
                eprintln!("{APPLET}: cannot access '{child}': {}", why(&e));
                status = 1;
            }
        }
    }
    sort(&mut entries, o);
    let total: u64 = entries.iter().map(|e| e.info.blocks()).sum::<u64>() / 2;
    let total = if o.human {
        human(total * 1024)
    } else {
        total.to_string()
    };
    out.push_str(&format!("total {total}\n"));
    table(out, &entries, o, db);
    if o.recursive {
        for e in &entries {
            if e.info.is_dir() && e.name != "." && e.name != ".." {
                status = status.max(listing(out, &e.path, o, db, true, first));
            }
        }
    }
    status
}

/// GNU's `-h`: one decimal below 10, rounded up.
fn human(n: u64) -> String {
    if n < 1024 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut unit = ' ';
    for u in ['K', 'M', 'G', 'T', 'P', 'E'] {
        v /= 1024.0;
        unit = u;
        if v < 1024.0 {
            break;
        }
    }
    if v < 10.0 {
        let tenths = (v * 10.0).ceil() / 10.0;
        if tenths < 10.0 {
            return format!("{tenths:.1}{unit}");
        }
    }
    format!("{}{unit}", v.ceil() as u64)
}

fn date(o: &Options, (secs, nanos): (i64, i64), now: i64) -> String {
    let t = civil(secs);
    if o.full_time {
        return format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{nanos:09} +0000",
            t.year, t.month, t.day, t.hour, t.min, t.sec
        );
    }
    const HALF_YEAR: i64 = 31_556_952 / 2;
    let m = month_abbr(t.month);
    if secs > now - HALF_YEAR && secs <= now {
        format!("{m} {:>2} {:02}:{:02}", t.day, t.hour, t.min)
    } else {
        format!("{m} {:>2}  {}", t.day, t.year)
    }
}

fn table(out: &mut String, entries: &[Entry], o: &Options, db: &Db) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let i = &e.info;
            let who = |id: u32, name: String| if o.numeric { id.to_string() } else { name };
            let mut name = e.name.clone();
            if i.is_symlink() {
                if let Ok(t) = std::fs::read_link(&e.path) {
                    name = format!("{name} -> {}", t.to_string_lossy());
                }
            } else if (o.classify || o.slash) && i.is_dir() {
                name.push('/');
            } else if o.classify && i.is_file() && i.owner.mode & 0o111 != 0 {
                name.push('*');
            }
            [
                i.ino.to_string(),
                format!("{}{}", i.type_char(), perm_text(i.owner.mode)),
                i.nlink.to_string(),
                who(i.owner.uid, db.user_name(i.owner.uid)),
                who(i.owner.gid, db.group_name(i.owner.gid)),
                if o.human {
                    human(i.size)
                } else {
                    i.size.to_string()
                },
                format!("{} {name}", date(o, i.mtime, now)),
            ]
        })
        .collect();
    let width = |k: usize| rows.iter().map(|r| r[k].len()).max().unwrap_or(0);
    let w: Vec<usize> = (0..6).map(width).collect();
    for r in &rows {
        let mut line = String::new();
        if o.inode {
            line.push_str(&format!("{:>w$} ", r[0], w = w[0]));
        }
        line.push_str(&format!("{} {:>w$} ", r[1], r[2], w = w[2]));
        if o.owner {
            line.push_str(&format!("{:<w$} ", r[3], w = w[3]));
        }
        if o.group {
            line.push_str(&format!("{:<w$} ", r[4], w = w[4]));
        }
        line.push_str(&format!("{:>w$} {}\n", r[5], r[6], w = w[5]));
        out.push_str(&line);
    }
}
