//! The content-addressed blob store, the step cache, the local image names,
//! and keeping a shared cache dir in order (locks, usage, pruning).

mod blobs;
pub mod images;
pub mod lock;
pub mod mount_snapshot;
pub mod prune;
pub mod run_cache;
pub mod steps;
pub mod usage;

pub use blobs::{BlobStore, BlobWriter, StoreError};
pub use images::{ImageNames, NameError};
pub use lock::{sweep_stale_scratch, CacheLock, ScratchDir};
pub use steps::{CachedLayer, StepCache, StepRecord};
