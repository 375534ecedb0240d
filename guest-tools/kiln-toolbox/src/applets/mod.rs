//! Applets written for the toolbox itself (not from uutils); applets.txt
//! names their entry points as `crate::applets::MODULE::FN`, each a
//! `fn(Vec<OsString>) -> i32`.

pub mod awk;
pub mod command;
pub mod env;
pub mod find;
pub mod glob;
pub mod grep;
pub mod gzip;
pub mod posix_regex;
pub mod tar;
pub mod which;
pub mod xargs;
