//! Reading one layer for comparison: its compression (and gzip header),
//! the digest of the uncompressed tar, and every entry's metadata, content
//! hash and tar-level encoding (header format, PAX records).

use crate::digest::{Digest, HashingWriter};
use crate::snapshot::archive::{decompress, Compression};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read, Write};

/// Files up to this size are kept in memory when asked for (text diffs).
pub const MAX_KEPT: u64 = 1 << 20;

/// The fixed fields of a gzip member header (RFC 1952).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GzipHeader {
    pub flags: u8,
    pub mtime: u32,
    /// Extra flags: 2 = best compression, 4 = fastest.
    pub xfl: u8,
    pub os: u8,
    /// The FNAME field, when set and within the first bytes read.
    pub name: Option<String>,
}

/// Parses a gzip header from the first bytes of a stream.
pub fn gzip_header(b: &[u8]) -> Option<GzipHeader> {
    if b.len() < 10 || b[0] != 0x1f || b[1] != 0x8b {
        return None;
    }
    let flags = b[3];
    let name = if flags & 0x08 != 0 {
        let mut at = 10;
        if flags & 0x04 != 0 {
            let xlen = usize::from(*b.get(10)?) | usize::from(*b.get(11)?) << 8;
            at = 12 + xlen;
        }
        let rest = b.get(at..)?;
        rest.iter()
            .position(|&c| c == 0)
            .map(|end| String::from_utf8_lossy(&rest[..end]).into_owned())
    } else {
        None
    };
    Some(GzipHeader {
        flags,
        mtime: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        xfl: b[8],
        os: b[9],
        name,
    })
}

/// The tar header format of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderFormat {
    /// POSIX ustar (`ustar\0` + `00`).
    Ustar,
    /// ustar preceded by a PAX extended header.
    Pax,
    /// GNU (`ustar  \0`), possibly with GNU long-name entries.
    Gnu,
    /// Old V7 headers (no magic).
    V7,
}

impl std::fmt::Display for HeaderFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderFormat::Ustar => "ustar",
            HeaderFormat::Pax => "pax",
            HeaderFormat::Gnu => "gnu",
            HeaderFormat::V7 => "v7",
        })
    }
}

/// Classifies a header block by its magic and version fields (bytes
/// 257..265), and by whether PAX records preceded it.
pub fn classify(block: &[u8; 512], has_pax: bool) -> HeaderFormat {
    let magic = &block[257..265];
    if magic == b"ustar  \0" {
        HeaderFormat::Gnu
    } else if &magic[..6] == b"ustar\0" {
        if has_pax {
            HeaderFormat::Pax
        } else {
            HeaderFormat::Ustar
        }
    } else if has_pax {
        HeaderFormat::Pax
    } else {
        HeaderFormat::V7
    }
}

/// One tar entry as compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Without a leading `./` or `/` and without a trailing `/`.
    pub path: String,
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
    pub link: Option<String>,
    pub size: u64,
    /// sha256 of the content (regular files).
    pub sha256: Option<Digest>,
    pub format: HeaderFormat,
    pub pax: BTreeMap<String, String>,
    /// The content, when the scan was asked to keep this path.
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
}

/// What a scan of one layer found.
#[derive(Clone, Debug)]
pub struct LayerScan {
    pub compression: &'static str,
    pub gzip: Option<GzipHeader>,
    pub compressed_size: u64,
    /// sha256 of the uncompressed tar (what a config's diff_id should be).
    pub diff_id: Digest,
    pub entries: Vec<FileEntry>,
    /// Why reading the tar stopped early (truncated or malformed archive);
    /// the entries before that point are kept.
    pub tar_error: Option<String>,
}

fn kind_name(t: tar::EntryType) -> &'static str {
    use tar::EntryType as T;
    match t {
        T::Regular | T::Continuous => "file",
        T::Directory => "dir",
        T::Symlink => "symlink",
        T::Link => "hardlink",
        T::Char => "char",
        T::Block => "block",
        T::Fifo => "fifo",
        _ => "other",
    }
}

/// Normalises an entry name so `./a/`, `/a` and `a` compare equal.
pub fn clean_path(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.trim_start_matches("./").trim_start_matches('/');
    let s = s.trim_end_matches('/');
    if s.is_empty() || s == "." {
        "/".into()
    } else {
        format!("/{s}")
    }
}

/// Counts what passes through.
struct Counting<R> {
    inner: R,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.set(self.n.get() + n as u64);
        Ok(n)
    }
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: HashingWriter<io::Sink>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Reads a whole layer stream; keeps the content of paths in `keep`
/// (up to [`MAX_KEPT`] bytes each).
pub fn scan(compressed: impl Read, keep: &BTreeSet<String>) -> io::Result<LayerScan> {
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut buffered = BufReader::with_capacity(
        64 << 10,
        Counting {
            inner: compressed,
            n: count.clone(),
        },
    );
    let head = buffered.fill_buf()?.to_vec();
    let gzip = gzip_header(&head);
    let (kind, decoded) = decompress(buffered)?;
    let compression = match kind {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
    };
    let mut hashing = Hashing {
        inner: decoded,
        hash: HashingWriter::new(io::sink()),
    };
    let mut entries = Vec::new();
    let mut tar_error = None;
    {
        let mut ar = tar::Archive::new(&mut hashing);
        let read = read_entries(&mut ar, keep, &mut entries);
        if let Err(e) = read {
            tar_error = Some(e.to_string());
        }
    }
    // The end-of-archive blocks and any padding are part of the diff_id;
    // reading to the end also runs the source's digest check (which fails
    // again here if it failed inside the tar reader).
    io::copy(&mut hashing, &mut io::sink())?;
    let Hashing { inner, hash } = hashing;
    drop(inner);
    let (_, diff_id, _) = hash.finish();
    Ok(LayerScan {
        compression,
        gzip,
        compressed_size: count.get(),
        diff_id,
        entries,
        tar_error,
    })
}

