//! A stage's root filesystem, materialised in a host directory, with kiln's
//! own record of what every path is.
//!
//! The host directory only holds bytes: names, types, modes, owners, device
//! numbers and mtimes live in the record, because the host cannot be trusted
//! to keep them (running unprivileged, no mknod, no chown, umask, case
//! folding). Every path is resolved in the record with chroot semantics
//! (absolute symlinks and `..` stay inside the rootfs), so the host kernel is
//! never asked to follow a symlink that a layer created, and nothing is ever
//! written outside the rootfs directory.

use super::archive::{self, device_numbers, entry_meta, safe_entry_path};
use super::{Content, Entry, EntryKind, ImagePath, Meta, SourceTree};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// What a path is, as far as kiln is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    /// Bytes are in the host file at the same relative path.
    File {
        size: u64,
    },
    Symlink {
        target: String,
    },
    /// Recorded only; the host holds an empty placeholder file.
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub meta: Meta,
}

impl Node {
    /// The layer entry for this node at `path`; `content` says where a
    /// regular file's bytes are.
    pub fn to_entry(&self, path: &ImagePath, content: impl FnOnce() -> Content) -> Entry {
        let kind = match &self.kind {
            NodeKind::Dir => EntryKind::Dir,
            NodeKind::File { size } => EntryKind::File {
                size: *size,
                content: content(),
            },
            NodeKind::Symlink { target } => EntryKind::Symlink {
                target: target.clone(),
            },
            NodeKind::CharDevice { major, minor } => EntryKind::CharDevice {
                major: *major,
                minor: *minor,
            },
            NodeKind::BlockDevice { major, minor } => EntryKind::BlockDevice {
                major: *major,
                minor: *minor,
            },
            NodeKind::Fifo => EntryKind::Fifo,
        };
        Entry {
            path: path.clone(),
            kind,
            meta: self.meta,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}, entry {entry:?}: {reason}")]
    Entry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: media type {media_type:?} is not a tar layer")]
    MediaType { layer: String, media_type: String },
}

/// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS.
const MAX_SYMLINKS: u32 = 40;

/// Paths one layer created, so its own whiteouts never delete them (OCI:
/// whiteouts apply to lower layers only, whatever the entry order).
#[derive(Default)]
struct LayerState {
    added: HashSet<ImagePath>,
    /// Ancestors of added paths: an opaque directory keeps them.
    kept: HashSet<ImagePath>,
}

impl LayerState {
    fn add(&mut self, p: &ImagePath) {
        self.kept.extend(p.ancestors());
        self.added.insert(p.clone());
    }
}

/// Where file content comes from when a path is written.
enum Data<'a> {
    Stream(&'a mut dyn Read),
    Host(&'a Path),
    Inline(&'a [u8]),
}

/// One change to the tree, from a tar entry or from kiln's own [`Entry`].
enum Op<'a> {
    Dir,
    File(Data<'a>),
    /// A file whose bytes stay where they are (see [`Rootfs::apply_entries`]).
    Borrowed(Content, u64),
    Symlink(String),
    Hardlink(ImagePath),
    Special(NodeKind),
    Whiteout,
    Opaque,
}

/// Result of walking a path through the record.
enum Walk {
    Found(ImagePath),
    /// `existing` resolved; its child `next` does not exist.
    Missing {
        existing: ImagePath,
        next: String,
    },
    NotDir(ImagePath),
    Loop,
}

pub struct Rootfs {
    dir: PathBuf,
    record: BTreeMap<ImagePath, Node>,
    /// Files whose bytes live outside `dir` (a context file, another
    /// stage's file, inline data): COPY results are recorded, not copied,
    /// so a COPY-only build never duplicates the bytes it copies.
    borrowed: BTreeMap<ImagePath, Content>,
}

impl Rootfs {
    /// Starts an empty rootfs in `dir`, which is created if needed and must
    /// be empty (its content would not be in the record).
    pub fn new(dir: &Path) -> Result<Rootfs, RootfsError> {
        let io = |what: &str, source| RootfsError::Io {
            what: format!("{what} {}", dir.display()),
            source,
        };
        fs::create_dir_all(dir).map_err(|e| io("creating rootfs directory", e))?;
        if fs::read_dir(dir)
            .map_err(|e| io("listing rootfs directory", e))?
            .next()
            .is_some()
        {
            return Err(io(
                "rootfs directory",
                io::Error::new(io::ErrorKind::AlreadyExists, "is not empty"),
            ));
        }
        let mut record = BTreeMap::new();
        record.insert(
            ImagePath::root(),
            Node {
                kind: NodeKind::Dir,
                meta: Meta::new(0o755),
            },
        );
        Ok(Rootfs {
            dir: dir.to_path_buf(),
            record,
            borrowed: BTreeMap::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record: every path in the tree, depth-first.
    pub fn record(&self) -> &BTreeMap<ImagePath, Node> {
        &self.record
    }

    /// The node recorded at exactly `path` (no symlink resolution).
    pub fn get(&self, path: &ImagePath) -> Option<&Node> {
        self.record.get(path)
    }

    /// Where the bytes of the file recorded at `key` are.
    pub fn content(&self, key: &ImagePath) -> Content {
        match self.borrowed.get(key) {
            Some(c) => c.clone(),
            None => Content::Host(self.host_path(key)),
        }
    }

    /// The host path of a record key. Only meaningful for keys in the record,
    /// whose ancestors are all real directories on the host.
    pub fn host_path(&self, path: &ImagePath) -> PathBuf {
        path.components().fold(self.dir.clone(), |p, c| p.join(c))
    }

    /// Applies a layer blob (tar, tar+gzip, tar+zstd; compression recognised
    /// by its magic bytes, as Docker does) with OCI whiteouts. `layer` names
    /// it in errors (its digest, say). On error the rootfs is left partly
    /// applied and should be discarded.
    pub fn apply_layer(
        &mut self,
        reader: impl Read,
        media_type: &str,
        layer: &str,
    ) -> Result<(), RootfsError> {
        if !media_type.is_empty() && !is_tar_layer(media_type) {
            return Err(RootfsError::MediaType {
                layer: layer.into(),
                media_type: media_type.into(),
            });
        }
        let io = |source| RootfsError::Io {
            what: format!("reading layer {layer}"),
            source,
        };
        let (_, decoded) = archive::decompress(BufReader::new(reader)).map_err(io)?;
        let mut tar = tar::Archive::new(decoded);
        let mut st = LayerState::default();
        for item in tar.entries().map_err(io)? {
            let mut entry = item.map_err(io)?;
            let raw = entry.path_bytes().into_owned();
            let refuse = |reason: String| RootfsError::Entry {
                layer: layer.into(),
                entry: String::from_utf8_lossy(&raw).into_owned(),
                reason,
            };
            let path = safe_entry_path(&raw).map_err(refuse)?;
            let meta = entry_meta(&mut entry).map_err(refuse)?;
            let (path, op) = match whiteout_of(&path).map_err(refuse)? {
                Some(w) => w,
                None => {
                    let etype = entry.header().entry_type();
                    let link = entry.link_name_bytes().map(|c| c.into_owned());
                    let op = match etype {
                        tar::EntryType::Directory => Op::Dir,
                        tar::EntryType::Regular | tar::EntryType::Continuous => {
                            Op::File(Data::Stream(&mut entry))
                        }
                        tar::EntryType::Symlink => {
                            Op::Symlink(symlink_target(link).map_err(refuse)?)
                        }
                        tar::EntryType::Link => {
                            let t =
                                link.ok_or_else(|| refuse("hard link without a target".into()))?;
                            let t = safe_entry_path(&t)
                                .map_err(|r| refuse(format!("hard link target: {r}")))?;
                            Op::Hardlink(t)
                        }
                        tar::EntryType::Char | tar::EntryType::Block => {
                            let (major, minor) = device_numbers(entry.header()).map_err(refuse)?;
                            Op::Special(if etype == tar::EntryType::Char {
                                NodeKind::CharDevice { major, minor }
                            } else {
                                NodeKind::BlockDevice { major, minor }
                            })
                        }
                        tar::EntryType::Fifo => Op::Special(NodeKind::Fifo),
                        other => return Err(refuse(format!("unsupported entry type {other:?}"))),
                    };
                    (path, op)
                }
            };
            self.apply_op(&path, op, meta, &mut st).map_err(refuse)?;
        }
        Ok(())
    }

    /// Lowers the recorded mtime of `paths` to at most `max`: what the
    /// step's layer records (SOURCE_DATE_EPOCH clamps every layer mtime),
    /// so later steps see the same mtimes whether this step ran or its
    /// layer came from the cache.
    pub fn clamp_mtimes<'p>(&mut self, paths: impl IntoIterator<Item = &'p ImagePath>, max: u64) {
        for p in paths {
            if let Some(node) = self.record.get_mut(p) {
                node.meta.mtime = node.meta.mtime.min(max);
            }
        }
    }

    /// Applies entries kiln produced itself (a COPY or ADD result), in order,
    /// without going through a tar. Paths are resolved like layer entries.
    /// File contents are borrowed, not copied: the source must stay in
    /// place while this rootfs is used (context files and other stages'
    /// trees do, for the whole build).
    pub fn apply_entries(&mut self, entries: &[Entry]) -> Result<(), RootfsError> {
        let mut st = LayerState::default();
        for e in entries {
            let op = match &e.kind {
                EntryKind::Dir => Op::Dir,
                EntryKind::File { content, size } => Op::Borrowed(content.clone(), *size),
                EntryKind::Symlink { target } => Op::Symlink(target.clone()),
                EntryKind::Hardlink { target } => Op::Hardlink(target.clone()),
                EntryKind::CharDevice { major, minor } => Op::Special(NodeKind::CharDevice {
                    major: *major,
                    minor: *minor,
                }),
                EntryKind::BlockDevice { major, minor } => Op::Special(NodeKind::BlockDevice {
                    major: *major,
                    minor: *minor,
                }),
                EntryKind::Fifo => Op::Special(NodeKind::Fifo),
                EntryKind::Whiteout => Op::Whiteout,
                EntryKind::Opaque => Op::Opaque,
            };
            self.apply_op(&e.path, op, e.meta, &mut st)
                .map_err(|reason| RootfsError::Entry {
                    layer: "(kiln entries)".into(),
                    entry: e.path.to_absolute(),
                    reason,
                })?;
        }
        Ok(())
    }

    fn apply_op(
        &mut self,
        path: &ImagePath,
        op: Op<'_>,
        meta: Meta,
        st: &mut LayerState,
    ) -> Result<(), String> {
        match op {
            Op::Whiteout => {
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    return Err("cannot white out the root".into());
                };
                // Nothing to delete when the parent does not exist.
                let Walk::Found(dir) = self.walk(&parent, true) else {
                    return Ok(());
                };
                let target = dir.join(name);
                if !st.added.contains(&target) {
                    self.remove_lower(&target, true, st)?;
                }
                return Ok(());
            }
            Op::Opaque => {
                let dir = self.ensure_dir(path, st)?;
                return self.remove_lower(&dir, false, st);
            }
            Op::Dir if path.is_root() => {
                if let Some(root) = self.record.get_mut(path) {
                    root.meta = meta;
                }
                return Ok(());
            }
            _ => {}
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err("only a directory can replace the root".into());
        };
        let parent = self.ensure_dir(&parent, st)?;
        ensure_real_dir(&self.host_path(&parent))?;
        let target = parent.join(name);
        let host = self.host_path(&target);
        let existing = self.record.get(&target).map(|n| n.kind.clone());
        if let Op::Dir = op {
            if existing == Some(NodeKind::Dir) {
                if let Some(n) = self.record.get_mut(&target) {
                    n.meta = meta;
                }
                st.add(&target);
                return Ok(());
            }
        }
        if existing.is_some() {
            self.remove_subtree(&target)?;
        }
        let node = match op {
            Op::Dir => {
                fs::create_dir(&host).map_err(|e| host_err("creating directory", &host, e))?;
                Node {
                    kind: NodeKind::Dir,
                    meta,
                }
            }
            Op::File(data) => {
                let size = write_new_file(&host, data)?;
                Node {
                    kind: NodeKind::File { size },
                    meta,
                }
            }
            Op::Borrowed(content, size) => {
                self.borrowed.insert(target.clone(), content);
                Node {
                    kind: NodeKind::File { size },
                    meta,
                }
            }
            Op::Symlink(t) => {
                make_host_symlink(&t, &host)?;
                Node {
                    kind: NodeKind::Symlink { target: t },
                    meta,
                }
            }
            Op::Hardlink(link) => {
                let (node, borrowed) = self.link_to(&link, &host)?;
                if let Some(content) = borrowed {
                    self.borrowed.insert(target.clone(), content);
                }
                node
            }
            Op::Special(kind) => {
                write_new_file(&host, Data::Inline(&[]))?;
                Node { kind, meta }
            }
            Op::Whiteout | Op::Opaque => unreachable!("handled above"),
        };
        self.record.insert(target.clone(), node);
        st.add(&target);
        Ok(())
    }

    /// Creates the host side of a hard link to `link` (an image path whose
    /// parents resolve inside the rootfs; a final symlink is linked, not
    /// followed) and returns the node the new path shares.
    fn link_to(&self, link: &ImagePath, host: &Path) -> Result<(Node, Option<Content>), String> {
        let (Some(parent), Some(name)) = (link.parent(), link.file_name()) else {
            return Err("hard link to the root".into());
        };
        let source = match self.walk(&parent, true) {
            Walk::Found(p) => p.join(name),
            _ => return Err(format!("hard link target {link} does not exist")),
        };
        let node = match self.record.get(&source) {
            None => return Err(format!("hard link target {link} does not exist")),
            Some(Node {
                kind: NodeKind::Dir,
                ..
            }) => return Err(format!("hard link target {link} is a directory")),
            Some(n) => n.clone(),
        };
        if let Some(content) = self.borrowed.get(&source) {
            // Borrowed bytes: the link borrows the same source.
            return Ok((node, Some(content.clone())));
        }
        match &node.kind {
            NodeKind::File { .. } => {
                let from = self.host_path(&source);
                if fs::hard_link(&from, host).is_err() {
                    // Filesystems without hard links: a copy reads the same.
                    write_new_file(host, Data::Host(&from))?;
                }
            }
            NodeKind::Symlink { target } => make_host_symlink(target, host)?,
            _ => {
                write_new_file(host, Data::Inline(&[]))?;
            }
        }
        Ok((node, None))
    }

    /// Resolves `path` as a directory for writing, creating missing
    /// directories (mode 0755, root-owned) inside the rootfs.
    fn ensure_dir(&mut self, path: &ImagePath, st: &mut LayerState) -> Result<ImagePath, String> {
        // Each round creates one directory; a bound stops symlink games.
        for _ in 0..4096 {
            match self.walk(path, true) {
                Walk::Found(p) => match self.record.get(&p).map(|n| &n.kind) {
                    Some(NodeKind::Dir) => return Ok(p),
                    Some(_) => return Err(format!("{p} is not a directory")),
                    // A final component that is missing (or a dangling
                    // symlink's target): create it below.
                    None => self.mkdir_recorded(&p, st)?,
                },
                Walk::Missing { existing, next } => {
                    self.mkdir_recorded(&existing.join(&next), st)?
                }
                Walk::NotDir(p) => return Err(format!("{p} is not a directory")),
                Walk::Loop => return Err(format!("too many levels of symlinks in {path}")),
            }
        }
        Err(format!("cannot create parent directories of {path}"))
    }

    /// Creates directory `new` (whose parent is a recorded directory).
    fn mkdir_recorded(&mut self, new: &ImagePath, st: &mut LayerState) -> Result<(), String> {
        let host = self.host_path(new);
        fs::create_dir(&host).map_err(|e| host_err("creating directory", &host, e))?;
        let node = Node {
            kind: NodeKind::Dir,
            meta: Meta::new(0o755),
        };
        self.record.insert(new.clone(), node);
        st.add(new);
        Ok(())
    }

    /// Walks `path` through the record with chroot semantics: symlinks in
    /// parent components are followed inside the rootfs (and a final one when
    /// `follow_last`), `..` stops at the root.
    fn walk(&self, path: &ImagePath, follow_last: bool) -> Walk {
        let mut todo: VecDeque<String> = path.components().map(String::from).collect();
        let mut cur = ImagePath::root();
        let mut budget = MAX_SYMLINKS;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    cur = cur.parent().unwrap_or_default();
                    continue;
                }
                _ => {}
            }
            let next = cur.join(&c);
            let last = todo.is_empty();
            match self.record.get(&next).map(|n| &n.kind) {
                None if last => return Walk::Found(next),
                None => {
                    return Walk::Missing {
                        existing: cur,
                        next: c,
                    }
                }
                Some(NodeKind::Dir) => cur = next,
                Some(NodeKind::Symlink { target }) if !last || follow_last => {
                    if budget == 0 {
                        return Walk::Loop;
                    }
                    budget -= 1;
                    if target.starts_with('/') {
                        cur = ImagePath::root();
                    }
                    for part in target.split('/').rev() {
                        todo.push_front(part.to_string());
                    }
                }
                Some(_) if last => return Walk::Found(next),
                Some(_) => return Walk::NotDir(next),
            }
        }
        Walk::Found(cur)
    }

    /// Removes `path` and everything under it, from the record and the host.
    fn remove_subtree(&mut self, path: &ImagePath) -> Result<(), String> {
        let keys: Vec<ImagePath> = self.subtree(path).collect();
        for k in &keys {
            self.record.remove(k);
            self.borrowed.remove(k);
        }
        let host = self.host_path(path);
        match fs::symlink_metadata(&host) {
            // remove_dir_all never follows symlinks (std since 1.58.1).
            Ok(m) if m.is_dir() => fs::remove_dir_all(&host),
            Ok(_) => fs::remove_file(&host),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| host_err("removing", &host, e))
    }

    /// Removes what lower layers had at `root` (if `include_root`) and under
    /// it, keeping what the current layer added and their ancestors.
    fn remove_lower(
        &mut self,
        root: &ImagePath,
        include_root: bool,
        st: &LayerState,
    ) -> Result<(), String> {
        let doomed: Vec<ImagePath> = self
            .subtree(root)
            .filter(|p| include_root || p != root)
            .filter(|p| !st.added.contains(p) && !st.kept.contains(p))
            .collect();
        // Deepest first, so directories are empty when their turn comes.
        for p in doomed.iter().rev() {
            self.remove_subtree(p)?;
        }
        Ok(())
    }

    fn subtree<'a>(&'a self, root: &'a ImagePath) -> impl Iterator<Item = ImagePath> + 'a {
        self.record
            .range(root.clone()..)
            .take_while(move |(k, _)| k.starts_with(root))
            .map(|(k, _)| k.clone())
    }

    /// Copies the tree to `dest` for `--output type=local`: directories,
    /// files and symlinks as such, modes and mtimes as far as the host
    /// allows (owners are not applied). Device nodes and fifos cannot be
    /// made unprivileged: they are skipped and returned.
    pub fn export_local(&self, dest: &Path) -> Result<Vec<ImagePath>, RootfsError> {
        let io = |what: &str, p: &Path, source| RootfsError::Io {
            what: format!("{what} {}", p.display()),
            source,
        };
        fs::create_dir_all(dest).map_err(|e| io("creating", dest, e))?;
        let mut skipped = Vec::new();
        let mut dirs = Vec::new();
        for (path, node) in &self.record {
            let out = path.components().fold(dest.to_path_buf(), |p, c| p.join(c));
            // Whatever the destination held here must not be followed, and
            // its parent must be the real directory made just before (a
            // case-folding host could alias it to an exported symlink).
            if let Some(parent) = out.parent().filter(|_| !path.is_root()) {
                ensure_real_dir(parent).map_err(|r| io("exporting", &out, io::Error::other(r)))?;
                match fs::symlink_metadata(&out) {
                    Ok(m) if m.is_dir() && node.kind == NodeKind::Dir => {}
                    Ok(m) if m.is_dir() => {
                        fs::remove_dir_all(&out).map_err(|e| io("removing", &out, e))?
                    }
                    Ok(_) => fs::remove_file(&out).map_err(|e| io("removing", &out, e))?,
                    Err(_) => {}
                }
            }
            match &node.kind {
                NodeKind::Dir => {
                    if !out.is_dir() {
                        fs::create_dir(&out).map_err(|e| io("creating", &out, e))?;
                    }
                    dirs.push((out, node.meta));
                }
                NodeKind::File { .. } => {
                    let from = self.host_path(path);
                    let data = match self.borrowed.get(path) {
                        Some(Content::Host(p)) => Data::Host(p),
                        Some(Content::Inline(b)) => Data::Inline(b),
                        None => Data::Host(&from),
                    };
                    write_new_file(&out, data)
                        .map_err(|r| io("writing", &out, io::Error::other(r)))?;
                    apply_host_meta(&out, &node.meta);
                }
                NodeKind::Symlink { target } => make_host_symlink(target, &out)
                    .map_err(|r| io("creating symlink", &out, io::Error::other(r)))?,
                _ => skipped.push(path.clone()),
            }
        }
        // Directory modes last (a read-only directory would block its
        // children), deepest first so parent mtimes stay as set.
        for (out, meta) in dirs.iter().rev() {
            apply_host_meta(out, meta);
        }
        Ok(skipped)
    }
}

impl SourceTree for Rootfs {
    fn lstat(&self, path: &ImagePath) -> io::Result<Option<Entry>> {
        let key = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => match self.walk(&parent, true) {
                Walk::Found(p) => p.join(name),
                Walk::Loop => return Err(loop_err(path)),
                _ => return Ok(None),
            },
            _ => ImagePath::root(),
        };
        let Some(node) = self.record.get(&key) else {
            return Ok(None);
        };
        Ok(Some(node.to_entry(path, || self.content(&key))))
    }

