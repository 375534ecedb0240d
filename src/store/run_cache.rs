//! The directories behind RUN `--mount=type=cache`: `<cache>/run-cache/<hex>`
//! with `hex = sha256(id)`, moved into a step's rootfs while it runs and
//! back afterwards.
//!
//! Beside each: `<hex>.lock`, held exclusively while the directory is
//! mounted, so a second build using the same id waits (BuildKit's
//! `sharing=locked`; kiln gives every sharing mode these semantics, since a
//! moved directory cannot be in two places), and `<hex>.mounted`, a marker
//! written before the move that names where the directory went, relative to
//! the cache dir. A holder killed with kill -9 leaves the marker; whoever
//! takes the lock next moves the directory back from there.

use super::lock::{lock_waiting, open_lock_file, try_exclusive, LockError};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

type Result<T> = std::result::Result<T, LockError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The name a cache id is kept under.
pub fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// `<cache>/run-cache`.
pub fn run_cache_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("run-cache")
}

/// The exclusive hold on one cache id, released on drop.
#[derive(Debug)]
pub struct RunCacheLock {
    _file: File,
    cache_dir: PathBuf,
    key: String,
}

impl RunCacheLock {
    /// Waits for the lock of cache `id` (calling `on_wait` once if another
    /// build holds it), then gives back a directory an interrupted holder
    /// left mounted. Returns a warning when something had to be recovered
    /// or was lost.
    pub fn acquire(
        cache_dir: &Path,
        id: &str,
        on_wait: impl FnOnce(),
    ) -> Result<(RunCacheLock, Option<String>)> {
        let key = key(id);
        let lock_path = run_cache_dir(cache_dir).join(format!("{key}.lock"));
        let file = open_lock_file(&lock_path)?;
        lock_waiting(&file, true, &lock_path, on_wait)?;
        let warning = recover(cache_dir, &key)?;
        Ok((
            RunCacheLock {
                _file: file,
                cache_dir: cache_dir.to_path_buf(),
                key,
            },
            warning,
        ))
    }

    /// Like [`RunCacheLock::acquire`], but `Ok(None)` at once if another
    /// build holds the id (for `sharing=private`).
    pub fn try_acquire(
        cache_dir: &Path,
        id: &str,
    ) -> Result<Option<(RunCacheLock, Option<String>)>> {
        let key = key(id);
        let lock_path = run_cache_dir(cache_dir).join(format!("{key}.lock"));
        let file = open_lock_file(&lock_path)?;
        if !try_exclusive(&file, &lock_path)? {
            return Ok(None);
        }
        let warning = recover(cache_dir, &key)?;
        let lock = RunCacheLock {
            _file: file,
            cache_dir: cache_dir.to_path_buf(),
            key,
        };
        Ok(Some((lock, warning)))
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where the directory lives between builds.
    pub fn home(&self) -> PathBuf {
        run_cache_dir(&self.cache_dir).join(&self.key)
    }

    /// Records, before the move, that the directory is about to be at `host`.
    pub fn mark_mounted(&self, host: &Path) -> Result<()> {
        let marker = marker_path(&self.cache_dir, &self.key);
        let named = host.strip_prefix(&self.cache_dir).unwrap_or(host);
        let tmp = marker.with_extension("mounted.tmp");
        fs::write(&tmp, path_bytes(named)).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &marker).map_err(io_err(&marker))
    }

    /// The directory is home again.
    pub fn clear_mark(&self) -> Result<()> {
        let marker = marker_path(&self.cache_dir, &self.key);
        match fs::remove_file(&marker) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&marker)(e)),
            _ => Ok(()),
        }
    }
}

