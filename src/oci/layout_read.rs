//! Reading a local OCI image layout, for named build contexts given as
//! `oci-layout://PATH[:TAG|@DIGEST]` and base images kept on disk.
//!
//! Everything read from the layout is checked against its descriptor
//! (size first, so a huge or truncated blob is refused before it is read,
//! then sha256), since a layout directory is as untrusted as a registry.
//! Both OCI and Docker schema 2 media types are understood.

use crate::digest::Digest;
use crate::oci::config::ImageConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Image config media types kiln reads.
pub const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
/// Layer media types kiln applies.
pub const LAYER_TYPES: [&str; 8] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Manifests, indexes and configs larger than this are refused unread.
pub const MAX_JSON_BLOB: u64 = 16 << 20;
/// Index nesting deeper than this is refused (cycles, hostile layouts).
pub const MAX_DEPTH: usize = 8;

/// Which image of the layout to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Matches `org.opencontainers.image.ref.name` as a whole or its tag part.
    Tag(String),
    /// A manifest or index anywhere in the layout.
    Digest(Digest),
}

/// Platforms are kiln's one platform type.
pub use crate::plan::platform::Platform;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDescriptor {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// The image a layout reference names, for one platform.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// The manifest exactly as stored (its digest is `manifest_digest`).
    pub manifest: Vec<u8>,
    pub config: ImageConfig,
    pub config_digest: Digest,
    pub layers: Vec<LayerDescriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("OCI layout {layout}: {what}: {source}")]
    Io {
        layout: PathBuf,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("OCI layout {layout}: {what}")]
    Invalid { layout: PathBuf, what: String },
    #[error("OCI layout {layout}: blob {digest}: {what}")]
    Blob {
        layout: PathBuf,
        digest: String,
        what: String,
    },
    #[error("OCI layout {layout}: {what}")]
    NotFound { layout: PathBuf, what: String },
    #[error("invalid oci-layout reference {0:?}: {1}")]
    BadReference(String, &'static str),
}

/// Splits `[oci-layout://]PATH[:TAG|@DIGEST]`. A `:` only starts a tag when
/// what follows is a valid tag (so `C:\dir` and `dir/a:b/c` stay paths).
pub fn parse_layout_ref(s: &str) -> Result<(PathBuf, Option<Selector>), LayoutError> {
    let rest = s.strip_prefix("oci-layout://").unwrap_or(s);
    if let Some((path, d)) = rest.rsplit_once('@') {
        if looks_like_digest(d) {
            let digest = d
                .parse()
                .map_err(|_| LayoutError::BadReference(s.into(), "invalid digest after '@'"))?;
            if path.is_empty() {
                return Err(LayoutError::BadReference(s.into(), "empty path"));
            }
            return Ok((PathBuf::from(path), Some(Selector::Digest(digest))));
        }
    }
    if let Some((path, tag)) = rest.rsplit_once(':') {
        if !path.is_empty() && is_tag(tag) && !is_drive_letter(path) {
            return Ok((PathBuf::from(path), Some(Selector::Tag(tag.into()))));
        }
    }
    if rest.is_empty() {
        return Err(LayoutError::BadReference(s.into(), "empty path"));
    }
    Ok((PathBuf::from(rest), None))
}

/// `algo:hex`, the shape of a digest (validity is checked by parsing), so
/// that paths such as `user@host:dir` stay paths.
fn looks_like_digest(d: &str) -> bool {
    d.split_once(':').is_some_and(|(algo, hex)| {
        !algo.is_empty()
            && algo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn is_drive_letter(path: &str) -> bool {
    path.len() == 1 && path.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Where the blob with `digest` lives in `layout`. Not verified: use
/// [`verify_blob`] (or hash while copying) before trusting its bytes.
pub fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs").join("sha256").join(digest.hex())
}

/// Hashes the blob file as a stream and checks size and digest; returns its
/// path. For layers, which are too large to read into memory.
pub fn verify_blob(layout: &Path, digest: &Digest, size: u64) -> Result<PathBuf, LayoutError> {
    let path = blob_path(layout, digest);
    let err = |what: String| LayoutError::Blob {
        layout: layout.into(),
        digest: digest.to_string(),
        what,
    };
    let f =
        fs::File::open(&path).map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
    check_size(&f, size).map_err(err)?;
    let mut w = crate::digest::HashingWriter::new(io::sink());
    io::copy(&mut f.take(size + 1), &mut w).map_err(|e| err(format!("reading: {e}")))?;
    let (_, got, n) = w.finish();
    if n != size {
        return Err(err(format!("size is {n} bytes, descriptor says {size}")));
    }
    if got != *digest {
        return Err(err(format!(
            "content does not match its digest (it hashes to {got})"
        )));
    }
    Ok(path)
}

fn check_size(f: &fs::File, size: u64) -> Result<(), String> {
    let len = f.metadata().map_err(|e| format!("stat: {e}"))?.len();
    if len != size {
        return Err(format!("size is {len} bytes, descriptor says {size}"));
    }
    Ok(())
}

/// A descriptor as read from untrusted JSON (a layout's or a registry's):
/// only the fields kiln uses, the digest still unparsed.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescriptorJson {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<PlatformJson>,
}

/// A descriptor's platform, as read.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PlatformJson {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<DescriptorJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    config: DescriptorJson,
    #[serde(default)]
    layers: Vec<DescriptorJson>,
}

/// Only the fields that tell what a blob is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

struct Reader<'a> {
    layout: &'a Path,
    platform: &'a Platform,
}

