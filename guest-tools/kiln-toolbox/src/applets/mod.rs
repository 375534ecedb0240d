//! kiln's own applets: what uutils cannot do under WASI because p1 has no
//! file modes or owners (kiln keeps them; see `kiln_sys`), and wrappers of
//! uutils applets that need them.

pub mod chgrp;
pub mod chmod;
pub mod chown;
mod common;
pub mod cp;
pub mod id;
pub mod install;
pub mod ls;
mod modes;
pub mod stat;
mod time;
pub mod users;
pub mod whoami;
