//! Read-only access to one repository for `kiln diff` and `kiln verify`:
//! a manifest or index exactly as the registry serves it, and blobs by
//! digest, each checked against its digest (and size, when a descriptor
//! gives one) before a caller sees it. Nothing is put in the blob store.

use super::client::{Connection, RegistryError};
use super::reference::ImageRef;
use super::RegistryOptions;
use crate::digest::Digest;
use std::io::Write;

/// Manifests and indexes larger than this are refused.
const MAX_MANIFEST: u64 = 16 << 20;

/// A connection to the repository of one reference.
pub struct Fetcher {
    reference: ImageRef,
    conn: Connection,
}

impl Fetcher {
    /// Connects (with the Docker config's credentials for the host).
    pub fn connect(reference: &ImageRef, opts: &RegistryOptions) -> Result<Fetcher, RegistryError> {
        Ok(Fetcher {
            reference: reference.clone(),
            conn: Connection::open(reference, opts)?,
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
        let bytes = super::transfer::fetch_manifest(&self.conn, &reference)?;
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
        let io = |e: std::io::Error| RegistryError::Invalid {
            registry: registry.clone(),
            what: format!("{label}: {e}"),
        };
        // Verified in a temporary file, then copied out: `out` never sees
        // bytes that turn out not to match.
        let tmp = super::transfer::download_verified(
            &self.conn,
            &self.reference,
            digest,
            size,
            "blob",
            || {
                tempfile::tempfile()
                    .map(std::io::BufWriter::new)
                    .map_err(io)
            },
        )?;
        let mut tmp = tmp.into_inner().map_err(|e| io(e.into_error()))?;
        std::io::Seek::rewind(&mut tmp).map_err(io)?;
        std::io::copy(&mut tmp, out).map_err(io)?;
        Ok(())
    }
}
