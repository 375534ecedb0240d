//! ADD's local archive extraction, and the tar reading helpers shared with
//! [`super::rootfs`] (decompression by magic bytes, safe entry names,
//! metadata from headers).
//!
//! Like Docker, a source is an archive when its bytes say so (a compression
//! magic followed by a valid tar header, or a bare tar header), never because
//! of its file name. Decoders are pure Rust so kiln builds without a C
//! toolchain on every host: flate2 (zlib-rs), bzip2 (libbz2-rs-sys),
//! lzma-rust2 (xz), ruzstd (zstd).

use super::{Content, Entry, EntryKind, ImagePath, Meta};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A stream compression recognised by its leading bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// Recognises a compression from the first bytes of a stream (at least 6
    /// are needed to tell xz; fewer give `None`).
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(b"BZh") {
            Compression::Bzip2
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Peeks at `reader`'s first bytes and wraps it in the matching decoder.
pub fn decompress<'a, R: BufRead + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let magic = fill_at_least(&mut reader, 6)?;
    let kind = Compression::detect(&magic);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(reader, true)),
        Compression::Zstd => Box::new(ZstdFrames::new(reader)),
    };
    Ok((kind, out))
}

/// Returns a copy of the first `n` bytes (fewer at EOF) without consuming
/// them; BufRead::fill_buf alone may return fewer than asked.
fn fill_at_least<R: BufRead>(reader: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let buf = reader.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// Decodes a zstd stream of one or more concatenated frames (ruzstd's
/// decoder stops after one).
struct ZstdFrames<R: BufRead> {
    state: ZstdState<R>,
}

enum ZstdState<R: BufRead> {
    Between(R),
    InFrame(Box<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>),
    Poisoned,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(reader: R) -> Self {
        ZstdFrames {
            state: ZstdState::Between(reader),
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, ZstdState::Poisoned) {
                ZstdState::Poisoned => {
                    return Err(io::Error::other("zstd stream failed earlier"));
                }
                ZstdState::Between(mut r) => {
                    if r.fill_buf()?.is_empty() {
                        self.state = ZstdState::Between(r);
                        return Ok(0);
                    }
                    let dec = ruzstd::decoding::StreamingDecoder::new(r).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                    })?;
                    self.state = ZstdState::InFrame(Box::new(dec));
                }
                ZstdState::InFrame(mut dec) => {
                    let n = dec.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        self.state = ZstdState::InFrame(dec);
                        return Ok(n);
                    }
                    self.state = ZstdState::Between(dec.into_inner());
                }
            }
        }
    }
}

/// Why an archive entry or archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading archive {archive}: {source}")]
    Io {
        archive: String,
        #[source]
        source: io::Error,
    },
    #[error("archive {archive}, entry {entry:?}: {reason}")]
    Entry {
        archive: String,
        entry: String,
        reason: String,
    },
}

/// A tar entry name made safe: `./` prefixes and `.` components dropped;
/// `..`, absolute names, NUL bytes and non-UTF-8 refused (a hostile archive
/// must not name anything outside where it is unpacked). The root itself
/// (`./`) gives the root path.
pub(crate) fn safe_entry_path(raw: &[u8]) -> Result<ImagePath, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "name is not valid UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err("absolute name".into());
    }
    if s.contains('\0') {
        return Err("name contains a NUL byte".into());
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("name has a '..' component".into()),
            c => parts.push(c),
        }
    }
    ImagePath::parse(&parts.join("/")).map_err(|e| e.to_string())
}

/// Mode, owner and mtime from a tar entry, PAX records taking precedence
/// over the fixed header fields (ids and times too large for ustar).
pub(crate) fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, String> {
    let h = entry.header();
    let old = h.as_old();
    let mode = lenient(h.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777;
    let mut uid = lenient(h.uid(), &old.uid, "uid")?;
    let mut gid = lenient(h.gid(), &old.gid, "gid")?;
    let mut mtime = lenient(h.mtime(), &old.mtime, "mtime")?;
    if let Ok(Some(pax)) = entry.pax_extensions() {
        for ext in pax.flatten() {
            let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                continue;
            };
            match k {
                "uid" => uid = v.parse().map_err(|_| format!("bad PAX uid {v:?}"))?,
                "gid" => gid = v.parse().map_err(|_| format!("bad PAX gid {v:?}"))?,
                // Sub-second precision is dropped; negative times clamp to 0.
                "mtime" => {
                    let secs = v.split('.').next().unwrap_or("0");
                    mtime = secs.parse::<i64>().map(|s| s.max(0) as u64).unwrap_or(0);
                }
                _ => {}
            }
        }
    }
    let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?;
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
    })
}

/// A numeric header field; an empty one (all NUL or spaces, as some
/// writers leave unused fields) reads as 0, like Go's archive/tar does.
fn lenient(parsed: io::Result<u64>, raw: &[u8], name: &str) -> Result<u64, String> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(format!("bad {name}: {e}")),
    }
}

/// Device numbers of a char or block device entry.
pub(crate) fn device_numbers(h: &tar::Header) -> Result<(u32, u32), String> {
    let major = h
        .device_major()
        .map_err(|e| format!("bad device major: {e}"))?;
    let minor = h
        .device_minor()
        .map_err(|e| format!("bad device minor: {e}"))?;
    Ok((major.unwrap_or(0), minor.unwrap_or(0)))
}

