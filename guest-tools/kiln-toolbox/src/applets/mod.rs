//! Applets written for the toolbox itself (not from uutils); applets.txt
//! names their entry points as `crate::applets::MODULE::FN`.

pub mod awk;
pub mod gzip;
pub mod tar;
