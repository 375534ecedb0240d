//! kiln's RUN filesystem: a host directory (the stage's materialised rootfs)
//! seen by WASI preview-1 guests with chroot semantics and deterministic
//! metadata.
//!
//! How: wasmtime-wasi keeps owning the descriptor table and file I/O (read,
//! write, seek, ...); kiln shadows every p1 function that takes a path, plus
//! `fd_readdir`, `fd_filestat_*`, `fd_close` and `fd_renumber` (see
//! [`wasi`]). Paths are resolved here ([`resolve`]), component by component
//! with no host symlink following, and only a canonical, symlink-free path
//! relative to the root preopen is handed to wasmtime-wasi's `path_open`.
//! Owning the whole p1 surface instead would mean re-implementing the
//! descriptor table, stdio, pipes and polling for no gain in safety.
//!
//! What the guest observes: absolute symlinks resolve inside the root, `..`
//! stops at `/`; directory listings sorted bytewise by name (after `.` and
//! `..`); inode numbers assigned in first-seen order; a single device
//! number; times of entries the step wrote or made are virtual (the
//! invocation's virtual clock), others show the recorded times the builder
//! gives, never the host's; directories show size 4096 and link count 1.
//!
//! Modes and owners, which p1 lacks, are kept per inode ([`Owner`]): the
//! builder's record for entries that existed before the step, fixed
//! defaults (0644 files, 0755 directories, 0777 symlinks, owned by the
//! step's user) for entries it makes, whatever the guest sets through
//! `kiln.owner_set`. The host's modes, owners and umask never show.

mod devices;
mod errno;
mod host;
mod ops;
mod owner;
mod resolve;
mod state;
pub(crate) mod wasi;
pub(crate) mod wasi_devices;

pub use devices::Device;
pub use errno::Errno;
pub use host::WriteMode;
pub(crate) use ops::SetOwner;
pub use owner::{Owner, RecordedOwner, MODE_BITS};
pub use state::{Changes, Times};

use state::State;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The recorded modification time of an entry that existed before the step,
/// by image path (`/etc/passwd`); `None` means "not recorded".
pub type RecordedMtime = Arc<dyn Fn(&str) -> Option<Duration> + Send + Sync>;

/// Errors of the host-side filesystem API.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The rootfs directory cannot be opened.
    #[error("cannot open the rootfs directory {}: {source}", path.display())]
    Open {
        /// The host directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An operation on an image path failed.
    #[error("{path}: {errno}")]
    Path {
        /// The image path.
        path: String,
        /// What the guest would have seen.
        errno: Errno,
    },
}

/// The kind of an entry, as WASI p1 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// A socket.
    Socket,
    /// Anything else (a FIFO: p1 has no type for it).
    Unknown,
}

impl FileKind {
    /// The p1 `filetype` value.
    pub fn wasi(self) -> u8 {
        match self {
            FileKind::Unknown => 0,
            FileKind::BlockDevice => 1,
            FileKind::CharDevice => 2,
            FileKind::Directory => 3,
            FileKind::Regular => 4,
            FileKind::Socket => 6,
            FileKind::Symlink => 7,
        }
    }
}

/// What the guest sees of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Virtual inode number.
    pub ino: u64,
    /// Kind of entry.
    pub kind: FileKind,
    /// Link count (1 for directories).
    pub nlink: u64,
    /// Size in bytes (4096 for directories).
    pub size: u64,
    /// Virtual or recorded times.
    pub times: Times,
}

/// How to open a rootfs.
#[derive(Clone, Default)]
pub struct RootfsOptions {
    /// SOURCE_DATE_EPOCH in seconds: the time of entries with no recorded
    /// time.
    pub source_date_epoch: u64,
    /// Recorded mtimes of entries that existed before the step.
    pub recorded_mtime: Option<RecordedMtime>,
    /// Recorded modes and owners of entries that existed before the step;
    /// an entry with none shows the defaults of its kind, owned by root.
    pub recorded_owner: Option<RecordedOwner>,
    /// `(uid, gid)` of the step's USER: the owner of entries it makes.
    pub creator: (u32, u32),
    /// Canonical image paths nothing may change at or below (read-only
    /// bind mounts): writes fail with EROFS.
    pub read_only: Vec<String>,
    /// Canonical image paths of the step's mount points. Neither they nor
    /// any directory above them may be renamed, removed or replaced
    /// (EBUSY, as Linux answers for a mount point), so the places kiln put
    /// the mounts at still hold them when the step ends and kiln takes
    /// them down.
    pub pinned: Vec<String>,
}

