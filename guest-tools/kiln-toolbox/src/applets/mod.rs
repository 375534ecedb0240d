//! kiln's own applets: what uutils cannot do under WASI because p1 has no
//! file modes or owners (kiln keeps them; see `kiln_sys`), wrappers of
//! uutils applets that need them, and the text, search and archive tools
//! uutils does not have (awk, grep, find, xargs, env, which, tar, gzip), and
//! replacements for uutils applets that need threads or exec (dd, nice).
//! Each applet module has a `uumain` like the uutils crates.

pub mod awk;
pub mod chgrp;
pub mod chmod;
pub mod chown;
pub mod command;
mod common;
pub mod cp;
pub mod dd;
pub mod du;
pub mod env;
pub mod find;
pub mod glob;
pub mod grep;
pub mod gzip;
pub mod hostname;
pub mod id;
pub mod install;
pub mod ls;
mod modes;
pub mod nice;
pub mod nohup;
pub mod posix_regex;
pub mod stat;
pub mod tar;
mod time;
pub mod users;
pub mod which;
pub mod whoami;
pub mod xargs;
