//! The build context as a [`SourceTree`]: host files seen through
//! `.dockerignore`, with kiln's metadata and chroot-style symlink resolution.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::PatternMatcher;
use crate::snapshot::{Content, Entry, EntryKind, ImagePath, Meta, SourceTree};

/// More symlinks than this on one lookup is a loop (Linux uses 40).
const MAX_SYMLINKS: usize = 40;

/// A host directory used as build context.
pub struct Context {
    root: PathBuf,
    ignore: Option<PatternMatcher>,
    /// Whether an excluded directory still holds a re-included entry.
    reincluded: Mutex<HashMap<ImagePath, bool>>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Context {
    /// Opens a `--build-context NAME=DIR` directory: filtered by the
    /// `.dockerignore` at its root, as BuildKit reads one for every local
    /// named context.
    pub fn open_named(dir: &Path) -> io::Result<Context> {
        let ignore = super::dockerignore::load(dir, None).map_err(io::Error::other)?;
        Context::open(dir, ignore)
    }

    /// Opens `dir` (which must be a directory) as a context filtered by
    /// `ignore`.
    pub fn open(dir: &Path, ignore: Option<PatternMatcher>) -> io::Result<Context> {
        let root = std::fs::canonicalize(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("build context {}: {e}", dir.display()))
        })?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("build context {} is not a directory", dir.display()),
            ));
        }
        Ok(Context {
            root,
            ignore: ignore.filter(|m| !m.is_empty()),
            reincluded: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn host(&self, p: &ImagePath) -> PathBuf {
        let mut h = self.root.clone();
        for c in p.components() {
            h.push(c);
        }
        h
    }

    fn ignored(&self, p: &ImagePath) -> bool {
        self.ignore
            .as_ref()
            .is_some_and(|m| m.matches_or_parent_matches(p.as_str()))
    }

    /// Whether `p` (whose host metadata is `md`) is part of the filtered
    /// context: not ignored, or a directory holding something that an `!`
    /// exception re-includes.
    fn visible(&self, p: &ImagePath, md: &Metadata) -> io::Result<bool> {
        if !self.ignored(p) {
            return Ok(true);
        }
        if !md.is_dir() || !self.ignore.as_ref().is_some_and(|m| m.has_exclusions()) {
            return Ok(false);
        }
        if let Some(v) = self.reincluded.lock().ok().and_then(|m| m.get(p).copied()) {
            return Ok(v);
        }
        let mut found = false;
        for name in self.host_children(p)? {
            let child = p.join(&name);
            let cmd = std::fs::symlink_metadata(self.host(&child))?;
            if self.visible(&child, &cmd)? {
                found = true;
                break;
            }
        }
        if let Ok(mut m) = self.reincluded.lock() {
            m.insert(p.clone(), found);
        }
        Ok(found)
    }

    /// Sorted UTF-8 names in host directory `p` (no filtering).
    fn host_children(&self, p: &ImagePath) -> io::Result<Vec<String>> {
        let host = self.host(p);
        let mut names = Vec::new();
        for ent in std::fs::read_dir(&host)? {
            let ent = ent?;
            let name = ent.file_name().into_string().map_err(|raw| {
                invalid(format!(
                    "build context: file name {:?} in {} is not valid UTF-8",
                    raw,
                    host.display()
                ))
            })?;
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    /// Resolves every symlink in the parent components of `path` inside the
    /// context; the last component is not followed. Returns the real path
    /// and its host metadata, or `None` when absent, excluded, or a parent
    /// is not a directory.
    fn resolve(&self, path: &ImagePath) -> io::Result<Option<(ImagePath, Metadata)>> {
        let mut todo: Vec<String> = path.components().map(str::to_string).collect();
        todo.reverse();
        let mut cur = ImagePath::root();
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            if comp == ".." {
                cur = cur.parent().unwrap_or_default();
                continue;
            }
            if comp.is_empty() || comp == "." {
                continue;
            }
            let next = cur.join(&comp);
            let md = match std::fs::symlink_metadata(self.host(&next)) {
                Ok(md) => md,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            };
            if todo.is_empty() {
                return Ok(if self.visible(&next, &md)? && supported(&md) {
                    Some((next, md))
                } else {
                    None
                });
            }
            if md.file_type().is_symlink() {
                if self.ignored(&next) {
                    return Ok(None);
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "build context: too many levels of symbolic links resolving {path}"
                    )));
                }
                let target = read_link_utf8(&self.host(&next))?;
                if target.starts_with('/') {
                    cur = ImagePath::root();
                }
                todo.extend(target.split('/').rev().map(str::to_string));
            } else if md.is_dir() {
                cur = next;
            } else {
                return Ok(None);
            }
        }
        // `path` was the root.
        Ok(Some((
            cur.clone(),
            std::fs::symlink_metadata(self.host(&cur))?,
        )))
    }
}

