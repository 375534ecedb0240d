//! Opening an image from any reference `kiln diff` and `kiln verify`
//! accept, into one in-memory model ([`Image`]):
//!
//! - `oci-layout://PATH[:TAG|@DIGEST]`: an OCI layout directory or an OCI
//!   layout tar (`--output type=oci`);
//! - a plain path to either of those, or to a docker archive (`docker save`,
//!   `--output type=docker`: `manifest.json` naming config and layers);
//! - `docker://REF`, or a bare reference whose first component is a
//!   registry host (`localhost:5000/app:1`);
//! - a name in the local store (`kiln images`) or a manifest digest in it.
//!
//! Every manifest, index and config is checked against its digest when
//! read; layers are checked while they are streamed ([`Image::open_layer`]).

use crate::digest::{Digest, HashingWriter};
use crate::oci::layout_read::{
    parse_layout_ref, Selector, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::registry::fetch::Fetcher;
use crate::registry::{ImageRef, RegistryOptions};
use crate::store::images::ImageNames;
use crate::store::BlobStore;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Manifests, indexes and configs larger than this are refused.
const MAX_JSON: u64 = 16 << 20;
const MAX_DEPTH: usize = 8;
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, thiserror::Error)]
#[error("{reference}: {what}")]
pub struct SourceError {
    pub reference: String,
    pub what: String,
}

type Result<T> = std::result::Result<T, SourceError>;

/// What kind of thing a reference named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    OciLayout,
    OciArchive,
    DockerArchive,
    Store,
    Registry,
}

/// A blob read whole and verified.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// One layer as its manifest describes it.
#[derive(Clone, Debug)]
pub struct LayerRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// Where the bytes are: a blob by digest, or a docker archive member.
    loc: Loc,
}

#[derive(Clone, Debug)]
enum Loc {
    Digest,
    Path(String),
}

/// The image of one platform.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    /// `os/arch[/variant]`: from the index entry, else from the config.
    pub platform: String,
    /// `None` for docker archives, which keep no manifest.
    pub manifest: Option<Blob>,
    pub manifest_media_type: Option<String>,
    pub config: Blob,
    pub layers: Vec<LayerRef>,
}

/// An opened image: what the reference names, for every platform it has.
pub struct Image {
    /// The reference as the user wrote it.
    pub reference: String,
    pub kind: SourceKind,
    /// The digest of what the reference names (index or manifest); `None`
    /// for docker archives and for layouts listing several platforms in
    /// `index.json` itself.
    pub digest: Option<Digest>,
    /// The top index, when the reference names one.
    pub index: Option<Blob>,
    pub images: Vec<PlatformImage>,
    blobs: Box<dyn Blobs>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("reference", &self.reference)
            .field("kind", &self.kind)
            .field("digest", &self.digest)
            .field("images", &self.images)
            .finish()
    }
}

/// Where to look for names and how to reach registries.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// kiln's cache dir, for local image names; `None` skips the store.
    pub cache_dir: Option<PathBuf>,
    pub registry: RegistryOptions,
}

/// Where an image's files come from.
trait Blobs {
    /// A file of the layout or archive by relative path (`index.json`,
    /// `blobs/sha256/HEX`); `None` when there is no such file.
    fn open_path(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>>;
    fn open_digest(&self, d: &Digest, _size: u64) -> io::Result<Box<dyn Read + '_>> {
        self.open_path(&blob_name(d))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("blob {d} is missing")))
    }
    /// A manifest or index by digest (registries serve them apart).
    fn manifest(&self, d: &Digest, size: u64) -> io::Result<Box<dyn Read + '_>> {
        self.open_digest(d, size)
    }
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

struct Dir(PathBuf);

