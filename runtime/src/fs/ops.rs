//! The filesystem operations behind the shadowed p1 functions. Each takes
//! the image path of the directory a guest path is relative to (`start`) and
//! the virtual time `now`; each resolves with chroot semantics first and
//! then acts on the final component through its parent's handle.

use super::devices::{lexical, Device};
use super::errno::Errno;
use super::owner::{Owner, MODE_BITS};
use super::resolve::{join, lstat, resolve, Resolved};
use super::state::{link_count, State, Times};
use super::{FileKind, Inner, Stat};
use cap_primitives::fs::Metadata;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

/// Size a directory shows: hosts disagree (ext4, btrfs, tmpfs, NTFS).
const DIR_SIZE: u64 = 4096;

/// What a `set_owner` call changes; `None` keeps it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SetOwner {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// One directory entry as the guest sees it.
#[derive(Debug, Clone)]
pub(crate) struct DirItem {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: FileKind,
}

/// Which times a `set_times` call changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetTimes {
    pub atime: Option<Duration>,
    pub mtime: Option<Duration>,
}

impl Inner {
    /// Resolves `path`, or names the device file it leads to: like Docker's
    /// `/dev` mount, a device hides whatever the image has at its path, and
    /// is there even when the image has no `/dev`.
    pub(crate) fn resolve_or_device(
        &self,
        start: &str,
        path: &str,
        follow: bool,
    ) -> Result<Result<Resolved<'_>, Device>, Errno> {
        if let Some(d) = Device::at(&lexical(start, path)) {
            return Ok(Err(d));
        }
        Self::or_device(resolve(&self.root, start, path, follow), || {
            follow
                .then(|| self.device_behind_link(start, path))
                .flatten()
        })
    }

    /// The device a symlink at `path` points to when the image has no
    /// `/dev` to resolve it through (`/var/log/app.log -> /dev/stdout`).
    pub(crate) fn device_behind_link(&self, start: &str, path: &str) -> Option<Device> {
        let r = resolve(&self.root, start, path, false).ok()?;
        if !r.meta.as_ref()?.is_symlink() {
            return None;
        }
        let target =
            cap_primitives::fs::read_link_contents(r.parent.file(), Path::new(r.name.as_deref()?))
                .ok()?;
        Device::at(&lexical(parent_of(&r.path), target.to_str()?))
    }

    /// What the guest sees of `path`.
    pub(crate) fn stat(&self, start: &str, path: &str, follow: bool) -> Result<Stat, Errno> {
        let r = match self.resolve_or_device(start, path, follow)? {
            Ok(r) => r,
            Err(d) => return Ok(d.stat(self.epoch)),
        };
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        let mut st = self.state();
        let ino = st.ino(meta, &r.path);
        Ok(self.stat_of(&mut st, ino, &r.path, meta))
    }

    /// The guest's view of an inode with host metadata `meta`.
    pub(crate) fn stat_of(&self, st: &mut State, ino: u64, path: &str, meta: &Metadata) -> Stat {
        let kind = kind_of(meta);
        let (size, nlink) = match kind {
            FileKind::Directory => (DIR_SIZE, 1),
            FileKind::Regular | FileKind::Symlink => (meta.len(), link_count(meta)),
            _ => (0, link_count(meta)),
        };
        Stat {
            ino,
            kind,
            nlink,
            size,
            times: self.times(st, ino, path),
        }
    }

    /// Times of `ino` (at `path`): virtual if the step touched it, else the
    /// recorded mtime, else SOURCE_DATE_EPOCH.
    pub(crate) fn times(&self, st: &State, ino: u64, path: &str) -> Times {
        st.times(ino).unwrap_or_else(|| {
            let recorded = self.recorded.as_ref().and_then(|f| f(path));
            Times::all(recorded.unwrap_or(self.epoch))
        })
    }

    /// mtime and ctime of the directory `dir` (at `path`) become `now`: an
    /// entry was added or removed.
    fn touch_dir(&self, st: &mut State, dir: &File, path: &str, now: Duration) {
        if let Ok(meta) = Metadata::from_file(dir) {
            let ino = st.ino(&meta, path);
            let mut t = self.times(st, ino, path);
            t.mtime = now;
            t.ctime = now;
            st.set_times(ino, t);
        }
    }

    /// Creates a directory.
    pub(crate) fn mkdir(&self, start: &str, path: &str, now: Duration) -> Result<(), Errno> {
        let r = resolve(&self.root, start, path, false)?;
        self.check_writable(&r.path)?;
        if r.meta.is_some() {
            return Err(Errno::EXIST);
        }
        let name = r.name_or(Errno::EXIST)?;
        let options = cap_primitives::fs::DirOptions::new();
        cap_primitives::fs::create_dir(r.parent.file(), Path::new(name), &options)?;
        self.made(&r, now, true)
    }

    /// Records a new entry at `r` (its ino, virtual times, the change, the
    /// parent's new mtime).
    fn made(&self, r: &Resolved<'_>, now: Duration, created: bool) -> Result<(), Errno> {
        let name = r.name_or(Errno::INVAL)?;
        let meta = lstat(r.parent.file(), Path::new(name))?;
        let mut st = self.state();
        let ino = st.ino(&meta, &r.path);
        st.set_times(ino, Times::all(now));
        if created {
            st.set_owner(ino, Owner::default_for(kind_of(&meta), self.creator));
            st.changes.created.insert(r.path.clone());
        }
        self.touch_dir(&mut st, r.parent.file(), parent_of(&r.path), now);
        Ok(())
    }

    /// Removes a file, symlink or other non-directory.
    pub(crate) fn unlink(&self, start: &str, path: &str, now: Duration) -> Result<(), Errno> {
        let r = resolve(&self.root, start, path, false)?;
        self.check_writable(&r.path)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        self.check_movable(&r.path)?;
        if meta.is_dir() {
            return Err(Errno::ISDIR);
        }
        let name = r.name_or(Errno::ISDIR)?;
        cap_primitives::fs::remove_file(r.parent.file(), Path::new(name))?;
        self.gone(&r, meta, now);
        Ok(())
    }

    /// Removes an empty directory.
    pub(crate) fn rmdir(&self, start: &str, path: &str, now: Duration) -> Result<(), Errno> {
        let r = resolve(&self.root, start, path, false)?;
        self.check_writable(&r.path)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        if !meta.is_dir() {
            return Err(Errno::NOTDIR);
        }
        self.check_movable(&r.path)?;
        let name = r.name_or(Errno::BUSY)?;
        cap_primitives::fs::remove_dir(r.parent.file(), Path::new(name))?;
        self.gone(&r, meta, now);
        Ok(())
    }

    fn gone(&self, r: &Resolved<'_>, meta: &Metadata, now: Duration) {
        let mut st = self.state();
        st.forget(meta, &r.path);
        st.changes.removed.insert(r.path.clone());
        self.touch_dir(&mut st, r.parent.file(), parent_of(&r.path), now);
    }

    /// Renames `from` to `to`; returns both canonical paths.
    pub(crate) fn rename(
        &self,
        (s1, p1): (&str, &str),
        (s2, p2): (&str, &str),
        now: Duration,
    ) -> Result<(String, String), Errno> {
        let from = resolve(&self.root, s1, p1, false)?;
        let meta = from.meta.as_ref().ok_or(Errno::NOENT)?;
        let to = resolve(&self.root, s2, p2, false)?;
        self.check_writable(&from.path)?;
        self.check_writable(&to.path)?;
        if from.path != to.path {
            self.check_movable(&from.path)?;
            if to.meta.is_some() {
                self.check_movable(&to.path)?;
            }
        }
        let from_name = from.name_or(Errno::BUSY)?;
        let to_name = to.name_or(Errno::BUSY)?;
        if from.path == to.path {
            return Ok((from.path.clone(), to.path.clone()));
        }
        {
            // The times and owner travel with the inode, not the recorded
            // path.
            let mut st = self.state();
            let ino = st.ino(meta, &from.path);
            let mut t = self.times(&st, ino, &from.path);
            t.ctime = now;
            st.set_times(ino, t);
            self.owner_of(&mut st, ino, &from.path, meta);
        }
        cap_primitives::fs::rename(
            from.parent.file(),
            Path::new(from_name),
            to.parent.file(),
            Path::new(to_name),
        )?;
        let mut st = self.state();
        if let Some(old) = &to.meta {
            st.forget(old, &to.path);
        }
        if meta.is_dir() {
            st.moves.moved(&from.path, &to.path);
        }
        st.changes.removed.insert(from.path.clone());
        st.changes.created.insert(to.path.clone());
        self.touch_dir(&mut st, from.parent.file(), parent_of(&from.path), now);
        self.touch_dir(&mut st, to.parent.file(), parent_of(&to.path), now);
        Ok((from.path.clone(), to.path.clone()))
    }

    /// Makes `to` a hard link to `from` (following a final symlink of
    /// `from` when `follow`).
    pub(crate) fn link(
        &self,
        (s1, p1, follow): (&str, &str, bool),
        (s2, p2): (&str, &str),
        now: Duration,
    ) -> Result<(), Errno> {
        let from = resolve(&self.root, s1, p1, follow)?;
        let meta = from.meta.as_ref().ok_or(Errno::NOENT)?;
        if meta.is_dir() {
            return Err(Errno::PERM);
        }
        let to = resolve(&self.root, s2, p2, false)?;
        self.check_writable(&to.path)?;
        if to.meta.is_some() {
            return Err(Errno::EXIST);
        }
        let from_name = from.name_or(Errno::PERM)?;
        let to_name = to.name_or(Errno::EXIST)?;
        {
            let mut st = self.state();
            let ino = st.ino(meta, &from.path);
            let mut t = self.times(&st, ino, &from.path);
            t.ctime = now;
            st.set_times(ino, t);
            self.owner_of(&mut st, ino, &from.path, meta);
        }
        cap_primitives::fs::hard_link(
            from.parent.file(),
            Path::new(from_name),
            to.parent.file(),
            Path::new(to_name),
        )?;
        let mut st = self.state();
        st.changes.created.insert(to.path.clone());
        self.touch_dir(&mut st, to.parent.file(), parent_of(&to.path), now);
        Ok(())
    }

    /// Creates a symlink at `path` whose target text is `target`, verbatim
    /// (absolute targets included: they resolve inside the root).
    pub(crate) fn symlink(
        &self,
        target: &str,
        start: &str,
        path: &str,
        now: Duration,
    ) -> Result<(), Errno> {
        let r = resolve(&self.root, start, path, false)?;
        self.check_writable(&r.path)?;
        if r.meta.is_some() {
            return Err(Errno::EXIST);
        }
        let name = r.name_or(Errno::EXIST)?;
        if target.is_empty() {
            return Err(Errno::NOENT);
        }
        #[cfg(unix)]
        cap_primitives::fs::symlink_contents(target, r.parent.file(), Path::new(name))?;
        #[cfg(not(unix))]
        {
            let _ = (name, target);
            return Err(Errno::NOTSUP);
        }
        #[allow(unreachable_code)]
        self.made(&r, now, true)
    }

    /// The target text of the symlink at `path`, verbatim.
    pub(crate) fn readlink(&self, start: &str, path: &str) -> Result<Vec<u8>, Errno> {
        let r = resolve(&self.root, start, path, false)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        if !meta.is_symlink() {
            return Err(Errno::INVAL);
        }
        let name = r.name_or(Errno::INVAL)?;
        let target = cap_primitives::fs::read_link_contents(r.parent.file(), Path::new(name))?;
        path_bytes(target.as_os_str())
    }

    /// Sets times of the entry at `path` (virtually: the host file keeps its
    /// own).
    pub(crate) fn set_times(
        &self,
        (start, path, follow): (&str, &str, bool),
        set: SetTimes,
        now: Duration,
    ) -> Result<(), Errno> {
        let Ok(r) = self.resolve_or_device(start, path, follow)? else {
            return Ok(());
        };
        self.check_writable(&r.path)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        let mut st = self.state();
        let ino = st.ino(meta, &r.path);
        self.set_ino_times(&mut st, ino, &r.path, set, now);
        Ok(())
    }

    /// Sets times of an inode known by number (an open descriptor).
    pub(crate) fn set_fd_times(&self, ino: u64, path: &str, set: SetTimes, now: Duration) {
        let mut st = self.state();
        self.set_ino_times(&mut st, ino, path, set, now);
    }

    fn set_ino_times(&self, st: &mut State, ino: u64, path: &str, set: SetTimes, now: Duration) {
        let mut t = self.times(st, ino, path);
        if let Some(a) = set.atime {
            t.atime = a;
        }
        if let Some(m) = set.mtime {
            t.mtime = m;
        }
        t.ctime = now;
        st.set_times(ino, t);
        st.changes.retimed.insert(path.to_owned());
    }

    /// The bytes of the file open as `ino` at `path` changed (truncate).
    pub(crate) fn wrote_fd(&self, ino: u64, path: &str, now: Duration) {
        let mut st = self.state();
        let mut t = self.times(&st, ino, path);
        t.mtime = now;
        t.ctime = now;
        st.set_times(ino, t);
        st.changes.written.insert(path.to_owned());
    }

    /// Mode and owner of `ino` (at `path`, host metadata `meta`), kept from
    /// first sight on: the builder's record for it, else the defaults of
    /// its kind owned by root.
    pub(crate) fn owner_of(&self, st: &mut State, ino: u64, path: &str, meta: &Metadata) -> Owner {
        if let Some(o) = st.owner(ino) {
            return o;
        }
        let recorded = self
            .recorded_owner
            .as_ref()
            .and_then(|f| f(&st.moves.original(path)));
        let o = recorded.unwrap_or_else(|| Owner::default_for(kind_of(meta), (0, 0)));
        let o = Owner {
            mode: o.mode & MODE_BITS,
            ..o
        };
        st.set_owner(ino, o);
        o
    }

    /// Mode and owner of `path`.
    pub(crate) fn owner(&self, start: &str, path: &str, follow: bool) -> Result<Owner, Errno> {
        let r = match self.resolve_or_device(start, path, follow)? {
            Ok(r) => r,
            Err(d) => return Ok(d.owner()),
        };
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        let mut st = self.state();
        let ino = st.ino(meta, &r.path);
        Ok(self.owner_of(&mut st, ino, &r.path, meta))
    }

    /// chmod/chown of `path`: each `None` keeps that part. Like Linux, a
    /// change of owner or group of a regular file drops its setuid bit, and
    /// its setgid bit when group-executable, unless a mode is given too;
    /// a symlink's mode cannot be set (ENOTSUP). The inode's ctime becomes
    /// `now`.
    pub(crate) fn set_owner(
        &self,
        (start, path, follow): (&str, &str, bool),
        set: SetOwner,
        now: Duration,
    ) -> Result<(), Errno> {
        if set.mode.is_some_and(|m| m & !MODE_BITS != 0) {
            return Err(Errno::INVAL);
        }
        let Ok(r) = self.resolve_or_device(start, path, follow)? else {
            // Devices live on their own mount: nothing to keep.
            return Ok(());
        };
        self.check_writable(&r.path)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        let kind = kind_of(meta);
        if kind == FileKind::Symlink && set.mode.is_some() {
            return Err(Errno::NOTSUP);
        }
        let mut st = self.state();
        let ino = st.ino(meta, &r.path);
        let mut o = self.owner_of(&mut st, ino, &r.path, meta);
        if set.uid.is_some() || set.gid.is_some() {
            o.uid = set.uid.unwrap_or(o.uid);
            o.gid = set.gid.unwrap_or(o.gid);
            if kind == FileKind::Regular {
                o.mode &= !0o4000;
                if o.mode & 0o010 != 0 {
                    o.mode &= !0o2000;
                }
            }
        }
        if let Some(m) = set.mode {
            o.mode = m;
        }
        st.set_owner(ino, o);
        let mut t = self.times(&st, ino, &r.path);
        t.ctime = now;
        st.set_times(ino, t);
        st.changes.chowned.insert(r.path.clone());
        Ok(())
    }

    /// Resolves the target of a `path_open`. With `create`, a missing final
    /// component is fine; with `create` and `exclusive`, a final symlink is
    /// not followed and an existing entry is an error.
    pub(crate) fn open_target(
        &self,
        start: &str,
        path: &str,
        follow: bool,
        (create, exclusive): (bool, bool),
    ) -> Result<Resolved<'_>, Errno> {
        let r = resolve(&self.root, start, path, follow && !(create && exclusive))?;
        match (&r.meta, create, exclusive) {
            (None, false, _) => Err(Errno::NOENT),
            (Some(_), true, true) => Err(Errno::EXIST),
            _ => Ok(r),
        }
    }

    /// [`Inner::open_target`], or the device file the path names (see
    /// [`Inner::resolve_or_device`]).
    pub(crate) fn open_target_or_device(
        &self,
        start: &str,
        path: &str,
        follow: bool,
        flags: (bool, bool),
    ) -> Result<Result<Resolved<'_>, Device>, Errno> {
        if let Some(d) = Device::at(&lexical(start, path)) {
            return Ok(Err(d));
        }
        Self::or_device(self.open_target(start, path, follow, flags), || {
            follow
                .then(|| self.device_behind_link(start, path))
                .flatten()
        })
    }

    /// A resolution, or the device its canonical path names, or, when it
    /// found nothing, the device `behind_link` names.
    fn or_device<'a>(
        resolved: Result<Resolved<'a>, Errno>,
        behind_link: impl FnOnce() -> Option<Device>,
    ) -> Result<Result<Resolved<'a>, Device>, Errno> {
        match resolved {
            Ok(r) => Ok(Device::at(&r.path).map_or(Ok(r), Err)),
            Err(Errno::NOENT) => behind_link().map(Err).ok_or(Errno::NOENT),
            Err(e) => Err(e),
        }
    }

    /// Records a successful open of `r`; returns its inode number and
    /// whether it is a directory.
    pub(crate) fn opened(
        &self,
        r: &Resolved<'_>,
        write: bool,
        now: Duration,
    ) -> Result<(u64, bool), Errno> {
        let meta = match &r.name {
            Some(name) => lstat(r.parent.file(), Path::new(name))?,
            None => lstat(r.parent.file(), Path::new("."))?,
        };
        let created = r.meta.is_none();
        let mut st = self.state();
        let ino = st.ino(&meta, &r.path);
        if created {
            st.set_times(ino, Times::all(now));
            st.set_owner(ino, Owner::default_for(kind_of(&meta), self.creator));
            st.changes.created.insert(r.path.clone());
            st.changes.written.insert(r.path.clone());
            self.touch_dir(&mut st, r.parent.file(), parent_of(&r.path), now);
        } else if write && meta.is_file() {
            let mut t = self.times(&st, ino, &r.path);
            t.mtime = now;
            t.ctime = now;
            st.set_times(ino, t);
            st.changes.written.insert(r.path.clone());
        }
        Ok((ino, meta.is_dir()))
    }

    /// The entries of the directory at canonical `path`: `.`, `..`, then
    /// the rest sorted bytewise by name.
    pub(crate) fn list(&self, path: &str) -> Result<Vec<DirItem>, Errno> {
        let r = resolve(&self.root, "/", path, true)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT)?;
        if !meta.is_dir() {
            return Err(Errno::NOTDIR);
        }
        let owned;
        let dir: &File = match &r.name {
            None => r.parent.file(),
            Some(name) => {
                owned = cap_primitives::fs::open_dir_nofollow(r.parent.file(), Path::new(name))?;
                &owned
            }
        };
        let mut raw = Vec::new();
        for entry in cap_primitives::fs::read_base_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let meta = entry.metadata()?;
            raw.push((path_bytes(&name)?, meta));
        }
        raw.sort_by(|a, b| a.0.cmp(&b.0));
        let parent_meta = match &r.name {
            None => None,
            Some(_) => Some(lstat(r.parent.file(), Path::new("."))?),
        };
        let mut st = self.state();
        let self_ino = st.ino(meta, &r.path);
        let parent_ino = match &parent_meta {
            None => self_ino,
            Some(m) => st.ino(m, parent_of(&r.path)),
        };
        let mut items = vec![
            DirItem {
                name: b".".to_vec(),
                ino: self_ino,
                kind: FileKind::Directory,
            },
            DirItem {
                name: b"..".to_vec(),
                ino: parent_ino,
                kind: FileKind::Directory,
            },
        ];
        for (name, meta) in raw {
            let child = join(&r.path, &String::from_utf8_lossy(&name));
            items.push(DirItem {
                ino: st.ino(&meta, &child),
                kind: kind_of(&meta),
                name,
            });
        }
        Ok(items)
    }
}

/// The image path of the directory holding `path` (`/` for `/`).
pub(crate) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The kind of entry `meta` describes.
pub(crate) fn kind_of(meta: &Metadata) -> FileKind {
    let ft = meta.file_type();
    if ft.is_dir() {
        return FileKind::Directory;
    }
    if ft.is_file() {
        return FileKind::Regular;
    }
    if ft.is_symlink() {
        return FileKind::Symlink;
    }
    #[cfg(unix)]
    {
        use cap_primitives::fs::FileTypeExt;
        if ft.is_block_device() {
            return FileKind::BlockDevice;
        }
        if ft.is_char_device() {
            return FileKind::CharDevice;
        }
        if ft.is_socket() {
            return FileKind::Socket;
        }
    }
    FileKind::Unknown
}

/// A host name or link target as bytes (raw on Unix; UTF-8 elsewhere).
fn path_bytes(s: &std::ffi::OsStr) -> Result<Vec<u8>, Errno> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(s.as_bytes().to_vec())
    }
    #[cfg(not(unix))]
    {
        s.to_str()
            .map(|s| s.as_bytes().to_vec())
            .ok_or(Errno::ILSEQ)
    }
}
