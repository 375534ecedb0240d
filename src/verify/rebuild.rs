//! `kiln verify`: rebuild a context and check that the manifest digest is
//! the expected one (`--expect`) or that of a given image (`--against`);
//! when it is not, the diff between the two says why.
//!
//! The rebuild uses a fresh, empty cache dir unless asked otherwise, so a
//! stale or poisoned step cache cannot make a build look reproducible.

use super::diff::{diff, DiffReport};
use super::source::{open, open_store_digest, Image, OpenOptions};
use crate::digest::Digest;
use crate::exec::options::BuildOptions;
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// The cache dir a verification builds in: a temporary one (removed on
/// drop) or the user's (`--use-cache`).
pub struct BuildCache {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl BuildCache {
    pub fn new(use_cache: bool, user_cache: &Path) -> Result<BuildCache> {
        if use_cache {
            return Ok(BuildCache {
                dir: user_cache.to_path_buf(),
                _tmp: None,
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix("kiln-verify-")
            .tempdir()
            .context("creating a temporary cache dir for the rebuild")?;
        Ok(BuildCache {
            dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What a verification found.
#[derive(Debug)]
pub struct Outcome {
    /// The rebuilt image's manifest digest.
    pub produced: Digest,
    pub matches: bool,
    /// One line per check, for the user.
    pub messages: Vec<String>,
    /// Expected image vs rebuilt one, when `--against` did not match.
    pub report: Option<DiffReport>,
}

/// The digest `img` stands for when compared with a build for `platform`:
/// its own, or the platform's manifest's inside an index.
fn expected_digest(img: &Image, platform: &str) -> Option<Digest> {
    if img.index.is_none() {
        return img.digest.clone().or_else(|| {
            img.images
                .first()
                .and_then(|i| i.manifest.as_ref().map(|m| m.digest.clone()))
        });
    }
    img.images
        .iter()
        .find(|i| i.platform == platform)
        .and_then(|i| i.manifest.as_ref().map(|m| m.digest.clone()))
}

/// Rebuilds with `opts` (whose cache dir the caller chose) and compares.
pub fn verify(
    opts: &BuildOptions,
    expect: Option<&Digest>,
    against: Option<&str>,
    open_opts: &OpenOptions,
) -> Result<Outcome> {
    // A bad --against fails before minutes of building.
    let expected_image = against.map(|r| open(r, open_opts)).transpose()?;
    let result = crate::exec::build(opts).context("rebuilding")?;
    let produced = result.manifest_digest;
    // A multi-platform rebuild is an index: equal index digests mean every
    // platform's image is equal. A single-platform one is compared with
    // that platform's entry when the expected image is an index.
    let produced_index = result.media_type == crate::oci::image::MEDIA_INDEX;
    let mut out = Outcome {
        produced: produced.clone(),
        matches: true,
        messages: Vec::new(),
        report: None,
    };
    if let Some(want) = expect {
        if *want == produced {
            out.messages
                .push(format!("OK: the rebuild produced the expected {want}"));
        } else {
            out.matches = false;
            out.messages.push(format!(
                "MISMATCH: expected {want}, the rebuild produced {produced}"
            ));
            if against.is_none() {
                out.messages.push(
                    "to see why, pass the expected image with --against REF \
                     (oci-layout://PATH, a docker archive, a registry reference or a local name)"
                        .into(),
                );
            }
        }
    }
    if let Some(img) = &expected_image {
        let rebuilt = open_store_digest(&opts.cache_dir, &produced)?;
        let want = if produced_index {
            img.digest.clone()
        } else {
            let platform = opts
                .platforms
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            expected_digest(img, &platform)
        };
        let same = match &want {
            Some(w) => *w == produced,
            // A docker archive has no manifest: compare content.
            None => diff(img, &rebuilt)?.identical,
        };
        if same {
            out.messages.push(format!(
                "OK: the rebuild matches {} ({})",
                img.reference,
                want.map_or("same config and layers".to_string(), |w| w.to_string())
            ));
        } else {
            out.matches = false;
            out.messages.push(format!(
                "MISMATCH: {} is {}, the rebuild produced {produced}",
                img.reference,
                want.map_or("an image without a manifest".to_string(), |w| w.to_string())
            ));
            out.report = Some(diff(img, &rebuilt)?);
        }
    }
    Ok(out)
}
