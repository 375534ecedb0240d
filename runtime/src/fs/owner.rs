//! File modes and owners. WASI preview 1 has neither, and the host's own
//! (the builder's uid, its umask) must not leak into an image, so kiln keeps
//! them per inode: the builder's record for entries that existed before the
//! step, fixed defaults for entries the step made, and whatever the guest
//! set through `kiln.owner_set`.

use super::FileKind;
use std::sync::Arc;

/// Permission bits and owner of one entry, as an image records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The `0o7777` bits (permissions, setuid, setgid, sticky); no type.
    pub mode: u32,
    /// Owning user id.
    pub uid: u32,
    /// Owning group id.
    pub gid: u32,
}

/// The mode bits an [`Owner`] may hold.
pub const MODE_BITS: u32 = 0o7777;

impl Owner {
    /// The owner of a new entry of `kind` made by `(uid, gid)`: what a
    /// process with umask 022 gets on Linux, whatever the host's umask.
    pub fn default_for(kind: FileKind, (uid, gid): (u32, u32)) -> Owner {
        let mode = match kind {
            FileKind::Directory => 0o755,
            FileKind::Symlink => 0o777,
            _ => 0o644,
        };
        Owner { mode, uid, gid }
    }
}

/// The recorded mode and owner of an entry that existed before the step,
/// by image path; `None` means "not recorded".
pub type RecordedOwner = Arc<dyn Fn(&str) -> Option<Owner> + Send + Sync>;

/// Directory renames of the step, so that an entry first seen under a moved
/// directory is still found in the builder's record under its old path.
#[derive(Debug, Default)]
pub(crate) struct Moves {
    /// `(from, to)`, oldest first.
    moves: Vec<(String, String)>,
}

impl Moves {
    /// Remembers that the directory `from` is now at `to`.
    pub fn moved(&mut self, from: &str, to: &str) {
        self.moves.push((from.to_owned(), to.to_owned()));
    }

    /// Where `path` was when the step started, following renames backwards.
    pub fn original(&self, path: &str) -> String {
        let mut path = path.to_owned();
        for (from, to) in self.moves.iter().rev() {
            if let Some(rest) = path.strip_prefix(to.as_str()) {
                if rest.starts_with('/') {
                    path = format!("{from}{rest}");
                }
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_kind() {
        let me = (1000, 100);
        assert_eq!(Owner::default_for(FileKind::Regular, me).mode, 0o644);
        assert_eq!(Owner::default_for(FileKind::Directory, me).mode, 0o755);
        assert_eq!(Owner::default_for(FileKind::Symlink, me).mode, 0o777);
        assert_eq!(Owner::default_for(FileKind::Regular, me).uid, 1000);
    }

    #[test]
    fn moves_map_paths_back_through_chains() {
        let mut m = Moves::default();
        m.moved("/a", "/b");
        m.moved("/b", "/c/d");
        assert_eq!(m.original("/c/d/x/y"), "/a/x/y");
        assert_eq!(m.original("/c/dx"), "/c/dx");
        assert_eq!(m.original("/b/x"), "/a/x");
        assert_eq!(m.original("/e"), "/e");
    }
}