/// Resolves `selector` in the layout at `layout` to one image for
/// `platform`, following nested indexes. Without a selector the layout must
/// hold one image (or several platforms of one). The config's own platform
/// is not checked against `platform` for single-platform images: the caller
/// decides whether that is an error.
pub fn resolve(
    layout: &Path,
    selector: Option<&Selector>,
    platform: &Platform,
) -> Result<ResolvedImage, LayoutError> {
    let r = Reader { layout, platform };
    r.check_layout_file()?;
    let index_bytes = r.read_small_file("index.json")?;
    let index: IndexJson = r.parse(&index_bytes, "index.json")?;
    let candidates: Vec<DescriptorJson> = match selector {
        None => index.manifests.clone(),
        Some(Selector::Tag(t)) => {
            let hits: Vec<DescriptorJson> = index
                .manifests
                .iter()
                .filter(|d| tag_matches(d, t))
                .cloned()
                .collect();
            if hits.is_empty() {
                return Err(LayoutError::NotFound {
                    layout: layout.into(),
                    what: format!("no image tagged {t:?} (tags: {})", tags_of(&index)),
                });
            }
            hits
        }
        Some(Selector::Digest(d)) => vec![r.descriptor_for_digest(&index, d)?],
    };
    r.pick(&candidates, 0, "index.json")
}

fn tag_matches(d: &DescriptorJson, tag: &str) -> bool {
    [REF_NAME, CONTAINERD_NAME]
        .iter()
        .filter_map(|k| d.annotations.get(*k))
        .any(|name| name == tag || tag_part(name) == Some(tag))
}

/// The tag of a full reference (`docker.io/library/a:1.0` gives `1.0`).
fn tag_part(name: &str) -> Option<&str> {
    let name = name.split('@').next().unwrap_or(name);
    let (_, last) = name.rsplit_once('/').unwrap_or(("", name));
    last.rsplit_once(':').map(|(_, t)| t)
}

