//! The build cache as an OCI artifact in a registry (`--cache-to` /
//! `--cache-from type=registry,ref=REF`), so machines that share a
//! registry share step results.
//!
//! Format (kiln's own; BuildKit's cache is keyed by BuildKit's graph and
//! cannot be shared with it): one OCI image manifest at REF whose config
//! (media type [`CONFIG_MEDIA_TYPE`]) is a [`CacheConfig`] — step records by
//! key, remembered stage-file digests, and cache-mount snapshots — and whose
//! layers are every blob those records name. Keys already cover the kiln
//! version and toolbox, so a cache written by another kiln simply misses.
//!
//! Importing reads only the manifest and config up front; a layer is
//! downloaded (and verified) the first time a step hits its record.

use super::client::{is_not_found, Connection, RegistryError};
use super::push::{push_image, PushError, PushOptions, PushReport};
use super::reference::ImageRef;
use super::RegistryOptions;
use crate::digest::Digest;
use crate::oci::config::canonical_json;
use crate::oci::image::{Descriptor, Manifest, MEDIA_MANIFEST};
use crate::store::{BlobStore, StepRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The config media type that marks a manifest as a kiln build cache.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
/// A cache mount's files, as a gzip-compressed tar.
pub const MOUNT_MEDIA_TYPE: &str = "application/vnd.kiln.cache.mount.v1.tar+gzip";
/// Bumped when [`CacheConfig`]'s meaning changes.
const FORMAT: u32 = 1;
/// Cache configs larger than this are refused.
const MAX_CONFIG: u64 = 64 << 20;

/// What a registry cache holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub format: u32,
    /// Step records by key (hex).
    pub steps: BTreeMap<String, StepRecord>,
    /// Content digests of files taken from stages, by memo key (hex).
    #[serde(default)]
    pub digests: BTreeMap<String, String>,
    /// Cache-mount snapshots by mount key (`--cache-to ...,mounts=true`).
    #[serde(default)]
    pub mounts: BTreeMap<String, Descriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {reference}: {what}")]
    Invalid { reference: String, what: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Stores the cache manifest for `config` (its layers: `blobs`, which must
/// be in `store`) and pushes it to `dest`.
pub fn export(
    store: &BlobStore,
    config: &CacheConfig,
    blobs: &[Descriptor],
    dest: &str,
    opts: &PushOptions,
) -> Result<PushReport, CacheError> {
    let config_bytes = canonical_json(config).map_err(|e| CacheError::Invalid {
        reference: dest.into(),
        what: format!("serialising the cache config: {e}"),
    })?;
    let config_digest = store.put_bytes(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.into()),
        config: Descriptor::new(CONFIG_MEDIA_TYPE, config_digest, config_bytes.len() as u64),
        layers: blobs.to_vec(),
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let bytes = canonical_json(&manifest).map_err(|e| CacheError::Invalid {
        reference: dest.into(),
        what: format!("serialising the cache manifest: {e}"),
    })?;
    let digest = store.put_bytes(&bytes)?;
    Ok(push_image(store, &digest, dest, opts)?)
}

/// A cache read from a registry: its records, and the connection to fetch
/// the blobs they name.
pub struct ImportedCache {
    pub reference: ImageRef,
    pub config: CacheConfig,
    /// Sizes of the blobs the manifest lists, by digest.
    sizes: BTreeMap<Digest, u64>,
    /// One request at a time: stages on several threads may hit at once.
    conn: Mutex<Connection>,
}

impl ImportedCache {
    /// Reads the cache at `reference`; `Ok(None)` when there is none yet
    /// (the first build of a new cache).
    pub fn open(
        reference: &str,
        store: &BlobStore,
        opts: &RegistryOptions,
    ) -> Result<Option<ImportedCache>, CacheError> {
        let invalid = |what: String| CacheError::Invalid {
            reference: reference.into(),
            what,
        };
        let r = ImageRef::parse(reference).map_err(|e| invalid(e.to_string()))?;
        let conn = Connection::open(&r, opts)?;
        let what = format!("fetching cache manifest {r}");
        let fetched = conn.retry(&what, |c| {
            match c.block_on(
                c.client()
                    .pull_manifest_raw(r.oci(), c.auth(), &[MEDIA_MANIFEST]),
            ) {
                Ok((body, _)) => Ok(Some(body.to_vec())),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })?;
        let Some(bytes) = fetched else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("the manifest is not an OCI image manifest: {e}")))?;
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(invalid(format!(
                "{r} is not a kiln build cache (its config is {:?})",
                manifest.config.media_type
            )));
        }
        if manifest.config.size > MAX_CONFIG {
            return Err(invalid(format!(
                "the cache config is {} bytes (at most {MAX_CONFIG})",
                manifest.config.size
            )));
        }
        let c = &manifest.config;
        super::transfer::download_blob(&conn, &r, &c.digest, c.size, "cache config", store)?;
        let config: CacheConfig = serde_json::from_slice(&store.read(&c.digest)?)
            .map_err(|e| invalid(format!("the cache config is not valid: {e}")))?;
        if config.format != FORMAT {
            return Err(invalid(format!(
                "cache format {} (this kiln reads format {FORMAT})",
                config.format
            )));
        }
        let sizes = manifest
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        Ok(Some(ImportedCache {
            reference: r,
            config,
            sizes,
            conn: Mutex::new(conn),
        }))
    }

    /// Downloads blob `digest` (one the manifest lists) into `store`.
    pub fn fetch(&self, digest: &Digest, store: &BlobStore) -> Result<(), CacheError> {
        if store.contains(digest) {
            return Ok(());
        }
        let size = *self.sizes.get(digest).ok_or_else(|| CacheError::Invalid {
            reference: self.reference.to_string(),
            what: format!("a record names blob {digest}, which the cache manifest does not list"),
        })?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        super::transfer::download_blob(&conn, &self.reference, digest, size, "cache blob", store)?;
        Ok(())
    }
}

impl CacheConfig {
    pub fn new() -> CacheConfig {
        CacheConfig {
            format: FORMAT,
            ..CacheConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_defaults_missing_maps() {
        let mut c = CacheConfig::new();
        c.steps
            .insert("ab".into(), StepRecord::new("RUN true".into(), None));
        c.digests.insert("cd".into(), Digest::of(b"x").to_string());
        let bytes = canonical_json(&c).unwrap();
        let back: CacheConfig = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, c);
        let minimal: CacheConfig = serde_json::from_str(r#"{"format":1,"steps":{}}"#).unwrap();
        assert!(minimal.digests.is_empty() && minimal.mounts.is_empty());
    }
}