fn marker_path(cache_dir: &Path, key: &str) -> PathBuf {
    run_cache_dir(cache_dir).join(format!("{key}.mounted"))
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

/// With the lock of `key` held: if a marker says the directory was left
/// mounted, moves it back from there (only from inside `<cache>/tmp`), or
/// says it is lost. `Ok(None)` when nothing needed doing or nothing was lost.
fn recover(cache_dir: &Path, key: &str) -> Result<Option<String>> {
    let marker = marker_path(cache_dir, key);
    let named = match fs::read(&marker) {
        Ok(b) => bytes_path(&b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&marker)(e)),
    };
    let home = run_cache_dir(cache_dir).join(key);
    let inside_tmp = named.components().next() == Some(Component::Normal("tmp".as_ref()))
        && named
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    let left_at = cache_dir.join(&named);
    let left_is_dir = inside_tmp && real_dir_below(cache_dir, &named);
    let home_exists = fs::symlink_metadata(&home).is_ok();
    let warning = if left_is_dir {
        // An empty home can only be one made before the interrupted move.
        if home_exists && fs::remove_dir(&home).is_err() {
            Some(format!(
                "cache mount {key}: both {} and a copy left by an interrupted build at {} exist; keeping the first, the second is discarded with that build's scratch dir",
                home.display(),
                left_at.display()
            ))
        } else {
            fs::rename(&left_at, &home).map_err(io_err(&left_at))?;
            Some(format!(
                "cache mount {key}: recovered from an interrupted build ({})",
                left_at.display()
            ))
        }
    } else if home_exists {
        None // killed after the marker, before the move: nothing left home
    } else {
        Some(format!(
            "cache mount {key}: its contents were lost with an interrupted build (last at {}); starting empty",
            left_at.display()
        ))
    };
    fs::remove_file(&marker).map_err(io_err(&marker))?;
    Ok(warning)
}

/// Whether `rel` names a directory below `base` with no symlink anywhere on
/// the way. The marker points into an interrupted build's rootfs, where its
/// RUN step may have left a symlink to a host directory in place of any
/// ancestor; following one would move a host directory into the cache.
/// (The build is gone, so nothing changes the tree between this check and
/// the move.)
fn real_dir_below(base: &Path, rel: &Path) -> bool {
    let mut at = base.to_path_buf();
    rel.components().all(|c| {
        at.push(c);
        fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir())
    })
}

/// Recovers every cache left mounted by a build that no longer runs (its
/// lock is free). Called before stale scratch dirs are removed, since the
/// directories sit inside them.
pub(crate) fn recover_abandoned(cache_dir: &Path) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for key in marked_keys(cache_dir)? {
        let lock_path = run_cache_dir(cache_dir).join(format!("{key}.lock"));
        let file = open_lock_file(&lock_path)?;
        if try_exclusive(&file, &lock_path)? {
            warnings.extend(recover(cache_dir, &key)?);
        }
    }
    Ok(warnings)
}

fn marked_keys(cache_dir: &Path) -> Result<Vec<String>> {
    let dir = run_cache_dir(cache_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        if let Some(key) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".mounted"))
        {
            if is_key(key) {
                keys.push(key.to_string());
            }
        }
    }
    Ok(keys)
}

