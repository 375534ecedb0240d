//! Reading what kiln built, without trusting kiln's own code: an OCI
//! directory layout is opened by hand (index.json → manifest → config and
//! layer blobs) and every layer is decoded with the `tar`/`flate2` crates.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::kiln_ok;

/// One tar entry of a layer, with the raw header fields the contract names.
#[derive(Debug, Clone)]
pub struct TarEntry {
    /// Path as stored, without a leading `./` or trailing `/`.
    pub path: String,
    pub entry_type: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

impl TarEntry {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
    pub fn is_dir(&self) -> bool {
        self.entry_type == tar::EntryType::Directory
    }
}

/// A built image read back from an OCI directory layout.
pub struct Image {
    pub dir: PathBuf,
    pub manifest: Value,
    pub config: Value,
    /// Compressed layer blobs, in manifest order.
    pub layer_blobs: Vec<Vec<u8>>,
}

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("unexpected digest {digest}"));
    let path = dir.join("blobs/sha256").join(hex);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read blob {}: {e}", path.display()))
}

impl Image {
    /// Opens the first manifest of the layout at `dir` (of a
    /// multi-platform image: its first platform's).
    pub fn open(dir: &Path) -> Image {
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
                .expect("index.json is JSON");
        let mut mdigest = index["manifests"][0]["digest"]
            .as_str()
            .expect("index names a manifest")
            .to_string();
        let top: Value = serde_json::from_slice(&blob(dir, &mdigest)).expect("manifest JSON");
        if let Some(first) = top["manifests"][0]["digest"].as_str() {
            mdigest = first.to_string();
        }
        Image::open_manifest(dir, &mdigest)
    }

    /// The digest index.json names: the image manifest, or the image index
    /// of a multi-platform build.
    pub fn top_digest(&self) -> String {
        let index: Value = serde_json::from_slice(
            &std::fs::read(self.dir.join("index.json")).expect("index.json"),
        )
        .expect("index.json is JSON");
        index["manifests"][0]["digest"]
            .as_str()
            .expect("digest")
            .to_string()
    }

