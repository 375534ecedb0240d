//! Path resolution with chroot semantics, one component at a time.
//!
//! The host kernel never follows a symlink inside the rootfs: every
//! component is looked up with `lstat` relative to an open directory handle,
//! directories are entered with `O_NOFOLLOW`, and symlink targets are read
//! and spliced into the remaining path here. An absolute target restarts at
//! the rootfs's own `/`, and `..` at `/` stays at `/`, so no path leaves the
//! root. (cap-primitives underneath refuses escapes as a second line of
//! defence, should the tree change during the walk.)

use super::errno::Errno;
use cap_primitives::fs::{FollowSymlinks, Metadata};
use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

/// Most symlinks followed in one resolution (Linux's limit).
const MAX_LINKS: u32 = 40;

/// A directory handle: the rootfs's own, or one opened during a walk.
pub(crate) enum DirHandle<'a> {
    Root(&'a File),
    Owned(File),
}

impl DirHandle<'_> {
    pub(crate) fn file(&self) -> &File {
        match self {
            DirHandle::Root(f) => f,
            DirHandle::Owned(f) => f,
        }
    }
}

/// Where a path ends up.
pub(crate) struct Resolved<'a> {
    /// Canonical image path: absolute, no `.`, `..` or symlinks on the way.
    pub path: String,
    /// The directory holding the final component (the root for `/`).
    pub parent: DirHandle<'a>,
    /// The final component; `None` for `/` itself.
    pub name: Option<String>,
    /// `lstat` of the final component; `None` when it does not exist.
    pub meta: Option<Metadata>,
}

impl Resolved<'_> {
    /// The name, or EBUSY-like refusal for operations that cannot act on `/`.
    pub(crate) fn name_or(&self, errno: Errno) -> Result<&str, Errno> {
        self.name.as_deref().ok_or(errno)
    }

    /// The canonical path relative to the root (`.` for the root).
    pub(crate) fn relative(&self) -> &str {
        match self.path.strip_prefix('/') {
            Some("") | None => ".",
            Some(rel) => rel,
        }
    }
}

/// Resolves `path` (relative to the directory at image path `start`, or to
/// `/` when absolute) under `root`. Symlinks on the way are always followed;
/// a final symlink only when `follow_last` (or when the path ends in `/`).
pub(crate) fn resolve<'a>(
    root: &'a File,
    start: &str,
    path: &str,
    follow_last: bool,
) -> Result<Resolved<'a>, Errno> {
    if path.is_empty() {
        return Err(Errno::NOENT);
    }
    let must_dir = path.ends_with('/');
    let follow_last = follow_last || must_dir;
    let mut pending: VecDeque<String> = VecDeque::new();
    if !path.starts_with('/') {
        pending.extend(components(start));
    }
    pending.extend(components(path));

    let mut stack: Vec<(String, File)> = Vec::new();
    let mut links = 0u32;
    while let Some(name) = pending.pop_front() {
        let is_last = pending.is_empty();
        if name == "." {
            continue;
        }
        if name == ".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().map_or(root, |(_, f)| f);
        let meta = match lstat(cur, Path::new(&name)) {
            Ok(m) => m,
            Err(e) => {
                let errno = Errno::from(e);
                if errno == Errno::NOENT && is_last {
                    return Ok(finish(root, stack, name, None));
                }
                return Err(errno);
            }
        };
        if meta.is_symlink() && (!is_last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::LOOP);
            }
            let target = cap_primitives::fs::read_link_contents(cur, Path::new(&name))?;
            let target = target.to_str().ok_or(Errno::ILSEQ)?.to_owned();
            if target.is_empty() {
                return Err(Errno::NOENT);
            }
            if target.starts_with('/') {
                stack.clear();
            }
            for c in components(&target).into_iter().rev() {
                pending.push_front(c);
            }
            continue;
        }
        if !is_last {
            if !meta.is_dir() {
                return Err(Errno::NOTDIR);
            }
            let dir = cap_primitives::fs::open_dir_nofollow(cur, Path::new(&name))?;
            stack.push((name, dir));
            continue;
        }
        if must_dir && !meta.is_dir() {
            return Err(Errno::NOTDIR);
        }
        return Ok(finish(root, stack, name, Some(meta)));
    }
    // The path ended on a directory reached by `.`, `..` or a symlink:
    // refer to it through its parent like any other final component.
    match stack.pop() {
        None => {
            let meta = lstat(root, Path::new("."))?;
            Ok(Resolved {
                path: "/".into(),
                parent: DirHandle::Root(root),
                name: None,
                meta: Some(meta),
            })
        }
        Some((name, dir)) => {
            let meta = Metadata::from_file(&dir)?;
            Ok(finish(root, stack, name, Some(meta)))
        }
    }
}

