//! Image manifest, index and descriptors, and writing an image's config and
//! manifest blobs.
//!
//! Own serde structs rather than `oci-spec`'s: base-image descriptors must
//! round-trip byte-for-byte in meaning, including fields kiln does not
//! interpret (`urls`, `data`, `artifactType`, future ones), which the
//! `extra` maps keep; oci-spec's types drop unknown fields and pull in a
//! builder/getter macro stack kiln does not need. All JSON goes through
//! [`canonical_json`].

use super::config::{canonical_json, ImageConfig};
use super::layer::LayerBlob;
use crate::digest::Digest;
use crate::store::{BlobStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The index annotation that names a manifest inside an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Fields kiln does not interpret, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    /// The descriptor of a layer kiln wrote.
    pub fn for_layer(layer: &LayerBlob) -> Descriptor {
        Descriptor::new(MEDIA_LAYER_GZIP, layer.digest.clone(), layer.size)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "os.version"
    )]
    pub os_version: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Index {
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(MEDIA_INDEX.to_string()),
            manifests,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// What [`write_image`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub config_digest: Digest,
}

impl ImageRecord {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MEDIA_MANIFEST,
            self.manifest_digest.clone(),
            self.manifest_size,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image config lists {diff_ids} diff_ids but the manifest would list {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    #[error("serialising {what}: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("manifest {digest} is not a valid image manifest: {source}")]
    BadManifest {
        digest: Digest,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores the config and an OCI manifest over `layers` (base-image layers
/// keep their own descriptors and media types; kiln's come from
/// [`Descriptor::for_layer`]).
pub fn write_image(
    store: &BlobStore,
    config: &ImageConfig,
    layers: &[Descriptor],
) -> Result<ImageRecord, ImageError> {
    if config.rootfs.diff_ids.len() != layers.len() {
        return Err(ImageError::LayerCount {
            diff_ids: config.rootfs.diff_ids.len(),
            layers: layers.len(),
        });
    }
    let json = |what| move |source| ImageError::Json { what, source };
    let config_bytes = canonical_json(config).map_err(json("image config"))?;
    let config_digest = store.put_bytes(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.to_string()),
        config: Descriptor::new(
            MEDIA_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers: layers.to_vec(),
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let manifest_bytes = canonical_json(&manifest).map_err(json("image manifest"))?;
    let manifest_digest = store.put_bytes(&manifest_bytes)?;
    Ok(ImageRecord {
        manifest_digest,
        manifest_size: manifest_bytes.len() as u64,
        config_digest,
    })
}

/// Stores an OCI image index over `manifests` (each with its platform) and
/// returns its descriptor.
pub fn write_index(
    store: &BlobStore,
    manifests: Vec<Descriptor>,
) -> Result<Descriptor, ImageError> {
    let bytes = canonical_json(&Index::new(manifests)).map_err(|source| ImageError::Json {
        what: "image index",
        source,
    })?;
    let digest = store.put_bytes(&bytes)?;
    Ok(Descriptor::new(MEDIA_INDEX, digest, bytes.len() as u64))
}

/// Reads and parses a stored image index.
pub fn read_index(store: &BlobStore, digest: &Digest) -> Result<Index, ImageError> {
    let bytes = store.read(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::BadManifest {
        digest: digest.clone(),
        source,
    })
}

/// Reads and parses a stored manifest.
pub fn read_manifest(store: &BlobStore, digest: &Digest) -> Result<Manifest, ImageError> {
    let bytes = store.read(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::BadManifest {
        digest: digest.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(diff_ids: Vec<Digest>) -> ImageConfig {
        let mut c = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        c.rootfs.diff_ids = diff_ids;
        c
    }

    #[test]
    fn manifest_json_is_canonical_and_keeps_base_layer_descriptors() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let mut base = Descriptor::new(
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Digest::of(b"base"),
            4,
        );
        base.extra
            .insert("urls".into(), serde_json::json!(["https://x"]));
        let own = Descriptor::new(MEDIA_LAYER_GZIP, Digest::of(b"own"), 3);
        let cfg = config(vec![Digest::of(b"d1"), Digest::of(b"d2")]);
        let rec = write_image(&store, &cfg, &[base.clone(), own.clone()]).unwrap();
        let bytes = store.read(&rec.manifest_digest).unwrap();
        assert_eq!(rec.manifest_size, bytes.len() as u64);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"config":{"digest":"sha256:"#),
            "{text}"
        );
        assert!(text.contains(r#""mediaType":"application/vnd.oci.image.config.v1+json""#));
        assert!(
            text.ends_with(
                r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#
            ),
            "{text}"
        );
        let m = read_manifest(&store, &rec.manifest_digest).unwrap();
        assert_eq!(m.layers, vec![base, own]);
        assert_eq!(m.config.digest, rec.config_digest);
        assert_eq!(
            store.read(&rec.config_digest).unwrap(),
            canonical_json(&cfg).unwrap()
        );
        // Same input, same digest.
        let again = write_image(&store, &cfg, &m.layers).unwrap();
        assert_eq!(again, rec);
    }

    #[test]
    fn layer_count_must_match_diff_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let err = write_image(
            &store,
            &config(vec![]),
            &[Descriptor::new(MEDIA_LAYER_GZIP, Digest::of(b""), 0)],
        );
        assert!(matches!(err, Err(ImageError::LayerCount { .. })));
    }
}
