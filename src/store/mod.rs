//! The content-addressed blob store and the local image names.

mod blobs;
pub mod images;

pub use blobs::{BlobStore, BlobWriter, StoreError};
pub use images::{ImageNames, NameError};
