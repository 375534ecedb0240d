//! whoami: the name of the user kiln runs the command as.

use super::common::{me, Db};
use std::ffi::OsString;

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    if let Some(extra) = args.skip(1).next() {
        eprintln!("whoami: extra operand '{}'", extra.to_string_lossy());
        return 1;
    }
    let (uid, _) = me();
    match Db::load().user_by_id(uid) {
        Some(u) => {
            println!("{}", u.name);
            0
        }
        None => {
            eprintln!("whoami: cannot find name for user ID {uid}");
            1
        }
    }
}