impl std::fmt::Debug for RootfsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootfsOptions")
            .field("source_date_epoch", &self.source_date_epoch)
            .field("recorded_mtime", &self.recorded_mtime.is_some())
            .field("recorded_owner", &self.recorded_owner.is_some())
            .field("creator", &self.creator)
            .field("read_only", &self.read_only)
            .field("pinned", &self.pinned)
            .finish()
    }
}

/// One step's root filesystem. Cheap to clone; every command of a RUN step
/// (every instance of a pipeline) shares one, so inode numbers, virtual
/// times and the change record span the whole step.
#[derive(Clone)]
pub struct Rootfs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Rootfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rootfs")
            .field("host_dir", &self.inner.host_dir)
            .finish()
    }
}

pub(crate) struct Inner {
    host_dir: PathBuf,
    root: File,
    epoch: Duration,
    recorded: Option<RecordedMtime>,
    recorded_owner: Option<RecordedOwner>,
    creator: (u32, u32),
    read_only: Vec<String>,
    pinned: Vec<String>,
    state: Mutex<State>,
}

impl Rootfs {
    /// Opens `host_dir` as a rootfs. The root directory gets inode number 1.
    pub fn open(host_dir: &Path, options: RootfsOptions) -> Result<Rootfs, FsError> {
        let open_err = |source| FsError::Open {
            path: host_dir.to_owned(),
            source,
        };
        let root =
            cap_primitives::fs::open_ambient_dir(host_dir, cap_primitives::ambient_authority())
                .map_err(open_err)?;
        let inner = Inner {
            host_dir: host_dir.to_owned(),
            root,
            epoch: Duration::from_secs(options.source_date_epoch),
            recorded: options.recorded_mtime,
            recorded_owner: options.recorded_owner,
            creator: options.creator,
            read_only: options.read_only,
            pinned: options.pinned,
            state: Mutex::new(State::default()),
        };
        let meta = resolve::lstat(&inner.root, Path::new(".")).map_err(open_err)?;
        inner.state().ino(&meta, "/");
        Ok(Rootfs {
            inner: Arc::new(inner),
        })
    }

    /// The host directory.
    pub fn host_dir(&self) -> &Path {
        &self.inner.host_dir
    }

    /// Whether the step wrote or created the file at canonical `image_path`.
    pub fn written(&self, image_path: &str) -> bool {
        let st = self.inner.state();
        st.changes.written.contains(image_path) || st.changes.created.contains(image_path)
    }

    /// What the steps run so far changed.
    pub fn changes(&self) -> Changes {
        self.inner.state().changes.clone()
    }

    /// What a guest sees of `image_path` (absolute; a final symlink is not
    /// followed), e.g. the virtual mtime of a file a step wrote.
    pub fn stat(&self, image_path: &str) -> Result<Stat, FsError> {
        self.inner
            .stat("/", image_path, false)
            .map_err(|errno| FsError::Path {
                path: image_path.to_owned(),
                errno,
            })
    }

    /// The mode and owner of `image_path` (absolute) as the guest sees
    /// them; `follow` follows a final symlink.
    pub fn owner(&self, image_path: &str, follow: bool) -> Result<Owner, FsError> {
        self.inner
            .owner("/", image_path, follow)
            .map_err(|errno| FsError::Path {
                path: image_path.to_owned(),
                errno,
            })
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Inner {
    /// EROFS for a canonical path at or below a read-only mount.
    pub(crate) fn check_writable(&self, path: &str) -> Result<(), Errno> {
        let under = |ro: &String| {
            path == ro
                || (path.starts_with(ro.as_str())
                    && (ro.ends_with('/') || path.as_bytes().get(ro.len()) == Some(&b'/')))
        };
        if self.read_only.iter().any(under) {
            Err(Errno::ROFS)
        } else {
            Ok(())
        }
    }

    /// EBUSY for a canonical path that is a mount point or lies above one:
    /// the step may not move or remove it.
    pub(crate) fn check_movable(&self, path: &str) -> Result<(), Errno> {
        let holds = |pin: &String| {
            pin == path
                || path == "/"
                || (pin.starts_with(path) && pin.as_bytes().get(path.len()) == Some(&b'/'))
        };
        if self.pinned.iter().any(holds) {
            Err(Errno::BUSY)
        } else {
            Ok(())
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough data
        // (plain maps); keep serving rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
