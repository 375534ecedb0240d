//! The deterministic layer writer: snapshot entries -> tar -> gzip blob.
//!
//! Implements DESIGN.md "The reproducibility contract" for layers kiln
//! creates:
//! - entries are written in [`ImagePath`] order (depth-first, children
//!   bytewise); the input order does not matter; two entries at one path are
//!   an error, except a directory plus its [`EntryKind::Opaque`] marker;
//! - every parent directory must be an entry of the same layer, earlier in
//!   that order: the caller supplies parents (a diff includes the
//!   directories above each change, as Docker layers do); a missing one is an
//!   error rather than silently invented, since its mode and owner are the
//!   caller's to decide. A `Dir` entry for the root itself is accepted and
//!   not written (layers carry no entry for `/`);
//! - mtime = min(mtime, SOURCE_DATE_EPOCH); uid/gid and mode from `Meta`;
//!   empty uname/gname; ustar headers, PAX only when needed (see
//!   [`super::tar`]); no xattrs;
//! - directories end with `/`; whiteouts are empty regular files `.wh.NAME`;
//!   an opaque directory gets `DIR/.wh..wh..opq` right after the directory
//!   entry (before its children, so appliers that handle entries in order
//!   never hide this layer's own children); names starting with `.wh.` are
//!   refused for ordinary entries (they would read as whiteouts);
//! - hard links must point at an earlier non-directory entry of this layer;
//! - host files are streamed; one whose size differs from the listed size
//!   when read is an error (the header would lie).
//!
//! Compression: [`super::gzip`] at [`LEVEL`], on all available cores, with
//! output independent of the core count.

use super::gzip::GzipWriter;
use super::tar::{self, Header, Kind};
use crate::digest::{Digest, HashingWriter};
use crate::snapshot::{Content, Entry, EntryKind, ImagePath};
use crate::store::{BlobStore, StoreError};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// Deflate level, pinned (changing it changes every layer digest). Chosen
/// by reproducibility/bench-layer.sh on its 220 MB tree, 2 busy cores
/// (time ratio to `tar | gzip -6 | sha256sum`, gzip size vs gzip -6):
/// level 1: 0.13-0.22, +32% size (zlib-rs's "quick" strategy);
/// level 2: 0.16-0.25, +4.9%; level 3: 0.20-0.30, +2.6%;
/// level 4: 0.32-0.33, +0.8%; level 6: 0.59, -1.6%.
/// 3 keeps sizes near gzip -6 with a wide margin under the 0.5 target.
pub const LEVEL: u32 = 3;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    pub source_date_epoch: u64,
}

/// A layer in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the gzip blob (the manifest's layer digest).
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's rootfs diff_id).
    pub diff_id: Digest,
    /// Size of the gzip blob in bytes.
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer has two entries for {0}")]
    Duplicate(ImagePath),
    #[error("layer entry {path}: its parent directory {parent} is not in the layer (the caller must list parents)")]
    MissingParent { path: ImagePath, parent: ImagePath },
    #[error("layer entry {0}: only a directory or an opaque marker can be at the image root")]
    RootEntry(ImagePath),
    #[error("layer entry {0}: an opaque marker needs a directory entry at the same path")]
    OpaqueWithoutDir(ImagePath),
    #[error("layer entry {0}: names starting with .wh. are reserved for whiteouts")]
    ReservedName(ImagePath),
    #[error("layer entry {path}: hard link target {target} is not an earlier file of this layer")]
    HardlinkTarget { path: ImagePath, target: ImagePath },
    #[error("layer entry {path}: file {host} was listed with {expected} bytes but {actual}; it changed while the layer was written")]
    SizeChanged {
        path: ImagePath,
        host: String,
        expected: u64,
        actual: String,
    },
    #[error("layer entry {path}: reading {host}: {source}")]
    Read {
        path: ImagePath,
        host: PathBuf,
        source: io::Error,
    },
    #[error("writing layer at entry {path}: {source}")]
    Write { path: ImagePath, source: io::Error },
    #[error("writing layer: {0}")]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, LayerError>;

