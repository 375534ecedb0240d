//! Bringing the record up to date after a RUN step changed the host
//! directory: only the paths the sandbox reported (and their parents) are
//! looked at again, never the whole tree.

use super::{Node, NodeKind, Rootfs, RootfsError};
use crate::snapshot::{ImagePath, Meta};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;

/// Gives the metadata of a path after the step: `previous` is what the
/// record had there (`None` for a new path).
pub type MetaOf<'a> = dyn Fn(&ImagePath, &NodeKind, Option<&Meta>) -> Meta + 'a;

impl Rootfs {
    /// Writes every borrowed file (a COPY result recorded by reference) into
    /// the host directory, so programs can read and change it.
    pub fn materialize(&mut self) -> Result<(), RootfsError> {
        let borrowed = std::mem::take(&mut self.borrowed);
        for (path, content) in borrowed {
            let host = self.host_path(&path);
            let mut reader = content.open().map_err(|e| RootfsError::Io {
                what: format!("reading the source of {path}"),
                source: e,
            })?;
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&host)
                .map_err(|e| RootfsError::Io {
                    what: format!("materialising {path} at {}", host.display()),
                    source: e,
                })?;
            io::copy(&mut reader, &mut out).map_err(|e| RootfsError::Io {
                what: format!("materialising {path}"),
                source: e,
            })?;
        }
        Ok(())
    }

    /// The record as it is after a step that changed `touched` paths (and,
    /// for each path in `subtrees`, everything below it) on the host.
    pub fn rescan(
        &self,
        touched: &BTreeSet<ImagePath>,
        subtrees: &BTreeSet<ImagePath>,
        meta_of: &MetaOf<'_>,
    ) -> Result<BTreeMap<ImagePath, Node>, RootfsError> {
        let mut todo: BTreeSet<ImagePath> = BTreeSet::new();
        for p in touched {
            todo.extend(p.ancestors());
            todo.insert(p.clone());
        }
        let mut after = self.record.clone();
        let mut walk_below: Vec<ImagePath> = Vec::new();
        for path in &todo {
            // Parents come first (depth-first order): if one is no longer a
            // directory (the step replaced it by a symlink, say), the host
            // path would go through that symlink; nothing below it exists.
            if !parents_are_dirs(&after, path) {
                drop_subtree(&mut after, path);
                continue;
            }
            let host = self.host_path(path);
            let meta = match fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    drop_subtree(&mut after, path);
                    continue;
                }
                Err(e) => return Err(io_err("examining", &host, e)),
            };
            let kind = host_kind(&host, &meta)?;
            let previous = after.get(path).cloned();
            if !same_kind(previous.as_ref(), &kind) {
                drop_subtree(&mut after, path);
            }
            let kind = keep_special(previous.as_ref(), kind, touched.contains(path));
            let (is_dir, same) = record(&mut after, path, kind, previous.as_ref(), meta_of);
            if is_dir && (!same || subtrees.contains(path)) {
                walk_below.push(path.clone());
            }
        }
        for dir in walk_below {
            self.add_host_subtree(&mut after, &dir, meta_of)?;
        }
        Ok(after)
    }

    /// Replaces the record (after [`Rootfs::rescan`]).
    pub fn replace_record(&mut self, record: BTreeMap<ImagePath, Node>) {
        self.record = record;
    }

    /// Records everything on the host below `dir`.
    fn add_host_subtree(
        &self,
        after: &mut BTreeMap<ImagePath, Node>,
        dir: &ImagePath,
        meta_of: &MetaOf<'_>,
    ) -> Result<(), RootfsError> {
        let host = self.host_path(dir);
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(&host).map_err(|e| io_err("listing", &host, e))? {
            let entry = entry.map_err(|e| io_err("listing", &host, e))?;
            match entry.file_name().into_string() {
                Ok(n) => names.push(n),
                Err(raw) => {
                    return Err(RootfsError::Io {
                        what: format!(
                            "{dir}: a RUN step created a name that is not UTF-8 ({raw:?})"
                        ),
                        source: io::Error::from(io::ErrorKind::InvalidData),
                    })
                }
            }
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let host = self.host_path(&path);
            let meta = fs::symlink_metadata(&host).map_err(|e| io_err("examining", &host, e))?;
            let kind = host_kind(&host, &meta)?;
            let previous = after.get(&path).cloned();
            let (is_dir, _) = record(after, &path, kind, previous.as_ref(), meta_of);
            if is_dir {
                self.add_host_subtree(after, &path, meta_of)?;
            }
        }
        Ok(())
    }
}

