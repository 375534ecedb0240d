//! Content-addressed blobs under `ROOT/blobs/sha256/<hex>`.
//!
//! Every blob is written to a temporary file in `ROOT/tmp` (same filesystem),
//! hashed while written, fsynced and renamed into place, so a digest name only
//! ever holds complete, verified content. An interrupted write leaves at most
//! a stray temporary file, which is never read.

use crate::digest::{Digest, HashingWriter};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    #[error("content does not match: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)")]
    Mismatch {
        expected: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A directory of blobs named by their sha256 digest.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: &Path) -> Result<BlobStore> {
        let store = BlobStore {
            root: root.to_path_buf(),
        };
        for dir in [store.blob_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Opens a stored blob for reading. (Not `open`: that name is the
    /// constructor, and Rust allows one item per name.)
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing(digest.clone()),
            _ => StoreError::Io { path, source: e },
        })
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Missing(digest.clone()))
            }
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_err(&self.path(digest)))?;
        Ok(buf)
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err(&w.tmp_path()))?;
        Ok(w.commit()?.0)
    }

    /// A writer for a new blob; its digest is known only at `commit`.
    pub fn writer(&self) -> Result<BlobWriter> {
        let dir = self.tmp_dir();
        let tmp = NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
        let file = tmp.reopen().map_err(io_err(tmp.path()))?;
        Ok(BlobWriter {
            store: self.clone(),
            tmp,
            out: HashingWriter::new(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Copies `reader` into the store, refusing it unless it hashes to
    /// `expected` and is exactly `size` bytes. A blob already present is not
    /// read again (the reader is left unconsumed).
    pub fn import_verified(
        &self,
        mut reader: impl Read,
        expected: &Digest,
        size: u64,
    ) -> Result<()> {
        if self.contains(expected) {
            return Ok(());
        }
        let mut w = self.writer()?;
        let tmp = w.tmp_path();
        io::copy(&mut reader, &mut w).map_err(io_err(&tmp))?;
        w.commit_expecting(Some((expected, size))).map(|_| ())
    }
}

/// Streams a new blob into the store; see [`BlobStore::writer`].
/// Dropping it without `commit` discards the content.
pub struct BlobWriter {
    store: BlobStore,
    tmp: NamedTempFile,
    out: HashingWriter<BufWriter<File>>,
}

impl BlobWriter {
    fn tmp_path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// Flushes, fsyncs and atomically renames the blob to its digest name.
    pub fn commit(self) -> Result<(Digest, u64)> {
        self.commit_expecting(None)
    }

    fn commit_expecting(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let BlobWriter { store, tmp, out } = self;
        let tmp_path = tmp.path().to_path_buf();
        let (buf, digest, size) = out.finish();
        let file = buf.into_inner().map_err(|e| StoreError::Io {
            path: tmp_path.clone(),
            source: e.into_error(),
        })?;
        if let Some((want, want_size)) = expected {
            if *want != digest || want_size != size {
                return Err(StoreError::Mismatch {
                    expected: want.clone(),
                    expected_size: want_size,
                    actual: digest,
                    actual_size: size,
                });
            }
        }
        file.sync_all().map_err(io_err(&tmp_path))?;
        drop(file);
        let dest = store.path(&digest);
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        sync_dir(&store.blob_dir());
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Makes a rename durable where the platform allows it (best effort: on
/// some platforms directories cannot be opened or synced).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn put_and_read_back_by_digest() {
        let (_d, s) = store();
        let d = s.put_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(s.contains(&d));
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert!(s.path(&d).ends_with(format!("blobs/sha256/{}", d.hex())));
        assert_eq!(s.size(&d).unwrap(), 5);
    }

    #[test]
    fn writer_hashes_streamed_content_and_uncommitted_writes_leave_no_blob() {
        let (_d, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"abc").unwrap();
        w.write_all(b"def").unwrap();
        let (d, n) = w.commit().unwrap();
        assert_eq!((d.clone(), n), (Digest::of(b"abcdef"), 6));
        assert_eq!(s.read(&d).unwrap(), b"abcdef");

        let mut w = s.writer().unwrap();
        w.write_all(b"never committed").unwrap();
        drop(w);
        let names: Vec<_> = fs::read_dir(s.blob_dir()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the committed blob is named");
        assert!(!s.contains(&Digest::of(b"never committed")));
    }

    #[test]
    fn import_refuses_mismatched_content_and_size() {
        let (_d, s) = store();
        let good = Digest::of(b"payload");
        let err = s.import_verified(&b"tampered"[..], &good, 7).unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        assert!(!s.contains(&good));
        let err = s.import_verified(&b"payload"[..], &good, 8).unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        s.import_verified(&b"payload"[..], &good, 7).unwrap();
        assert_eq!(s.read(&good).unwrap(), b"payload");
    }

    #[test]
    fn missing_blob_is_a_named_error() {
        let (_d, s) = store();
        let d = Digest::of(b"nope");
        let err = s.read(&d).unwrap_err();
        assert!(err.to_string().contains(&d.to_string()));
    }
}
