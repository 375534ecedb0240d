//! chgrp: chown's group-only form.

use std::ffi::OsString;

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    super::chown::run("chgrp", args)
}
