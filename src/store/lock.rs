//! Locks that let several kiln processes share one cache dir.
//!
//! * `<cache>/lock`: every build holds it shared for its whole run;
//!   `kiln cache prune` holds it exclusively, so it never deletes a blob or
//!   step record a running build is about to use.
//! * `<cache>/tmp/build-XXXX.lock`: held exclusively by the build whose
//!   scratch dir is `<cache>/tmp/build-XXXX`. The OS releases it when the
//!   process dies (even on kill -9), which is how a later build tells a
//!   leftover scratch dir from a live one.
//!
//! All locks are advisory `flock`-style locks from std (`File::lock` and
//! friends), taken on separate open files, so they also exclude each other
//! within one process.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Stray temporary files (interrupted blob writes) older than this are
/// removed by the sweep; younger ones may belong to a live writer.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cache lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

type Result<T> = std::result::Result<T, LockError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens (creating if needed, never truncating) a lock file.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

/// Takes a lock, calling `on_wait` once first if someone else holds it.
pub(crate) fn lock_waiting(
    file: &File,
    exclusive: bool,
    path: &Path,
    on_wait: impl FnOnce(),
) -> Result<()> {
    let tried = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match tried {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => {
            on_wait();
            if exclusive {
                file.lock().map_err(io_err(path))
            } else {
                file.lock_shared().map_err(io_err(path))
            }
        }
        Err(TryLockError::Error(e)) => Err(io_err(path)(e)),
    }
}

/// Tries an exclusive lock: `Ok(false)` if someone else holds it.
pub(crate) fn try_exclusive(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(io_err(path)(e)),
    }
}

/// `<cache>/lock`, held for as long as this value lives.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl CacheLock {
    /// The lock file of `cache_dir`.
    pub fn path(cache_dir: &Path) -> PathBuf {
        cache_dir.join("lock")
    }

    /// Shared: what a build holds while it runs. Waits (saying so once on
    /// stderr) while a prune holds the cache.
    pub fn shared(cache_dir: &Path) -> Result<CacheLock> {
        Self::take(cache_dir, false, || {
            eprintln!(
                "waiting for `kiln cache prune` on {} to finish",
                cache_dir.display()
            )
        })
    }

    /// Exclusive: what prune holds. Waits (saying so once on stderr) for
    /// every running build on this cache to finish.
    pub fn exclusive(cache_dir: &Path) -> Result<CacheLock> {
        Self::take(cache_dir, true, || {
            eprintln!(
                "waiting for other kiln processes using {} to finish",
                cache_dir.display()
            )
        })
    }

    /// Exclusive without waiting: `None` while anyone else holds the lock.
    pub fn try_exclusive(cache_dir: &Path) -> Result<Option<CacheLock>> {
        let path = Self::path(cache_dir);
        let file = open_lock_file(&path)?;
        Ok(try_exclusive(&file, &path)?.then_some(CacheLock { _file: file }))
    }

    fn take(cache_dir: &Path, exclusive: bool, on_wait: impl FnOnce()) -> Result<CacheLock> {
        let path = Self::path(cache_dir);
        let file = open_lock_file(&path)?;
        lock_waiting(&file, exclusive, &path, on_wait)?;
        Ok(CacheLock { _file: file })
    }
}

/// A build's scratch dir `<cache>/tmp/build-XXXX`, with `build-XXXX.lock`
/// beside it held exclusively until [`ScratchDir::close`] or drop.
///
/// The lock file is created and locked before the dir exists, so a sweep
/// that sees the dir also sees its lock.
#[derive(Debug)]
pub struct ScratchDir {
    dir: PathBuf,
    lock_path: PathBuf,
    lock: Option<File>,
}

