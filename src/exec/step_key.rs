//! Step cache keys: a digest of everything that decides what a step
//! produces, and nothing else.
//!
//! A key starts from what every step of the build shares (kiln's cache
//! format, the toolbox the RUN steps call, platform, SOURCE_DATE_EPOCH) and
//! the parent state as the diff ids of its layers: content digests, so a
//! step that re-ran and wrote the same layer as before gives the next step
//! the same key (early cutoff). Then come the step's own inputs, each
//! named and length-prefixed so no two different inputs hash alike. Files
//! are keyed by what reaches the layer: path, kind, mode, owner, content,
//! link target and mtime clamped to SOURCE_DATE_EPOCH, never the host path
//! or the unclamped mtime.

use super::copy::{follow, CopyError};
use crate::digest::Digest;
use crate::snapshot::{EntryKind, ImagePath, SourceTree};
use sha2::{Digest as _, Sha256};
use std::io::Read;

/// Changes whenever kiln starts producing different bytes for the same
/// inputs (a fix in the layer writer, the RUN environment, ...): older
/// records then simply stop matching.
const CACHE_FORMAT: &str = "kiln step cache v2";

/// A key being built.
pub struct StepKey {
    hash: Sha256,
}

impl StepKey {
    /// A key for a step of `kind` (`RUN`, `COPY`, ...) over the layers
    /// `diff_ids`, in a build for `platform` with `source_date_epoch`.
    pub fn new(kind: &str, diff_ids: &[String], platform: &str, source_date_epoch: u64) -> StepKey {
        let mut key = StepKey {
            hash: Sha256::new(),
        };
        key.str("format", CACHE_FORMAT);
        key.str("kiln", env!("CARGO_PKG_VERSION"));
        key.str("toolbox", kiln_runtime::toolbox::TOOLBOX_SHA256);
        key.str("platform", platform);
        key.str("source-date-epoch", &source_date_epoch.to_string());
        key.str("kind", kind);
        key.list("parent", diff_ids);
        key
    }

    /// Adds a named field.
    pub fn bytes(&mut self, name: &str, value: &[u8]) -> &mut Self {
        for part in [name.as_bytes(), value] {
            self.hash.update((part.len() as u64).to_le_bytes());
            self.hash.update(part);
        }
        self
    }

    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.bytes(name, value.as_bytes())
    }

    pub fn opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(name, v),
            None => self.bytes(name, &[0xff]),
        }
    }

    /// A list, with its length, so `["a b"]` and `["a", "b"]` differ.
    pub fn list<S: AsRef<str>>(&mut self, name: &str, values: &[S]) -> &mut Self {
        self.str(name, &values.len().to_string());
        for v in values {
            self.str(name, v.as_ref());
        }
        self
    }

    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.hash.finalize().into())
    }
}

/// The digest of the files under `roots` of `tree` as a copy would see
/// them: a root that is a symlink is hashed as the link and as what it
/// points to (COPY follows it); inside directories links are hashed as
/// links. Missing roots hash as absent (the step itself reports them).
pub fn tree_digest(
    tree: &dyn SourceTree,
    roots: &[ImagePath],
    source_date_epoch: u64,
) -> Result<Digest, CopyError> {
    let mut walk = TreeHash {
        tree,
        sde: source_date_epoch,
        hash: Sha256::new(),
    };
    for root in roots {
        walk.entry(root)?;
        if let Some(target) = follow(tree, root)? {
            walk.hash.update(b"followed\0");
            walk.entry(&target.path)?;
        }
    }
    Ok(Digest::from_sha256(walk.hash.finalize().into()))
}

struct TreeHash<'t> {
    tree: &'t dyn SourceTree,
    sde: u64,
    hash: Sha256,
}

