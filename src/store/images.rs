//! Local image names: `name:tag` -> manifest digest, like a local image
//! store's tags (`kiln build -t`).
//!
//! Kept in one JSON file (`ROOT/images.json`) rewritten atomically (a temp
//! file renamed over it), so readers never see half a file. Writers take an
//! exclusive lock on `images.json.lock` around read-modify-write, so two
//! processes tagging at the same instant both keep their update.

use crate::digest::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("invalid image name {0:?}: {1}")]
    Invalid(String, &'static str),
    #[error("image names file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("image names file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Normalises a user-given image reference to `name:tag`: a missing tag
/// becomes `latest`. Registry hosts with ports (`host:5000/app`) are kept.
/// Digest references (`@sha256:...`) and upper-case repositories are
/// rejected, as Docker rejects them for `-t`.
pub fn normalize(name: &str) -> Result<String, NameError> {
    let bad = |why| Err(NameError::Invalid(name.to_string(), why));
    if name.is_empty() {
        return bad("empty");
    }
    if name.contains('@') {
        return bad("digest references cannot be used as tags");
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].find(':') {
        Some(i) => (&name[..last_slash + i], &name[last_slash + i + 1..]),
        None => (name, "latest"),
    };
    if repo.is_empty() || repo.starts_with('/') || repo.ends_with('/') || repo.contains("//") {
        return bad("empty repository component");
    }
    let (host, path) = match repo.split_once('/') {
        Some((h, p)) if h.contains(['.', ':']) || h == "localhost" => (Some(h), p),
        _ => (None, repo),
    };
    if let Some(h) = host {
        if !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
        {
            return bad("invalid registry host");
        }
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
    {
        return bad("repository must be lower-case letters, digits, '.', '_', '-' and '/'");
    }
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !tag_ok {
        return bad(
            "tag must be 1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-'",
        );
    }
    Ok(format!("{repo}:{tag}"))
}

/// The name -> manifest digest map of one store.
#[derive(Clone, Debug)]
pub struct ImageNames {
    file: PathBuf,
}

impl ImageNames {
    /// The names kept beside the blob store rooted at `root`.
    pub fn open(root: &Path) -> ImageNames {
        ImageNames {
            file: root.join("images.json"),
        }
    }

    /// Every name with its manifest digest, sorted by name.
    pub fn list(&self) -> Result<BTreeMap<String, Digest>, NameError> {
        match fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| NameError::Corrupt {
                path: self.file.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(NameError::Io {
                path: self.file.clone(),
                source,
            }),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<Digest>, NameError> {
        let name = normalize(name)?;
        Ok(self.list()?.remove(&name))
    }

    /// Points `name` at `digest`, replacing any previous target.
    pub fn set(&self, name: &str, digest: &Digest) -> Result<(), NameError> {
        let name = normalize(name)?;
        let _lock = self.lock()?;
        let mut all = self.list()?;
        all.insert(name, digest.clone());
        self.save(&all)
    }

    /// Held while the file is read and rewritten; released on drop (and by
    /// the OS if the process dies).
    fn lock(&self) -> Result<fs::File, NameError> {
        let path = self.file.with_extension("json.lock");
        let io_err = |source| NameError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let file = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        file.lock().map_err(io_err)?;
        Ok(file)
    }

    fn save(&self, all: &BTreeMap<String, Digest>) -> Result<(), NameError> {
        let io_err = |source| NameError::Io {
            path: self.file.clone(),
            source,
        };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        let bytes = serde_json::to_vec_pretty(all).map_err(|source| NameError::Corrupt {
            path: self.file.clone(),
            source,
        })?;
        tmp.write_all(&bytes).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(&self.file).map_err(|e| io_err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_tagging_loses_no_name() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let root = dir.path();
                s.spawn(move || {
                    let names = ImageNames::open(root);
                    for i in 0..10 {
                        names
                            .set(&format!("img{t}-{i}"), &Digest::of(b"x"))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(ImageNames::open(dir.path()).list().unwrap().len(), 40);
    }

    #[test]
    fn names_are_normalised_with_latest() {
        assert_eq!(normalize("foo").unwrap(), "foo:latest");
        assert_eq!(normalize("foo:1.2").unwrap(), "foo:1.2");
        assert_eq!(
            normalize("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(normalize("reg.io:5000/a:v1").unwrap(), "reg.io:5000/a:v1");
        for bad in ["", "Foo", "foo:", "foo@sha256:00", "a//b", "foo:-x", "/a"] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn set_get_list_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let names = ImageNames::open(dir.path());
        assert!(names.list().unwrap().is_empty());
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        names.set("app", &a).unwrap();
        names.set("app:v2", &b).unwrap();
        names.set("app:latest", &b).unwrap();
        let again = ImageNames::open(dir.path());
        assert_eq!(again.get("app").unwrap(), Some(b.clone()));
        assert_eq!(again.get("app:v2").unwrap(), Some(b));
        assert_eq!(again.get("other").unwrap(), None);
        let listed: Vec<_> = again.list().unwrap().into_keys().collect();
        assert_eq!(listed, ["app:latest", "app:v2"]);
    }
}