    fn read_dir(&self, dir: &ImagePath) -> io::Result<Vec<String>> {
        let key = match self.walk(dir, true) {
            Walk::Found(p) => p,
            Walk::Loop => return Err(loop_err(dir)),
            _ => return Err(io::Error::new(io::ErrorKind::NotFound, dir.to_absolute())),
        };
        match self.record.get(&key).map(|n| &n.kind) {
            Some(NodeKind::Dir) => {}
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    dir.to_absolute(),
                ))
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, dir.to_absolute())),
        }
        // Depth-first order lists direct children in bytewise name order.
        Ok(self
            .subtree(&key)
            .filter(|p| p.parent().as_ref() == Some(&key))
            .filter_map(|p| p.file_name().map(String::from))
            .collect())
    }
}

fn loop_err(p: &ImagePath) -> io::Error {
    io::Error::other(format!(
        "too many levels of symlinks in {}",
        p.to_absolute()
    ))
}

/// Refuses to write below a host path that is not a real directory: the
/// record says it is one, so anything else means the host aliased two names
/// (case folding, Unicode normalisation) and a symlink could be followed.
fn ensure_real_dir(host: &Path) -> Result<(), String> {
    match fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "{} is not a real directory on the host (do two names collide on this filesystem?)",
            host.display()
        )),
        Err(e) => Err(host_err("checking", host, e)),
    }
}

