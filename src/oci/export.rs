//! Exporters: `--output type=oci` (OCI layout as a tar archive, or a
//! directory with `tar=false`) and `--output type=docker` (docker-archive,
//! as `docker save` writes and `docker load`/`podman load`/skopeo read).
//!
//! Archives are deterministic: entries in [`ImagePath`] order (depth-first,
//! bytewise), mtime = SOURCE_DATE_EPOCH, uid/gid 0, 0644 files and 0755
//! directories, written with kiln's own tar encoder. Blobs are copied from
//! the store as they are (layers stay gzip; docker-archive readers accept
//! compressed layers). Files are written to a temporary name beside `dest`
//! and renamed, so a failed export never leaves a truncated archive.

use super::config::canonical_json;
use super::image::{
    read_index, read_manifest, Descriptor, ImageError, Index, MEDIA_INDEX, REF_NAME,
};
use super::tar::{self, Header, Kind};
use crate::digest::Digest;
use crate::snapshot::ImagePath;
use crate::store::images::normalize;
use crate::store::{BlobStore, NameError, StoreError};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The index annotation containerd and BuildKit use for the full name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("--output {spec:?}: {why}")]
    Spec { spec: String, why: String },
    #[error("exporting to {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("serialising {what}: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("the docker exporter holds one image, not a multi-platform index: use --output type=oci, or build one --platform")]
    DockerIndex,
}

type Result<T> = std::result::Result<T, ExportError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Oci,
    Docker,
}

/// Where and how to export an image (the CLI's `--output` parsing lives
/// in `exec::options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub kind: OutputKind,
    pub dest: PathBuf,
    /// Only `type=oci` may set it to false (a layout directory).
    pub tar: bool,
}

/// Exports the image (an image manifest, or an index of them) `top` as
/// `spec` says; `name` (normalised to `name:tag`) becomes the ref
/// annotation / RepoTags.
pub fn export(
    store: &BlobStore,
    top: &Descriptor,
    name: Option<&str>,
    spec: &OutputSpec,
    source_date_epoch: u64,
) -> Result<()> {
    let files = match spec.kind {
        OutputKind::Oci => oci_layout(store, top, name)?,
        OutputKind::Docker => docker_archive(store, top, name)?,
    };
    if spec.tar {
        write_atomically(&spec.dest, |out| {
            write_archive(store, &files, source_date_epoch, out)
        })
    } else {
        write_dir(store, &files, &spec.dest)
    }
}

/// Where one archive file's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    Blob(Digest),
}

/// The files of an archive, by path (directories are implied).
type Files = BTreeMap<String, Source>;

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Every blob of `top`: the index and each manifest's blobs, or the
/// manifest, config and layers of one image.
fn blobs(store: &BlobStore, top: &Descriptor, files: &mut Files) -> Result<()> {
    if top.media_type == MEDIA_INDEX {
        files.insert(blob_path(&top.digest), Source::Blob(top.digest.clone()));
        for m in read_index(store, &top.digest)?.manifests {
            image_blobs(store, &m.digest, files)?;
        }
        return Ok(());
    }
    image_blobs(store, &top.digest, files)?;
    Ok(())
}

/// Manifest, config and layer blobs of one image; returns the layers.
fn image_blobs(
    store: &BlobStore,
    manifest_digest: &Digest,
    files: &mut Files,
) -> Result<Vec<Digest>> {
    let manifest = read_manifest(store, manifest_digest)?;
    let mut layers = Vec::new();
    for d in [manifest_digest, &manifest.config.digest] {
        files.insert(blob_path(d), Source::Blob(d.clone()));
    }
    for l in &manifest.layers {
        files.insert(blob_path(&l.digest), Source::Blob(l.digest.clone()));
        layers.push(l.digest.clone());
    }
    Ok(layers)
}

fn json<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    canonical_json(v).map_err(|source| ExportError::Json { what, source })
}

