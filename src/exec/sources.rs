//! Images that do not come from this Dockerfile: named build contexts
//! (`--build-context NAME=oci-layout://...`, `docker-image://...` or a
//! directory, also where they replace a stage named NAME) and images
//! pulled from registries (`FROM alpine`).

use super::options::{BuildOptions, NamedContext};
use crate::digest::Digest;
use crate::oci::config::ImageConfig;
use crate::plan::platform::Platform;
use crate::store::BlobStore;
use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// Where one (name, platform) resolution is kept; its own lock makes
/// concurrent askers wait for the first one's answer.
type ResolveSlot = Arc<Mutex<Option<BaseImage>>>;

/// Resolves and caches external images for one build.
pub struct ExternalImages<'a> {
    opts: &'a BuildOptions,
    store: &'a BlobStore,
    /// Pulls show as tasks.
    progress: super::progress::Progress,
    /// One slot per (name, platform): a tag is resolved once per build,
    /// even when several stages ask for it at the same time.
    resolved: Mutex<BTreeMap<(String, Platform), ResolveSlot>>,
}

impl<'a> ExternalImages<'a> {
    pub fn new(
        opts: &'a BuildOptions,
        store: &'a BlobStore,
        progress: super::progress::Progress,
    ) -> Self {
        ExternalImages {
            opts,
            store,
            progress,
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

    /// The image `name` refers to: a named context (oci-layout or
    /// docker-image) or else an image reference pulled from its registry.
    /// Blobs are imported into the blob store, digests verified.
    pub fn image(&self, name: &str, platform: &Platform) -> Result<BaseImage> {
        let key = (name.to_string(), platform.clone());
        let slot = self
            .resolved
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .clone();
        let mut slot = slot.lock().unwrap();
        if let Some(image) = slot.as_ref() {
            return Ok(image.clone());
        }
        let image = match self.opts.named_contexts.get(name) {
            Some(NamedContext::OciLayout(r)) => self.read_layout(name, r, platform)?,
            Some(NamedContext::DockerImage(r)) => self
                .pull(r, platform)
                .with_context(|| format!("build context {name}=docker-image://{r}"))?,
            Some(NamedContext::Dir(d)) => self.read_dir(name, d, platform)?,
            None => self.pull(name, platform)?,
        };
        *slot = Some(image.clone());
        Ok(image)
    }

    /// Pulls `reference` from its registry for `platform`.
    fn pull(&self, reference: &str, platform: &Platform) -> Result<BaseImage> {
        let r = crate::registry::ImageRef::parse(reference).with_context(|| {
            format!("{reference:?} is neither an earlier stage nor a named build context, so it must name an image in a registry")
        })?;
        let opts = self.opts.registry_options(reference, false);
        let task = self.progress.task(&format!("pulling {r} for {platform}"));
        let pulled = crate::registry::pull_image(self.store, &r, platform, &opts);
        match &pulled {
            Ok(img) => {
                task.done();
                self.progress
                    .info(&format!("{r} for {platform} is {}", img.manifest_digest));
            }
            Err(e) => task.failed(&crate::error_text::of_std(e)),
        }
        let img = pulled.map_err(|e| {
            if e.is_unreachable() {
                let e = crate::error_text::of_std(&e);
                anyhow::anyhow!(
                    "pulling {r} for {platform}: {e}\n(without access to that registry, give the image as a named context: --build-context {reference}=oci-layout://PATH)"
                )
            } else {
                anyhow::Error::from(e).context(format!("pulling {r} for {platform}"))
            }
        })?;
        Ok(BaseImage {
            config: img.config,
            layers: img
                .layers
                .into_iter()
                .map(|l| LayerRef {
                    media_type: l.media_type,
                    digest: l.digest,
                    size: l.size,
                    diff_id: l.diff_id,
                })
                .collect(),
        })
    }

    /// A directory as an image (`FROM NAME`, or `--target` of a stage it
    /// replaces). BuildKit gives a local context used as a base the empty
    /// image config (no ENV, no WORKDIR) and the directory as its root
    /// filesystem; here that is one layer holding what `COPY . /` of the
    /// directory would, with the history line BuildKit's exporter writes.
    fn read_dir(&self, name: &str, dir: &Path, platform: &Platform) -> Result<BaseImage> {
        use super::copy::{CopyOptions, DestKind};
        use crate::snapshot::ImagePath;
        let sde = self.opts.source_date_epoch;
        let tree = crate::context::Context::open_named(dir)
            .with_context(|| format!("opening build context {name}={}", dir.display()))?;
        let options = CopyOptions {
            source_date_epoch: Some(sde),
            ..CopyOptions::default()
        };
        let nothing = |_: &ImagePath| Ok(DestKind::Absent);
        let mut entries = super::copy::plan_copy(
            &tree,
            &[".".to_string()],
            "/",
            &ImagePath::root(),
            &options,
            &nothing,
        )
        .with_context(|| format!("reading build context {name}={}", dir.display()))?;
        let mut image = BaseImage::scratch(platform);
        if entries.is_empty() {
            return Ok(image);
        }
        for e in &mut entries {
            e.meta.mtime = e.meta.mtime.min(sde);
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let layer = crate::oci::layer::write_layer(
            self.store,
            entries,
            &crate::oci::layer::LayerOptions {
                source_date_epoch: sde,
            },
        )
        .with_context(|| format!("writing build context {name}={} as a layer", dir.display()))?;
        image.config.rootfs.diff_ids.push(layer.diff_id.clone());
        image.config.history.push(crate::oci::config::History {
            created: Some(super::metadata::timestamp(sde)),
            created_by: Some(format!("[context {name}] load from client")),
            author: None,
            comment: Some("buildkit.exporter.image.v0".into()),
            empty_layer: false,
        });
        image.layers.push(LayerRef::from_kiln_layer(&layer));
        Ok(image)
    }

    fn read_layout(&self, name: &str, layout_ref: &str, platform: &Platform) -> Result<BaseImage> {
        let (path, selector) = crate::oci::layout_read::parse_layout_ref(layout_ref)
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
        Ok(BaseImage {
            config: img.config,
            layers,
        })
    }
}