/// Writes `entries` as a gzip layer blob into `store`, using every core.
pub fn write_layer(
    store: &BlobStore,
    entries: Vec<Entry>,
    opts: &LayerOptions,
) -> Result<LayerBlob> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    write_layer_with_threads(store, entries, opts, threads)
}

/// [`write_layer`] with an explicit compression thread count (the output
/// is the same for every count).
pub fn write_layer_with_threads(
    store: &BlobStore,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    threads: usize,
) -> Result<LayerBlob> {
    write_layer_tuned(store, entries, opts, threads, LEVEL)
}

/// [`write_layer_with_threads`] at another deflate level: only for the
/// level measurements of the layer benchmark (kiln always uses [`LEVEL`]).
#[doc(hidden)]
pub fn write_layer_tuned(
    store: &BlobStore,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    threads: usize,
    level: u32,
) -> Result<LayerBlob> {
    let entries = order_and_check(entries)?;
    let blob = store.writer()?;
    let gz = GzipWriter::new(blob, level, threads);
    let mut tar_out = HashingWriter::new(gz);
    write_entries(&entries, opts, &mut tar_out)?;
    let (gz, diff_id, _) = tar_out.finish();
    let at_end = |source| LayerError::Write {
        path: ImagePath::root(),
        source,
    };
    let blob = gz.finish().map_err(at_end)?;
    let (digest, size) = blob.commit()?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
    })
}

/// Writes the uncompressed layer tar to `out` (what `diff_id` hashes).
pub fn write_tar(entries: Vec<Entry>, opts: &LayerOptions, out: &mut impl Write) -> Result<()> {
    let entries = order_and_check(entries)?;
    write_entries(&entries, opts, out)
}

/// Sort rank at one path: the directory, then its opaque marker.
fn rank(kind: &EntryKind) -> u8 {
    match kind {
        EntryKind::Dir => 0,
        EntryKind::Opaque => 1,
        _ => 2,
    }
}

/// Sorts entries and checks the structural rules (see the module doc).
fn order_and_check(mut entries: Vec<Entry>) -> Result<Vec<Entry>> {
    entries.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then_with(|| rank(&a.kind).cmp(&rank(&b.kind)))
    });
    let mut dirs: HashSet<&ImagePath> = HashSet::new();
    let mut files: HashSet<&ImagePath> = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(prev) = i.checked_sub(1).map(|j| &entries[j]) {
            let dir_then_opaque =
                matches!((&prev.kind, &e.kind), (EntryKind::Dir, EntryKind::Opaque));
            if prev.path == e.path && !dir_then_opaque {
                return Err(LayerError::Duplicate(e.path.clone()));
            }
        }
        if let EntryKind::Opaque = e.kind {
            if !e.path.is_root() && !dirs.contains(&e.path) {
                return Err(LayerError::OpaqueWithoutDir(e.path.clone()));
            }
            continue;
        }
        let Some(parent) = e.path.parent() else {
            if matches!(e.kind, EntryKind::Dir) {
                continue;
            }
            return Err(LayerError::RootEntry(e.path.clone()));
        };
        if !parent.is_root() && !dirs.contains(&parent) {
            return Err(LayerError::MissingParent {
                path: e.path.clone(),
                parent,
            });
        }
        let reserved = e
            .path
            .file_name()
            .is_some_and(|n| n.starts_with(WHITEOUT_PREFIX));
        if reserved {
            return Err(LayerError::ReservedName(e.path.clone()));
        }
        match &e.kind {
            EntryKind::Dir => {
                dirs.insert(&e.path);
            }
            EntryKind::Whiteout => {}
            EntryKind::Hardlink { target } => {
                if !files.contains(target) {
                    return Err(LayerError::HardlinkTarget {
                        path: e.path.clone(),
                        target: target.clone(),
                    });
                }
                files.insert(&e.path);
            }
            _ => {
                files.insert(&e.path);
            }
        }
    }
    Ok(entries)
}

fn write_entries(entries: &[Entry], opts: &LayerOptions, out: &mut impl Write) -> Result<()> {
    let mut copy_buf = vec![0u8; 256 * 1024];
    for e in entries {
        if e.path.is_root() && matches!(e.kind, EntryKind::Dir) {
            continue;
        }
        write_entry(e, opts, out, &mut copy_buf)?;
    }
    tar::write_end(out).map_err(|source| LayerError::Write {
        path: ImagePath::root(),
        source,
    })
}

