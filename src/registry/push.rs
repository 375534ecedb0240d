//! Pushing an image (or an image index) from kiln's blob store to an OCI
//! registry, byte for byte: blobs and manifests are sent exactly as stored,
//! so the registry's digest is kiln's digest.
//!
//! Uses `oci-client`'s raw calls (blob HEAD, upload, cross-repository
//! mount, raw manifest PUT) on a current-thread tokio runtime behind a
//! blocking API. Transient failures (connect errors, 5xx, 429) are retried.

use super::auth::{self, Credentials};
use super::client::{is_transient, Connection};
use super::reference::ImageRef;
use super::{RegistryError, RegistryOptions};
use crate::digest::Digest;
use crate::oci::image::{Descriptor, MEDIA_INDEX, MEDIA_MANIFEST};
use crate::store::{BlobStore, StoreError};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::future::Future;
use std::io::Read;
use std::time::Duration;

/// Blobs larger than this are streamed in a chunked upload rather than
/// read into memory and sent in one go.
pub const CHUNKED_THRESHOLD: u64 = 8 << 20;
/// How many times a request is tried before a transient error is reported.
const TRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid registry reference {reference:?}: {why}")]
    Reference { reference: String, why: String },
    #[error("registry {registry} is unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("authentication failed for {registry}: {detail} ({hint})")]
    Auth {
        registry: String,
        detail: String,
        hint: &'static str,
    },
    #[error("access to repository {repository} on {registry} denied: {detail}")]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("repository {repository} is not known to {registry}: {detail}")]
    NameUnknown {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("registry {registry}: {what}: {detail}")]
    Registry {
        registry: String,
        what: String,
        detail: String,
    },
    #[error(
        "registry {registry} reports digest {actual} for {reference}, but kiln pushed {expected}"
    )]
    DigestMismatch {
        registry: String,
        reference: String,
        expected: Digest,
        actual: String,
    },
    #[error("manifest {digest} in the store is not an image manifest or index: {why}")]
    BadManifest { digest: Digest, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credentials(#[from] auth::AuthError),
    #[error(transparent)]
    Connection(#[from] RegistryError),
}

type Result<T> = std::result::Result<T, PushError>;

/// How to talk to the registry.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Plain-http hosts and the Docker config credentials come from.
    pub registry: RegistryOptions,
    /// Repositories on the same registry that may already hold the blobs
    /// (e.g. the repository an image was built for): blobs are mounted from
    /// them instead of uploaded. Other registries' names are ignored.
    pub mount_from: Vec<String>,
}

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// The reference pushed to, as the registry client resolved it.
    pub reference: String,
    pub manifest_digest: Option<Digest>,
    /// Blobs uploaded, and their bytes.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Blobs the registry already had in the destination repository.
    pub skipped: usize,
    /// Blobs mounted from another repository of the same registry.
    pub mounted: usize,
    /// Manifests pushed (an index counts its image manifests too).
    pub manifests: usize,
}

impl PushReport {
    /// One line for the user.
    pub fn summary(&self) -> String {
        format!(
            "pushed {}{}: {} blobs uploaded ({} bytes), {} already present, {} mounted, {} manifests",
            self.reference,
            self.manifest_digest
                .as_ref()
                .map(|d| format!("@{d}"))
                .unwrap_or_default(),
            self.uploaded,
            self.uploaded_bytes,
            self.skipped,
            self.mounted,
            self.manifests
        )
    }
}

/// Hints for a refused push, depending on whether kiln sent credentials.
const HINT_LOGIN: &str =
    "no credentials for it in the Docker config: run `kiln login` or `docker login`";
const HINT_REFUSED: &str = "the registry refused the credentials from the Docker config";

/// Parses a destination reference (`name` alone is Docker Hub's
/// `docker.io/library/name:latest`).
pub fn parse_reference(reference: &str) -> Result<ImageRef> {
    ImageRef::parse(reference).map_err(|e| PushError::Reference {
        reference: reference.to_string(),
        why: e.to_string(),
    })
}

