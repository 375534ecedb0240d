//! The build context: a directory filtered by `.dockerignore`.
