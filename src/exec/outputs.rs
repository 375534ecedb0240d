//! The end of a build: assemble config and manifest, then hand them to the
//! exporters (`--output`), the local names (`-t`), `--iidfile` and
//! `--metadata-file`.

use super::build::{BuildEnv, BuildResult};
use super::metadata::timestamp;
use super::options::BuildOptions;
use super::options::OutputSpec;
use super::progress::Progress;
use super::stage::StageResult;
use crate::oci::export;
use crate::oci::image::{Descriptor, ImageRecord};
use anyhow::{Context as _, Result};

/// One platform's finished image.
pub struct PlatformImage {
    pub platform: crate::plan::platform::Platform,
    pub record: ImageRecord,
}

/// Stores the config and manifest of `env.platform`'s image and writes its
/// root filesystem for `type=local` outputs (into `dest/os_arch[_variant]`
/// when the build has several platforms, as buildx does).
pub fn image_for_platform(env: &BuildEnv<'_>, stage: StageResult) -> Result<PlatformImage> {
    let opts = env.opts;
    let mut config = stage.config.clone();
    config.created = Some(timestamp(opts.source_date_epoch));
    // Before anything of the image is written (config, type=local files).
    let secrets = env.used_secrets.values(&opts.secrets);
    super::secret_scan::refuse_in_config(&config, &secrets)?;
    let layers: Vec<Descriptor> = stage
        .layers
        .iter()
        .map(|l| Descriptor::new(&l.media_type, l.digest.clone(), l.size))
        .collect();
    let record = crate::oci::image::write_image(env.store, &config, &layers)?;
    for output in &opts.outputs {
        let OutputSpec::Local { dest } = output else {
            continue;
        };
        let dest = if env.multi_platform {
            dest.join(env.platform.to_string().replace('/', "_"))
        } else {
            dest.clone()
        };
        let _task = env
            .progress
            .task(&format!("exporting root filesystem to {}", dest.display()));
        let skipped = stage
            .tree(env)?
            .export_local(&dest)
            .with_context(|| format!("writing the root filesystem to {}", dest.display()))?;
        for p in skipped {
            env.progress
                .warn(&format!("type=local: device node or fifo {p} not written"));
        }
    }
    Ok(PlatformImage {
        platform: env.platform.clone(),
        record,
    })
}

/// The image the build produced: one platform's manifest, or an index over
/// every platform's manifest (in `--platform` order).
fn top_descriptor(store: &crate::store::BlobStore, images: &[PlatformImage]) -> Result<Descriptor> {
    if let [one] = images {
        return Ok(one.record.descriptor());
    }
    let manifests = images
        .iter()
        .map(|i| {
            let mut d = i.record.descriptor();
            d.platform = Some(crate::oci::image::Platform {
                architecture: i.platform.architecture.clone(),
                os: i.platform.os.clone(),
                variant: i.platform.variant.clone(),
                os_version: None,
                extra: Default::default(),
            });
            d
        })
        .collect();
    Ok(crate::oci::image::write_index(store, manifests)?)
}