/// Pushes the image or index `manifest_digest` (and every blob it needs)
/// from `store` to `dest`, then checks the registry reports the same digest.
pub fn push_image(
    store: &BlobStore,
    manifest_digest: &Digest,
    dest: &str,
    opts: &PushOptions,
) -> Result<PushReport> {
    let dest = parse_reference(dest)?;
    let creds = auth::lookup(dest.registry(), &opts.registry)?;
    let hint = if creds == Credentials::Anonymous {
        HINT_LOGIN
    } else {
        HINT_REFUSED
    };
    let conn = Connection::new(dest.api_host(), creds, &opts.registry)?;
    let pusher = Pusher::new(store, &conn, &dest, opts, hint);
    conn.block_on(pusher.run(manifest_digest))
}

/// One push to one destination repository.
struct Pusher<'a> {
    store: &'a BlobStore,
    client: &'a Client,
    dest: Reference,
    registry: String,
    auth: RegistryAuth,
    auth_hint: &'static str,
    mount_from: Vec<Reference>,
    report: PushReport,
}

impl<'a> Pusher<'a> {
    fn new(
        store: &'a BlobStore,
        conn: &'a Connection,
        dest: &ImageRef,
        opts: &PushOptions,
        auth_hint: &'static str,
    ) -> Pusher<'a> {
        let mount_from = opts
            .mount_from
            .iter()
            .filter_map(|r| ImageRef::parse(r).ok())
            .filter(|r| r.api_host() == dest.api_host() && r.repository() != dest.repository())
            .map(|r| r.oci().clone())
            .collect();
        Pusher {
            store,
            client: conn.client(),
            dest: dest.oci().clone(),
            report: PushReport {
                reference: dest.to_string(),
                ..Default::default()
            },
            registry: dest.registry().to_string(),
            auth: conn.auth().clone(),
            auth_hint,
            mount_from,
        }
    }

    async fn run(mut self, digest: &Digest) -> Result<PushReport> {
        self.client
            .store_auth_if_needed(&self.registry, &self.auth)
            .await;
        let (auth, dest) = (self.auth.clone(), self.dest.clone());
        self.retry("authenticating", || {
            self.client.auth(&dest, &auth, RegistryOperation::Push)
        })
        .await?;

        let bytes = self.store.read(digest)?;
        let media_type = manifest_media_type(digest, &bytes)?;
        if media_type == MEDIA_INDEX {
            let index: crate::oci::image::Index =
                serde_json::from_slice(&bytes).map_err(|e| PushError::BadManifest {
                    digest: digest.clone(),
                    why: e.to_string(),
                })?;
            for child in &index.manifests {
                let child_bytes = self.store.read(&child.digest)?;
                let child_type = manifest_media_type(&child.digest, &child_bytes)?;
                if child_type != MEDIA_MANIFEST {
                    return Err(PushError::BadManifest {
                        digest: child.digest.clone(),
                        why: format!("nested {child_type} inside an index is not supported"),
                    });
                }
                self.push_blobs_of(&child.digest, &child_bytes).await?;
                let by_digest = self.dest.clone_with_digest(child.digest.to_string());
                self.put_manifest(&by_digest, &child.digest, child_bytes, child_type)
                    .await?;
            }
        } else {
            self.push_blobs_of(digest, &bytes).await?;
        }
        let dest = self.dest.clone();
        self.put_manifest(&dest, digest, bytes, media_type).await?;
        self.report.manifest_digest = Some(digest.clone());
        Ok(self.report)
    }

    /// Config and layers of an image manifest.
    async fn push_blobs_of(&mut self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let manifest: crate::oci::image::Manifest =
            serde_json::from_slice(bytes).map_err(|e| PushError::BadManifest {
                digest: digest.clone(),
                why: e.to_string(),
            })?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            self.push_blob(blob).await?;
        }
        Ok(())
    }

    async fn push_blob(&mut self, blob: &Descriptor) -> Result<()> {
        let digest = blob.digest.to_string();
        let dest = self.dest.clone();
        let exists = self
            .retry(&format!("checking blob {digest}"), || {
                self.client.blob_exists(&dest, &digest)
            })
            .await?;
        if exists {
            self.report.skipped += 1;
            return Ok(());
        }
        for source in &self.mount_from {
            // A registry that cannot mount answers 202 (an upload session),
            // which the client reports as an error: then upload instead.
            if self.client.mount_blob(&dest, source, &digest).await.is_ok() {
                self.report.mounted += 1;
                return Ok(());
            }
        }
        let size = self.store.size(&blob.digest)?;
        if size != blob.size {
            return Err(PushError::BadManifest {
                digest: blob.digest.clone(),
                why: format!(
                    "the descriptor says {} bytes, the stored blob has {size}",
                    blob.size
                ),
            });
        }
        if size <= CHUNKED_THRESHOLD {
            let bytes = bytes::Bytes::from(self.store.read(&blob.digest)?);
            self.retry(&format!("uploading blob {digest}"), || {
                self.client.push_blob(&dest, bytes.clone(), &digest)
            })
            .await?;
        } else {
            let path = self.store.path(&blob.digest);
            self.retry(&format!("uploading blob {digest}"), || {
                let stream = file_chunks(path.clone());
                self.client
                    .push_blob_stream(&dest, stream, &digest, Some(size))
            })
            .await?;
        }
        self.report.uploaded += 1;
        self.report.uploaded_bytes += size;
        Ok(())
    }

    /// PUTs exactly `bytes` as the manifest at `target`, then asks the
    /// registry for the digest it stored and compares.
    async fn put_manifest(
        &mut self,
        target: &Reference,
        digest: &Digest,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<()> {
        let body = bytes::Bytes::from(bytes);
        let content_type =
            http::HeaderValue::from_str(media_type).map_err(|e| PushError::BadManifest {
                digest: digest.clone(),
                why: format!("media type {media_type:?}: {e}"),
            })?;
        self.retry(&format!("pushing manifest {digest}"), || {
            self.client
                .push_manifest_raw(target, body.clone(), content_type.clone())
        })
        .await?;
        let auth = self.auth.clone();
        let reported = self
            .retry(&format!("reading back manifest {target}"), || {
                self.client.fetch_manifest_digest(target, &auth)
            })
            .await?;
        if reported != digest.to_string() {
            return Err(PushError::DigestMismatch {
                registry: self.registry.clone(),
                reference: target.whole(),
                expected: digest.clone(),
                actual: reported,
            });
        }
        self.report.manifests += 1;
        Ok(())
    }

    /// Runs `op` up to [`TRIES`] times while it fails transiently, waiting
    /// longer each time; other failures are mapped at once.
    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut wait = FIRST_BACKOFF;
        let mut tries = 0;
        loop {
            tries += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if tries < TRIES && is_transient(&e) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    return Err(classify(
                        &self.registry,
                        self.dest.repository(),
                        what,
                        self.auth_hint,
                        e,
                    ))
                }
            }
        }
    }
}