impl Blobs for Dir {
    fn open_path(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        match File::open(self.0.join(path)) {
            Ok(f) => Ok(Some(Box::new(io::BufReader::new(f)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A tar archive indexed by member name: (data offset, size).
struct Archive {
    path: PathBuf,
    members: BTreeMap<String, (u64, u64)>,
}

impl Archive {
    fn open(path: &Path) -> io::Result<Archive> {
        let mut members = BTreeMap::new();
        let mut ar = tar::Archive::new(io::BufReader::new(File::open(path)?));
        for entry in ar.entries()? {
            let entry = entry?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = name.trim_start_matches("./").to_string();
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Archive {
            path: path.to_path_buf(),
            members,
        })
    }
}

impl Blobs for Archive {
    fn open_path(&self, path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        let Some(&(offset, size)) = self.members.get(path) else {
            return Ok(None);
        };
        // Each reader gets its own handle, so several may be open at once.
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Some(Box::new(io::BufReader::new(f).take(size))))
    }
}

struct Store(BlobStore);

impl Blobs for Store {
    fn open_path(&self, _path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        Ok(None)
    }
    fn open_digest(&self, d: &Digest, _size: u64) -> io::Result<Box<dyn Read + '_>> {
        let f = self.0.open_blob(d).map_err(io::Error::other)?;
        Ok(Box::new(io::BufReader::new(f)))
    }
}

/// A registry repository; blobs are downloaded (and verified) on demand
/// into a temporary file.
struct Registry(Fetcher);

impl Blobs for Registry {
    fn open_path(&self, _path: &str) -> io::Result<Option<Box<dyn Read + '_>>> {
        Ok(None)
    }
    fn open_digest(&self, d: &Digest, size: u64) -> io::Result<Box<dyn Read + '_>> {
        let mut f = tempfile::tempfile()?;
        self.0.blob(d, size, &mut f).map_err(io::Error::other)?;
        f.rewind()?;
        Ok(Box::new(io::BufReader::new(f)))
    }
    fn manifest(&self, d: &Digest, _size: u64) -> io::Result<Box<dyn Read + '_>> {
        let (_, bytes) = self.0.manifest(Some(d)).map_err(io::Error::other)?;
        Ok(Box::new(io::Cursor::new(bytes)))
    }
}

/// Opens `reference` (see the module doc for the forms).
pub fn open(reference: &str, opts: &OpenOptions) -> Result<Image> {
    let err = |what: String| SourceError {
        reference: reference.to_string(),
        what,
    };
    if let Some(rest) = reference.strip_prefix("docker://") {
        return open_registry(reference, rest, opts);
    }
    for prefix in ["docker-archive:", "oci-archive:"] {
        if let Some(rest) = reference.strip_prefix(prefix) {
            return open_path(reference, Path::new(rest), None);
        }
    }
    if let Some(rest) = reference.strip_prefix("oci-layout://") {
        let (path, sel) = parse_layout_ref(rest).map_err(|e| err(e.to_string()))?;
        if !path.exists() {
            return Err(err(format!("no OCI layout at {}", path.display())));
        }
        return open_path(reference, &path, sel);
    }
    let whole = Path::new(reference);
    if whole.exists() {
        return open_path(reference, whole, None);
    }
    if let Ok((path, Some(sel))) = parse_layout_ref(reference) {
        if path.exists() {
            return open_path(reference, &path, Some(sel));
        }
    }
    if let Some(cache) = &opts.cache_dir {
        if let Some(digest) = store_lookup(reference, cache).map_err(err)? {
            return open_store(reference, cache, digest);
        }
    }
    if let Ok(r) = ImageRef::parse(reference) {
        let first = reference.split('/').next().unwrap_or_default();
        if reference.contains('/') && (first.contains(['.', ':']) || first == "localhost") {
            return open_registry(reference, reference, opts);
        }
        let _ = r;
    }
    Err(err(
        "no such file or directory, no image of that name in the local store (see `kiln images`), \
         and not a registry reference (write docker://REF for registry images)"
            .into(),
    ))
}

/// A local image name or manifest digest, if the store has it.
fn store_lookup(reference: &str, cache: &Path) -> std::result::Result<Option<Digest>, String> {
    if let Ok(d) = reference.parse::<Digest>() {
        let store = BlobStore::open(cache).map_err(|e| e.to_string())?;
        return Ok(store.contains(&d).then_some(d));
    }
    let Ok(name) = crate::store::images::normalize(reference) else {
        return Ok(None);
    };
    ImageNames::open(cache)
        .get(&name)
        .map_err(|e| e.to_string())
}

fn open_path(reference: &str, path: &Path, sel: Option<Selector>) -> Result<Image> {
    let err = |what: String| SourceError {
        reference: reference.to_string(),
        what,
    };
    if path.is_dir() {
        if !path.join("oci-layout").is_file() {
            return Err(err(format!(
                "{} is a directory but not an OCI layout (it has no oci-layout file)",
                path.display()
            )));
        }
        let blobs = Box::new(Dir(path.to_path_buf()));
        return Reader::new(reference, blobs).layout(SourceKind::OciLayout, sel.as_ref());
    }
    let ar = Archive::open(path).map_err(|e| {
        err(format!(
            "cannot read {} as a tar archive: {e}",
            path.display()
        ))
    })?;
    if ar.members.contains_key("index.json") && ar.members.contains_key("oci-layout") {
        return Reader::new(reference, Box::new(ar)).layout(SourceKind::OciArchive, sel.as_ref());
    }
    if ar.members.contains_key("manifest.json") {
        if sel.is_some() {
            return Err(err(
                "a docker archive has no tags or digests to select".into()
            ));
        }
        return Reader::new(reference, Box::new(ar)).docker_archive();
    }
    Err(err(format!(
        "{} is neither an OCI layout archive (index.json + oci-layout) nor a docker archive (manifest.json)",
        path.display()
    )))
}

fn open_store(reference: &str, cache: &Path, digest: Digest) -> Result<Image> {
    let store = BlobStore::open(cache).map_err(|e| SourceError {
        reference: reference.into(),
        what: e.to_string(),
    })?;
    let size = store.size(&digest).map_err(|e| SourceError {
        reference: reference.into(),
        what: e.to_string(),
    })?;
    let r = Reader::new(reference, Box::new(Store(store)));
    r.top(SourceKind::Store, digest, size, None)
}

/// Opens the store's image with manifest `digest` (a build's result).
pub fn open_store_digest(cache: &Path, digest: &Digest) -> Result<Image> {
    open_store(&format!("rebuilt image {digest}"), cache, digest.clone())
}

fn open_registry(reference: &str, name: &str, opts: &OpenOptions) -> Result<Image> {
    let err = |what: String| SourceError {
        reference: reference.to_string(),
        what,
    };
    let r = ImageRef::parse(name).map_err(|e| err(e.to_string()))?;
    let fetcher = Fetcher::connect(&r, &opts.registry).map_err(|e| err(e.to_string()))?;
    let (digest, bytes) = fetcher.manifest(None).map_err(|e| err(e.to_string()))?;
    let size = bytes.len() as u64;
    let reader = Reader::new(reference, Box::new(Registry(fetcher)));
    reader.top(SourceKind::Registry, digest, size, Some(bytes))
}

/// The fields of a descriptor kiln needs.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Value>,
}