fn tags_of(index: &IndexJson) -> String {
    let names: Vec<&str> = index
        .manifests
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

fn is_manifest_type(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

impl Reader<'_> {
    fn invalid(&self, what: String) -> LayoutError {
        LayoutError::Invalid {
            layout: self.layout.into(),
            what,
        }
    }

    fn check_layout_file(&self) -> Result<(), LayoutError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct OciLayout {
            image_layout_version: String,
        }
        let bytes = self.read_small_file("oci-layout")?;
        let v: OciLayout = self.parse(&bytes, "oci-layout")?;
        if v.image_layout_version.split('.').next() != Some("1") {
            return Err(self.invalid(format!(
                "unsupported imageLayoutVersion {:?} (kiln reads 1.x)",
                v.image_layout_version
            )));
        }
        Ok(())
    }

    fn read_small_file(&self, name: &str) -> Result<Vec<u8>, LayoutError> {
        let path = self.layout.join(name);
        let io = |what: String, source| LayoutError::Io {
            layout: self.layout.into(),
            what,
            source,
        };
        let f = fs::File::open(&path).map_err(|e| io(format!("cannot open {name}"), e))?;
        let mut out = Vec::new();
        f.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut out)
            .map_err(|e| io(format!("reading {name}"), e))?;
        if out.len() as u64 > MAX_JSON_BLOB {
            return Err(self.invalid(format!("{name} is larger than {MAX_JSON_BLOB} bytes")));
        }
        Ok(out)
    }

    fn parse<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
        what: &str,
    ) -> Result<T, LayoutError> {
        serde_json::from_slice(bytes).map_err(|e| self.invalid(format!("{what} is not valid: {e}")))
    }

    fn digest_of(&self, d: &DescriptorJson, ctx: &str) -> Result<Digest, LayoutError> {
        d.digest.parse().map_err(|_| {
            self.invalid(format!(
                "{ctx}: unsupported or invalid digest {:?} (kiln reads sha256)",
                d.digest
            ))
        })
    }

    /// Reads a small (JSON) blob, checking size and digest.
    fn read_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, LayoutError> {
        let err = |what: String| LayoutError::Blob {
            layout: self.layout.into(),
            digest: digest.to_string(),
            what,
        };
        if size > MAX_JSON_BLOB {
            return Err(err(format!(
                "descriptor size {size} is too large for a manifest or config"
            )));
        }
        let path = blob_path(self.layout, digest);
        let f = fs::File::open(&path)
            .map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
        check_size(&f, size).map_err(err)?;
        let mut bytes = Vec::new();
        f.take(size)
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("reading: {e}")))?;
        let got = Digest::of(&bytes);
        if got != *digest || bytes.len() as u64 != size {
            return Err(err(format!(
                "content does not match its digest (it hashes to {got})"
            )));
        }
        Ok(bytes)
    }

    /// A descriptor for a manifest or index named by digest: from index.json
    /// when listed there, else built from the blob itself (nested ones).
    fn descriptor_for_digest(
        &self,
        index: &IndexJson,
        d: &Digest,
    ) -> Result<DescriptorJson, LayoutError> {
        if let Some(found) = index.manifests.iter().find(|m| m.digest == d.to_string()) {
            return Ok(found.clone());
        }
        let path = blob_path(self.layout, d);
        let size = fs::metadata(&path)
            .map_err(|_| LayoutError::NotFound {
                layout: self.layout.into(),
                what: format!("no manifest or index with digest {d}"),
            })?
            .len();
        Ok(DescriptorJson {
            media_type: None,
            digest: d.to_string(),
            size,
            annotations: BTreeMap::new(),
            platform: None,
        })
    }

    /// Chooses one of `candidates` for the platform and follows it.
    fn pick(
        &self,
        candidates: &[DescriptorJson],
        depth: usize,
        ctx: &str,
    ) -> Result<ResolvedImage, LayoutError> {
        if depth > MAX_DEPTH {
            return Err(self.invalid(format!("indexes nested deeper than {MAX_DEPTH} at {ctx}")));
        }
        if let [only] = candidates {
            if only.platform.as_ref().is_none_or(|p| {
                self.platform
                    .match_score(&p.os, &p.architecture, p.variant.as_deref())
                    .is_some()
            }) {
                return self.follow(only, depth);
            }
        }
        let mut best: Option<(u8, &DescriptorJson)> = None;
        for d in candidates {
            if let Some(score) = d.platform.as_ref().and_then(|p| {
                self.platform
                    .match_score(&p.os, &p.architecture, p.variant.as_deref())
            }) {
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, d));
                }
            }
        }
        if let Some((_, d)) = best {
            return self.follow(d, depth);
        }
        let platforms: Vec<String> = candidates
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect();
        let what = if candidates.is_empty() {
            format!("{ctx} lists no manifests")
        } else if platforms.is_empty() {
            format!(
                "{ctx} lists {} images; choose one with :TAG or @DIGEST",
                candidates.len()
            )
        } else {
            format!(
                "{ctx} has no image for platform {} (available: {})",
                self.platform,
                platforms.join(", ")
            )
        };
        Err(LayoutError::NotFound {
            layout: self.layout.into(),
            what,
        })
    }

    fn follow(&self, d: &DescriptorJson, depth: usize) -> Result<ResolvedImage, LayoutError> {
        let digest = self.digest_of(d, "manifest descriptor")?;
        let bytes = self.read_blob(&digest, d.size)?;
        let shape: Shape = self.parse(&bytes, &format!("blob {digest}"))?;
        if let (Some(outer), Some(inner)) = (&d.media_type, &shape.media_type) {
            if outer != inner {
                return Err(self.invalid(format!(
                    "blob {digest}: descriptor says {outer} but the content says {inner}"
                )));
            }
        }
        let mt = d
            .media_type
            .clone()
            .or(shape.media_type.clone())
            .unwrap_or_else(|| {
                if shape.manifests.is_some() {
                    OCI_INDEX.into()
                } else if shape.config.is_some() {
                    OCI_MANIFEST.into()
                } else {
                    String::new()
                }
            });
        if is_index_type(&mt) {
            let index: IndexJson = self.parse(&bytes, &format!("index {digest}"))?;
            return self.pick(&index.manifests, depth + 1, &format!("index {digest}"));
        }
        if !is_manifest_type(&mt) {
            return Err(self.invalid(format!("blob {digest} has unsupported media type {mt:?}")));
        }
        let m: ManifestJson = self.parse(&bytes, &format!("manifest {digest}"))?;
        let config_mt = m.config.media_type.as_deref().unwrap_or_default();
        if !CONFIG_TYPES.contains(&config_mt) {
            return Err(self.invalid(format!(
                "manifest {digest}: config media type {config_mt:?} is not an image config"
            )));
        }
        let config_digest = self.digest_of(&m.config, &format!("manifest {digest} config"))?;
        let config_bytes = self.read_blob(&config_digest, m.config.size)?;
        let config: ImageConfig = self.parse(&config_bytes, &format!("config {config_digest}"))?;
        let mut layers = Vec::with_capacity(m.layers.len());
        for l in &m.layers {
            let ld = self.digest_of(l, &format!("manifest {digest} layer"))?;
            let lmt = l.media_type.clone().unwrap_or_default();
            if !LAYER_TYPES.contains(&lmt.as_str()) {
                return Err(self.invalid(format!(
                    "manifest {digest}: layer {ld} has unsupported media type {lmt:?}"
                )));
            }
            layers.push(LayerDescriptor {
                digest: ld,
                size: l.size,
                media_type: lmt,
            });
        }
        Ok(ResolvedImage {
            manifest_digest: digest,
            manifest_media_type: mt,
            manifest: bytes,
            config,
            config_digest,
            layers,
        })
    }
}

#[cfg(test)]
mod tests;
