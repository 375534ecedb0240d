//! Moving one blob from a registry into kiln's store, verified: the bytes
//! must hash to the descriptor's digest and have its size, or nothing is
//! stored. Shared by image pulls and the registry build cache.

use super::client::{Connection, Failure, RegistryError};
use super::reference::ImageRef;
use crate::digest::{Digest, HashingWriter};
use crate::oci::layout_read::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::store::BlobStore;
use futures_util::StreamExt as _;
use std::io::Write;

/// The media types kiln reads a manifest or index as.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// The manifest or index `reference` names, raw, as the registry serves it
/// (the caller checks it against a digest where one is known).
pub fn fetch_manifest(conn: &Connection, reference: &ImageRef) -> Result<Vec<u8>, RegistryError> {
    conn.retry(&format!("fetching the manifest of {reference}"), |c| {
        let (body, _) = c.block_on(c.client().pull_manifest_raw(
            reference.oci(),
            c.auth(),
            &MANIFEST_TYPES,
        ))?;
        Ok(body.to_vec())
    })
}

/// Streams blob `d` of `reference`'s repository into `store` (unless it is
/// there), refusing content that does not hash to `d` or is not `size`
/// bytes. `what` names the blob in messages ("layer", "cache blob").
pub fn download_blob(
    conn: &Connection,
    reference: &ImageRef,
    d: &Digest,
    size: u64,
    what: &str,
    store: &BlobStore,
) -> Result<(), RegistryError> {
    if store.contains(d) {
        return Ok(());
    }
    let writer = download_verified(conn, reference, d, size, what, || {
        store.writer().map_err(RegistryError::from)
    })?;
    writer.commit()?;
    Ok(())
}

/// Streams blob `d` into a fresh sink from `new_sink` (one per attempt, so
/// a retry never appends to a failed attempt's bytes) and returns the sink
/// once the content is exactly `size` bytes hashing to `d`.
pub fn download_verified<W: Write>(
    conn: &Connection,
    reference: &ImageRef,
    d: &Digest,
    size: u64,
    what: &str,
    new_sink: impl Fn() -> Result<W, RegistryError>,
) -> Result<W, RegistryError> {
    let registry = reference.registry().to_string();
    let label = format!("{what} {d} of {reference}");
    let digest_str = d.to_string();
    conn.retry(&format!("downloading {what} {d}"), |c| {
        c.block_on(async {
            let mut stream = c
                .client()
                .pull_blob_stream(reference.oci(), digest_str.as_str())
                .await?;
            let mut out = HashingWriter::new(new_sink()?);
            let mut received = 0u64;
            let mut stream_error = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        received += bytes.len() as u64;
                        if received > size {
                            break;
                        }
                        out.write_all(&bytes).map_err(|e| RegistryError::Invalid {
                            registry: registry.clone(),
                            what: format!("writing {label}: {e}"),
                        })?;
                    }
                    Err(e) => {
                        stream_error = Some(e);
                        break;
                    }
                }
            }
            let (writer, got, written) = out.finish();
            let complete = received == size;
            if received > size || (complete && got != *d) {
                // oci-client's own check may also have fired; kiln's
                // verdict names the blob and the registry.
                return Err(Failure::Kiln(RegistryError::DigestMismatch {
                    registry: registry.clone(),
                    what: label.clone(),
                    expected: d.to_string(),
                    expected_size: size,
                    actual: if received > size {
                        "content longer than its descriptor".into()
                    } else {
                        got.to_string()
                    },
                    actual_size: received,
                }));
            }
            if let Some(e) = stream_error {
                return Err(Failure::Oci(e.into()));
            }
            if !complete {
                return Err(Failure::Kiln(RegistryError::DigestMismatch {
                    registry: registry.clone(),
                    what: label.clone(),
                    expected: d.to_string(),
                    expected_size: size,
                    actual: got.to_string(),
                    actual_size: written,
                }));
            }
            Ok::<W, Failure>(writer)
        })
    })
}