/// The media type of a stored manifest or index: its `mediaType`, or, when
/// absent, an index if it lists `manifests`.
fn manifest_media_type(digest: &Digest, bytes: &[u8]) -> Result<&'static str> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| PushError::BadManifest {
            digest: digest.clone(),
            why: e.to_string(),
        })?;
    match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(MEDIA_MANIFEST) => Ok(MEDIA_MANIFEST),
        Some(MEDIA_INDEX) => Ok(MEDIA_INDEX),
        Some(other) => Err(PushError::BadManifest {
            digest: digest.clone(),
            why: format!("unsupported media type {other:?}"),
        }),
        None if value.get("manifests").is_some() => Ok(MEDIA_INDEX),
        None if value.get("config").is_some() => Ok(MEDIA_MANIFEST),
        None => Err(PushError::BadManifest {
            digest: digest.clone(),
            why: "neither manifests nor config".into(),
        }),
    }
}

/// A stored blob as a stream of reads, for chunked uploads; read errors end
/// the stream with an error.
fn file_chunks(
    path: std::path::PathBuf,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static {
    let mut file = std::fs::File::open(&path).map_err(OciDistributionError::from);
    let mut done = false;
    futures_util::stream::iter(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let f = match &mut file {
            Ok(f) => f,
            Err(_) => {
                done = true;
                let err = std::mem::replace(&mut file, Err(OciDistributionError::PushNoDataError));
                return err.err().map(Err);
            }
        };
        let mut buf = vec![0u8; CHUNKED_THRESHOLD as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match f.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    done = true;
                    return Some(Err(e.into()));
                }
            }
        }
        if filled == 0 {
            done = true;
            return None;
        }
        buf.truncate(filled);
        Some(Ok(bytes::Bytes::from(buf)))
    }))
}