struct Reader {
    reference: String,
    blobs: Box<dyn Blobs>,
}

impl Reader {
    fn new(reference: &str, blobs: Box<dyn Blobs>) -> Reader {
        Reader {
            reference: reference.to_string(),
            blobs,
        }
    }

    fn err(&self, what: String) -> SourceError {
        SourceError {
            reference: self.reference.clone(),
            what,
        }
    }

    fn parse_json<T: serde::de::DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| self.err(format!("{what} is not valid: {e}")))
    }

    fn digest(&self, s: &str, what: &str) -> Result<Digest> {
        s.parse()
            .map_err(|_| self.err(format!("{what}: unsupported or invalid digest {s:?}")))
    }

    fn read_limited(&self, mut r: impl Read, what: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut r)
            .take(MAX_JSON + 1)
            .read_to_end(&mut out)
            .map_err(|e| self.err(format!("reading {what}: {e}")))?;
        if out.len() as u64 > MAX_JSON {
            return Err(self.err(format!("{what} is larger than {MAX_JSON} bytes")));
        }
        Ok(out)
    }

    /// A small blob by digest, verified; `manifest` picks the endpoint.
    fn small(&self, d: &Digest, size: u64, what: &str, manifest: bool) -> Result<Blob> {
        if size > MAX_JSON {
            return Err(self.err(format!("{what} {d}: descriptor size {size} is too large")));
        }
        let opened = if manifest {
            self.blobs.manifest(d, size)
        } else {
            self.blobs.open_digest(d, size)
        };
        let r = opened.map_err(|e| self.err(format!("cannot read {what} {d}: {e}")))?;
        let bytes = self.read_limited(r, &format!("{what} {d}"))?;
        let got = Digest::of(&bytes);
        if got != *d || bytes.len() as u64 != size {
            return Err(self.err(format!(
                "{what} {d} does not match its descriptor: it has {} bytes (descriptor: {size}) and hashes to {got}",
                bytes.len()
            )));
        }
        Ok(Blob { digest: got, bytes })
    }

    fn finish(
        self,
        kind: SourceKind,
        digest: Option<Digest>,
        index: Option<Blob>,
        images: Vec<PlatformImage>,
    ) -> Result<Image> {
        if images.is_empty() {
            return Err(self.err("the image has no manifests".into()));
        }
        Ok(Image {
            reference: self.reference,
            kind,
            digest,
            index,
            images,
            blobs: self.blobs,
        })
    }

    /// An OCI layout (directory or tar): `index.json`, then the selection.
    fn layout(self, kind: SourceKind, sel: Option<&Selector>) -> Result<Image> {
        let index_file = self
            .blobs
            .open_path("index.json")
            .map_err(|e| self.err(format!("cannot read index.json: {e}")))?
            .ok_or_else(|| self.err("the OCI layout has no index.json".into()))?;
        let bytes = self.read_limited(index_file, "index.json")?;
        #[derive(serde::Deserialize)]
        struct IndexJson {
            #[serde(default)]
            manifests: Vec<Desc>,
        }
        let index: IndexJson = self.parse_json(&bytes, "index.json")?;
        let chosen: Vec<Desc> = match sel {
            None => index.manifests.clone(),
            Some(Selector::Tag(t)) => index
                .manifests
                .iter()
                .filter(|d| tag_matches(d, t))
                .cloned()
                .collect(),
            Some(Selector::Digest(d)) => {
                if let Some(found) = index.manifests.iter().find(|m| m.digest == d.to_string()) {
                    vec![found.clone()]
                } else {
                    return self.top(kind, d.clone(), u64::MAX, None);
                }
            }
        };
        match (chosen.as_slice(), sel) {
            ([], Some(Selector::Tag(t))) => {
                let tags: Vec<&str> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
                    .collect();
                Err(self.err(format!(
                    "no image tagged {t:?} in the layout (tags: {})",
                    if tags.is_empty() {
                        "none".to_string()
                    } else {
                        tags.join(", ")
                    }
                )))
            }
            ([], _) => Err(self.err("index.json lists no images".into())),
            ([one], _) => {
                let d = self.digest(&one.digest, "index.json entry")?;
                self.top(kind, d, one.size, None)
            }
            (many, _) if many.iter().all(|d| d.platform.is_some()) => {
                let mut images = Vec::new();
                for d in many {
                    self.follow(d, 1, &mut images)?;
                }
                self.finish(kind, None, None, images)
            }
            (many, _) => Err(self.err(format!(
                "index.json lists {} images; choose one with :TAG or @DIGEST",
                many.len()
            ))),
        }
    }

    /// Reads the manifest or index `digest` names as the top of the image.
    /// `size` is `u64::MAX` when no descriptor gives it; `bytes` when the
    /// caller already fetched (and verified) it.
    fn top(
        self,
        kind: SourceKind,
        digest: Digest,
        size: u64,
        bytes: Option<Vec<u8>>,
    ) -> Result<Image> {
        let blob = match bytes {
            Some(bytes) => Blob {
                digest: digest.clone(),
                bytes,
            },
            None if size == u64::MAX => {
                let r = self
                    .blobs
                    .manifest(&digest, 0)
                    .map_err(|e| self.err(format!("no manifest or index {digest}: {e}")))?;
                let bytes = self.read_limited(r, &format!("manifest {digest}"))?;
                let size = bytes.len() as u64;
                self.check(&digest, size, &bytes, "manifest")?;
                Blob {
                    digest: digest.clone(),
                    bytes,
                }
            }
            None => self.small(&digest, size, "manifest", true)?,
        };
        let mut images = Vec::new();
        let mt = media_type(&self.parse_json::<Value>(&blob.bytes, "manifest")?);
        if mt == OCI_INDEX || mt == DOCKER_LIST {
            self.index_entries(&blob, 1, &mut images)?;
            self.finish(kind, Some(digest), Some(blob), images)
        } else {
            let img = self.manifest(blob, None)?;
            images.push(img);
            self.finish(kind, Some(digest), None, images)
        }
    }

    fn check(&self, d: &Digest, size: u64, bytes: &[u8], what: &str) -> Result<()> {
        let got = Digest::of(bytes);
        if got != *d || bytes.len() as u64 != size {
            return Err(self.err(format!(
                "{what} {d} does not match its digest (it hashes to {got})"
            )));
        }
        Ok(())
    }

    fn index_entries(
        &self,
        index: &Blob,
        depth: usize,
        out: &mut Vec<PlatformImage>,
    ) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct IndexJson {
            #[serde(default)]
            manifests: Vec<Desc>,
        }
        let parsed: IndexJson =
            self.parse_json(&index.bytes, &format!("index {}", index.digest))?;
        for d in &parsed.manifests {
            self.follow(d, depth, out)?;
        }
        Ok(())
    }

    fn follow(&self, d: &Desc, depth: usize, out: &mut Vec<PlatformImage>) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("indexes nested deeper than {MAX_DEPTH}")));
        }
        // Attestation manifests (BuildKit's unknown/unknown) are no image.
        let platform = d.platform.as_ref().map(platform_string);
        if platform.as_deref() == Some("unknown/unknown") {
            return Ok(());
        }
        let digest = self.digest(&d.digest, "index entry")?;
        let blob = self.small(&digest, d.size, "manifest", true)?;
        let mt = d.media_type.clone().unwrap_or_else(|| {
            media_type(&serde_json::from_slice(&blob.bytes).unwrap_or_default())
        });
        if mt == OCI_INDEX || mt == DOCKER_LIST {
            return self.index_entries(&blob, depth + 1, out);
        }
        out.push(self.manifest(blob, platform)?);
        Ok(())
    }

    fn manifest(&self, blob: Blob, platform: Option<String>) -> Result<PlatformImage> {
        let v: Value = self.parse_json(&blob.bytes, &format!("manifest {}", blob.digest))?;
        let mt = media_type(&v);
        if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST {
            return Err(self.err(format!("{} has unsupported media type {mt:?}", blob.digest)));
        }
        #[derive(serde::Deserialize)]
        struct ManifestJson {
            config: Desc,
            #[serde(default)]
            layers: Vec<Desc>,
        }
        let m: ManifestJson = self.parse_json(&blob.bytes, &format!("manifest {}", blob.digest))?;
        let cd = self.digest(&m.config.digest, "config descriptor")?;
        let config = self.small(&cd, m.config.size, "config", false)?;
        let mut layers = Vec::new();
        for l in &m.layers {
            layers.push(LayerRef {
                digest: self.digest(&l.digest, "layer descriptor")?,
                size: l.size,
                media_type: l.media_type.clone().unwrap_or_default(),
                loc: Loc::Digest,
            });
        }
        let platform = match platform {
            Some(p) => p,
            None => platform_string(&self.parse_json(&config.bytes, "config")?),
        };
        Ok(PlatformImage {
            platform,
            manifest: Some(blob),
            manifest_media_type: Some(mt),
            config,
            layers,
        })
    }

    /// `manifest.json` of `docker save` / `--output type=docker`: config
    /// and layer files by path. There is no manifest; blobs named
    /// `blobs/sha256/HEX` are checked against HEX, others are hashed.
    fn docker_archive(self) -> Result<Image> {
        let f = self
            .blobs
            .open_path("manifest.json")
            .map_err(|e| self.err(format!("cannot read manifest.json: {e}")))?
            .ok_or_else(|| self.err("no manifest.json".into()))?;
        let bytes = self.read_limited(f, "manifest.json")?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = self.parse_json(&bytes, "manifest.json")?;
        let [entry] = entries.as_slice() else {
            return Err(self.err(format!(
                "manifest.json lists {} images; kiln diffs archives of one image",
                entries.len()
            )));
        };
        let (cdigest, cbytes, _) = self.hash_member(&entry.config, true)?;
        let mut layers = Vec::new();
        for path in &entry.layers {
            let (digest, _, size) = self.hash_member(path, false)?;
            layers.push(LayerRef {
                digest,
                size,
                media_type: String::new(),
                loc: Loc::Path(path.clone()),
            });
        }
        let config: Value = self.parse_json(&cbytes, "config")?;
        let img = PlatformImage {
            platform: platform_string(&config),
            manifest: None,
            manifest_media_type: None,
            config: Blob {
                digest: cdigest,
                bytes: cbytes,
            },
            layers,
        };
        self.finish(SourceKind::DockerArchive, None, None, vec![img])
    }

    /// Hashes archive member `path`; keeps its bytes when `keep`. A member
    /// named after a digest must hash to it.
    fn hash_member(&self, path: &str, keep: bool) -> Result<(Digest, Vec<u8>, u64)> {
        let mut r = self
            .blobs
            .open_path(path)
            .map_err(|e| self.err(format!("cannot read {path}: {e}")))?
            .ok_or_else(|| {
                self.err(format!(
                    "manifest.json names {path}, which the archive lacks"
                ))
            })?;
        let mut kept = Vec::new();
        let mut w = HashingWriter::new(io::sink());
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = r
                .read(&mut buf)
                .map_err(|e| self.err(format!("reading {path}: {e}")))?;
            if n == 0 {
                break;
            }
            io::Write::write_all(&mut w, &buf[..n]).map_err(|e| self.err(e.to_string()))?;
            if keep {
                if kept.len() as u64 + n as u64 > MAX_JSON {
                    return Err(self.err(format!("{path} is larger than {MAX_JSON} bytes")));
                }
                kept.extend_from_slice(&buf[..n]);
            }
        }
        let (_, got, len) = w.finish();
        let named = path
            .strip_prefix("blobs/sha256/")
            .or_else(|| path.strip_suffix(".json"))
            .map(|hex| format!("sha256:{hex}"));
        if let Some(Ok(want)) = named.map(|s| s.parse::<Digest>()) {
            if want != got {
                return Err(self.err(format!(
                    "{path} does not match its name: it hashes to {got}"
                )));
            }
        }
        Ok((got, kept, len))
    }
}

