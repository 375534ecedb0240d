//! whoami: the name of the user kiln runs the command as.

use super::common::{me, Db};
use std::ffi::OsString;

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = match super::common::strings("whoami", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(extra) = args.first() {
        eprintln!("whoami: extra operand '{}'", extra);
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