fn finish(
    root: &File,
    mut stack: Vec<(String, File)>,
    name: String,
    meta: Option<Metadata>,
) -> Resolved<'_> {
    let mut path = String::new();
    for (n, _) in &stack {
        path.push('/');
        path.push_str(n);
    }
    path.push('/');
    path.push_str(&name);
    let parent = match stack.pop() {
        Some((_, f)) => DirHandle::Owned(f),
        None => DirHandle::Root(root),
    };
    Resolved {
        path,
        parent,
        name: Some(name),
        meta,
    }
}

/// `lstat` of `name` inside `dir`.
pub(crate) fn lstat(dir: &File, name: &Path) -> std::io::Result<Metadata> {
    cap_primitives::fs::stat(dir, name, FollowSymlinks::No)
}

/// The non-empty components of a `/`-separated path.
fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The image path of `name` inside directory `dir` (both canonical).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, File) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/f"), "f").unwrap();
        symlink("/usr/lib", root.join("lib")).unwrap();
        symlink("../..", root.join("usr/lib/up")).unwrap();
        symlink("/", root.join("usr/slash")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("/loop1", root.join("loop2")).unwrap();
        let dir = cap_primitives::fs::open_ambient_dir(&root, cap_primitives::ambient_authority())
            .unwrap();
        (tmp, dir)
    }

    fn canon(root: &File, start: &str, path: &str, follow: bool) -> Result<String, Errno> {
        resolve(root, start, path, follow).map(|r| r.path)
    }

    #[test]
    fn canonical_paths_follow_chroot_rules() {
        let (_tmp, root) = tree();
        assert_eq!(canon(&root, "/", "lib/f", true).unwrap(), "/usr/lib/f");
        assert_eq!(canon(&root, "/usr", "lib/./f", true).unwrap(), "/usr/lib/f");
        assert_eq!(canon(&root, "/", "../../../usr", true).unwrap(), "/usr");
        assert_eq!(
            canon(&root, "/usr/lib", "up/usr/lib/up/../../usr", true).unwrap(),
            "/usr"
        );
        assert_eq!(canon(&root, "/", "usr/slash/..", true).unwrap(), "/");
        assert_eq!(canon(&root, "/", "usr/slash", true).unwrap(), "/");
        assert_eq!(canon(&root, "/", "usr/slash", false).unwrap(), "/usr/slash");
        assert_eq!(canon(&root, "/usr", "/lib", false).unwrap(), "/lib");
        assert_eq!(
            canon(&root, "/", "lib/missing", true).unwrap(),
            "/usr/lib/missing"
        );
    }

    #[test]
    fn bad_paths_give_posix_errors() {
        let (_tmp, root) = tree();
        assert_eq!(canon(&root, "/", "loop1", true), Err(Errno::LOOP));
        assert_eq!(canon(&root, "/", "loop1", false).unwrap(), "/loop1");
        assert_eq!(canon(&root, "/", "usr/lib/f/x", true), Err(Errno::NOTDIR));
        assert_eq!(canon(&root, "/", "usr/lib/f/", true), Err(Errno::NOTDIR));
        assert_eq!(canon(&root, "/", "nope/x", true), Err(Errno::NOENT));
        assert_eq!(canon(&root, "/", "", true), Err(Errno::NOENT));
    }
}
