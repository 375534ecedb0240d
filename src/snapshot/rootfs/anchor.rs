//! Places in a rootfs's host directory held by handle, for host work that
//! happens after guest code ran (taking RUN mounts down).
//!
//! After a RUN step the host directory is hostile: the guest may have
//! renamed a directory and left a symlink to a host path in its place. A
//! host path string computed before the step would then lead the kernel
//! through that symlink, outside the rootfs. An [`Anchor`] is an open handle
//! on the parent directory of a place, taken before the step by opening
//! every component from the rootfs's root without following symlinks.
//! Everything done through it names the entry relative to that handle and
//! never follows a final symlink; cap-primitives refuses any path that would
//! leave the handle's directory, as a second line of defence.

use super::Rootfs;
use crate::snapshot::ImagePath;
use cap_primitives::fs::{FollowSymlinks, Metadata};
use std::fs::File;
use std::io;
use std::path::Path;

/// The directory holding one place of a rootfs, and the place's name in it.
#[derive(Debug)]
pub struct Anchor {
    parent: File,
    name: String,
}

/// Which file system object an entry is, to tell later whether it is still
/// the one kiln put there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    #[cfg(unix)]
    pub fn of(meta: &Metadata) -> Identity {
        use cap_primitives::fs::MetadataExt as _;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// Windows: the volume and file index (what `dev`/`ino` are there).
    #[cfg(windows)]
    pub fn of(meta: &Metadata) -> Identity {
        use cap_primitives::fs::_WindowsByHandle as _;
        Identity {
            dev: meta.volume_serial_number().unwrap_or(0).into(),
            ino: meta.file_index().unwrap_or(0),
        }
    }
}

impl Rootfs {
    /// Opens the parent directory of `path` (a canonical path, not `/`),
    /// one component at a time, refusing symlinks on the way.
    pub fn anchor(&self, path: &ImagePath) -> io::Result<Anchor> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root directory has no parent",
            ));
        };
        let mut dir = open_dir(&self.dir)?;
        for component in parent.components() {
            dir = cap_primitives::fs::open_dir_nofollow(&dir, Path::new(component))?;
        }
        Ok(Anchor {
            parent: dir,
            name: name.to_string(),
        })
    }
}

/// Opens a trusted host directory (one kiln made: a scratch dir, the cache
/// dir) as a handle for [`Anchor`] moves.
pub fn open_dir(path: &Path) -> io::Result<File> {
    cap_primitives::fs::open_ambient_dir(path, cap_primitives::ambient_authority())
}

impl Anchor {
    fn name(&self) -> &Path {
        Path::new(&self.name)
    }

    /// `lstat` of the place; `None` when nothing is there.
    pub fn lstat(&self) -> io::Result<Option<Metadata>> {
        match cap_primitives::fs::stat(&self.parent, self.name(), FollowSymlinks::No) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an empty directory at the place.
    pub fn create_dir(&self) -> io::Result<()> {
        let options = cap_primitives::fs::DirOptions::new();
        cap_primitives::fs::create_dir(&self.parent, self.name(), &options)
    }

    /// Creates a new file at the place (it must not exist) and returns it.
    pub fn create_file(&self) -> io::Result<File> {
        let mut options = cap_primitives::fs::OpenOptions::new();
        options.write(true).create_new(true);
        cap_primitives::fs::open(&self.parent, self.name(), &options)
    }

    /// Opens the directory at the place, refusing a symlink.
    pub fn open_dir(&self) -> io::Result<File> {
        cap_primitives::fs::open_dir_nofollow(&self.parent, self.name())
    }

    /// Removes whatever is at the place: a directory with everything in it,
    /// or a file or symlink (never what a symlink points to).
    pub fn remove_all(&self) -> io::Result<()> {
        match self.lstat()? {
            None => Ok(()),
            Some(m) if m.is_dir() => cap_primitives::fs::remove_dir_all(&self.parent, self.name()),
            Some(_) => cap_primitives::fs::remove_file(&self.parent, self.name()),
        }
    }

    /// Removes the place if it is an empty directory; `false` otherwise.
    pub fn remove_empty_dir(&self) -> bool {
        matches!(self.lstat(), Ok(Some(m)) if m.is_dir())
            && cap_primitives::fs::remove_dir(&self.parent, self.name()).is_ok()
    }

    /// Moves the entry `name` of directory `from` to the place.
    pub fn move_in(&self, from: &File, name: &str) -> io::Result<()> {
        cap_primitives::fs::rename(from, Path::new(name), &self.parent, self.name())
    }

    /// Moves the entry at the place to `name` in directory `to`.
    pub fn move_out(&self, to: &File, name: &str) -> io::Result<()> {
        cap_primitives::fs::rename(&self.parent, self.name(), to, Path::new(name))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A rootfs whose `/a` a "guest" replaced by a symlink to a host
    /// directory after the anchor was taken: the anchor still acts on the
    /// directory it opened, and the host directory is untouched.
    #[test]
    fn an_anchor_keeps_acting_on_the_directory_it_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let host = tmp.path().join("host");
        std::fs::create_dir_all(&root).unwrap();
        let rootfs = Rootfs::new(&root).unwrap();
        std::fs::create_dir_all(root.join("a/t")).unwrap();
        std::fs::create_dir_all(host.join("t")).unwrap();
        std::fs::write(host.join("t/precious"), "keep").unwrap();
        let anchor = rootfs
            .anchor(&ImagePath::resolve(&ImagePath::root(), "/a/t"))
            .unwrap();

        std::fs::rename(root.join("a"), root.join("a2")).unwrap();
        symlink(&host, root.join("a")).unwrap();

        anchor.remove_all().unwrap();
        assert!(!root.join("a2/t").exists(), "removed where it was moved");
        assert_eq!(
            std::fs::read_to_string(host.join("t/precious")).unwrap(),
            "keep"
        );
        let outside = tmp.path().join("aside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("0"), "set aside").unwrap();
        anchor.move_in(&open_dir(&outside).unwrap(), "0").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("a2/t")).unwrap(),
            "set aside"
        );
        assert!(!host.join("t").join("0").exists());
    }

    #[test]
    fn anchors_refuse_symlinks_on_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let rootfs = Rootfs::new(&root).unwrap();
        symlink(tmp.path(), root.join("a")).unwrap();
        assert!(rootfs
            .anchor(&ImagePath::resolve(&ImagePath::root(), "/a/t"))
            .is_err());
        // A final symlink is removed, not followed.
        std::fs::create_dir(tmp.path().join("victim")).unwrap();
        std::fs::write(tmp.path().join("victim/f"), "x").unwrap();
        symlink(tmp.path().join("victim"), root.join("v")).unwrap();
        let v = rootfs
            .anchor(&ImagePath::resolve(&ImagePath::root(), "/v"))
            .unwrap();
        v.remove_all().unwrap();
        assert!(tmp.path().join("victim/f").exists());
        assert!(std::fs::symlink_metadata(root.join("v")).is_err());
    }
}
