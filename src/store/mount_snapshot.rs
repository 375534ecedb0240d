//! RUN cache-mount directories as blobs (gzip'd tar), so a registry cache
//! can carry them to another machine (`--cache-to ...,mounts=true`).
//!
//! A snapshot is not part of any image or cache key, so its bytes need not
//! be reproducible; entries are still written in sorted order so the same
//! directory gives the same blob. Unpacking goes through the `tar` crate's
//! `unpack_in`, which refuses entries that would land outside the target
//! (absolute paths, `..`, writes through symlinks), into a fresh directory
//! that is renamed into place only when complete.

use super::BlobStore;
use crate::digest::Digest;
use anyhow::{Context as _, Result};
use std::path::Path;

/// Packs `dir` into a new blob; returns its digest and size.
pub fn pack(dir: &Path, store: &BlobStore) -> Result<(Digest, u64)> {
    // Never follow a symlink in the cache dir's place of a directory: it
    // would carry whatever it points to off to a registry.
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!(
            "cache mount directory {} is not a directory (a symlink?): not packed",
            dir.display()
        );
    }
    let writer = store.writer()?;
    let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    append_sorted(&mut tar, dir, Path::new(""))?;
    let gz = tar
        .into_inner()
        .context("finishing the cache-mount archive")?;
    let writer = gz.finish().context("finishing the cache-mount archive")?;
    Ok(writer.commit()?)
}

fn append_sorted<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    names.sort();
    for name in names {
        let host = dir.join(&name);
        let inner = rel.join(&name);
        let meta = std::fs::symlink_metadata(&host)
            .with_context(|| format!("reading {}", host.display()))?;
        if meta.is_dir() {
            tar.append_dir(&inner, &host)
                .with_context(|| format!("archiving {}", host.display()))?;
            append_sorted(tar, &host, &inner)?;
        } else if meta.is_file() || meta.file_type().is_symlink() {
            tar.append_path_with_name(&host, &inner)
                .with_context(|| format!("archiving {}", host.display()))?;
        }
        // Sockets, fifos and devices are not carried.
    }
    Ok(())
}

/// Unpacks snapshot `digest` from `store` into `dest`, which must not
/// exist yet.
pub fn unpack(store: &BlobStore, digest: &Digest, dest: &Path) -> Result<()> {
    let parent = dest
        .parent()
        .context("cache mount directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let blob = store.open_blob(digest)?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(blob)));
    archive.set_preserve_permissions(true);
    for entry in archive
        .entries()
        .with_context(|| format!("reading cache-mount snapshot {digest}"))?
    {
        let mut entry = entry.with_context(|| format!("reading cache-mount snapshot {digest}"))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        entry
            .unpack_in(tmp.path())
            .with_context(|| format!("unpacking cache-mount snapshot {digest}"))?;
    }
    let done = tmp.keep();
    std::fs::rename(&done, dest).with_context(|| {
        let _ = std::fs::remove_dir_all(&done);
        format!("moving the cache mount into {}", dest.display())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_round_trips_and_escapes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&tmp.path().join("store")).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("sub/deep")).unwrap();
        std::fs::write(src.join("a.txt"), "alpha").unwrap();
        std::fs::write(src.join("sub/deep/b.bin"), [0u8, 1, 2]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("../a.txt", src.join("sub/link")).unwrap();
        let (digest, size) = pack(&src, &store).unwrap();
        assert_eq!(store.size(&digest).unwrap(), size);
        assert_eq!(pack(&src, &store).unwrap().0, digest, "same dir, same blob");

        let dest = tmp.path().join("dest");
        unpack(&store, &digest, &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("a.txt")).unwrap(),
            "alpha"
        );
        assert_eq!(
            std::fs::read(dest.join("sub/deep/b.bin")).unwrap(),
            [0, 1, 2]
        );
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(dest.join("sub/link")).unwrap(),
            Path::new("../a.txt")
        );

        // A hostile snapshot: a symlink out of the directory, then a file
        // written through it. Nothing may appear outside `dest`.
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let mut raw = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        raw.append_link(&mut h, "esc", &outside).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        raw.append_data(&mut h, "esc/pwned", &b"evil"[..]).unwrap();
        let tar_bytes = raw.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
        let hostile = store.put_bytes(&gz.finish().unwrap()).unwrap();
        let dest2 = tmp.path().join("dest2");
        assert!(unpack(&store, &hostile, &dest2).is_err());
        assert!(!outside.join("pwned").exists());
        assert!(!dest2.exists(), "a failed unpack leaves nothing in place");
    }

    /// A cache home replaced by a symlink to a host directory is refused,
    /// not packed with the host directory's files.
    #[cfg(unix)]
    #[test]
    fn a_symlinked_cache_home_is_not_packed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&tmp.path().join("store")).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("host-file"), "host").unwrap();
        let home = tmp.path().join("home");
        std::os::unix::fs::symlink(&outside, &home).unwrap();
        let err = pack(&home, &store).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