impl ScratchDir {
    /// Creates a fresh scratch dir under `<cache_dir>/tmp`.
    pub fn create(cache_dir: &Path) -> Result<ScratchDir> {
        let tmp = cache_dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let mut last_err = None;
        for _ in 0..16 {
            let named = tempfile::Builder::new()
                .prefix("build-")
                .suffix(".lock")
                .rand_bytes(10)
                .tempfile_in(&tmp)
                .map_err(io_err(&tmp))?;
            let (file, lock_path) = named.keep().map_err(|e| io_err(&tmp)(e.error))?;
            file.lock().map_err(io_err(&lock_path))?;
            let dir = scratch_dir_of(&lock_path);
            // A sweep may have removed a lock file that was not locked yet.
            if !same_file(&file, &lock_path) {
                last_err = Some(io::Error::other("lock file removed while being taken"));
                continue;
            }
            match fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(ScratchDir {
                        dir,
                        lock_path,
                        lock: Some(file),
                    })
                }
                // A leftover dir without its lock file: pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let _ = fs::remove_file(&lock_path);
                    last_err = Some(e);
                }
                Err(e) => {
                    let _ = fs::remove_file(&lock_path);
                    return Err(io_err(&dir)(e));
                }
            }
        }
        Err(io_err(&tmp)(last_err.unwrap_or_else(|| {
            io::Error::other("no free scratch dir name")
        })))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The lock file beside the dir.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Removes the dir, then its lock file, then releases the lock.
    pub fn close(mut self) -> Result<()> {
        self.remove()
    }

    fn remove(&mut self) -> Result<()> {
        let Some(lock) = self.lock.take() else {
            return Ok(());
        };
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.dir)(e)),
        }
        let _ = fs::remove_file(&self.lock_path);
        drop(lock);
        Ok(())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// `build-XXXX.lock` -> `build-XXXX`.
fn scratch_dir_of(lock_path: &Path) -> PathBuf {
    lock_path.with_extension("")
}

/// Whether `file` is still the file at `path` (not removed or replaced).
#[cfg(unix)]
pub(crate) fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
pub(crate) fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// What [`sweep_stale_scratch`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub scratch_dirs: u64,
    pub temp_files: u64,
    pub bytes: u64,
    /// Cache mounts recovered from (or lost with) killed builds.
    pub warnings: Vec<String>,
}

/// Cleans up after killed builds: first gives interrupted RUN cache mounts
/// back (their directories sit inside the dead build's scratch dir), then
/// removes `<cache>/tmp/build-*` dirs whose lock nobody holds, and stray
/// temporary files (interrupted blob writes, orphaned lock files) older
/// than [`STALE_TEMP_AGE`], also `.tmp*` files of interrupted step-record
/// and image-name writes. Safe while other builds run.
pub fn sweep_stale_scratch(cache_dir: &Path) -> Result<SweepReport> {
    let mut report = SweepReport {
        warnings: super::run_cache::recover_abandoned(cache_dir)?,
        ..SweepReport::default()
    };
    let tmp = cache_dir.join("tmp");
    let entries = match fs::read_dir(&tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io_err(&tmp)(e)),
    };
    let now = SystemTime::now();
    for entry in entries {
        let entry = entry.map_err(io_err(&tmp))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        if meta.is_dir() {
            if name.starts_with("build-") && sweep_scratch_dir(&path)? {
                report.scratch_dirs += 1;
                report.bytes += super::usage::tree_size(&path).1;
                let _ = fs::remove_dir_all(&path);
                let _ = fs::remove_file(path.with_extension("lock"));
            }
            continue;
        }
        let old = is_stale(&meta, now);
        if !old {
            continue;
        }
        if name.ends_with(".lock") && name.starts_with("build-") {
            // A lock file with no dir; only its owner's build could be
            // holding it, and then we leave it alone.
            let Ok(file) = open_existing(&path) else {
                continue;
            };
            if !try_exclusive(&file, &path)? || path.with_extension("").exists() {
                continue;
            }
        }
        if fs::remove_file(&path).is_ok() {
            report.temp_files += 1;
            report.bytes += meta.len();
        }
    }
    // Step records and image names are written beside their final names
    // (`.tmpXXXX`, then renamed); a killed writer leaves the temp file.
    for dir in [cache_dir.join("steps"), cache_dir.to_path_buf()] {
        remove_old_temp_files(&dir, now, &mut report);
    }
    Ok(report)
}

/// Whether `meta` was last modified more than [`STALE_TEMP_AGE`] before `now`.
fn is_stale(meta: &fs::Metadata, now: SystemTime) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age > STALE_TEMP_AGE)
}

/// Removes `.tmp*` files in `dir` older than [`STALE_TEMP_AGE`].
fn remove_old_temp_files(dir: &Path, now: SystemTime, report: &mut SweepReport) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_name().to_string_lossy().starts_with(".tmp") {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let old = is_stale(&meta, now);
        if meta.is_file() && old && fs::remove_file(entry.path()).is_ok() {
            report.temp_files += 1;
            report.bytes += meta.len();
        }
    }
}

