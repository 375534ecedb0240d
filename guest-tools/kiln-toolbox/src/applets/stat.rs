//! stat: shows an entry with kiln's mode and owner (WASI has neither) next
//! to what p1 reports (kiln's virtual inode numbers and times).

use super::common::{perm_text, scan, strings, usage, why, Db, Info, Spec};
use super::time::{civil, Tm};
use std::ffi::OsString;

const APPLET: &str = "stat";

const SPEC: Spec = Spec {
    flags: "Lt",
    valued: "c",
    long: &[
        ("dereference", 'L', false),
        ("format", 'c', true),
        ("printf", 'p', true),
        ("terse", 't', false),
        ("help", '?', false),
    ],
};

const DEFAULT: &str = "  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\nDevice: %Hd,%Ld\tInode: %-11i Links: %h\nAccess: (%04a/%10.10A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\nAccess: %x\nModify: %y\nChange: %z\n Birth: %w\n";
const TERSE: &str = "%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o\n";

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = match strings(APPLET, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (opts, operands) = match scan(&args, &SPEC, |_| false) {
        Ok(x) => x,
        Err(e) => return usage(APPLET, &e),
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    if has('?') {
        println!("Usage: stat [-L] [-t] [-c FORMAT | --printf=FORMAT] FILE...");
        return 0;
    }
    let value = |c: char| {
        opts.iter()
            .rev()
            .find(|(o, _)| *o == c)
            .and_then(|(_, v)| v.clone())
    };
    let format = match (value('c'), value('p')) {
        (_, Some(p)) => unescape(&p),
        (Some(c), None) => format!("{c}\n"),
        (None, None) if has('t') => TERSE.to_owned(),
        (None, None) => DEFAULT.to_owned(),
    };
    if operands.is_empty() {
        return usage(APPLET, "missing operand");
    }
    let db = Db::load();
    let mut ok = true;
    for file in &operands {
        match Info::of(file, has('L')) {
            Ok(info) => print!("{}", render(&format, file, &info, &db)),
            Err(e) => {
                eprintln!("{APPLET}: cannot stat '{file}': {}", why(&e));
                ok = false;
            }
        }
    }
    i32::from(!ok)
}

/// `--printf`'s backslash escapes.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('a') => out.push('\x07'),
            Some('r') => out.push('\r'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The file name as `%N` shows it: quoted only when a shell would need it.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn kind_name(info: &Info) -> &'static str {
    match info.type_char() {
        'd' => "directory",
        'l' => "symbolic link",
        '-' if info.size == 0 => "regular empty file",
        '-' => "regular file",
        'b' => "block special file",
        'c' => "character special file",
        's' => "socket",
        _ => "fifo",
    }
}

fn date((secs, nanos): (i64, i64)) -> String {
    let Tm {
        year,
        month,
        day,
        hour,
        min,
        sec,
    } = civil(secs);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{min:02}:{sec:02}.{nanos:09} +0000")
}

/// One directive's text, and whether it is a number (for `0` padding).
fn directive(c: char, file: &str, info: &Info, db: &Db) -> Option<(String, bool)> {
    let o = info.owner;
    let fmt_bits = match info.type_char() {
        'd' => 0o040000,
        'l' => 0o120000,
        '-' => 0o100000,
        'b' => 0o060000,
        'c' => 0o020000,
        's' => 0o140000,
        _ => 0o010000,
    };
    let num = |n: u64| Some((n.to_string(), true));
    let text = |s: String| Some((s, false));
    match c {
        'a' => Some((format!("{:o}", o.mode), true)),
        'A' => text(format!("{}{}", info.type_char(), perm_text(o.mode))),
        'b' => num(info.blocks()),
        'B' => num(512),
        'd' => num(info.dev),
        'D' => text(format!("{:x}", info.dev)),
        'f' => text(format!("{:x}", fmt_bits | o.mode)),
        'F' => text(kind_name(info).to_owned()),
        'g' => num(o.gid.into()),
        'G' => text(db.group_name(o.gid)),
        'h' => num(info.nlink),
        'i' => num(info.ino),
        'm' => text("/".into()),
        'n' => text(file.to_owned()),
        'N' => {
            let mut s = quote(file);
            if info.is_symlink() {
                if let Ok(t) = std::fs::read_link(file) {
                    s = format!("{s} -> {}", quote(&t.to_string_lossy()));
                }
            }
            text(s)
        }
        'o' => num(4096),
        's' => num(info.size),
        't' | 'T' => text("0".into()),
        'u' => num(o.uid.into()),
        'U' => text(db.user_name(o.uid)),
        'w' => text("-".into()),
        'W' => num(0),
        'x' => text(date(info.atime)),
        'X' => Some((info.atime.0.to_string(), true)),
        'y' => text(date(info.mtime)),
        'Y' => Some((info.mtime.0.to_string(), true)),
        'z' => text(date(info.ctime)),
        'Z' => Some((info.ctime.0.to_string(), true)),
        _ => None,
    }
}

/// Expands `%[-0][WIDTH][.PREC]X` directives (and `%Hd`/`%Ld`: major and
/// minor of the one device kiln shows).
pub fn render(format: &str, file: &str, info: &Info, db: &Db) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '#' | '+' | ' ' | '\'' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = width * 10 + d as usize;
            i += 1;
        }
        let mut prec = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0usize;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                i += 1;
            }
            prec = Some(p);
        }
        let Some(&d) = chars.get(i) else {
            out.extend(&chars[start..]);
            break;
        };
        i += 1;
        let value = match d {
            '%' => Some(("%".to_owned(), false)),
            'H' | 'L' if chars.get(i) == Some(&'d') => {
                i += 1;
                let v = if d == 'H' { 0 } else { info.dev };
                Some((v.to_string(), true))
            }
            _ => directive(d, file, info, db),
        };
        let Some((mut s, numeric)) = value else {
            out.push('?');
            continue;
        };
        if let (Some(p), false) = (prec, numeric) {
            s = s.chars().take(p).collect();
        }
        let pad = width.saturating_sub(s.chars().count());
        if left {
            out.push_str(&s);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && numeric {
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(&s);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&s);
        }
    }
    out
}
