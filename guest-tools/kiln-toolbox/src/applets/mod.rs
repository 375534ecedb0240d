//! Applets written for kiln itself (not from uutils): each module has a
//! `uumain` like the uutils crates, so applets.txt names them the same way
//! (`crate::applets::NAME`).

pub mod command;
pub mod env;
pub mod find;
pub mod glob;
pub mod grep;
pub mod posix_regex;
pub mod which;
pub mod xargs;
