//! Filesystem states as kiln sees them.
//!
//! Image paths are Linux paths kept apart from host paths: they are
//! `/`-separated, normalised and compared in depth-first order, and their
//! metadata (mode, owner, mtime) is recorded by kiln, never read back from the
//! host filesystem, so host umask, case folding or missing exec bits cannot
//! leak into an image.

pub mod archive;
pub mod diff;
mod path;
pub mod rootfs;

pub use path::{ImagePath, InvalidImagePath};
pub use rootfs::anchor;

use std::path::PathBuf;
use std::sync::Arc;

/// Metadata kiln records for every entry; it goes into the tar header as is
/// (the layer writer only clamps `mtime` to SOURCE_DATE_EPOCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: u64,
}

impl Meta {
    pub const fn new(mode: u32) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }
}

/// Where a regular file's bytes come from when a layer is written.
#[derive(Clone, Debug)]
pub enum Content {
    /// A file on the host (a context file, or a file in a materialised
    /// rootfs); read when the layer is written, so memory stays flat.
    Host(PathBuf),
    /// Small content kiln produced itself (heredocs, generated files).
    Inline(Arc<[u8]>),
}

impl Content {
    /// Opens the bytes for reading.
    pub fn open(&self) -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
        Ok(match self {
            Content::Host(p) => Box::new(std::fs::File::open(p)?),
            Content::Inline(b) => Box::new(&b[..]),
        })
    }

    /// Reads all the bytes (for small files such as /etc/passwd).
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut self.open()?, &mut out)?;
        Ok(out)
    }
}

#[derive(Clone, Debug)]
pub enum EntryKind {
    Dir,
    File {
        size: u64,
        content: Content,
    },
    Symlink {
        target: String,
    },
    /// A hard link to an earlier entry of the same layer.
    Hardlink {
        target: ImagePath,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// Deletes `path` from the lower layers (`.wh.NAME`).
    Whiteout,
    /// Hides everything the lower layers had under directory `path`
    /// (`path/.wh..wh..opq`); the directory entry itself is separate.
    Opaque,
}

/// One entry of a layer: what kiln will write at `path`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: ImagePath,
    pub kind: EntryKind,
    pub meta: Meta,
}

/// A read-only tree that COPY and ADD take files from: the build context
/// (filtered by .dockerignore) or a stage's root filesystem. Implementations
/// resolve symlinks in parent components inside the tree (chroot semantics)
/// and never reach outside it.
pub trait SourceTree: Send + Sync {
    /// The entry at `path`, not following a final symlink. `Ok(None)` when
    /// absent or excluded. Regular files carry `Content::Host`.
    fn lstat(&self, path: &ImagePath) -> std::io::Result<Option<Entry>>;
    /// Names of the children of directory `dir`, sorted bytewise, excluded
    /// ones left out.
    fn read_dir(&self, dir: &ImagePath) -> std::io::Result<Vec<String>>;
}