fn read_entries<R: Read>(
    ar: &mut tar::Archive<R>,
    keep: &BTreeSet<String>,
    entries: &mut Vec<FileEntry>,
) -> io::Result<()> {
    {
        for entry in ar.entries()? {
            let mut entry = entry?;
            let mut pax = BTreeMap::new();
            if let Some(exts) = entry.pax_extensions()? {
                for ext in exts {
                    let ext = ext?;
                    pax.insert(
                        String::from_utf8_lossy(ext.key_bytes()).into_owned(),
                        String::from_utf8_lossy(ext.value_bytes()).into_owned(),
                    );
                }
            }
            let h = entry.header().clone();
            let block: &[u8; 512] = h.as_bytes();
            let format = classify(block, !pax.is_empty());
            let path = clean_path(&entry.path_bytes());
            let kind = kind_name(h.entry_type());
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            let size = entry.size();
            let (sha256, content) = if kind == "file" {
                let want = keep.contains(&path) && size <= MAX_KEPT;
                let mut w = HashingWriter::new(io::sink());
                let mut bytes = Vec::new();
                let mut buf = [0u8; 32 << 10];
                loop {
                    let n = entry.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    w.write_all(&buf[..n])?;
                    if want {
                        bytes.extend_from_slice(&buf[..n]);
                    }
                }
                let (_, d, _) = w.finish();
                (Some(d), want.then_some(bytes))
            } else {
                (None, None)
            };
            entries.push(FileEntry {
                path,
                kind,
                mode: h.mode().unwrap_or(0),
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                uname: h
                    .username_bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
                gname: h
                    .groupname_bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
                mtime: h.mtime().unwrap_or(0),
                link,
                size,
                sha256,
                format,
                pax,
                content,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(magic: &[u8]) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[257..257 + magic.len()].copy_from_slice(magic);
        b
    }

    #[test]
    fn header_formats_are_told_by_magic_and_pax() {
        assert_eq!(classify(&block(b"ustar\x0000"), false), HeaderFormat::Ustar);
        assert_eq!(classify(&block(b"ustar\x0000"), true), HeaderFormat::Pax);
        assert_eq!(classify(&block(b"ustar  \x00"), false), HeaderFormat::Gnu);
        assert_eq!(classify(&block(b""), false), HeaderFormat::V7);
    }

    #[test]
    fn gzip_headers_are_parsed() {
        let h = gzip_header(&[0x1f, 0x8b, 8, 0, 1, 0, 0, 0, 2, 3]).unwrap();
        assert_eq!((h.flags, h.mtime, h.xfl, h.os), (0, 1, 2, 3));
        assert_eq!(h.name, None);
        let mut named = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 255];
        named.extend_from_slice(b"layer.tar\0");
        assert_eq!(
            gzip_header(&named).unwrap().name.as_deref(),
            Some("layer.tar")
        );
        assert!(gzip_header(b"not gzip at all").is_none());
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(clean_path(b"./a/b/"), "/a/b");
        assert_eq!(clean_path(b"/a"), "/a");
        assert_eq!(clean_path(b"./"), "/");
    }

    #[test]
    fn scans_tar_entries_with_formats_and_content() {
        let mut raw = Vec::new();
        {
            let mut b = tar::Builder::new(&mut raw);
            let mut h = tar::Header::new_ustar();
            h.set_path("a.txt").unwrap();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"hi\n"[..]).unwrap();
            let mut g = tar::Header::new_gnu();
            g.set_path("b").unwrap();
            g.set_size(0);
            g.set_mode(0o755);
            g.set_entry_type(tar::EntryType::Directory);
            g.set_cksum();
            b.append(&g, &b""[..]).unwrap();
            b.finish().unwrap();
        }
        let keep = BTreeSet::from(["/a.txt".to_string()]);
        let s = scan(&raw[..], &keep).unwrap();
        assert_eq!(s.compression, "none");
        assert_eq!(s.diff_id, Digest::of(&raw));
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].format, HeaderFormat::Ustar);
        assert_eq!(s.entries[0].content.as_deref(), Some(&b"hi\n"[..]));
        assert_eq!(s.entries[0].sha256, Some(Digest::of(b"hi\n")));
        assert_eq!(s.entries[1].format, HeaderFormat::Gnu);
        assert_eq!((s.entries[1].kind, s.entries[1].mode), ("dir", 0o755));
    }
}