fn same_kind(previous: Option<&Node>, kind: &NodeKind) -> bool {
    previous.is_some_and(|n| std::mem::discriminant(&n.kind) == std::mem::discriminant(kind))
}

/// Records `path` as `kind` with the metadata `meta_of` gives (keeping the
/// previous metadata as its base when the kind did not change). Returns
/// whether it is a directory and whether its kind stayed the same.
fn record(
    after: &mut BTreeMap<ImagePath, Node>,
    path: &ImagePath,
    kind: NodeKind,
    previous: Option<&Node>,
    meta_of: &MetaOf<'_>,
) -> (bool, bool) {
    let same = same_kind(previous, &kind);
    let meta = meta_of(path, &kind, previous.map(|n| &n.meta).filter(|_| same));
    let is_dir = kind == NodeKind::Dir;
    after.insert(path.clone(), Node { kind, meta });
    (is_dir, same)
}

/// A device or fifo from a lower layer is an empty placeholder file on the
/// host: untouched, it stays what the record says.
fn keep_special(previous: Option<&Node>, host_kind: NodeKind, touched: bool) -> NodeKind {
    match (previous, &host_kind) {
        (Some(n), NodeKind::File { size: 0 }) if !touched => match n.kind {
            NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } | NodeKind::Fifo => {
                n.kind.clone()
            }
            _ => host_kind,
        },
        _ => host_kind,
    }
}

fn parents_are_dirs(after: &BTreeMap<ImagePath, Node>, path: &ImagePath) -> bool {
    path.ancestors()
        .iter()
        .all(|a| a.is_root() || matches!(after.get(a).map(|n| &n.kind), Some(NodeKind::Dir)))
}

fn drop_subtree(after: &mut BTreeMap<ImagePath, Node>, root: &ImagePath) {
    let doomed: Vec<ImagePath> = after
        .range(root.clone()..)
        .take_while(|(k, _)| k.starts_with(root))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        after.remove(&k);
    }
}

fn host_kind(host: &std::path::Path, meta: &fs::Metadata) -> Result<NodeKind, RootfsError> {
    let ft = meta.file_type();
    if ft.is_dir() {
        Ok(NodeKind::Dir)
    } else if ft.is_symlink() {
        let target = fs::read_link(host).map_err(|e| io_err("reading symlink", host, e))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|raw| RootfsError::Io {
                what: format!("{}: symlink target is not UTF-8 ({raw:?})", host.display()),
                source: io::Error::from(io::ErrorKind::InvalidData),
            })?;
        Ok(NodeKind::Symlink { target })
    } else {
        Ok(NodeKind::File { size: meta.len() })
    }
}

fn io_err(what: &str, host: &std::path::Path, source: io::Error) -> RootfsError {
    RootfsError::Io {
        what: format!("{what} {}", host.display()),
        source,
    }
}

impl Rootfs {
    /// Where `path` really is in the tree, with chroot semantics: symlinks
    /// (a final one too) are followed inside the rootfs; components that do
    /// not exist yet are kept as written. Errors name the path.
    pub fn canonical(&self, path: &ImagePath) -> Result<ImagePath, String> {
        let mut todo: std::collections::VecDeque<String> =
            path.components().map(String::from).collect();
        let mut cur = ImagePath::root();
        let mut budget = 40u32;
        let mut missing = false;
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
            if missing {
                cur = next;
                continue;
            }
            match self.record.get(&next).map(|n| &n.kind) {
                None => {
                    missing = true;
                    cur = next;
                }
                Some(NodeKind::Dir) => cur = next,
                Some(NodeKind::Symlink { target }) => {
                    if budget == 0 {
                        return Err(format!("{path}: too many levels of symbolic links"));
                    }
                    budget -= 1;
                    if target.starts_with('/') {
                        cur = ImagePath::root();
                    }
                    for part in target.split('/').rev() {
                        todo.push_front(part.to_string());
                    }
                }
                Some(_) if todo.is_empty() => cur = next,
                Some(_) => return Err(format!("{path}: {next} is not a directory")),
            }
        }
        Ok(cur)
    }
}