fn oci_layout(store: &BlobStore, top: &Descriptor, name: Option<&str>) -> Result<Files> {
    let mut files = Files::new();
    blobs(store, top, &mut files)?;
    let mut desc = Descriptor::new(&top.media_type, top.digest.clone(), top.size);
    if let Some(name) = name {
        let full = normalize(name)?;
        let tag = full.rsplit_once(':').map_or("latest", |(_, t)| t);
        desc.annotations.insert(REF_NAME.into(), tag.into());
        desc.annotations
            .insert(CONTAINERD_NAME.into(), full.clone());
    }
    files.insert(
        "index.json".into(),
        Source::Bytes(json("index.json", &Index::new(vec![desc]))?),
    );
    files.insert("oci-layout".into(), Source::Bytes(OCI_LAYOUT.to_vec()));
    Ok(files)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn docker_archive(store: &BlobStore, top: &Descriptor, name: Option<&str>) -> Result<Files> {
    if top.media_type == MEDIA_INDEX {
        return Err(ExportError::DockerIndex);
    }
    let mut files = Files::new();
    let layers = image_blobs(store, &top.digest, &mut files)?;
    let config = read_manifest(store, &top.digest)?.config.digest;
    // docker-archive has no place for the OCI manifest itself.
    files.remove(&blob_path(&top.digest));
    let entry = DockerManifest {
        config: blob_path(&config),
        repo_tags: name.map(normalize).transpose()?.into_iter().collect(),
        layers: layers.iter().map(blob_path).collect(),
    };
    files.insert(
        "manifest.json".into(),
        Source::Bytes(json("manifest.json", &[entry])?),
    );
    Ok(files)
}

/// Every directory the files need, then the files, in archive order.
fn ordered(files: &Files) -> Vec<(ImagePath, Option<&Source>)> {
    let mut all: BTreeMap<ImagePath, Option<&Source>> = BTreeMap::new();
    for (name, src) in files {
        // Names are built above from fixed parts and hex digests.
        let Ok(path) = ImagePath::parse(name) else {
            continue;
        };
        for dir in path.ancestors() {
            all.entry(dir).or_insert(None);
        }
        all.insert(path, Some(src));
    }
    all.into_iter().collect()
}

fn write_archive(store: &BlobStore, files: &Files, mtime: u64, out: &mut dyn Write) -> Result<()> {
    let werr = |source| ExportError::Io {
        path: PathBuf::from("(archive)"),
        source,
    };
    for (path, src) in ordered(files) {
        let dir_name;
        let mut h = Header {
            name: path.as_str(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime,
            link: "",
            dev: (0, 0),
        };
        match src {
            None => {
                dir_name = format!("{}/", path.as_str());
                h.name = &dir_name;
                h.kind = Kind::Dir;
                h.mode = 0o755;
                tar::write_header(out, &h).map_err(werr)?;
            }
            Some(Source::Bytes(b)) => {
                h.size = b.len() as u64;
                tar::write_header(out, &h).map_err(werr)?;
                out.write_all(b).map_err(werr)?;
                tar::padding(out, h.size).map_err(werr)?;
            }
            Some(Source::Blob(d)) => {
                let mut f = store.open_blob(d)?;
                h.size = store.size(d)?;
                tar::write_header(out, &h).map_err(werr)?;
                let n = io::copy(&mut f, out).map_err(werr)?;
                if n != h.size {
                    return Err(werr(io::Error::other(format!(
                        "blob {d} changed size while exported"
                    ))));
                }
                tar::padding(out, h.size).map_err(werr)?;
            }
        }
    }
    tar::write_end(out).map_err(werr)
}

fn write_atomically(dest: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let ioe = |source| ExportError::Io {
        path: dest.to_path_buf(),
        source,
    };
    // A device, fifo or socket (`dest=/dev/null`, a pipe to another
    // program) is written to, never renamed over: replacing /dev/null with
    // a regular file would break every program on the machine.
    if let Ok(meta) = fs::metadata(dest) {
        if !meta.is_file() && !meta.is_dir() {
            let file = fs::OpenOptions::new().write(true).open(dest).map_err(ioe)?;
            let mut out = BufWriter::new(file);
            fill(&mut out)?;
            out.flush().map_err(ioe)?;
            return Ok(());
        }
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(ioe)?;
    let mut out = BufWriter::new(tmp.reopen().map_err(ioe)?);
    fill(&mut out)?;
    let file = out.into_inner().map_err(|e| ioe(e.into_error()))?;
    // Temp files are created 0600; an export is meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(ioe)?;
    }
    file.sync_all().map_err(ioe)?;
    tmp.persist(dest).map_err(|e| ioe(e.error))?;
    Ok(())
}

fn write_dir(store: &BlobStore, files: &Files, dest: &Path) -> Result<()> {
    for (path, src) in ordered(files) {
        let target = path.components().fold(dest.to_path_buf(), |p, c| p.join(c));
        let ioe = |source| ExportError::Io {
            path: target.clone(),
            source,
        };
        match src {
            None => fs::create_dir_all(&target).map_err(ioe)?,
            Some(Source::Bytes(b)) => {
                write_atomically(&target, |out| out.write_all(b).map_err(ioe))?
            }
            Some(Source::Blob(d)) => {
                // Blob names are content digests: an existing one is complete.
                if !target.exists() {
                    let mut f = store.open_blob(d)?;
                    write_atomically(&target, |out| io::copy(&mut f, out).map(drop).map_err(ioe))?;
                }
            }
        }
    }
    fs::create_dir_all(dest).map_err(|source| ExportError::Io {
        path: dest.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
