//! kiln: builds OCI images from Dockerfiles without root, a daemon or a VM,
//! bit-identically on every host.
//!
//! Data flows one way: Dockerfile + context -> AST ([`dockerfile`]) -> stages
//! and steps ([`plan`]) -> execution ([`exec`]) over filesystem states
//! ([`snapshot`]) -> deterministic layers and image blobs ([`oci`]) kept in a
//! content-addressed store ([`store`]) -> exporters. [`cli`] is the front door.

pub mod cli;
pub mod context;
pub mod digest;
pub mod dockerfile;
pub mod error_text;
pub mod exec;
pub mod oci;
pub mod plan;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod verify;
