//! The end of a build: assemble config and manifest, then hand them to the
//! exporters (`--output`), the local names (`-t`), `--iidfile` and
//! `--metadata-file`.

use super::build::{BuildEnv, BuildResult};
use super::metadata::timestamp;
use super::options::OutputSpec;
use super::progress::Progress;
use super::stage::StageResult;
use crate::oci::export;
use crate::oci::image::Descriptor;
use anyhow::{Context as _, Result};

pub fn finish(env: &BuildEnv<'_>, stage: StageResult, progress: &Progress) -> Result<BuildResult> {
    let opts = env.opts;
    let mut config = stage.config.clone();
    config.created = Some(timestamp(opts.source_date_epoch));
    let layers: Vec<Descriptor> = stage
        .layers
        .iter()
        .map(|l| Descriptor::new(&l.media_type, l.digest.clone(), l.size))
        .collect();
    let record = crate::oci::image::write_image(env.store, &config, &layers)?;
    let names: Vec<String> = opts
        .tags
        .iter()
        .map(|t| crate::store::images::normalize(t).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;

    for output in &opts.outputs {
        let _task = progress.task(&format!("exporting {}", describe(output)));
        match output {
            OutputSpec::Oci { dest, tar, name } | OutputSpec::Docker { dest, tar, name } => {
                let kind = match output {
                    OutputSpec::Oci { .. } => export::OutputKind::Oci,
                    _ => export::OutputKind::Docker,
                };
                let name = name.clone().or_else(|| names.first().cloned());
                let spec = export::OutputSpec {
                    kind,
                    dest: dest.clone(),
                    tar: *tar,
                };
                export::export(
                    env.store,
                    &record,
                    name.as_deref(),
                    &spec,
                    opts.source_date_epoch,
                )
                .with_context(|| format!("exporting to {}", dest.display()))?
            }
            // Named and pushed below, once the local names are written.
            OutputSpec::Image { .. } => {}
            OutputSpec::Local { dest } => {
                let skipped = stage.tree(env)?.export_local(dest).with_context(|| {
                    format!("writing the root filesystem to {}", dest.display())
                })?;
                for p in skipped {
                    progress.warn(&format!("type=local: device node or fifo {p} not written"));
                }
            }
        }
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
            images.set(n, &record.manifest_digest)?;
        }
    }
    push_images(env, &record.manifest_digest, progress)?;
    if let Some(path) = &opts.iidfile {
        std::fs::write(path, record.manifest_digest.to_string())
            .with_context(|| format!("writing --iidfile {}", path.display()))?;
    }
    if let Some(path) = &opts.metadata_file {
        let mut m = serde_json::Map::new();
        m.insert(
            "containerimage.digest".into(),
            record.manifest_digest.to_string().into(),
        );
        m.insert(
            "containerimage.config.digest".into(),
            record.config_digest.to_string().into(),
        );
        m.insert(
            "containerimage.descriptor".into(),
            serde_json::json!({
                "mediaType": crate::oci::image::MEDIA_MANIFEST,
                "digest": record.manifest_digest.to_string(),
                "size": record.manifest_size,
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
        manifest_digest: record.manifest_digest,
        manifest_size: record.manifest_size,
        config_digest: record.config_digest,
    })
}

/// Pushes to every `type=image,push=true` / `type=registry` name (`--push`
/// adds one per `-t`), mounting blobs from names pushed before on the same
/// registry.
fn push_images(
    env: &BuildEnv<'_>,
    digest: &crate::digest::Digest,
    progress: &Progress,
) -> Result<()> {
    use crate::registry::push::{push_image, PushOptions};
    let mut pushed: Vec<String> = Vec::new();
    for output in &env.opts.outputs {
        let OutputSpec::Image {
            name,
            push: true,
            insecure,
        } = output
        else {
            continue;
        };
        let task = progress.task(&format!("pushing {name}"));
        let mut insecure_registries = env.opts.insecure_registries.clone();
        if *insecure {
            insecure_registries.push(
                crate::registry::push::parse_reference(name)?
                    .registry()
                    .to_string(),
            );
        }
        let push_opts = PushOptions {
            registry: crate::registry::RegistryOptions {
                insecure_registries,
                docker_config: None,
            },
            mount_from: pushed.clone(),
        };
        match push_image(env.store, digest, name, &push_opts) {
            Ok(report) => {
                task.done();
                progress.info(&report.summary());
            }
            Err(e) => {
                task.failed(&e.to_string());
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
