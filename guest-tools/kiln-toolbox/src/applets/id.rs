//! id: the user kiln runs the command as (`kiln.user_get`, the step's USER)
//! or a named one, with names and groups from the image's /etc files.

use super::common::{me, scan, strings, usage, Db, Spec};
use std::ffi::OsString;

const APPLET: &str = "id";

const SPEC: Spec = Spec {
    flags: "ugGnrz",
    valued: "",
    long: &[
        ("user", 'u', false),
        ("group", 'g', false),
        ("groups", 'G', false),
        ("name", 'n', false),
        ("real", 'r', false),
        ("zero", 'z', false),
        ("help", '?', false),
    ],
};

/// Primary group first, then the groups listing the user, ascending.
fn groups(db: &Db, name: Option<&str>, gid: u32) -> Vec<u32> {
    let mut extra: Vec<u32> = db
        .groups
        .iter()
        .filter(|g| name.is_some_and(|n| g.members.iter().any(|m| m == n)))
        .map(|g| g.gid)
        .filter(|&g| g != gid)
        .collect();
    extra.sort_unstable();
    extra.dedup();
    let mut all = vec![gid];
    all.extend(extra);
    all
}

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = match strings(APPLET, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (opts, operands) = match scan(&args, &SPEC, |_| false) {
        Ok(x) => x,
        Err(e) => return usage(APPLET, &e),
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    if has('?') {
        println!("Usage: id [-u|-g|-G [-n]] [USER]");
        return 0;
    }
    let db = Db::load();
    let (uid, gid, name) = match operands.as_slice() {
        [] => {
            let (uid, gid) = me();
            (uid, gid, db.user_by_id(uid).map(|u| u.name.clone()))
        }
        [user] => match db.uid_of(user).and_then(|uid| db.user_by_id(uid)) {
            Some(u) => (u.uid, u.gid, Some(u.name.clone())),
            None => {
                eprintln!("{APPLET}: '{user}': no such user");
                return 1;
            }
        },
        _ => return usage(APPLET, &format!("extra operand '{}'", operands[1])),
    };
    let picked = ['u', 'g', 'G'].iter().filter(|&&c| has(c)).count();
    if picked > 1 {
        eprintln!("{APPLET}: cannot print \"only\" of more than one choice");
        return 1;
    }
    let names = has('n');
    let sep = if has('z') { "\0" } else { " " };
    let end = if has('z') { "\0" } else { "\n" };
    if has('u') {
        let s = if names {
            db.user_name(uid)
        } else {
            uid.to_string()
        };
        print!("{s}{end}");
    } else if has('g') {
        let s = if names {
            db.group_name(gid)
        } else {
            gid.to_string()
        };
        print!("{s}{end}");
    } else if has('G') {
        let list: Vec<String> = groups(&db, name.as_deref(), gid)
            .into_iter()
            .map(|g| {
                if names {
                    db.group_name(g)
                } else {
                    g.to_string()
                }
            })
            .collect();
        print!("{}{end}", list.join(sep));
    } else {
        if names {
            return usage(
                APPLET,
                "printing only names or real IDs requires -u, -g, or -G",
            );
        }
        let with = |id: u32, n: Option<String>| match n {
            Some(n) => format!("{id}({n})"),
            None => id.to_string(),
        };
        let gname = |g: u32| db.group_by_id(g).map(|x| x.name.clone());
        let list: Vec<String> = groups(&db, name.as_deref(), gid)
            .into_iter()
            .map(|g| with(g, gname(g)))
            .collect();
        println!(
            "uid={} gid={} groups={}",
            with(uid, name.clone()),
            with(gid, gname(gid)),
            list.join(",")
        );
    }
    0
}
