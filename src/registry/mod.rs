//! Registries: pulling base images (`FROM alpine`, `COPY --from=image`,
//! `--build-context NAME=docker-image://REF`) over the OCI distribution API,
//! credentials from Docker's config file, and `kiln login` / `kiln logout`.
//!
//! The transport is oci-client (reqwest + rustls) on a small current-thread
//! tokio runtime, so the rest of kiln stays synchronous. kiln never trusts a
//! registry: every manifest, index, config and layer is checked against its
//! digest and size before it is stored or used.

pub mod auth;
pub mod cache;
pub mod client;
pub mod fetch;
pub mod login;
pub mod pull;
pub mod push;
pub mod reference;
pub mod transfer;

pub use client::RegistryError;
pub use pull::{pull_image, PulledImage, PulledLayer};
pub use reference::ImageRef;

use std::path::PathBuf;

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Hosts (`HOST` or `HOST:PORT`) that may be reached over plain HTTP
    /// besides loopback ones (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// The Docker config file to read credentials from; `None` means
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}