/// HTTP status of an error, where there is one.
fn status_of(e: &OciDistributionError) -> Option<u16> {
    match e {
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::RequestError(r) => r.status().map(|s| s.as_u16()),
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        _ => None,
    }
}

/// Turns a client error into what the user needs to know.
fn classify(
    registry: &str,
    repository: &str,
    what: &str,
    hint: &'static str,
    e: OciDistributionError,
) -> PushError {
    let detail = e.to_string();
    let registry = registry.to_string();
    let repository = repository.to_string();
    if let OciDistributionError::RequestError(r) = &e {
        if r.is_connect() || r.is_timeout() {
            return PushError::Unreachable {
                registry,
                detail: format!("{what}: {}", crate::error_text::of_std(r)),
            };
        }
    }
    if let OciDistributionError::AuthenticationFailure(_) = e {
        return PushError::Auth {
            registry,
            detail,
            hint,
        };
    }
    if let OciDistributionError::RegistryError { envelope, .. } = &e {
        for err in &envelope.errors {
            match err.code {
                OciErrorCode::Unauthorized => {
                    return PushError::Auth {
                        registry,
                        detail,
                        hint,
                    }
                }
                OciErrorCode::Denied => {
                    return PushError::Denied {
                        registry,
                        repository,
                        detail,
                    }
                }
                OciErrorCode::NameUnknown | OciErrorCode::NameInvalid => {
                    return PushError::NameUnknown {
                        registry,
                        repository,
                        detail,
                    }
                }
                _ => {}
            }
        }
    }
    match status_of(&e) {
        Some(401) => PushError::Auth {
            registry,
            detail,
            hint,
        },
        Some(403) => PushError::Denied {
            registry,
            repository,
            detail,
        },
        Some(404) if detail.contains("NAME_UNKNOWN") => PushError::NameUnknown {
            registry,
            repository,
            detail,
        },
        _ => PushError::Registry {
            registry,
            what: what.to_string(),
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_the_json_or_its_shape() {
        let d = Digest::of(b"x");
        assert_eq!(
            manifest_media_type(
                &d,
                br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
            )
            .unwrap(),
            MEDIA_INDEX
        );
        assert_eq!(
            manifest_media_type(&d, br#"{"schemaVersion":2,"config":{}}"#).unwrap(),
            MEDIA_MANIFEST
        );
        assert!(manifest_media_type(&d, br#"{"mediaType":"text/plain"}"#).is_err());
        assert!(manifest_media_type(&d, b"not json").is_err());
    }

    #[test]
    fn auth_and_server_errors_are_classified() {
        let e = |code, message: &str| OciDistributionError::ServerError {
            code,
            url: "http://r/v2/x".into(),
            message: message.into(),
        };
        assert!(matches!(
            classify("r", "x", "w", HINT_LOGIN, e(401, "")),
            PushError::Auth { .. }
        ));
        assert!(matches!(
            classify(
                "r",
                "x",
                "w",
                HINT_LOGIN,
                e(404, r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#)
            ),
            PushError::NameUnknown { .. }
        ));
        assert!(is_transient(&e(503, "")));
        assert!(is_transient(&e(429, "")));
        assert!(!is_transient(&e(400, "")));
        let msg = classify("r:5000", "x", "w", HINT_LOGIN, e(401, "")).to_string();
        assert!(msg.contains("authentication failed for r:5000"), "{msg}");
    }

    #[test]
    fn file_chunks_stream_the_whole_file() {
        use futures_util::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..CHUNKED_THRESHOLD as usize + 1000)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let chunks: Vec<_> = rt.block_on(file_chunks(path).collect::<Vec<_>>());
        let sizes: Vec<usize> = chunks.iter().map(|c| c.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, vec![CHUNKED_THRESHOLD as usize, 1000]);
        let joined: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        assert_eq!(joined, data);
        let missing = rt.block_on(file_chunks(dir.path().join("nope")).collect::<Vec<_>>());
        assert_eq!(missing.len(), 1);
        assert!(missing[0].is_err());
    }
}
