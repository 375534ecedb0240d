//! Pulling one image for one platform: manifest (or index, then the
//! platform's manifest), config and layers, each checked against its digest
//! and size by kiln itself and kept in the blob store.
//!
//! A blob already in the store is never downloaded again; a digest-pinned
//! reference whose blobs are all in the store resolves without contacting
//! the registry at all.

use super::client::{Connection, RegistryError};
use super::reference::ImageRef;
use super::RegistryOptions;
use crate::digest::Digest;
use crate::oci::config::ImageConfig;
// The same limits and media types as reading an OCI layout.
use crate::oci::layout_read::{
    DescriptorJson, CONFIG_TYPES, DOCKER_LIST, DOCKER_MANIFEST, LAYER_TYPES, MAX_DEPTH,
    MAX_JSON_BLOB, OCI_INDEX, OCI_MANIFEST,
};
use crate::plan::platform::Platform;
use crate::store::BlobStore;
use serde::Deserialize;

/// A layer of a pulled image: its manifest descriptor and diff id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledLayer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

/// A pulled image; every blob it names is in the store.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// The reference as normalised (`docker.io/library/alpine:latest`).
    pub reference: String,
    /// The platform's image manifest.
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// The index the manifest was chosen from, if the reference named one.
    pub index_digest: Option<Digest>,
    pub config_digest: Digest,
    pub config: ImageConfig,
    pub layers: Vec<PulledLayer>,
}

/// The fields that tell an index from a manifest, and both from others.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<DescriptorJson>>,
    #[serde(default)]
    config: Option<DescriptorJson>,
    #[serde(default)]
    layers: Option<Vec<DescriptorJson>>,
}

/// Pulls `reference` for `platform` into `store`.
pub fn pull_image(
    store: &BlobStore,
    reference: &ImageRef,
    platform: &Platform,
    opts: &RegistryOptions,
) -> Result<PulledImage, RegistryError> {
    let mut p = Puller {
        store,
        reference,
        opts,
        conn: None,
    };
    p.pull(platform)
}

struct Puller<'a> {
    store: &'a BlobStore,
    reference: &'a ImageRef,
    opts: &'a RegistryOptions,
    conn: Option<Connection>,
}

