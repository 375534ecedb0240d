//! Images that do not come from this Dockerfile: named build contexts
//! (`--build-context NAME=oci-layout://...` or a directory). Registries come
//! with the registry issue.

use super::options::{BuildOptions, NamedContext};
use crate::digest::Digest;
use crate::oci::config::ImageConfig;
use crate::plan::platform::Platform;
use crate::store::BlobStore;
use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// A layer of an image being built: its manifest descriptor and diff id.
#[derive(Clone, Debug)]
pub struct LayerRef {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

impl LayerRef {
    pub fn from_kiln_layer(layer: &crate::oci::layer::LayerBlob) -> LayerRef {
        LayerRef {
            media_type: crate::oci::image::MEDIA_LAYER_GZIP.to_string(),
            digest: layer.digest.clone(),
            size: layer.size,
            diff_id: layer.diff_id.clone(),
        }
    }
}

/// The starting point of a stage.
#[derive(Clone)]
pub struct BaseImage {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
}

impl BaseImage {
    pub fn scratch(platform: &Platform) -> BaseImage {
        BaseImage {
            config: ImageConfig {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                ..ImageConfig::default()
            },
            layers: Vec::new(),
        }
    }
}

/// Resolves and caches external images for one build.
pub struct ExternalImages<'a> {
    opts: &'a BuildOptions,
    store: &'a BlobStore,
    resolved: Mutex<BTreeMap<(String, Platform), BaseImage>>,
}

impl<'a> ExternalImages<'a> {
    pub fn new(opts: &'a BuildOptions, store: &'a BlobStore) -> Self {
        ExternalImages {
            opts,
            store,
            resolved: Mutex::default(),
        }
    }

    /// The named context `name` if it is a directory (for COPY --from).
    pub fn directory(&self, name: &str) -> Option<&Path> {
        match self.opts.named_contexts.get(name) {
            Some(NamedContext::Dir(d)) => Some(d.as_path()),
            _ => None,
        }
    }

    /// The image `name` refers to: an oci-layout named context, imported
    /// into the blob store (digests verified).
    pub fn image(&self, name: &str, platform: &Platform) -> Result<BaseImage> {
        let key = (name.to_string(), platform.clone());
        if let Some(image) = self.resolved.lock().unwrap().get(&key) {
            return Ok(image.clone());
        }
        let layout_ref = match self.opts.named_contexts.get(name) {
            Some(NamedContext::OciLayout(r)) => r.clone(),
            Some(NamedContext::Dir(d)) => bail!(
                "build context {name:?} is a directory ({}); it can be used with COPY --from, not as a base image",
                d.display()
            ),
            None => bail!(
                "{name:?} is neither an earlier stage nor a named build context; pulling from registries is not supported yet: pass --build-context {name}=oci-layout://PATH"
            ),
        };
        let (path, selector) = crate::oci::layout_read::parse_layout_ref(&layout_ref)
            .with_context(|| format!("build context {name}=oci-layout://{layout_ref}"))?;
        let img = crate::oci::layout_read::resolve(&path, selector.as_ref(), platform)
            .with_context(|| format!("reading build context {name}=oci-layout://{layout_ref}"))?;
        if img.layers.len() != img.config.rootfs.diff_ids.len() {
            bail!(
                "image {} in {} lists {} layers but its config has {} diff_ids",
                img.manifest_digest,
                path.display(),
                img.layers.len(),
                img.config.rootfs.diff_ids.len()
            );
        }
        let mut layers = Vec::new();
        for (layer, diff_id) in img.layers.iter().zip(&img.config.rootfs.diff_ids) {
            let blob = crate::oci::layout_read::blob_path(&path, &layer.digest);
            let file = std::fs::File::open(&blob)
                .with_context(|| format!("opening {}", blob.display()))?;
            self.store
                .import_verified(file, &layer.digest, layer.size)
                .with_context(|| {
                    format!("importing layer {} from {}", layer.digest, path.display())
                })?;
            layers.push(LayerRef {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                diff_id: diff_id.clone(),
            });
        }
        let image = BaseImage {
            config: img.config,
            layers,
        };
        self.resolved.lock().unwrap().insert(key, image.clone());
        Ok(image)
    }
}