fn tag_matches(d: &Desc, tag: &str) -> bool {
    [REF_NAME, CONTAINERD_NAME]
        .iter()
        .filter_map(|k| d.annotations.get(*k))
        .any(|name| {
            name == tag || {
                let last = name.rsplit('/').next().unwrap_or(name);
                last.rsplit_once(':').is_some_and(|(_, t)| t == tag)
            }
        })
}

fn media_type(v: &Value) -> String {
    match v.get("mediaType").and_then(Value::as_str) {
        Some(mt) => mt.to_string(),
        None if v.get("manifests").is_some() => OCI_INDEX.into(),
        None if v.get("config").is_some() => OCI_MANIFEST.into(),
        None => String::new(),
    }
}

/// `os/arch[/variant]` of an index entry's platform or a config.
fn platform_string(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let mut p = format!("{}/{}", s("os"), s("architecture"));
    if !s("variant").is_empty() {
        p = format!("{p}/{}", s("variant"));
    }
    p
}

/// A layer stream that fails at its end unless the bytes hash to the
/// layer's digest and have its size.
struct Verifying<'a> {
    inner: Box<dyn Read + 'a>,
    hasher: Option<HashingWriter<io::Sink>>,
    want: Digest,
    size: Option<u64>,
    what: String,
    /// A mismatch, reported again on every later read.
    failed: Option<String>,
}