/// Exports, names, pushes and reports the build's image.
pub fn finish(
    opts: &BuildOptions,
    store: &crate::store::BlobStore,
    images: Vec<PlatformImage>,
    progress: &Progress,
) -> Result<BuildResult> {
    let top = top_descriptor(store, &images)?;
    let config_digest = match images.as_slice() {
        [one] => Some(one.record.config_digest.clone()),
        _ => None,
    };
    let names: Vec<String> = opts
        .tags
        .iter()
        .map(|t| crate::store::images::normalize(t).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;

    for output in &opts.outputs {
        let (kind, dest, tar, name) = match output {
            OutputSpec::Oci { dest, tar, name } => (export::OutputKind::Oci, dest, tar, name),
            OutputSpec::Docker { dest, tar, name } => (export::OutputKind::Docker, dest, tar, name),
            // Written per platform; named and pushed below.
            OutputSpec::Local { .. } | OutputSpec::Image { .. } => continue,
        };
        let _task = progress.task(&format!("exporting {}", describe(output)));
        let name = name.clone().or_else(|| names.first().cloned());
        let spec = export::OutputSpec {
            kind,
            dest: dest.clone(),
            tar: *tar,
        };
        export::export(store, &top, name.as_deref(), &spec, opts.source_date_epoch)
            .with_context(|| format!("exporting to {}", dest.display()))?
    }
    let mut names = names;
    for output in &opts.outputs {
        if let OutputSpec::Image { name, .. } = output {
            let n = crate::store::images::normalize(name)?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    if !names.is_empty() {
        let images = crate::store::images::ImageNames::open(&opts.cache_dir);
        for n in &names {
            images.set(n, &top.digest)?;
        }
    }
    push_images(opts, store, &top.digest, progress)?;
    if let Some(path) = &opts.iidfile {
        std::fs::write(path, top.digest.to_string())
            .with_context(|| format!("writing --iidfile {}", path.display()))?;
    }
    if let Some(path) = &opts.metadata_file {
        let mut m = serde_json::Map::new();
        m.insert(
            "containerimage.digest".into(),
            top.digest.to_string().into(),
        );
        if let Some(config) = &config_digest {
            m.insert(
                "containerimage.config.digest".into(),
                config.to_string().into(),
            );
        }
        m.insert(
            "containerimage.descriptor".into(),
            serde_json::json!({
                "mediaType": top.media_type,
                "digest": top.digest.to_string(),
                "size": top.size,
            }),
        );
        if !names.is_empty() {
            m.insert("image.name".into(), names.join(",").into());
        }
        let bytes = serde_json::to_vec_pretty(&serde_json::Value::Object(m))?;
        std::fs::write(path, bytes)
            .with_context(|| format!("writing --metadata-file {}", path.display()))?;
    }
    Ok(BuildResult {
        manifest_digest: top.digest.clone(),
        manifest_size: top.size,
        media_type: if top.media_type == crate::oci::image::MEDIA_INDEX {
            crate::oci::image::MEDIA_INDEX
        } else {
            crate::oci::image::MEDIA_MANIFEST
        },
        config_digest,
    })
}

/// Pushes to every `type=image,push=true` / `type=registry` name (`--push`
/// adds one per `-t`), mounting blobs from names pushed before on the same
/// registry.
fn push_images(
    opts: &BuildOptions,
    store: &crate::store::BlobStore,
    digest: &crate::digest::Digest,
    progress: &Progress,
) -> Result<()> {
    use crate::registry::push::{push_image, PushOptions};
    let mut pushed: Vec<String> = Vec::new();
    for output in &opts.outputs {
        let OutputSpec::Image {
            name,
            push: true,
            insecure,
        } = output
        else {
            continue;
        };
        let task = progress.task(&format!("pushing {name}"));
        let push_opts = PushOptions {
            registry: opts.registry_options(name, *insecure),
            mount_from: pushed.clone(),
        };
        match push_image(store, digest, name, &push_opts) {
            Ok(report) => {
                task.done();
                progress.info(&report.summary());
            }
            Err(e) => {
                task.failed(&crate::error_text::of_std(&e));
                return Err(anyhow::Error::from(e).context(format!("pushing {name}")));
            }
        }
        pushed.push(name.clone());
    }
    Ok(())
}

fn describe(o: &OutputSpec) -> String {
    match o {
        OutputSpec::Oci {
            dest, tar: true, ..
        } => format!("OCI archive {}", dest.display()),
        OutputSpec::Oci { dest, .. } => format!("OCI layout {}", dest.display()),
        OutputSpec::Docker { dest, .. } => format!("docker archive {}", dest.display()),
        OutputSpec::Local { dest } => format!("root filesystem to {}", dest.display()),
        OutputSpec::Image { name, .. } => format!("image {name}"),
    }
}
