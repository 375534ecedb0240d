//! `kiln cache prune`: drops step-cache records by age, size or all of
//! them, then garbage-collects the blobs nothing needs any more.
//!
//! Named images (`kiln build -t`) are always kept, with every blob they
//! need, even with `--all`: kiln has no command to remove a name yet, and
//! silently breaking `kiln inspect NAME` would be worse than using space.
//! `--keep` adds images by manifest digest (e.g. from `--iidfile`) or by name.
//! RUN cache mounts and the compiled wasm modules in the cache dir go only
//! with `--all` (a `KILN_WASM_CACHE` elsewhere is never touched).
//!
//! Runs under the exclusive [`CacheLock`], so no build is running: every
//! record and blob seen is settled.

use super::images::{normalize, ImageNames};
use super::lock::{sweep_stale_scratch, CacheLock};
use super::usage::{all_blobs, image_closure, named_roots, step_records, tree_size, UsageError};
use super::BlobStore;
use crate::digest::Digest;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What to prune; the default drops no record and only collects blobs
/// nothing references and leftovers of killed builds.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// Every step record, RUN cache mount and compiled module.
    pub all: bool,
    /// Drop records not used for longer than this.
    pub keep_duration: Option<Duration>,
    /// Then drop least recently used records until blobs plus records take
    /// at most this many bytes (named images' blobs count but stay).
    pub max_used_space: Option<u64>,
    /// Images to keep besides the named ones: names or manifest digests.
    pub keep: Vec<String>,
}

/// A count and the bytes it took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Freed {
    pub count: u64,
    pub bytes: u64,
}

impl Freed {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub step_records: Freed,
    pub blobs: Freed,
    pub run_cache: Freed,
    pub wasm_modules: Freed,
    /// Scratch dirs and temporary files of killed builds.
    pub temporary: Freed,
    /// RUN cache mounts recovered from (or lost with) killed builds.
    pub warnings: Vec<String>,
}

impl PruneReport {
    pub fn total_bytes(&self) -> u64 {
        self.step_records.bytes
            + self.blobs.bytes
            + self.run_cache.bytes
            + self.wasm_modules.bytes
            + self.temporary.bytes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("--keep {0:?}: no image has that name (see `kiln images`)")]
    UnknownImage(String),
    #[error("--keep {0:?}: manifest {1} is not in the cache")]
    MissingManifest(String, Digest),
    #[error("--keep {0:?}: {1}")]
    BadKeep(String, super::images::NameError),
    #[error(transparent)]
    Usage(#[from] UsageError),
}

impl From<super::lock::LockError> for PruneError {
    fn from(e: super::lock::LockError) -> Self {
        PruneError::Usage(e.into())
    }
}

/// Takes the cache exclusively (waiting for builds) and prunes it.
pub fn prune(cache_dir: &Path, opts: &PruneOptions) -> Result<PruneReport, PruneError> {
    let lock = CacheLock::exclusive(cache_dir)?;
    prune_locked(cache_dir, opts, SystemTime::now(), &lock)
}

/// Prunes with the exclusive lock already held; `now` dates the records.
pub fn prune_locked(
    cache_dir: &Path,
    opts: &PruneOptions,
    now: SystemTime,
    _lock: &CacheLock,
) -> Result<PruneReport, PruneError> {
    let store = BlobStore::open(cache_dir).map_err(|e| UsageError::Io {
        path: cache_dir.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    let mut report = PruneReport::default();
    let sweep = sweep_stale_scratch(cache_dir)?;
    report.temporary = Freed {
        count: sweep.scratch_dirs + sweep.temp_files,
        bytes: sweep.bytes,
    };
    report.warnings = sweep.warnings;

    let mut roots = named_roots(cache_dir)?;
    for keep in &opts.keep {
        roots.insert(resolve_keep(cache_dir, &store, keep)?);
    }
    let image_blobs = image_closure(&store, roots);
    let blobs = all_blobs(&store)?;

    // Records to drop, oldest first.
    let mut records = step_records(cache_dir)?;
    records.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.path.cmp(&b.path)));
    let mut drop_upto = 0; // records[..drop_upto] go
    if opts.all {
        drop_upto = records.len();
    } else if let Some(keep) = opts.keep_duration {
        let cutoff = now.checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH);
        drop_upto = records.iter().take_while(|r| r.last_used < cutoff).count();
    }
    if let Some(limit) = opts.max_used_space {
        let mut users: BTreeMap<&Digest, u64> = BTreeMap::new();
        for r in &records[drop_upto..] {
            if let Some(l) = &r.layer {
                *users.entry(l).or_default() += 1;
            }
        }
        let kept_blobs = image_blobs.iter().chain(users.keys().copied());
        let mut used: u64 = kept_blobs
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|d| blobs.get(d))
            .sum::<u64>()
            + records[drop_upto..].iter().map(|r| r.size).sum::<u64>();
        while used > limit && drop_upto < records.len() {
            let r = &records[drop_upto];
            used -= r.size;
            if let Some(l) = &r.layer {
                let n = users.get_mut(l).map_or(0, |n| {
                    *n -= 1;
                    *n
                });
                if n == 0 && !image_blobs.contains(l) {
                    used = used.saturating_sub(blobs.get(l).copied().unwrap_or(0));
                }
            }
            drop_upto += 1;
        }
    }
    for r in &records[..drop_upto] {
        match fs::remove_file(&r.path) {
            Ok(()) => report.step_records.add(r.size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(super::usage::io_err(&r.path)(e).into()),
        }
    }

    // Garbage-collect blobs.
    let mut needed = image_blobs;
    needed.extend(records[drop_upto..].iter().filter_map(|r| r.layer.clone()));
    for (digest, size) in &blobs {
        if needed.contains(digest) {
            continue;
        }
        let path = store.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => report.blobs.add(*size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(super::usage::io_err(&path)(e).into()),
        }
    }

    if opts.all {
        let (count, bytes) = super::run_cache::remove_all(cache_dir)?;
        report.run_cache = Freed { count, bytes };
        let wasm = cache_dir.join("wasm-modules");
        let (count, bytes) = tree_size(&wasm);
        match fs::remove_dir_all(&wasm) {
            Ok(()) => report.wasm_modules = Freed { count, bytes },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(super::usage::io_err(&wasm)(e).into()),
        }
    }
    Ok(report)
}

