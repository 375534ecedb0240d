//! What a cache dir holds and what needs what (`kiln cache du`; prune uses
//! the same inventory to decide what may go).
//!
//! Blobs are classified by who references them: named images (manifest ->
//! config and layers, index -> manifests, recursively), else step-cache
//! records (`<cache>/steps/<hex>.json`), else nobody.

use super::images::{ImageNames, NameError};
use super::BlobStore;
use crate::digest::Digest;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Manifests and indexes are small; bigger blobs are layers and are never
/// parsed while looking for references.
const MAX_MANIFEST_SIZE: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("cache dir {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Names(#[from] NameError),
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UsageError + '_ {
    move |source| UsageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One step-cache record file.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub path: PathBuf,
    /// When a build last used it (the file's mtime).
    pub last_used: SystemTime,
    /// Size of the record file itself.
    pub size: u64,
    /// The layer blob it names, if any (and if the record is readable).
    pub layer: Option<Digest>,
}

/// Every `<cache>/steps/<64 hex>.json`, and the remembered file digests
/// (`<64 hex>.digest`, which name no blob). Records of any version are
/// read leniently: only `layer.digest` matters here.
pub fn step_records(cache_dir: &Path) -> Result<Vec<StepRecord>, UsageError> {
    let dir = cache_dir.join("steps");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut records = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let name = entry.file_name();
        let is_record = name
            .to_str()
            .and_then(|n| {
                n.strip_suffix(".json")
                    .or_else(|| n.strip_suffix(".digest"))
            })
            .is_some_and(super::run_cache::is_key);
        if !is_record {
            continue; // temporary files of a record being written
        }
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue; // removed meanwhile
        };
        let layer = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["layer"]["digest"].as_str()?.parse().ok());
        records.push(StepRecord {
            last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            size: meta.len(),
            path,
            layer,
        });
    }
    records.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(records)
}

/// Every blob in the store with its size. Files not named by a digest are
/// left out (nothing could reference them).
pub fn all_blobs(store: &BlobStore) -> Result<BTreeMap<Digest, u64>, UsageError> {
    let dir = store.root().join("blobs").join("sha256");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut blobs = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let Some(digest) = entry
            .file_name()
            .to_str()
            .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
        else {
            continue;
        };
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() {
                blobs.insert(digest, meta.len());
            }
        }
    }
    Ok(blobs)
}

/// The blobs `roots` (manifest or index digests) need: themselves, configs,
/// layers, and the manifests of indexes, recursively. Missing or
/// unreadable blobs end that branch (the image is already broken; nothing
/// here makes it worse).
pub fn image_closure(
    store: &BlobStore,
    roots: impl IntoIterator<Item = Digest>,
) -> BTreeSet<Digest> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Digest> = roots.into_iter().collect();
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        if !store.size(&d).is_ok_and(|s| s <= MAX_MANIFEST_SIZE) {
            continue;
        }
        let Some(v) = store
            .read(&d)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let digest_of = |desc: &serde_json::Value| desc["digest"].as_str()?.parse::<Digest>().ok();
        for m in v["manifests"].as_array().into_iter().flatten() {
            todo.extend(digest_of(m)); // index entries are parsed in turn
        }
        let leaves = v["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(std::iter::once(&v["config"]));
        for leaf in leaves {
            if let Some(leaf) = digest_of(leaf) {
                seen.insert(leaf);
            }
        }
    }
    seen
}

/// The manifest digests of every named image.
pub fn named_roots(cache_dir: &Path) -> Result<BTreeSet<Digest>, UsageError> {
    Ok(ImageNames::open(cache_dir).list()?.into_values().collect())
}

/// Files and bytes under `path` (apparent sizes; symlinks not followed).
/// Entries that vanish or cannot be read are skipped.
pub fn tree_size(path: &Path) -> (u64, u64) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !meta.is_dir() {
        return (1, meta.len());
    }
    let mut total = (0, 0);
    for entry in fs::read_dir(path).into_iter().flatten().flatten() {
        let (f, b) = tree_size(&entry.path());
        total.0 += f;
        total.1 += b;
    }
    total
}

/// One line of `kiln cache du`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Category {
    /// Stable machine name (`--json`).
    pub name: &'static str,
    pub description: &'static str,
    pub count: u64,
    pub bytes: u64,
}