    /// The platforms (`os/arch[/variant]`) and manifest digests of the
    /// image index that the layout at `dir` holds.
    pub fn platforms(dir: &Path) -> Vec<(String, String)> {
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
                .expect("index.json is JSON");
        let top = index["manifests"][0]["digest"]
            .as_str()
            .expect("top digest");
        let image_index: Value = serde_json::from_slice(&blob(dir, top)).expect("index JSON");
        image_index["manifests"]
            .as_array()
            .expect("the layout holds an image index")
            .iter()
            .map(|m| {
                let p = &m["platform"];
                let mut name = format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                );
                if let Some(v) = p["variant"].as_str() {
                    name = format!("{name}/{v}");
                }
                (name, m["digest"].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// Opens one platform's image of a multi-platform layout.
    pub fn open_platform(dir: &Path, platform: &str) -> Image {
        let (_, digest) = Image::platforms(dir)
            .into_iter()
            .find(|(p, _)| p == platform)
            .unwrap_or_else(|| panic!("no {platform} image in {}", dir.display()));
        Image::open_manifest(dir, &digest)
    }

    /// Opens the image manifest `mdigest` of the layout at `dir`.
    pub fn open_manifest(dir: &Path, mdigest: &str) -> Image {
        let manifest: Value = serde_json::from_slice(&blob(dir, mdigest)).expect("manifest JSON");
        let cdigest = manifest["config"]["digest"]
            .as_str()
            .expect("config digest");
        let config: Value = serde_json::from_slice(&blob(dir, cdigest)).expect("config JSON");
        let layer_blobs = manifest["layers"]
            .as_array()
            .expect("layers array")
            .iter()
            .map(|l| blob(dir, l["digest"].as_str().expect("layer digest")))
            .collect();
        Image {
            dir: dir.to_path_buf(),
            manifest,
            config,
            layer_blobs,
        }
    }

    /// `config.config` (the runtime part of the image config).
    pub fn cfg(&self) -> &Value {
        &self.config["config"]
    }

    /// The value of `NAME` in the config's Env, if set.
    pub fn env(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.cfg()["Env"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str())
            .find_map(|s| s.strip_prefix(&prefix).map(str::to_string))
    }

    pub fn history(&self) -> Vec<Value> {
        self.config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every layer, decoded.
    pub fn layers(&self) -> Vec<Vec<TarEntry>> {
        self.layer_blobs.iter().map(|b| read_layer(b)).collect()
    }

    /// The last layer, decoded.
    pub fn top_layer(&self) -> Vec<TarEntry> {
        read_layer(self.layer_blobs.last().expect("image has a layer"))
    }

    /// The union of all layers (later layers win; whiteouts not applied,
    /// kiln produces none without RUN).
    pub fn files(&self) -> BTreeMap<String, TarEntry> {
        let mut all = BTreeMap::new();
        for layer in self.layers() {
            for e in layer {
                all.insert(e.path.clone(), e);
            }
        }
        all
    }

    /// The entry at `path` (no leading slash) in the merged filesystem.
    pub fn file(&self, path: &str) -> TarEntry {
        let files = self.files();
        files.get(path).cloned().unwrap_or_else(|| {
            panic!(
                "{path} not in image; have {:?}",
                files.keys().collect::<Vec<_>>()
            )
        })
    }
}

/// Decodes a gzip-compressed layer tar.
pub fn read_layer(compressed: &[u8]) -> Vec<TarEntry> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .read_to_end(&mut raw)
        .expect("layer is gzip");
    read_tar(&raw)
}

/// Decodes an uncompressed tar.
pub fn read_tar(raw: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(raw);
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let link = entry
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned());
        let h = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry data");
        out.push(TarEntry {
            path,
            entry_type: h.entry_type(),
            mode: h.mode().expect("mode") & 0o7777,
            uid: h.uid().expect("uid"),
            gid: h.gid().expect("gid"),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            mtime: h.mtime().expect("mtime"),
            link,
            data,
        });
    }
    out
}

/// Builds `ctx` (with `extra` flags before the context) into an OCI
/// directory layout named `name` under `out`, and opens it.
pub fn build_layout(cache: &Path, ctx: &Path, out: &Path, name: &str, extra: &[&str]) -> Image {
    let output = format!("type=oci,dest={},tar=false,name={name}", out.display());
    let mut args = vec!["build", "--progress=quiet", "--output", &output];
    args.extend_from_slice(extra);
    let ctx = ctx.to_str().expect("utf-8 path");
    args.push(ctx);
    kiln_ok(cache, &args);
    Image::open(out)
}

/// A scratch directory with a context dir and a cache dir, building with a
/// fresh output dir each time.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    n: std::cell::Cell<u32>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("ctx")).expect("ctx dir");
        Fixture {
            tmp,
            n: std::cell::Cell::new(0),
        }
    }
    pub fn ctx(&self) -> PathBuf {
        self.tmp.path().join("ctx")
    }
    pub fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
    /// Writes files into the context.
    pub fn write(&self, files: &[(&str, &str)]) -> &Self {
        super::write_tree(&self.ctx(), files);
        self
    }
    /// A fresh path under the scratch dir.
    pub fn fresh(&self, stem: &str) -> PathBuf {
        let n = self.n.get() + 1;
        self.n.set(n);
        self.tmp.path().join(format!("{stem}-{n}"))
    }
    /// Builds the context with `Dockerfile` as given and `extra` flags.
    pub fn build(&self, dockerfile: &str, extra: &[&str]) -> Image {
        std::fs::write(self.ctx().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        let out = self.fresh("out");
        build_layout(&self.cache(), &self.ctx(), &out, "test:1", extra)
    }
    /// Builds and expects failure; returns stderr.
    pub fn build_err(&self, dockerfile: &str, extra: &[&str]) -> String {
        std::fs::write(self.ctx().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        let out = self.fresh("out");
        let output = format!("type=oci,dest={},tar=false", out.display());
        let mut args = vec!["build", "--progress=quiet", "--output", &output];
        args.extend_from_slice(extra);
        let ctx = self.ctx();
        args.push(ctx.to_str().expect("utf-8 path"));
        super::kiln_err(&self.cache(), &args)
    }
}