impl Puller<'_> {
    fn registry(&self) -> String {
        self.reference.registry().to_string()
    }

    fn invalid(&self, what: String) -> RegistryError {
        RegistryError::Invalid {
            registry: self.registry(),
            what: format!("{}: {what}", self.reference),
        }
    }

    /// The connection, opened (and credentials looked up) on first use.
    fn conn(&mut self) -> Result<&Connection, RegistryError> {
        if self.conn.is_none() {
            self.conn = Some(Connection::open(self.reference, self.opts)?);
        }
        Ok(self.conn.as_ref().expect("just set"))
    }

    fn pull(&mut self, platform: &Platform) -> Result<PulledImage, RegistryError> {
        let (mut digest, mut bytes) = self.top_manifest()?;
        let mut index_digest = None;
        for depth in 0.. {
            let shape: Shape = serde_json::from_slice(&bytes)
                .map_err(|e| self.invalid(format!("manifest {digest} is not valid JSON: {e}")))?;
            let mt = media_type_of(&shape);
            if shape.schema_version != Some(2) {
                return Err(self.invalid(format!(
                    "manifest {digest} has schemaVersion {:?}; kiln reads schema 2 manifests and OCI images",
                    shape.schema_version
                )));
            }
            if mt == OCI_INDEX || mt == DOCKER_LIST {
                if depth >= MAX_DEPTH {
                    return Err(self.invalid(format!("indexes nested deeper than {MAX_DEPTH}")));
                }
                index_digest.get_or_insert(digest.clone());
                let child = self.choose(&shape.manifests.unwrap_or_default(), platform, &digest)?;
                let child_digest = self.parse_digest(&child.digest, "index entry")?;
                bytes = self.small_blob(&child_digest, child.size, "manifest", true)?;
                digest = child_digest;
                continue;
            }
            if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST {
                return Err(self.invalid(format!(
                    "manifest {digest} has unsupported media type {mt:?}"
                )));
            }
            return self.image(digest, mt, shape, index_digest);
        }
        unreachable!("the loop returns")
    }

    /// The manifest or index the reference names, verified and stored.
    fn top_manifest(&mut self) -> Result<(Digest, Vec<u8>), RegistryError> {
        if let Some(d) = self.reference.digest() {
            if let Some(bytes) = self.stored_json(d)? {
                return Ok((d.clone(), bytes));
            }
        }
        let reference = self.reference.clone();
        let bytes = super::transfer::fetch_manifest(self.conn()?, &reference)?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return Err(self.invalid(format!("manifest is larger than {MAX_JSON_BLOB} bytes")));
        }
        let got = Digest::of(&bytes);
        if let Some(want) = reference.digest() {
            if *want != got {
                return Err(self.mismatch("manifest", want, None, &got, bytes.len() as u64));
            }
        }
        self.store.put_bytes(&bytes)?;
        Ok((got, bytes))
    }

    /// A JSON blob from the store, if there (already verified on the way in).
    fn stored_json(&self, d: &Digest) -> Result<Option<Vec<u8>>, RegistryError> {
        if !self.store.contains(d) {
            return Ok(None);
        }
        Ok(Some(self.store.read(d)?))
    }

    fn parse_digest(&self, s: &str, what: &str) -> Result<Digest, RegistryError> {
        s.parse().map_err(|_| {
            self.invalid(format!(
                "{what}: unsupported or invalid digest {s:?} (kiln reads sha256)"
            ))
        })
    }

    fn mismatch(
        &self,
        what: &str,
        expected: &Digest,
        expected_size: Option<u64>,
        actual: &Digest,
        actual_size: u64,
    ) -> RegistryError {
        RegistryError::DigestMismatch {
            registry: self.registry(),
            what: format!("{what} {expected} of {}", self.reference),
            expected: expected.to_string(),
            expected_size: expected_size.unwrap_or(actual_size),
            actual: actual.to_string(),
            actual_size,
        }
    }

    /// A manifest or config by digest: from the store, else downloaded,
    /// verified and stored.
    fn small_blob(
        &mut self,
        d: &Digest,
        size: u64,
        what: &str,
        manifest: bool,
    ) -> Result<Vec<u8>, RegistryError> {
        if size > MAX_JSON_BLOB {
            return Err(self.invalid(format!(
                "{what} {d}: descriptor size {size} is too large for a {what}"
            )));
        }
        if let Some(bytes) = self.stored_json(d)? {
            if bytes.len() as u64 != size {
                return Err(self.invalid(format!(
                    "{what} {d}: the descriptor says {size} bytes but the content has {}",
                    bytes.len()
                )));
            }
            return Ok(bytes);
        }
        if !manifest {
            self.layer_blob(d, size, what)?;
            return Ok(self.store.read(d)?);
        }
        let reference = self.reference.with_digest(d);
        let bytes = super::transfer::fetch_manifest(self.conn()?, &reference)?;
        let got = Digest::of(&bytes);
        if got != *d || bytes.len() as u64 != size {
            return Err(self.mismatch(what, d, Some(size), &got, bytes.len() as u64));
        }
        self.store.put_bytes(&bytes)?;
        Ok(bytes)
    }

    /// Streams a blob into the store unless it is there, refusing content
    /// that does not hash to `d` or is not `size` bytes.
    fn layer_blob(&mut self, d: &Digest, size: u64, what: &str) -> Result<(), RegistryError> {
        if self.store.contains(d) {
            return Ok(());
        }
        let store = self.store.clone();
        let reference = self.reference.clone();
        super::transfer::download_blob(self.conn()?, &reference, d, size, what, &store)
    }

    /// Picks the index entry for `platform` (a lone entry without a
    /// platform is taken as is).
    fn choose(
        &self,
        entries: &[DescriptorJson],
        platform: &Platform,
        index: &Digest,
    ) -> Result<DescriptorJson, RegistryError> {
        if let [only] = entries {
            if only.platform.is_none() {
                return Ok(only.clone());
            }
        }
        let mut best: Option<(u8, &DescriptorJson)> = None;
        for e in entries {
            if let Some(score) = e
                .platform
                .as_ref()
                .and_then(|p| platform.match_score(&p.os, &p.architecture, p.variant.as_deref()))
            {
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, e));
                }
            }
        }
        if let Some((_, e)) = best {
            return Ok(e.clone());
        }
        let available: Vec<String> = entries
            .iter()
            .filter_map(|e| e.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect();
        Err(self.invalid(format!(
            "index {index} has no image for platform {platform} (available: {})",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        )))
    }

    fn image(
        &mut self,
        digest: Digest,
        media_type: String,
        shape: Shape,
        index_digest: Option<Digest>,
    ) -> Result<PulledImage, RegistryError> {
        let config_desc = shape
            .config
            .ok_or_else(|| self.invalid(format!("manifest {digest} has no config")))?;
        let config_mt = config_desc.media_type.clone().unwrap_or_default();
        if !CONFIG_TYPES.contains(&config_mt.as_str()) {
            return Err(self.invalid(format!(
                "manifest {digest}: config media type {config_mt:?} is not an image config"
            )));
        }
        let config_digest = self.parse_digest(&config_desc.digest, "config")?;
        let config_bytes = self.small_blob(&config_digest, config_desc.size, "config", false)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.invalid(format!("config {config_digest} is not valid: {e}")))?;
        let descs = shape.layers.unwrap_or_default();
        if descs.len() != config.rootfs.diff_ids.len() {
            return Err(self.invalid(format!(
                "manifest {digest} lists {} layers but its config has {} diff_ids",
                descs.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(descs.len());
        for (l, diff_id) in descs.iter().zip(&config.rootfs.diff_ids) {
            let ld = self.parse_digest(&l.digest, "layer")?;
            let lmt = l.media_type.clone().unwrap_or_default();
            if !LAYER_TYPES.contains(&lmt.as_str()) {
                return Err(self.invalid(format!(
                    "manifest {digest}: layer {ld} has unsupported media type {lmt:?}"
                )));
            }
            self.layer_blob(&ld, l.size, "layer")?;
            layers.push(PulledLayer {
                media_type: lmt,
                digest: ld,
                size: l.size,
                diff_id: diff_id.clone(),
            });
        }
        Ok(PulledImage {
            reference: self.reference.to_string(),
            manifest_digest: digest,
            manifest_media_type: media_type,
            index_digest,
            config_digest,
            config,
            layers,
        })
    }
}

/// The media type a manifest declares, or the one its shape implies.
fn media_type_of(shape: &Shape) -> String {
    match &shape.media_type {
        Some(mt) => mt.clone(),
        None if shape.manifests.is_some() => OCI_INDEX.into(),
        None if shape.config.is_some() => OCI_MANIFEST.into(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_field_or_the_shape() {
        let s: Shape = serde_json::from_str(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert_eq!(media_type_of(&s), OCI_INDEX);
        let s: Shape = serde_json::from_str(
            r#"{"schemaVersion":2,"config":{"digest":"sha256:00","size":1},"layers":[]}"#,
        )
        .unwrap();
        assert_eq!(media_type_of(&s), OCI_MANIFEST);
        let s: Shape = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}"}}"#
        ))
        .unwrap();
        assert_eq!(media_type_of(&s), DOCKER_LIST);
    }
}