/// Sockets cannot go into a layer; Docker's context tar skips them too.
fn supported(md: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        !md.file_type().is_socket()
    }
    #[cfg(not(unix))]
    {
        let _ = md;
        true
    }
}

fn read_link_utf8(host: &Path) -> io::Result<String> {
    std::fs::read_link(host)?
        .into_os_string()
        .into_string()
        .map_err(|raw| {
            invalid(format!(
                "build context: symlink {} has a target {:?} that is not valid UTF-8",
                host.display(),
                raw
            ))
        })
}

fn mtime(md: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        md.mtime().max(0) as u64
    }
    #[cfg(not(unix))]
    {
        md.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }
}

/// Git's model: only "is any execute bit set" survives from the host.
fn file_mode(md: &Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if md.permissions().mode() & 0o111 != 0 {
            return 0o755;
        }
    }
    let _ = md;
    0o644
}

impl SourceTree for Context {
    fn lstat(&self, path: &ImagePath) -> io::Result<Option<Entry>> {
        let Some((real, md)) = self.resolve(path)? else {
            return Ok(None);
        };
        let host = self.host(&real);
        let ft = md.file_type();
        let (kind, mode) = if ft.is_dir() {
            (EntryKind::Dir, 0o755)
        } else if ft.is_symlink() {
            (
                EntryKind::Symlink {
                    target: read_link_utf8(&host)?,
                },
                0o777,
            )
        } else if ft.is_file() {
            (
                EntryKind::File {
                    size: md.len(),
                    content: Content::Host(host),
                },
                file_mode(&md),
            )
        } else {
            special(&md, &host)?
        };
        Ok(Some(Entry {
            path: path.clone(),
            kind,
            meta: Meta {
                mode,
                uid: 0,
                gid: 0,
                mtime: mtime(&md),
            },
        }))
    }

    fn read_dir(&self, dir: &ImagePath) -> io::Result<Vec<String>> {
        // Follow a final symlink too: a directory is being asked for.
        let mut p = dir.clone();
        let mut links = 0;
        let real = loop {
            let Some((real, md)) = self.resolve(&p)? else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("build context: {dir} not found"),
                ));
            };
            if !md.file_type().is_symlink() {
                if !md.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("build context: {dir} is not a directory"),
                    ));
                }
                break real;
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::other(format!(
                    "build context: symlink loop at {dir}"
                )));
            }
            let target = read_link_utf8(&self.host(&real))?;
            p = ImagePath::resolve(&real.parent().unwrap_or_default(), &target);
        };
        let mut out = Vec::new();
        for name in self.host_children(&real)? {
            let child = real.join(&name);
            let md = std::fs::symlink_metadata(self.host(&child))?;
            if supported(&md) && self.visible(&child, &md)? {
                out.push(name);
            }
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn special(md: &Metadata, host: &Path) -> io::Result<(EntryKind, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let ft = md.file_type();
    let mode = md.permissions().mode() & 0o7777;
    let rdev = md.rdev();
    // glibc's gnu_dev_major/minor encoding.
    let major = (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32;
    let minor = (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32;
    if ft.is_fifo() {
        Ok((EntryKind::Fifo, mode))
    } else if ft.is_char_device() {
        Ok((EntryKind::CharDevice { major, minor }, mode))
    } else if ft.is_block_device() {
        Ok((EntryKind::BlockDevice { major, minor }, mode))
    } else {
        Err(io::Error::other(format!(
            "build context: unsupported file type at {}",
            host.display()
        )))
    }
}

#[cfg(not(unix))]
fn special(_md: &Metadata, host: &Path) -> io::Result<(EntryKind, u32)> {
    Err(io::Error::other(format!(
        "build context: unsupported file type at {}",
        host.display()
    )))
}