/// Whether the scratch dir at `dir` is abandoned (its lock is free or
/// gone). Leaves nothing locked: the caller removes it right away, and a
/// new build cannot reuse the name while the dir or lock file exists.
fn sweep_scratch_dir(dir: &Path) -> Result<bool> {
    let lock_path = dir.with_extension("lock");
    let file = match open_existing(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io_err(&lock_path)(e)),
    };
    // Locked and still the file at that path: the lock file was not
    // swapped for a new build's between our open and our lock.
    Ok(try_exclusive(&file, &lock_path)? && same_file(&file, &lock_path))
}

fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_is_refused_while_a_build_holds_the_cache_shared() {
        let dir = tempfile::tempdir().unwrap();
        let build = CacheLock::shared(dir.path()).unwrap();
        let other_build = CacheLock::shared(dir.path()).unwrap();
        assert!(CacheLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(build);
        assert!(CacheLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(other_build);
        let prune = CacheLock::try_exclusive(dir.path()).unwrap();
        assert!(prune.is_some());
        assert!(CacheLock::try_exclusive(dir.path()).unwrap().is_none());
    }

    #[test]
    fn sweep_removes_abandoned_scratch_and_keeps_live_scratch() {
        let cache = tempfile::tempdir().unwrap();
        let live = ScratchDir::create(cache.path()).unwrap();
        fs::write(live.path().join("file"), b"live").unwrap();
        // A build killed with kill -9: dir and lock file left, lock free.
        let tmp = cache.path().join("tmp");
        let dead_dir = tmp.join("build-dead");
        let dead_lock = tmp.join("build-dead.lock");
        fs::create_dir(&dead_dir).unwrap();
        fs::write(dead_dir.join("file"), b"dead build data").unwrap();
        fs::write(&dead_lock, b"").unwrap();
        // A live build of another process, its lock held by this test.
        let held_dir = tmp.join("build-held");
        let held_lock_path = tmp.join("build-held.lock");
        fs::create_dir(&held_dir).unwrap();
        let held_lock = open_lock_file(&held_lock_path).unwrap();
        held_lock.lock().unwrap();
        // An old kiln's scratch dir, no lock file at all.
        let legacy = tmp.join("build-legacy");
        fs::create_dir(&legacy).unwrap();

        let report = sweep_stale_scratch(cache.path()).unwrap();
        assert_eq!(report.scratch_dirs, 2, "{report:?}");
        assert!(!dead_dir.exists() && !dead_lock.exists() && !legacy.exists());
        assert!(live.path().join("file").is_file(), "live scratch kept");
        assert!(live.lock_path().is_file());
        assert!(
            held_dir.is_dir() && held_lock_path.is_file(),
            "held lock kept"
        );
        drop(held_lock);
        assert_eq!(sweep_stale_scratch(cache.path()).unwrap().scratch_dirs, 1);
        assert!(!held_dir.exists() && !held_lock_path.exists());
        let live_dir = live.path().to_path_buf();
        live.close().unwrap();
        assert!(!live_dir.exists());
    }

    #[test]
    fn sweep_removes_only_old_stray_temp_files() {
        let cache = tempfile::tempdir().unwrap();
        let store = crate::store::BlobStore::open(cache.path()).unwrap();
        let tmp = cache.path().join("tmp");
        let old = tmp.join(".tmpOLD");
        let young = tmp.join(".tmpYOUNG");
        fs::write(&old, b"interrupted").unwrap();
        fs::write(&young, b"being written").unwrap();
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let steps = cache.path().join("steps");
        fs::create_dir_all(&steps).unwrap();
        let old_record_tmp = steps.join(".tmpREC");
        let record = steps.join(format!("{}.json", "a".repeat(64)));
        for f in [&old_record_tmp, &record] {
            fs::write(f, b"{}").unwrap();
            File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        let report = sweep_stale_scratch(cache.path()).unwrap();
        assert_eq!((report.temp_files, report.bytes), (2, 13));
        assert!(!old.exists() && young.exists());
        assert!(
            !old_record_tmp.exists() && record.exists(),
            "old records are prune's business"
        );
        drop(store);
    }
}
