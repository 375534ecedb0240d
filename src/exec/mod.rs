//! Executing a build: stages in dependency order, COPY/ADD on the host,
//! metadata instructions, RUN in kiln-runtime's WebAssembly sandbox.

pub mod build;
pub mod copy;
mod copy_step;
pub mod error;
pub mod metadata;
pub mod mounts;
pub mod options;
mod outputs;
pub mod progress;
mod registry_cache;
mod run;
mod run_mounts;
mod sandbox;
mod schedule;
mod secret_scan;
pub mod secrets;
mod sources;
mod stage;
mod step_key;

pub use build::BuildResult;

use anyhow::{Context as _, Result};
use std::path::Path;

/// The PATH BuildKit gives images that set none.
pub const DEFAULT_PATH: &str = kiln_runtime::step::DEFAULT_PATH;

/// Builds what `opts` describes.
pub fn build(opts: &options::BuildOptions) -> Result<BuildResult> {
    build::run(opts)
}

/// `kiln inspect NAME`: the manifest and config of a named image (or of a
/// manifest digest) as one JSON document.
pub fn inspect(cache_dir: &Path, name: &str) -> Result<String> {
    let store = crate::store::BlobStore::open(cache_dir)?;
    let digest = match name.parse::<crate::digest::Digest>() {
        Ok(d) => d,
        Err(_) => {
            let names = crate::store::images::ImageNames::open(cache_dir);
            let normalized = crate::store::images::normalize(name)?;
            names
                .get(&normalized)?
                .with_context(|| format!("no image named {normalized} (see `kiln images`)"))?
        }
    };
    let manifest: serde_json::Value = serde_json::from_slice(&store.read(&digest)?)?;
    if manifest.get("manifests").is_some() {
        // A multi-platform image: the index and each platform's image.
        let mut platforms = Vec::new();
        for m in manifest["manifests"].as_array().into_iter().flatten() {
            let child: crate::digest::Digest = m["digest"]
                .as_str()
                .context("index entry has no digest")?
                .parse()?;
            let one: serde_json::Value =
                serde_json::from_str(&inspect(cache_dir, &child.to_string())?)?;
            platforms.push(serde_json::json!({ "platform": m["platform"], "image": one }));
        }
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "digest": digest.to_string(),
            "index": manifest,
            "platforms": platforms,
        }))?);
    }
    let config_digest: crate::digest::Digest = manifest["config"]["digest"]
        .as_str()
        .context("manifest has no config digest")?
        .parse()?;
    let config: serde_json::Value = serde_json::from_slice(&store.read(&config_digest)?)?;
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "digest": digest.to_string(),
        "manifest": manifest,
        "config": config,
    }))?)
}