fn host_err(what: &str, host: &Path, e: io::Error) -> String {
    format!("{what} {}: {e}", host.display())
}

/// Whether a layer media type is a tar (compressed or not). Docker and OCI
/// names, distributable or not.
fn is_tar_layer(media_type: &str) -> bool {
    matches!(
        media_type.split('+').next(),
        Some(
            "application/vnd.oci.image.layer.v1.tar"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar"
                | "application/vnd.docker.image.rootfs.diff.tar.gzip"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        )
    )
}

/// Recognises OCI whiteout names: `D/.wh..wh..opq` gives (D, Opaque),
/// `D/.wh.NAME` gives (D/NAME, Whiteout); other `.wh..wh.` names are aufs
/// bookkeeping and are refused.
fn whiteout_of<'a>(path: &ImagePath) -> Result<Option<(ImagePath, Op<'a>)>, String> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    if name == ".wh..wh..opq" {
        return Ok(Some((parent, Op::Opaque)));
    }
    if name.starts_with(".wh..wh.") {
        return Err("unsupported aufs metadata entry".into());
    }
    match name.strip_prefix(".wh.") {
        Some("") => Err("whiteout without a name".into()),
        Some(n) => Ok(Some((parent.join(n), Op::Whiteout))),
        None => Ok(None),
    }
}

