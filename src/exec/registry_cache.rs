//! One build's use of registry caches: step records and stage-file digests
//! read from `--cache-from` when the local cache misses (their layers are
//! downloaded on the first hit), what the build used noted for `--cache-to`,
//! and RUN cache mounts seeded from / snapshotted into them.
//!
//! A cache that cannot be read is a warning, never an error (like buildx):
//! the build runs the steps itself.

use super::options::{BuildOptions, CacheExport};
use super::progress::Progress;
use crate::digest::Digest;
use crate::oci::image::Descriptor;
use crate::registry::cache::{CacheConfig, ImportedCache, MOUNT_MEDIA_TYPE};
use crate::registry::push::PushOptions;
use crate::store::{BlobStore, StepCache, StepRecord};
use anyhow::{Context as _, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

/// The registry caches of one build.
pub struct RegistryCache {
    imports: Vec<ImportedCache>,
    /// Whether any `--cache-to` will read what is noted.
    exporting: bool,
    used: Mutex<Used>,
}

/// What the build used, for export.
#[derive(Default)]
struct Used {
    /// Step records by key (hex), and whether the step is in an exported
    /// image's stage (what `mode=min` keeps).
    steps: BTreeMap<String, (StepRecord, bool)>,
    digests: BTreeMap<String, String>,
    /// Cache mount ids.
    mounts: BTreeSet<String>,
}

impl RegistryCache {
    /// Reads every `--cache-from` (warning about those that fail).
    pub fn open(opts: &BuildOptions, store: &BlobStore, progress: &Progress) -> RegistryCache {
        let mut imports = Vec::new();
        for from in &opts.cache_from {
            let task = progress.task(&format!("importing cache manifest from {}", from.reference));
            let registry = opts.registry_options(&from.reference, from.insecure);
            match ImportedCache::open(&from.reference, store, &registry) {
                Ok(Some(cache)) => {
                    task.done();
                    imports.push(cache);
                }
                Ok(None) => {
                    task.done();
                    progress.info(&format!("cache {} does not exist yet", from.reference));
                }
                Err(e) => {
                    task.failed(&crate::error_text::of_std(&e));
                    progress.warn(&format!(
                        "cannot use --cache-from {}: {e:#}",
                        from.reference
                    ));
                }
            }
        }
        RegistryCache {
            imports,
            exporting: !opts.cache_to.is_empty(),
            used: Mutex::default(),
        }
    }

    fn used(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A record for `key` from an imported cache, with its layer fetched
    /// into `store` and the record copied into the local step cache.
    pub fn lookup(
        &self,
        key: &Digest,
        steps: &StepCache,
        store: &BlobStore,
        progress: &Progress,
    ) -> Option<StepRecord> {
        for cache in &self.imports {
            let Some(record) = cache.config.steps.get(key.hex()) else {
                continue;
            };
            if let Some(layer) = &record.layer {
                let fetched = layer
                    .digest
                    .parse::<Digest>()
                    .map_err(anyhow::Error::from)
                    .and_then(|d| Ok(cache.fetch(&d, store)?));
                if let Err(e) = fetched {
                    progress.warn(&format!(
                        "cache {}: cannot fetch layer {}: {}",
                        cache.reference,
                        layer.digest,
                        crate::error_text::of(&e)
                    ));
                    continue;
                }
            }
            // The local record makes the next build on this machine a hit
            // without the registry.
            let _ = steps.record(key, record);
            return Some(record.clone());
        }
        None
    }

    /// Notes that the build used (hit or wrote) `record` under `key`.
    pub fn note_step(&self, key: &Digest, record: &StepRecord, in_image_stage: bool) {
        if self.exports_nothing() {
            return;
        }
        let mut used = self.used();
        let entry = used
            .steps
            .entry(key.hex().to_string())
            .or_insert_with(|| (record.clone(), false));
        entry.1 |= in_image_stage;
    }

    /// A stage-file digest remembered by an imported cache.
    pub fn recall_digest(&self, memo: &Digest) -> Option<Digest> {
        self.imports
            .iter()
            .find_map(|c| c.config.digests.get(memo.hex()))
            .and_then(|d| d.parse().ok())
    }

    pub fn note_digest(&self, memo: &Digest, digest: &Digest) {
        if !self.exports_nothing() {
            self.used()
                .digests
                .insert(memo.hex().to_string(), digest.to_string());
        }
    }

    /// Fills the cache mount directory `home` (key `key`) from an imported
    /// snapshot when this machine has never used that mount. Returns
    /// whether it did.
    pub fn seed_mount(&self, key: &str, home: &Path, store: &BlobStore) -> Result<bool> {
        if home.exists() {
            return Ok(false);
        }
        for cache in &self.imports {
            let Some(snapshot) = cache.config.mounts.get(key) else {
                continue;
            };
            cache.fetch(&snapshot.digest, store)?;
            crate::store::mount_snapshot::unpack(store, &snapshot.digest, home)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Notes that a RUN step used cache mount `id`.
    pub fn note_mount(&self, id: &str) {
        if !self.exports_nothing() {
            self.used().mounts.insert(id.to_string());
        }
    }

    fn exports_nothing(&self) -> bool {
        !self.exporting
    }

    /// Pushes one cache per `--cache-to`.
    pub fn export(
        &self,
        opts: &BuildOptions,
        store: &BlobStore,
        progress: &Progress,
    ) -> Result<()> {
        for to in &opts.cache_to {
            let task = progress.task(&format!("exporting cache to {}", to.reference));
            let result = self.contents(to, opts, store).and_then(|(config, blobs)| {
                let push = PushOptions {
                    registry: opts.registry_options(&to.reference, to.insecure),
                    mount_from: Vec::new(),
                };
                let report =
                    crate::registry::cache::export(store, &config, &blobs, &to.reference, &push)?;
                Ok((config.steps.len(), config.mounts.len(), report))
            });
            match result {
                Ok((steps, mounts, report)) => {
                    task.done();
                    progress.info(&format!(
                        "cache {}: {steps} steps, {mounts} cache mounts; {}",
                        to.reference,
                        report.summary()
                    ));
                }
                Err(e) => {
                    task.failed(&crate::error_text::of(&e));
                    return Err(e.context(format!("exporting cache to {}", to.reference)));
                }
            }
        }
        Ok(())
    }

    /// The cache config and blobs one `--cache-to` exports.
    fn contents(
        &self,
        to: &CacheExport,
        opts: &BuildOptions,
        store: &BlobStore,
    ) -> Result<(CacheConfig, Vec<Descriptor>)> {
        let used = self.used();
        let mut config = CacheConfig::new();
        let mut blobs: BTreeMap<Digest, Descriptor> = BTreeMap::new();
        for (key, (record, in_image)) in &used.steps {
            if !to.max && !in_image {
                continue;
            }
            if let Some(l) = &record.layer {
                let digest: Digest = l.digest.parse()?;
                blobs.insert(
                    digest.clone(),
                    Descriptor::new(&l.media_type, digest, l.size),
                );
            }
            config.steps.insert(key.clone(), record.clone());
        }
        if to.max {
            config.digests = used.digests.clone();
        }
        if to.mounts {
            for id in &used.mounts {
                // Held while packing: another build may be using the mount.
                let (lock, _) =
                    crate::store::run_cache::RunCacheLock::acquire(&opts.cache_dir, id, || {})
                        .with_context(|| format!("locking cache mount {id:?}"))?;
                let home = lock.home();
                // A real directory only: a symlink in its place (a damaged
                // cache dir) would carry what it points to to the registry.
                if !std::fs::symlink_metadata(&home).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                let (digest, size) = crate::store::mount_snapshot::pack(&home, store)
                    .with_context(|| format!("packing cache mount {id:?}"))?;
                let d = Descriptor::new(MOUNT_MEDIA_TYPE, digest.clone(), size);
                blobs.insert(digest, d.clone());
                config.mounts.insert(lock.key().to_string(), d);
            }
        }
        Ok((config, blobs.into_values().collect()))
    }
}
