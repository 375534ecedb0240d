//! Deterministic OCI output: layers, config, manifest, index, layouts, archives.

pub mod config;
pub mod export;
pub mod layout_read;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod tar;
