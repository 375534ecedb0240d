//! What the sandbox remembers about the rootfs during a step: virtual inode
//! numbers, virtual times, modes and owners, and the paths the step changed.

use super::owner::{Moves, Owner};
use cap_primitives::fs::Metadata;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The times of one inode, as the guest sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Last access.
    pub atime: Duration,
    /// Last modification of the contents.
    pub mtime: Duration,
    /// Last change of the inode (contents, links, times).
    pub ctime: Duration,
}

impl Times {
    /// All three set to `t`.
    pub fn all(t: Duration) -> Times {
        Times {
            atime: t,
            mtime: t,
            ctime: t,
        }
    }
}

/// Image paths a step changed, for the builder to re-examine instead of
/// rehashing the whole rootfs. A path can be in several sets (removed, then
/// created again); what is on disk at the end decides. A directory in
/// `created` (made by mkdir or moved in by rename) is new with its subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Regular files whose bytes may have changed: opened for writing,
    /// truncated or created. Pass `written ∪ created` to the layer diff.
    pub written: BTreeSet<String>,
    /// Entries the step made: files, directories, symlinks, hard links and
    /// rename destinations.
    pub created: BTreeSet<String>,
    /// Entries the step removed: unlinked files, removed directories and
    /// rename sources.
    pub removed: BTreeSet<String>,
    /// Entries whose times the step set explicitly (touch, utimensat).
    pub retimed: BTreeSet<String>,
    /// Entries whose mode or owner the step set explicitly (chmod, chown,
    /// through `kiln.owner_set`).
    pub chowned: BTreeSet<String>,
}

impl Changes {
    /// Every path in any of the sets.
    pub fn touched(&self) -> BTreeSet<String> {
        let mut all = self.written.clone();
        all.extend(self.created.iter().cloned());
        all.extend(self.removed.iter().cloned());
        all.extend(self.retimed.iter().cloned());
        all.extend(self.chowned.iter().cloned());
        all
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
            && self.created.is_empty()
            && self.removed.is_empty()
            && self.retimed.is_empty()
            && self.chowned.is_empty()
    }
}

/// What identifies an inode on the host. Only used as a key: the guest
/// sees the virtual number assigned to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostKey {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Path(String),
}

fn host_key(meta: &Metadata, _path: &str) -> HostKey {
    #[cfg(unix)]
    {
        use cap_primitives::fs::MetadataExt;
        HostKey::Inode(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        HostKey::Path(_path.to_owned())
    }
}

/// Mutable per-step state, behind the rootfs's mutex.
#[derive(Debug, Default)]
pub(crate) struct State {
    inodes: HashMap<HostKey, u64>,
    next_ino: u64,
    times: HashMap<u64, Times>,
    /// Mode and owner by virtual inode (so hard links share them and they
    /// follow renames), from first sight on.
    owners: HashMap<u64, Owner>,
    /// Directory renames, to find recorded owners of entries not seen yet.
    pub moves: Moves,
    pub changes: Changes,
}

impl State {
    /// The virtual inode number of the host inode `meta` (found at image
    /// path `path`), assigning the next one on first sight.
    pub fn ino(&mut self, meta: &Metadata, path: &str) -> u64 {
        let key = host_key(meta, path);
        if let Some(&ino) = self.inodes.get(&key) {
            return ino;
        }
        self.next_ino += 1;
        self.inodes.insert(key, self.next_ino);
        self.next_ino
    }

    /// Forgets an inode whose last link is about to go, so a host inode
    /// number reused later gets a fresh virtual number.
    pub fn forget(&mut self, meta: &Metadata, path: &str) {
        let last = meta.is_dir() || link_count(meta) <= 1;
        if last {
            if let Some(ino) = self.inodes.remove(&host_key(meta, path)) {
                self.times.remove(&ino);
                self.owners.remove(&ino);
            }
        }
    }

    /// The virtual times of `ino`, if the step set or changed them.
    pub fn times(&self, ino: u64) -> Option<Times> {
        self.times.get(&ino).copied()
    }

    /// Sets the virtual times of `ino`.
    pub fn set_times(&mut self, ino: u64, t: Times) {
        self.times.insert(ino, t);
    }

    /// The mode and owner of `ino`, if seen or set before.
    pub fn owner(&self, ino: u64) -> Option<Owner> {
        self.owners.get(&ino).copied()
    }

    /// Sets the mode and owner of `ino`.
    pub fn set_owner(&mut self, ino: u64, owner: Owner) {
        self.owners.insert(ino, owner);
    }
}

/// The host's link count (1 where the host has no such notion).
pub(crate) fn link_count(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use cap_primitives::fs::MetadataExt;
        meta.nlink()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}
