//! The build context: a directory filtered by `.dockerignore`.

pub mod dockerignore;
pub mod glob;
mod tree;

pub use dockerignore::{IgnoreError, PatternMatcher};
pub use tree::Context;