pub(crate) fn is_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Removes every cache mount directory nobody holds (for `prune --all`):
/// returns how many directories and bytes. Held ones are skipped.
pub fn remove_all(cache_dir: &Path) -> Result<(u64, u64)> {
    let dir = run_cache_dir(cache_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let name = entry.file_name();
        let Some(key) = name.to_str().filter(|n| is_key(n)) else {
            continue;
        };
        let lock_path = dir.join(format!("{key}.lock"));
        let file = open_lock_file(&lock_path)?;
        if !try_exclusive(&file, &lock_path)? {
            continue;
        }
        let path = entry.path();
        let size = super::usage::tree_size(&path).1;
        fs::remove_dir_all(&path).map_err(io_err(&path))?;
        let _ = fs::remove_file(marker_path(cache_dir, key));
        count += 1;
        bytes += size;
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What run_mounts does: lock, mark, move into a step's rootfs.
    fn mount_into(cache: &Path, id: &str, host: &Path) -> RunCacheLock {
        let (lock, warning) = RunCacheLock::acquire(cache, id, || {}).unwrap();
        assert_eq!(warning, None);
        fs::create_dir_all(lock.home()).unwrap();
        lock.mark_mounted(host).unwrap();
        fs::rename(lock.home(), host).unwrap();
        lock
    }

    #[test]
    fn a_mount_left_by_a_killed_build_is_moved_back_by_the_next_holder() {
        let cache = tempfile::tempdir().unwrap();
        let rootfs = cache.path().join("tmp/build-x/rootfs");
        fs::create_dir_all(&rootfs).unwrap();
        let host = rootfs.join("cache");
        let lock = mount_into(cache.path(), "go-build", &host);
        fs::write(host.join("obj"), b"compiled").unwrap();
        let home = lock.home();
        drop(lock); // killed: the lock is released, the marker stays

        let (lock, warning) = RunCacheLock::acquire(cache.path(), "go-build", || {}).unwrap();
        let warning = warning.expect("recovery is reported");
        assert!(warning.contains("recovered"), "{warning}");
        assert_eq!(fs::read(home.join("obj")).unwrap(), b"compiled");
        assert!(!host.exists());
        assert!(!marker_path(cache.path(), lock.key()).exists());
    }

    #[test]
    fn a_lost_mount_is_reported_and_the_sweep_recovers_before_removing_scratch() {
        let cache = tempfile::tempdir().unwrap();
        let host = cache.path().join("tmp/build-y/rootfs/c");
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        drop(mount_into(cache.path(), "lost", &host));
        fs::remove_dir_all(&host).unwrap();
        let (_l, warning) = RunCacheLock::acquire(cache.path(), "lost", || {}).unwrap();
        assert!(warning.unwrap().contains("lost"));

        // The sweep of a killed build's scratch dir gives the cache back first.
        let host = cache.path().join("tmp/build-z/rootfs/c");
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        let lock = mount_into(cache.path(), "kept", &host);
        fs::write(host.join("f"), b"data").unwrap();
        let home = lock.home();
        drop(lock);
        let report = crate::store::lock::sweep_stale_scratch(cache.path()).unwrap();
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        assert!(!cache.path().join("tmp/build-z").exists());
        assert_eq!(fs::read(home.join("f")).unwrap(), b"data");
    }

    #[test]
    fn a_marker_pointing_outside_tmp_is_never_followed() {
        let cache = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (lock, _) = RunCacheLock::acquire(cache.path(), "evil", || {}).unwrap();
        fs::create_dir_all(outside.path().join("d")).unwrap();
        lock.mark_mounted(&outside.path().join("d")).unwrap();
        let home = lock.home();
        drop(lock);
        let (_lock, warning) = RunCacheLock::acquire(cache.path(), "evil", || {}).unwrap();
        assert!(warning.unwrap().contains("lost"));
        assert!(outside.path().join("d").is_dir() && !home.exists());
    }

    /// A killed build's RUN step renamed an ancestor of the mount point and
    /// left a symlink to a host directory in its place: recovery must not
    /// move the host directory's namesake into the cache.
    #[cfg(unix)]
    #[test]
    fn recovery_never_follows_a_symlinked_ancestor() {
        let cache = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(outside.path().join("c")).unwrap();
        fs::write(outside.path().join("c/data"), b"host secret").unwrap();
        let rootfs = cache.path().join("tmp/build-k/rootfs");
        fs::create_dir_all(rootfs.join("a")).unwrap();
        let lock = mount_into(cache.path(), "evil", &rootfs.join("a/c"));
        let home = lock.home();
        drop(lock); // killed mid-step, after the guest did its work:
        fs::rename(rootfs.join("a"), rootfs.join("a2")).unwrap();
        std::os::unix::fs::symlink(outside.path(), rootfs.join("a")).unwrap();

        let (_lock, warning) = RunCacheLock::acquire(cache.path(), "evil", || {}).unwrap();
        assert!(warning.unwrap().contains("lost"));
        assert_eq!(
            fs::read(outside.path().join("c/data")).unwrap(),
            b"host secret"
        );
        assert!(!home.exists(), "nothing from outside became the cache");
    }

    #[test]
    fn a_held_cache_id_blocks_other_holders() {
        let cache = tempfile::tempdir().unwrap();
        let (held, _) = RunCacheLock::acquire(cache.path(), "id", || {}).unwrap();
        let path = run_cache_dir(cache.path()).join(format!("{}.lock", held.key()));
        let other = open_lock_file(&path).unwrap();
        assert!(!try_exclusive(&other, &path).unwrap());
        assert!(RunCacheLock::try_acquire(cache.path(), "id")
            .unwrap()
            .is_none());
        assert!(RunCacheLock::try_acquire(cache.path(), "other id")
            .unwrap()
            .is_some());
        drop(held);
        assert!(try_exclusive(&other, &path).unwrap());
    }
}
