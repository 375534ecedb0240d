//! The host side of the step filesystem: what kiln's shell needs for
//! redirections, `test`, globbing and PATH lookup, with the same chroot
//! resolution and change record the guests get.

use super::devices::Device;
use super::errno::Errno;
use super::resolve::resolve;
use super::{FsError, Rootfs, Stat};
use cap_primitives::fs::{FollowSymlinks, OpenOptions};
use std::fs::File;
use std::path::Path;
use std::time::Duration;

/// How the host opens a file for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or truncate (`>`).
    Truncate,
    /// Create or append (`>>`).
    Append,
}

impl Rootfs {
    fn path_err(path: &str) -> impl Fn(Errno) -> FsError + '_ {
        move |errno| FsError::Path {
            path: path.to_owned(),
            errno,
        }
    }

    /// What a guest sees of `image_path`, following a final symlink when
    /// `follow`.
    pub fn stat_path(&self, image_path: &str, follow: bool) -> Result<Stat, FsError> {
        self.inner()
            .stat("/", image_path, follow)
            .map_err(Self::path_err(image_path))
    }

    /// The device file `image_path` names, directly or through symlinks.
    pub fn device(&self, image_path: &str) -> Option<Device> {
        self.inner()
            .resolve_or_device("/", image_path, true)
            .ok()?
            .err()
    }

    /// Opens a regular file for reading (symlinks followed inside the root).
    pub fn open_read(&self, image_path: &str) -> Result<File, FsError> {
        let err = Self::path_err(image_path);
        let inner = self.inner();
        let r = resolve(&inner.root, "/", image_path, true).map_err(&err)?;
        let meta = r.meta.as_ref().ok_or(Errno::NOENT).map_err(&err)?;
        if meta.is_dir() {
            return Err(err(Errno::ISDIR));
        }
        let name = r.name.as_deref().ok_or(Errno::ISDIR).map_err(&err)?;
        let mut opts = OpenOptions::new();
        opts.read(true)._cap_fs_ext_follow(FollowSymlinks::No);
        cap_primitives::fs::open(r.parent.file(), Path::new(name), &opts)
            .map_err(|e| err(Errno::from(e)))
    }

    /// Opens (creating if needed) a file for writing at virtual time `now`,
    /// recording the change like a guest's `path_open` would.
    pub fn open_write(
        &self,
        image_path: &str,
        mode: WriteMode,
        now: Duration,
    ) -> Result<File, FsError> {
        let err = Self::path_err(image_path);
        let inner = self.inner();
        let r = inner
            .open_target("/", image_path, true, (true, false))
            .map_err(&err)?;
        if r.meta.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(err(Errno::ISDIR));
        }
        inner.check_writable(&r.path).map_err(&err)?;
        let name = r.name.as_deref().ok_or(Errno::ISDIR).map_err(&err)?;
        let mut opts = OpenOptions::new();
        opts.write(true)
            .create(true)
            ._cap_fs_ext_follow(FollowSymlinks::No);
        match mode {
            WriteMode::Truncate => opts.truncate(true),
            WriteMode::Append => opts.append(true),
        };
        let file = cap_primitives::fs::open(r.parent.file(), Path::new(name), &opts)
            .map_err(|e| err(Errno::from(e)))?;
        inner.opened(&r, true, now).map_err(&err)?;
        Ok(file)
    }

    /// The names in a directory (not `.` and `..`), sorted bytewise.
    pub fn read_dir(&self, image_path: &str) -> Result<Vec<String>, FsError> {
        let items = self
            .inner()
            .list(image_path)
            .map_err(Self::path_err(image_path))?;
        Ok(items
            .into_iter()
            .skip(2)
            .map(|i| String::from_utf8_lossy(&i.name).into_owned())
            .collect())
    }

    /// Reads a whole regular file (PATH lookup checks a program's magic and
    /// loads it from here).
    pub fn read(&self, image_path: &str) -> Result<Vec<u8>, FsError> {
        use std::io::Read as _;
        let mut f = self.open_read(image_path)?;
        let mut out = Vec::new();
        f.read_to_end(&mut out).map_err(|e| FsError::Path {
            path: image_path.to_owned(),
            errno: Errno::from(e),
        })?;
        Ok(out)
    }

    /// The target text of the symlink at `image_path` (the final component
    /// not followed), verbatim.
    pub fn read_link(&self, image_path: &str) -> Result<Vec<u8>, FsError> {
        self.inner()
            .readlink("/", image_path)
            .map_err(Self::path_err(image_path))
    }

    /// The canonical image path `image_path` resolves to (symlinks followed).
    pub fn canonical(&self, image_path: &str) -> Result<String, FsError> {
        let r = resolve(&self.inner().root, "/", image_path, true)
            .map_err(Self::path_err(image_path))?;
        if r.meta.is_none() {
            return Err(FsError::Path {
                path: image_path.to_owned(),
                errno: Errno::NOENT,
            });
        }
        Ok(r.path)
    }
}