fn write_entry(e: &Entry, opts: &LayerOptions, out: &mut impl Write, buf: &mut [u8]) -> Result<()> {
    let werr = |source| LayerError::Write {
        path: e.path.clone(),
        source,
    };
    let name_of = |dir: &ImagePath, file: &str| match dir.is_root() {
        true => file.to_string(),
        false => format!("{}/{}", dir.as_str(), file),
    };
    let parent = e.path.parent().unwrap_or_default();
    let base = e.path.file_name().unwrap_or_default();
    let mut h = Header {
        name: "",
        kind: Kind::File,
        mode: e.meta.mode,
        uid: u64::from(e.meta.uid),
        gid: u64::from(e.meta.gid),
        size: 0,
        mtime: e.meta.mtime.min(opts.source_date_epoch),
        link: "",
        dev: (0, 0),
    };
    let name;
    let link;
    match &e.kind {
        EntryKind::Dir => {
            name = format!("{}/", e.path.as_str());
            h.kind = Kind::Dir;
        }
        EntryKind::Opaque => {
            name = name_of(&e.path, OPAQUE_MARKER);
        }
        EntryKind::Whiteout => {
            name = name_of(&parent, &format!("{WHITEOUT_PREFIX}{base}"));
        }
        EntryKind::Symlink { target } => {
            name = e.path.as_str().to_string();
            h.kind = Kind::Symlink;
            link = target.clone();
            h.link = &link;
        }
        EntryKind::Hardlink { target } => {
            name = e.path.as_str().to_string();
            h.kind = Kind::HardLink;
            link = target.as_str().to_string();
            h.link = &link;
        }
        EntryKind::CharDevice { major, minor } => {
            name = e.path.as_str().to_string();
            h.kind = Kind::CharDevice;
            h.dev = (*major, *minor);
        }
        EntryKind::BlockDevice { major, minor } => {
            name = e.path.as_str().to_string();
            h.kind = Kind::BlockDevice;
            h.dev = (*major, *minor);
        }
        EntryKind::Fifo => {
            name = e.path.as_str().to_string();
            h.kind = Kind::Fifo;
        }
        EntryKind::File { size, content } => {
            h.name = e.path.as_str();
            h.size = *size;
            return write_file(e, &h, content, out, buf);
        }
    }
    h.name = &name;
    tar::write_header(out, &h).map_err(werr)
}

fn write_file(
    e: &Entry,
    h: &Header,
    content: &Content,
    out: &mut impl Write,
    buf: &mut [u8],
) -> Result<()> {
    let werr = |source| LayerError::Write {
        path: e.path.clone(),
        source,
    };
    let changed = |host: String, actual: String| LayerError::SizeChanged {
        path: e.path.clone(),
        host,
        expected: h.size,
        actual,
    };
    match content {
        Content::Inline(bytes) => {
            if bytes.len() as u64 != h.size {
                return Err(changed("(inline content)".into(), bytes.len().to_string()));
            }
            tar::write_header(out, h).map_err(werr)?;
            out.write_all(bytes).map_err(werr)?;
        }
        Content::Host(host) => {
            let rerr = |source| LayerError::Read {
                path: e.path.clone(),
                host: host.clone(),
                source,
            };
            let shown = || host.display().to_string();
            let mut f = File::open(host).map_err(rerr)?;
            let len = f.metadata().map_err(rerr)?.len();
            if len != h.size {
                return Err(changed(shown(), len.to_string()));
            }
            tar::write_header(out, h).map_err(werr)?;
            let mut left = h.size;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = match f.read(&mut buf[..want]) {
                    Ok(0) => {
                        return Err(changed(shown(), format!("{} (it shrank)", h.size - left)))
                    }
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(rerr(err)),
                };
                out.write_all(&buf[..n]).map_err(werr)?;
                left -= n as u64;
            }
            if f.read(&mut buf[..1]).map_err(rerr)? != 0 {
                return Err(changed(shown(), "more (it grew)".into()));
            }
        }
    }
    tar::padding(out, h.size).map_err(werr)
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
