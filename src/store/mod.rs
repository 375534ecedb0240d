//! The content-addressed blob store and the local image names.

mod blobs;
pub mod images;
pub mod steps;

pub use blobs::{BlobStore, BlobWriter, StoreError};
pub use images::{ImageNames, NameError};
pub use steps::{CachedLayer, StepCache, StepRecord};
