//! Deterministic OCI output: layers, config, manifest, index, layouts, archives.

pub mod config;
pub mod export;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod layout_read;
pub mod tar;