/// Whether the first 512 bytes are a tar header with a valid checksum (an
/// all-zero block, an empty archive, does not count: Docker copies such
/// files as they are).
fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let Some(stored) = stored else { return false };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored
}

/// Extracts the archive at `archive` for ADD: entries are rooted at `dest`
/// (their names joined below it), regular file content goes to new files in
/// `scratch` (uniquely named, never after the entry, so hostile or
/// host-unfriendly names never reach the host) and metadata comes from the
/// archive headers. Returns `Ok(None)` when the file is not an archive, so the
/// caller copies it as a file.
///
/// Entries come in archive order; a later entry for the same path replaces an
/// earlier one when applied. Symlinks in parent components are not resolved
/// here: the consumer (e.g. `Rootfs::apply_entries`) resolves them inside the
/// destination with chroot semantics.
pub fn extract(
    archive: &Path,
    dest: &ImagePath,
    scratch: &Path,
) -> Result<Option<Vec<Entry>>, ArchiveError> {
    let name = archive.display().to_string();
    let io_err = |source| ArchiveError::Io {
        archive: name.clone(),
        source,
    };
    // First pass: is it an archive at all? Only the first block is decoded.
    let file = File::open(archive).map_err(io_err)?;
    let (_, mut probe) = decompress(BufReader::new(file)).map_err(io_err)?;
    let mut block = Vec::with_capacity(512);
    if probe.by_ref().take(512).read_to_end(&mut block).is_err() || !looks_like_tar(&block) {
        return Ok(None);
    }
    drop(probe);

    let file = File::open(archive).map_err(io_err)?;
    let (_, reader) = decompress(BufReader::new(file)).map_err(io_err)?;
    let mut tar = tar::Archive::new(reader);
    let mut out = Vec::new();
    let mut seen: HashSet<ImagePath> = HashSet::new();
    for item in tar.entries().map_err(io_err)? {
        let mut entry = item.map_err(io_err)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let refuse = |reason: String| ArchiveError::Entry {
            archive: name.clone(),
            entry: shown.clone(),
            reason,
        };
        let rel = safe_entry_path(&raw).map_err(refuse)?;
        if rel.components().any(|c| c.starts_with(".wh.")) {
            return Err(refuse(
                "names starting with .wh. would be read as whiteouts in a layer".into(),
            ));
        }
        let path = join_under(dest, &rel);
        let meta = entry_meta(&mut entry).map_err(refuse)?;
        let etype = entry.header().entry_type();
        let kind = match etype {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let (size, host) = copy_to_scratch(&mut entry, scratch).map_err(io_err)?;
                EntryKind::File {
                    size,
                    content: Content::Host(host),
                }
            }
            tar::EntryType::Symlink => {
                let target = link_name(&entry).map_err(refuse)?;
                EntryKind::Symlink { target }
            }
            tar::EntryType::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("hard link without a target".into()))?;
                let target_rel = safe_entry_path(&raw_target)
                    .map_err(|r| refuse(format!("hard link target: {r}")))?;
                let target = join_under(dest, &target_rel);
                if !seen.contains(&target) {
                    return Err(refuse(format!(
                        "hard link to {target}, which is not an earlier entry of the archive"
                    )));
                }
                EntryKind::Hardlink { target }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let (major, minor) = device_numbers(entry.header()).map_err(refuse)?;
                if etype == tar::EntryType::Char {
                    EntryKind::CharDevice { major, minor }
                } else {
                    EntryKind::BlockDevice { major, minor }
                }
            }
            tar::EntryType::Fifo => EntryKind::Fifo,
            other => return Err(refuse(format!("unsupported entry type {other:?}"))),
        };
        if path == *dest && !matches!(kind, EntryKind::Dir) {
            return Err(refuse(
                "only a directory may stand for the archive root".into(),
            ));
        }
        seen.insert(path.clone());
        out.push(Entry { path, kind, meta });
    }
    Ok(Some(out))
}

fn join_under(base: &ImagePath, rel: &ImagePath) -> ImagePath {
    rel.components().fold(base.clone(), |p, c| p.join(c))
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, String> {
    let raw = entry
        .link_name_bytes()
        .ok_or_else(|| "symlink without a target".to_string())?;
    let s = std::str::from_utf8(&raw).map_err(|_| "symlink target is not valid UTF-8")?;
    if s.is_empty() || s.contains('\0') {
        return Err("empty symlink target or NUL byte in it".into());
    }
    Ok(s.to_string())
}

/// Copies a reader into a new uniquely named file in `scratch` (names are
/// never taken from the archive); returns the size and the path.
fn copy_to_scratch(reader: &mut dyn Read, scratch: &Path) -> io::Result<(u64, PathBuf)> {
    let mut f = tempfile::Builder::new()
        .prefix("add-")
        .tempfile_in(scratch)?;
    let size = io::copy(reader, &mut f)?;
    let (_, path) = f.keep().map_err(|e| e.error)?;
    Ok((size, path))
}

#[cfg(test)]
mod tests;
