//! The content-addressed blob store and the local image names.
