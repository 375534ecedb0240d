//! Read-only access to one repository for `kiln diff` and `kiln verify`:
//! a manifest or index exactly as the registry serves it, and blobs by
//! digest, each checked against its digest (and size, when a descriptor
//! gives one) before a caller sees it. Nothing is put in the blob store.

use super::auth;
use super::client::{Connection, Failure, RegistryError};
use super::reference::ImageRef;
use super::RegistryOptions;
use crate::digest::{Digest, HashingWriter};
use crate::oci::layout_read::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use futures_util::StreamExt as _;
use std::io::Write;

/// Manifests and indexes larger than this are refused.
const MAX_MANIFEST: u64 = 16 << 20;
const ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// A connection to the repository of one reference.
pub struct Fetcher {
    reference: ImageRef,
    conn: Connection,
}

impl Fetcher {
    /// Connects (with the Docker config's credentials for the host).
    pub fn connect(reference: &ImageRef, opts: &RegistryOptions) -> Result<Fetcher, RegistryError> {
        let creds = auth::lookup(reference.registry(), opts)?;
        let conn = Connection::new(reference.api_host(), creds, opts)?;
        conn.block_on(
            conn.client()
                .store_auth_if_needed(reference.api_host(), conn.auth()),
        );
        Ok(Fetcher {
            reference: reference.clone(),
            conn,
        })
    }

    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }

    fn mismatch(
        &self,
        what: String,
        want: &Digest,
        size: u64,
        got: &Digest,
        n: u64,
    ) -> RegistryError {
        RegistryError::DigestMismatch {
            registry: self.reference.registry().to_string(),
            what,
            expected: want.to_string(),
            expected_size: size,
            actual: got.to_string(),
            actual_size: n,
        }
    }

    /// The manifest or index `digest` names (the reference's own tag or
    /// digest when `None`), raw, with its digest. When a digest is known
    /// (given, or pinned by the reference) the bytes must hash to it.
    pub fn manifest(&self, digest: Option<&Digest>) -> Result<(Digest, Vec<u8>), RegistryError> {
        let want = digest.or(self.reference.digest()).cloned();
        let reference = match &want {
            Some(d) => self.reference.with_digest(d),
            None => self.reference.clone(),
        };
        let what = format!("fetching the manifest of {reference}");
        let bytes = self.conn.retry(&what, |c| {
            let (body, _) = c.block_on(c.client().pull_manifest_raw(
                reference.oci(),
                c.auth(),
                &ACCEPT,
            ))?;
            Ok(body.to_vec())
        })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::Invalid {
                registry: self.reference.registry().to_string(),
                what: format!("{reference}: manifest is larger than {MAX_MANIFEST} bytes"),
            });
        }
        let got = Digest::of(&bytes);
        if let Some(want) = want {
            if want != got {
                let n = bytes.len() as u64;
                return Err(self.mismatch(format!("manifest of {reference}"), &want, n, &got, n));
            }
        }
        Ok((got, bytes))
    }

    /// Streams blob `digest` of `size` bytes into `out`; fails (after
    /// writing at most `size` bytes) unless the content hashes to `digest`.
    pub fn blob(
        &self,
        digest: &Digest,
        size: u64,
        out: &mut dyn Write,
    ) -> Result<(), RegistryError> {
        let label = format!("blob {digest} of {}", self.reference);
        let registry = self.reference.registry().to_string();
        let digest_str = digest.to_string();
        // A retry must not append to what a failed attempt wrote: buffer
        // per attempt into a temp file, copy out once verified.
        let tmp = self.conn.retry(&format!("downloading {label}"), |c| {
            c.block_on(async {
                let mut stream = c
                    .client()
                    .pull_blob_stream(self.reference.oci(), digest_str.as_str())
                    .await?;
                let file = tempfile::tempfile().map_err(|e| {
                    Failure::Kiln(RegistryError::Invalid {
                        registry: registry.clone(),
                        what: format!("{label}: cannot create a temporary file: {e}"),
                    })
                })?;
                let mut w = HashingWriter::new(std::io::BufWriter::new(file));
                let mut received = 0u64;
                while let Some(chunk) = stream.next().await {
                    let bytes = chunk.map_err(|e| Failure::Oci(e.into()))?;
                    received += bytes.len() as u64;
                    if received > size {
                        break;
                    }
                    w.write_all(&bytes).map_err(|e| {
                        Failure::Kiln(RegistryError::Invalid {
                            registry: registry.clone(),
                            what: format!("{label}: writing a temporary file: {e}"),
                        })
                    })?;
                }
                let (buf, got, _) = w.finish();
                if received != size || got != *digest {
                    return Err(Failure::Kiln(self.mismatch(
                        label.clone(),
                        digest,
                        size,
                        &got,
                        received,
                    )));
                }
                buf.into_inner().map_err(|e| {
                    Failure::Kiln(RegistryError::Invalid {
                        registry: registry.clone(),
                        what: format!("{label}: writing a temporary file: {}", e.error()),
                    })
                })
            })
        })?;
        let mut tmp = tmp;
        let io = |e: std::io::Error| RegistryError::Invalid {
            registry: registry.clone(),
            what: format!("{label}: copying out: {e}"),
        };
        std::io::Seek::rewind(&mut tmp).map_err(io)?;
        std::io::copy(&mut tmp, out).map_err(io)?;
        Ok(())
    }
}
