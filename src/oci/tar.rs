//! A minimal deterministic tar encoder: ustar headers, plus one PAX extended
//! header (with a fixed name) only when a value does not fit ustar.
//!
//! Written by hand rather than with `tar::Builder` because kiln must decide
//! every byte: `tar::Builder` uses GNU long-name records for long paths,
//! while the contract asks for ustar + PAX.

use std::io::{self, Write};

pub const BLOCK: usize = 512;

/// Name of every PAX extended header block: constant, so no PID, time or
/// path leaks into the archive.
const PAX_NAME: &str = "././@PaxHeader";

/// Largest value of an 11-digit octal field (size, mtime).
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// Largest value of a 7-digit octal field (uid, gid, devmajor, devminor).
const MAX_OCTAL_7: u64 = 0o777_7777;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// Everything a header says. `name` is relative, without a leading `/`;
/// directories carry a trailing `/`.
#[derive(Clone, Debug)]
pub struct Header<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub link: &'a str,
    pub dev: (u32, u32),
}

/// Writes the header (preceded by a PAX header when needed). The caller
/// then writes `size` bytes of content and [`padding`].
pub fn write_header(w: &mut (impl Write + ?Sized), h: &Header) -> io::Result<()> {
    let mut pax: Vec<(&str, String)> = Vec::new();
    let split = split_name(h.name);
    if split.is_none() {
        pax.push(("path", h.name.to_string()));
    }
    if h.link.len() > 100 || !h.link.is_ascii() {
        pax.push(("linkpath", h.link.to_string()));
    }
    if h.size > MAX_OCTAL_11 {
        pax.push(("size", h.size.to_string()));
    }
    if h.mtime > MAX_OCTAL_11 {
        pax.push(("mtime", h.mtime.to_string()));
    }
    if h.uid > MAX_OCTAL_7 {
        pax.push(("uid", h.uid.to_string()));
    }
    if h.gid > MAX_OCTAL_7 {
        pax.push(("gid", h.gid.to_string()));
    }
    if u64::from(h.dev.0) > MAX_OCTAL_7 || u64::from(h.dev.1) > MAX_OCTAL_7 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "device number {}:{} of {} does not fit a tar header",
                h.dev.0, h.dev.1, h.name
            ),
        ));
    }
    if !pax.is_empty() {
        pax.sort_by(|a, b| a.0.cmp(b.0));
        let records = pax_records(&pax);
        let block = ustar_block(&UstarFields {
            name: PAX_NAME.as_bytes(),
            prefix: b"",
            flag: b'x',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: 0,
            link: b"",
            dev: (0, 0),
        });
        w.write_all(&block)?;
        w.write_all(&records)?;
        padding(w, records.len() as u64)?;
    }
    let (prefix, name) = split.unwrap_or((b"", fallback_name(h.name)));
    let link = if h.link.len() > 100 || !h.link.is_ascii() {
        b"" as &[u8]
    } else {
        h.link.as_bytes()
    };
    let block = ustar_block(&UstarFields {
        name,
        prefix,
        flag: h.kind.flag(),
        mode: h.mode & 0o7777,
        uid: h.uid.min(MAX_OCTAL_7),
        gid: h.gid.min(MAX_OCTAL_7),
        size: if h.size > MAX_OCTAL_11 { 0 } else { h.size },
        mtime: h.mtime.min(MAX_OCTAL_11),
        link,
        dev: h.dev,
    });
    w.write_all(&block)
}

/// Zero bytes that round `size` up to a whole block.
pub fn padding(w: &mut (impl Write + ?Sized), size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks (no padding to a 10 KiB
/// record: readers do not need it and it only costs bytes).
pub fn write_end(w: &mut (impl Write + ?Sized)) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

/// Splits an ASCII name into ustar (prefix, name); `None` when it must go
/// into a PAX `path` record (too long, or not ASCII: PAX paths are defined
/// as UTF-8, ustar fields have no encoding). The shortest prefix that fits
/// is chosen.
fn split_name(name: &str) -> Option<(&[u8], &[u8])> {
    if !name.is_ascii() {
        return None;
    }
    let b = name.as_bytes();
    if b.len() <= 100 {
        return Some((b"", b));
    }
    // Exclude a trailing '/' (directories) from split points.
    let body = &b[..b.len() - usize::from(b.ends_with(b"/"))];
    body.iter()
        .enumerate()
        .filter(|(_, c)| **c == b'/')
        .map(|(i, _)| i)
        .find(|&i| i <= 155 && b.len() - i - 1 <= 100)
        .map(|i| (&b[..i], &b[i + 1..]))
}

/// The ustar name used when PAX carries the real path: its first 100 bytes
/// (readers that know PAX ignore it).
fn fallback_name(name: &str) -> &[u8] {
    let b = name.as_bytes();
    &b[..b.len().min(100)]
}

/// `"<len> key=value\n"` records, where len counts the whole record.
fn pax_records(kv: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in kv {
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}={v}\n").as_bytes());
    }
    out
}

struct UstarFields<'a> {
    name: &'a [u8],
    prefix: &'a [u8],
    flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &'a [u8],
    dev: (u32, u32),
}

fn ustar_block(f: &UstarFields) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..f.name.len()].copy_from_slice(f.name);
    octal(&mut b[100..108], u64::from(f.mode));
    octal(&mut b[108..116], f.uid);
    octal(&mut b[116..124], f.gid);
    octal(&mut b[124..136], f.size);
    octal(&mut b[136..148], f.mtime);
    b[156] = f.flag;
    b[157..157 + f.link.len()].copy_from_slice(f.link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname (265..297) and gname (297..329) stay empty.
    octal(&mut b[329..337], u64::from(f.dev.0));
    octal(&mut b[337..345], u64::from(f.dev.1));
    b[345..345 + f.prefix.len()].copy_from_slice(f.prefix);
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

/// Zero-padded octal digits filling all but the last byte, which is NUL.
/// Callers keep values within range (PAX carries larger ones).
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    let s = &s.as_bytes()[s.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(s);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_records(&[("path", "x".repeat(5))]);
        assert_eq!(r, b"14 path=xxxxx\n");
        let long = "y".repeat(95);
        let r = String::from_utf8(pax_records(&[("path", long)])).unwrap();
        let (len, _) = r.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), r.len());
    }

    #[test]
    fn long_names_use_the_ustar_prefix_when_they_can() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let (p, n) = split_name(&name).unwrap();
        assert_eq!((p.len(), n.len()), (120, 90));
        assert!(split_name(&"z".repeat(101)).is_none());
        assert!(split_name("caf\u{e9}").is_none());
    }

    #[test]
    fn header_checksum_is_what_readers_verify() {
        let mut out = Vec::new();
        let h = Header {
            name: "a/b.txt",
            kind: Kind::File,
            mode: 0o100644,
            uid: 1,
            gid: 2,
            size: 3,
            mtime: 4,
            link: "",
            dev: (0, 0),
        };
        write_header(&mut out, &h).unwrap();
        out.extend_from_slice(b"abc");
        padding(&mut out, 3).unwrap();
        write_end(&mut out).unwrap();
        let mut ar = ::tar::Archive::new(&out[..]);
        let mut entries = ar.entries().unwrap();
        let e = entries.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("a/b.txt"));
        assert_eq!(e.header().mode().unwrap(), 0o644);
        assert_eq!(e.header().mtime().unwrap(), 4);
        assert_eq!(e.header().uid().unwrap(), 1);
        assert!(entries.next().is_none());
    }
}
