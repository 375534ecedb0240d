//! The step cache: what a build step produced, by the digest of everything
//! that decides its result (its key, see `exec::step_key`).
//!
//! One small JSON file per key under `ROOT/steps/<hex>.json`, written to a
//! temporary file and renamed into place, so a reader sees a whole record or
//! none, however many kiln processes share the directory and whenever one is
//! killed. A record only names blobs; a record whose blob has gone (pruned)
//! is a miss. A hit touches the file: its mtime is when the record was last
//! used, which `kiln cache prune --keep-duration` goes by.
//!
//! Beside the records, `<hex>.digest` files remember the content digest of
//! files taken from a stage (see `exec::stage::source_identity`).

use super::BlobStore;
use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bumped when a record's meaning changes; older records become misses.
const RECORD_VERSION: u32 = 1;

/// What a cached step produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub version: u32,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// The layer it wrote; `None` for a step that changed no file.
    pub layer: Option<CachedLayer>,
}

/// A layer blob as the image manifest and config name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
}

impl StepRecord {
    pub fn new(created_by: String, layer: Option<CachedLayer>) -> StepRecord {
        StepRecord {
            version: RECORD_VERSION,
            created_by,
            layer,
        }
    }
}

/// The `steps/` directory of a cache dir.
#[derive(Clone, Debug)]
pub struct StepCache {
    dir: PathBuf,
    tmp: PathBuf,
}

impl StepCache {
    pub fn open(store: &BlobStore) -> io::Result<StepCache> {
        let dir = store.root().join("steps");
        std::fs::create_dir_all(&dir)?;
        Ok(StepCache {
            dir,
            tmp: store.root().join("tmp"),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The record for `key`, if there is a usable one: readable, of this
    /// version, and with its layer blob still in `store`. Anything else
    /// (missing, torn by an old kiln, pruned blob) is a miss, never an error:
    /// the step simply runs again.
    pub fn lookup(&self, key: &Digest, store: &BlobStore) -> Option<StepRecord> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        let record: StepRecord = serde_json::from_slice(&bytes).ok()?;
        if record.version != RECORD_VERSION {
            return None;
        }
        if let Some(layer) = &record.layer {
            let digest: Digest = layer.digest.parse().ok()?;
            layer.diff_id.parse::<Digest>().ok()?;
            if !store.contains(&digest) {
                return None;
            }
        }
        // Last use, for prune; a failure to touch only makes the record look older.
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(record)
    }

    /// A remembered content digest (see [`StepCache::remember_digest`]).
    pub fn recall_digest(&self, key: &Digest) -> Option<Digest> {
        let text = std::fs::read_to_string(self.digest_path(key)).ok()?;
        text.trim().parse().ok()
    }

    /// Remembers `value` under `key`: the content digest of files in a
    /// stage with known layers, so a stage that hit the cache need not be
    /// unpacked to key a COPY --from it.
    pub fn remember_digest(&self, key: &Digest, value: &Digest) -> io::Result<()> {
        self.write_atomically(&self.digest_path(key), value.to_string().as_bytes())
    }

    fn digest_path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.digest", key.hex()))
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Stores `record` under `key`, replacing any older one atomically.
    pub fn record(&self, key: &Digest, record: &StepRecord) -> io::Result<()> {
        let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        self.write_atomically(&self.path(key), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(store: &BlobStore, bytes: &[u8]) -> CachedLayer {
        let digest = store.put_bytes(bytes).unwrap();
        CachedLayer {
            digest: digest.to_string(),
            diff_id: Digest::of(b"diff").to_string(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn records_round_trip_and_a_pruned_blob_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let cache = StepCache::open(&store).unwrap();
        let key = Digest::of(b"key");
        assert_eq!(cache.lookup(&key, &store), None);

        let rec = StepRecord::new("RUN true".into(), Some(layer(&store, b"layer bytes")));
        cache.record(&key, &rec).unwrap();
        assert_eq!(cache.lookup(&key, &store), Some(rec.clone()));

        let empty = Digest::of(b"empty");
        let no_layer = StepRecord::new("RUN :".into(), None);
        cache.record(&empty, &no_layer).unwrap();
        assert_eq!(cache.lookup(&empty, &store), Some(no_layer));

        std::fs::remove_file(store.path(&Digest::of(b"layer bytes"))).unwrap();
        assert_eq!(cache.lookup(&key, &store), None);
    }

    #[test]
    fn torn_or_foreign_records_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let cache = StepCache::open(&store).unwrap();
        let key = Digest::of(b"k");
        std::fs::write(cache.path(&key), b"{\"version\":1,\"created_by\":").unwrap();
        assert_eq!(cache.lookup(&key, &store), None);
        let mut old = StepRecord::new("x".into(), None);
        old.version = 0;
        cache.record(&key, &old).unwrap();
        assert_eq!(cache.lookup(&key, &store), None);
    }

    #[test]
    fn a_hit_marks_the_record_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let cache = StepCache::open(&store).unwrap();
        let key = Digest::of(b"k");
        cache
            .record(&key, &StepRecord::new("x".into(), None))
            .unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        std::fs::File::options()
            .write(true)
            .open(cache.path(&key))
            .unwrap()
            .set_modified(old)
            .unwrap();
        cache.lookup(&key, &store).unwrap();
        let used = std::fs::metadata(cache.path(&key))
            .unwrap()
            .modified()
            .unwrap();
        assert!(used > old);
    }
}