/// `--keep VALUE`: a manifest digest in the store, or an image name.
fn resolve_keep(cache_dir: &Path, store: &BlobStore, keep: &str) -> Result<Digest, PruneError> {
    if let Ok(d) = keep.parse::<Digest>() {
        if !store.contains(&d) {
            return Err(PruneError::MissingManifest(keep.to_string(), d));
        }
        return Ok(d);
    }
    let name = normalize(keep).map_err(|e| PruneError::BadKeep(keep.to_string(), e))?;
    ImageNames::open(cache_dir)
        .get(&name)
        .map_err(|e| PruneError::Usage(e.into()))?
        .ok_or_else(|| PruneError::UnknownImage(keep.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::tests::{fake_image, fake_record};

    const HOUR: Duration = Duration::from_secs(3600);

    fn run(cache: &Path, opts: PruneOptions) -> PruneReport {
        let lock = CacheLock::try_exclusive(cache).unwrap().unwrap();
        prune_locked(cache, &opts, SystemTime::now(), &lock).unwrap()
    }

    #[test]
    fn by_age_drops_old_records_and_their_blobs_but_never_named_images() {
        let cache = tempfile::tempdir().unwrap();
        let c = cache.path();
        let store = BlobStore::open(c).unwrap();
        let (_, named) = fake_image(c, Some("app:v1"), &[b"base layer", b"app layer"]);
        let (_, unnamed) = fake_image(c, None, &[b"unnamed build layer"]);
        let old_layer = store.put_bytes(b"old step layer").unwrap();
        let new_layer = store.put_bytes(b"new step layer").unwrap();
        let old = fake_record(c, "RUN old", Some((&old_layer, 14)), 48 * HOUR);
        // An old record naming a layer the image needs: the record goes, the blob stays.
        let old_shared = fake_record(c, "RUN shared", Some((&named[2], 10)), 48 * HOUR);
        let new = fake_record(c, "RUN new", Some((&new_layer, 14)), HOUR);

        let blob_sizes = all_blobs(&store).unwrap();
        let report = run(
            c,
            PruneOptions {
                keep_duration: Some(24 * HOUR),
                ..Default::default()
            },
        );
        assert_eq!(report.step_records.count, 2);
        assert!(!old.exists() && !old_shared.exists() && new.exists());
        assert!(!store.contains(&old_layer));
        assert!(store.contains(&new_layer));
        for d in &named {
            assert!(store.contains(d), "named image blob {d} kept");
        }
        for d in &unnamed {
            assert!(!store.contains(d), "unnamed image blob {d} collected");
        }
        assert_eq!(report.blobs.count, 1 + unnamed.len() as u64);
        let unnamed_bytes: u64 = unnamed.iter().map(|d| blob_sizes[d]).sum();
        assert_eq!(report.blobs.bytes, 14 + unnamed_bytes);
        // The named image still reads back whole.
        let manifest = crate::oci::image::read_manifest(&store, &named[0]).unwrap();
        assert_eq!(manifest.layers.len(), 2);
    }

    #[test]
    fn by_size_drops_least_recently_used_first() {
        let cache = tempfile::tempdir().unwrap();
        let c = cache.path();
        let store = BlobStore::open(c).unwrap();
        let big = |tag: u8| vec![tag; 1000];
        let (l1, l2, l3) = (
            store.put_bytes(&big(1)).unwrap(),
            store.put_bytes(&big(2)).unwrap(),
            store.put_bytes(&big(3)).unwrap(),
        );
        let r1 = fake_record(c, "RUN 1", Some((&l1, 1000)), 3 * HOUR); // least recent
        let r2 = fake_record(c, "RUN 2", Some((&l2, 1000)), HOUR); // most recent
        let r3 = fake_record(c, "RUN 3", Some((&l3, 1000)), 2 * HOUR);
        let rec = fs::metadata(&r1).unwrap().len();
        // Room for two layers and their records, not three.
        let limit = 2 * 1000 + 3 * rec;
        let report = run(
            c,
            PruneOptions {
                max_used_space: Some(limit),
                ..Default::default()
            },
        );
        assert_eq!(report.step_records.count, 1);
        assert!(!r1.exists() && r2.exists() && r3.exists());
        assert!(!store.contains(&l1) && store.contains(&l2) && store.contains(&l3));

        // A tiny limit drops everything, oldest first, and no more than that.
        let report = run(
            c,
            PruneOptions {
                max_used_space: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(report.step_records.count, 2);
        assert!(!r2.exists() && !r3.exists());
        assert_eq!(
            crate::store::usage::disk_usage(c)
                .unwrap()
                .get("step_blobs")
                .unwrap()
                .count,
            0
        );
    }

    #[test]
    fn all_keeps_named_and_kept_images_and_clears_mounts_and_modules() {
        let cache = tempfile::tempdir().unwrap();
        let c = cache.path();
        let store = BlobStore::open(c).unwrap();
        let (_, named) = fake_image(c, Some("app"), &[b"x"]);
        let (kept_manifest, kept) = fake_image(c, None, &[b"y"]);
        let (_, gone) = fake_image(c, None, &[b"z"]);
        fake_record(c, "RUN fresh", Some((&gone[2], 1)), Duration::ZERO);
        fs::create_dir_all(c.join("run-cache").join("a".repeat(64))).unwrap();
        fs::create_dir_all(c.join("wasm-modules")).unwrap();
        fs::write(c.join("wasm-modules/m"), b"module").unwrap();
        let report = run(
            c,
            PruneOptions {
                all: true,
                keep: vec![kept_manifest.to_string()],
                ..Default::default()
            },
        );
        assert_eq!(report.step_records.count, 1);
        assert_eq!(report.run_cache.count, 1);
        assert_eq!(report.wasm_modules, Freed { count: 1, bytes: 6 });
        assert!(named.iter().chain(&kept).all(|d| store.contains(d)));
        assert!(gone.iter().all(|d| !store.contains(d)));
        assert!(!c.join("wasm-modules").exists());

        let err = prune_locked(
            c,
            &PruneOptions {
                keep: vec!["nosuch".into()],
                ..Default::default()
            },
            SystemTime::now(),
            &CacheLock::try_exclusive(c).unwrap().unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no image has that name"), "{err}");
    }
}