impl Read for Verifying<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, f.clone()));
        }
        let n = self.inner.read(buf)?;
        let Some(h) = self.hasher.as_mut() else {
            return Ok(n);
        };
        if n > 0 {
            io::Write::write_all(h, &buf[..n])?;
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let h = self.hasher.take().expect("checked above");
        let (_, got, len) = h.finish();
        if got != self.want || self.size.is_some_and(|s| s != len) {
            let msg = format!(
                "{} does not match its descriptor: {len} bytes hashing to {got}",
                self.what
            );
            self.failed = Some(msg.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        Ok(0)
    }
}

impl Image {
    /// The compressed bytes of `layer`, verified as they are read: the
    /// stream ends in an error if they do not match the descriptor.
    pub fn open_layer(&self, layer: &LayerRef) -> Result<impl Read + '_> {
        let err = |what: String| SourceError {
            reference: self.reference.clone(),
            what,
        };
        let inner = match &layer.loc {
            Loc::Digest => self.blobs.open_digest(&layer.digest, layer.size),
            Loc::Path(p) => self
                .blobs
                .open_path(p)
                .and_then(|o| o.ok_or_else(|| io::Error::other(format!("{p} is missing")))),
        }
        .map_err(|e| err(format!("cannot read layer {}: {e}", layer.digest)))?;
        Ok(Verifying {
            inner,
            hasher: Some(HashingWriter::new(io::sink())),
            want: layer.digest.clone(),
            size: Some(layer.size),
            what: format!("{}: layer {}", self.reference, layer.digest),
            failed: None,
        })
    }
}