/// `kiln cache du`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub cache_dir: PathBuf,
    pub categories: Vec<Category>,
    pub total_bytes: u64,
}

impl Usage {
    pub fn get(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The table `kiln cache du` prints.
    pub fn table(&self) -> String {
        let mut out = format!("{:<44} {:>8} {:>12}\n", "CATEGORY", "COUNT", "SIZE");
        for c in &self.categories {
            out += &format!(
                "{:<44} {:>8} {:>12}\n",
                c.description,
                c.count,
                human_size(c.bytes)
            );
        }
        out += &format!(
            "{:<44} {:>8} {:>12}\n",
            "total",
            "",
            human_size(self.total_bytes)
        );
        out
    }
}

/// `1.5 MiB`-style sizes (binary units, like kiln's size flags).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Measures `cache_dir` by category. Read-only and lock-free: numbers may
/// be slightly off while a build runs.
pub fn disk_usage(cache_dir: &Path) -> Result<Usage, UsageError> {
    let store = BlobStore::open(cache_dir).map_err(|e| UsageError::Io {
        path: cache_dir.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    let blobs = all_blobs(&store)?;
    let image_blobs = image_closure(&store, named_roots(cache_dir)?);
    let records = step_records(cache_dir)?;
    let record_blobs: BTreeSet<Digest> = records.iter().filter_map(|r| r.layer.clone()).collect();

    let mut images = (0, 0);
    let mut steps_only = (0, 0);
    let mut other = (0, 0);
    for (d, size) in &blobs {
        let slot = if image_blobs.contains(d) {
            &mut images
        } else if record_blobs.contains(d) {
            &mut steps_only
        } else {
            &mut other
        };
        slot.0 += 1;
        slot.1 += size;
    }
    let record_files = (
        records.len() as u64,
        records.iter().map(|r| r.size).sum::<u64>(),
    );
    let run_cache = dir_children_size(&super::run_cache::run_cache_dir(cache_dir), true);
    let wasm = tree_size(&cache_dir.join("wasm-modules"));
    let tmp = dir_children_size(&cache_dir.join("tmp"), false);
    let cat = |name, description, (count, bytes): (u64, u64)| Category {
        name,
        description,
        count,
        bytes,
    };
    let categories = vec![
        cat("images", "blobs of named images", images),
        cat("step_records", "step-cache records", record_files),
        cat(
            "step_blobs",
            "blobs only step-cache records use",
            steps_only,
        ),
        cat("unreferenced_blobs", "other blobs (unreferenced)", other),
        cat("run_cache", "RUN --mount=type=cache directories", run_cache),
        cat("wasm_modules", "compiled wasm modules", wasm),
        cat(
            "temporary",
            "temporary (build scratch, partial writes)",
            tmp,
        ),
    ];
    Ok(Usage {
        cache_dir: cache_dir.to_path_buf(),
        total_bytes: categories.iter().map(|c| c.bytes).sum(),
        categories,
    })
}

/// (number of entries, bytes below) of `dir`'s children; with `dirs_only`,
/// files beside them (locks, markers) add bytes but not to the count.
fn dir_children_size(dir: &Path, dirs_only: bool) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir || !dirs_only {
            total.0 += 1;
        }
        total.1 += tree_size(&entry.path()).1;
    }
    total
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oci::config::ImageConfig;
    use crate::oci::image::{write_image, Descriptor, MEDIA_LAYER_GZIP};
    use std::time::Duration;

    /// Writes a step record naming `layer` last used `age` ago.
    pub(crate) fn fake_record(
        cache: &Path,
        name: &str,
        layer: Option<(&Digest, u64)>,
        age: Duration,
    ) -> PathBuf {
        let dir = cache.join("steps");
        fs::create_dir_all(&dir).unwrap();
        let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes()));
        let path = dir.join(format!("{key}.json"));
        let layer = layer.map(|(d, size)| {
            serde_json::json!({"digest": d, "diff_id": Digest::of(name.as_bytes()), "media_type": MEDIA_LAYER_GZIP, "size": size})
        });
        let body = serde_json::json!({"version": 1, "created_by": name, "layer": layer});
        fs::write(&path, serde_json::to_vec(&body).unwrap()).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
        path
    }

    /// Stores an image (config + `layers`) and names it `name` if given.
    pub(crate) fn fake_image(
        cache: &Path,
        name: Option<&str>,
        layers: &[&[u8]],
    ) -> (Digest, Vec<Digest>) {
        let store = BlobStore::open(cache).unwrap();
        let mut config = ImageConfig::default();
        let mut descs = Vec::new();
        for l in layers {
            let d = store.put_bytes(l).unwrap();
            config.rootfs.diff_ids.push(Digest::of(l));
            descs.push(Descriptor::new(MEDIA_LAYER_GZIP, d, l.len() as u64));
        }
        let rec = write_image(&store, &config, &descs).unwrap();
        if let Some(n) = name {
            ImageNames::open(cache)
                .set(n, &rec.manifest_digest)
                .unwrap();
        }
        let mut all = vec![rec.manifest_digest, rec.config_digest];
        all.extend(descs.into_iter().map(|d| d.digest));
        (all[0].clone(), all)
    }

    #[test]
    fn du_sorts_every_blob_into_one_category_and_totals_them() {
        let cache = tempfile::tempdir().unwrap();
        let c = cache.path();
        let (_, named) = fake_image(c, Some("app"), &[b"layer-one", b"layer-two!"]);
        let store = BlobStore::open(c).unwrap();
        let step_layer = store.put_bytes(b"a step layer").unwrap();
        let rec1 = fake_record(c, "RUN a", Some((&step_layer, 12)), Duration::ZERO);
        // A record may name a blob an image also needs: it counts as the image's.
        let rec2 = fake_record(c, "RUN b", Some((&named[2], 9)), Duration::ZERO);
        let rec3 = fake_record(c, "ENV x", None, Duration::ZERO);
        let stray = store.put_bytes(b"nobody's").unwrap();
        fs::create_dir_all(c.join("run-cache/abc")).unwrap();
        fs::write(c.join("run-cache/abc/f"), b"12345").unwrap();
        fs::create_dir_all(c.join("wasm-modules")).unwrap();
        fs::write(c.join("wasm-modules/m"), b"123").unwrap();
        fs::write(c.join("tmp/.tmpX"), b"1234567").unwrap();

        let u = disk_usage(c).unwrap();
        let sizes = |ds: &[&Digest]| ds.iter().map(|d| store.size(d).unwrap()).sum::<u64>();
        let images = u.get("images").unwrap();
        assert_eq!(images.count, 4);
        assert_eq!(images.bytes, sizes(&named.iter().collect::<Vec<_>>()));
        let records = u.get("step_records").unwrap();
        let rec_bytes: u64 = [&rec1, &rec2, &rec3]
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!((records.count, records.bytes), (3, rec_bytes));
        assert_eq!(
            u.get("step_blobs").unwrap(),
            &Category {
                name: "step_blobs",
                description: "blobs only step-cache records use",
                count: 1,
                bytes: 12
            }
        );
        let other = u.get("unreferenced_blobs").unwrap();
        assert_eq!((other.count, other.bytes), (1, sizes(&[&stray])));
        let rc = u.get("run_cache").unwrap();
        assert_eq!((rc.count, rc.bytes), (1, 5));
        assert_eq!(u.get("wasm_modules").unwrap().bytes, 3);
        assert_eq!(u.get("temporary").unwrap().bytes, 7);
        assert_eq!(
            u.total_bytes,
            u.categories.iter().map(|c| c.bytes).sum::<u64>()
        );
        assert_eq!(
            u.total_bytes,
            images.bytes + rec_bytes + 12 + other.bytes + 5 + 3 + 7
        );
        assert!(u.table().contains("blobs of named images"));
    }

    #[test]
    fn an_index_keeps_its_manifests_and_their_blobs() {
        let cache = tempfile::tempdir().unwrap();
        let (manifest, blobs) = fake_image(cache.path(), None, &[b"l"]);
        let store = BlobStore::open(cache.path()).unwrap();
        let index = crate::oci::image::Index::new(vec![Descriptor::new(
            crate::oci::image::MEDIA_MANIFEST,
            manifest,
            1,
        )]);
        let index = store
            .put_bytes(&serde_json::to_vec(&index).unwrap())
            .unwrap();
        let closure = image_closure(&store, [index.clone()]);
        let mut want: BTreeSet<Digest> = blobs.into_iter().collect();
        want.insert(index);
        assert_eq!(closure, want);
    }

    #[test]
    fn human_sizes_use_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }
}