fn symlink_target(raw: Option<Vec<u8>>) -> Result<String, String> {
    let raw = raw.ok_or("symlink without a target")?;
    let s = std::str::from_utf8(&raw).map_err(|_| "symlink target is not valid UTF-8")?;
    if s.is_empty() || s.contains('\0') {
        return Err("empty symlink target or NUL byte in it".into());
    }
    Ok(s.to_string())
}

/// Creates `host` (which must not exist: a leftover symlink is never
/// followed) and fills it; returns the size written.
fn write_new_file(host: &Path, data: Data<'_>) -> Result<u64, String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(host)
        .map_err(|e| host_err("creating", host, e))?;
    let r = match data {
        Data::Stream(r) => io::copy(r, &mut f),
        Data::Host(p) => fs::File::open(p).and_then(|mut src| io::copy(&mut src, &mut f)),
        Data::Inline(b) => io::copy(&mut &b[..], &mut f),
    };
    r.map_err(|e| host_err("writing", host, e))
}

/// A real symlink on hosts that have them, so tools looking at the rootfs
/// see it; kiln itself only ever reads the target from the record.
fn make_host_symlink(target: &str, host: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, host).map_err(|e| host_err("creating symlink", host, e))
    }
    #[cfg(not(unix))]
    {
        // Symlinks may need privileges here: the record is enough.
        let _ = (target, host);
        Ok(())
    }
}

/// Best-effort mode and mtime on an exported path.
fn apply_host_meta(out: &Path, meta: &Meta) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let full = fs::Permissions::from_mode(meta.mode & 0o7777);
        if fs::set_permissions(out, full).is_err() {
            let _ = fs::set_permissions(out, fs::Permissions::from_mode(meta.mode & 0o777));
        }
    }
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
    if let Ok(f) = fs::File::open(out) {
        let _ = f.set_times(fs::FileTimes::new().set_modified(when));
    }
}

pub mod anchor;
mod rescan;

#[cfg(test)]
mod tests;