impl TreeHash<'_> {
    fn field(&mut self, bytes: &[u8]) {
        self.hash.update((bytes.len() as u64).to_le_bytes());
        self.hash.update(bytes);
    }

    fn entry(&mut self, path: &ImagePath) -> Result<(), CopyError> {
        let io = |source| CopyError::Io {
            path: path.to_string(),
            source,
        };
        let Some(entry) = self.tree.lstat(path).map_err(io)? else {
            self.field(path.as_str().as_bytes());
            self.field(b"absent");
            return Ok(());
        };
        self.field(path.as_str().as_bytes());
        let m = entry.meta;
        let meta = format!("{:o} {} {} {}", m.mode, m.uid, m.gid, m.mtime.min(self.sde));
        self.field(meta.as_bytes());
        match &entry.kind {
            EntryKind::Dir => {
                self.field(b"dir");
                for name in self.tree.read_dir(path).map_err(io)? {
                    self.entry(&path.join(&name))?;
                }
                self.field(b"end of dir");
            }
            EntryKind::File { content, .. } => {
                self.field(b"file");
                let mut file = Sha256::new();
                let mut reader = content.open().map_err(io)?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = reader.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    file.update(&buf[..n]);
                }
                let digest: [u8; 32] = file.finalize().into();
                self.field(&digest);
            }
            EntryKind::Symlink { target } => {
                self.field(b"symlink");
                self.field(target.as_bytes());
            }
            EntryKind::Hardlink { target } => {
                self.field(b"hardlink");
                self.field(target.as_str().as_bytes());
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                self.field(format!("device {major} {minor}").as_bytes());
            }
            EntryKind::Fifo => self.field(b"fifo"),
            EntryKind::Whiteout | EntryKind::Opaque => self.field(b"whiteout"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;

    fn digest_of(dir: &std::path::Path, roots: &[&str], sde: u64) -> Digest {
        let ctx = Context::open(dir, None).unwrap();
        let roots: Vec<ImagePath> = roots
            .iter()
            .map(|r| ImagePath::resolve(&ImagePath::root(), r))
            .collect();
        tree_digest(&ctx, &roots, sde).unwrap()
    }

    fn set_mtime(path: &std::path::Path, secs: u64) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn tree_digest_follows_content_not_unclamped_mtime() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.txt"), "one").unwrap();
        let before = digest_of(dir.path(), &["src"], 100);

        // Touching the file (mtime above SOURCE_DATE_EPOCH either way) changes nothing.
        set_mtime(&dir.path().join("src/a.txt"), 5_000_000);
        assert_eq!(digest_of(dir.path(), &["src"], 100), before);

        // Content does.
        std::fs::write(dir.path().join("src/a.txt"), "two").unwrap();
        let changed = digest_of(dir.path(), &["src"], 100);
        assert_ne!(changed, before);

        // An mtime below SOURCE_DATE_EPOCH reaches the layer, so it counts.
        set_mtime(&dir.path().join("src/a.txt"), 50);
        assert_ne!(digest_of(dir.path(), &["src"], 100), changed);

        // A new file counts; files outside the roots do not.
        let now = digest_of(dir.path(), &["src"], 100);
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        assert_eq!(digest_of(dir.path(), &["src"], 100), now);
        std::fs::write(dir.path().join("src/b.txt"), "x").unwrap();
        assert_ne!(digest_of(dir.path(), &["src"], 100), now);
    }

    #[test]
    fn exec_bit_and_names_count() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.sh"), "echo").unwrap();
        let plain = digest_of(dir.path(), &["run.sh"], 0);
        std::fs::set_permissions(
            dir.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(digest_of(dir.path(), &["run.sh"], 0), plain);
        std::fs::rename(dir.path().join("run.sh"), dir.path().join("go.sh")).unwrap();
        assert_ne!(
            digest_of(dir.path(), &["go.sh"], 0),
            digest_of(dir.path(), &["run.sh"], 0)
        );
    }

    #[test]
    fn key_fields_are_unambiguous() {
        let base = || StepKey::new("RUN", &["sha256:aa".into()], "linux/amd64", 0);
        let mut a = base();
        a.list("argv", &["a b"]);
        let mut b = base();
        b.list("argv", &["a", "b"]);
        assert_ne!(a.finish(), b.finish());
        let mut c = base();
        c.opt("user", None);
        let mut d = base();
        d.opt("user", Some(""));
        assert_ne!(c.finish(), d.finish());
        let other_parent = StepKey::new("RUN", &["sha256:ab".into()], "linux/amd64", 0);
        assert_ne!(base().finish(), other_parent.finish());
    }
}
