//! chown: sets kiln's owner and group (WASI has none) through
//! `kiln.owner_set`; names come from the image's /etc/passwd and /etc/group.

use super::common::{scan, set_owner, strings, usage, walk, why, Db, Info, Spec};
use std::ffi::OsString;

const SPEC: Spec = Spec {
    flags: "RcfvhHLP",
    valued: "",
    long: &[
        ("recursive", 'R', false),
        ("changes", 'c', false),
        ("silent", 'f', false),
        ("quiet", 'f', false),
        ("verbose", 'v', false),
        ("no-dereference", 'h', false),
        ("dereference", 'D', false),
        ("reference", 'r', true),
        ("help", '?', false),
    ],
};

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    run("chown", args)
}

/// What to set: uid and/or gid.
type Ids = (Option<u32>, Option<u32>);

/// `OWNER`, `OWNER:GROUP`, `OWNER:` (the owner's login group), `:GROUP`.
fn parse_spec(db: &Db, spec: &str) -> Result<Ids, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = if user.is_empty() {
        None
    } else {
        Some(
            db.uid_of(user)
                .ok_or_else(|| format!("invalid user: '{spec}'"))?,
        )
    };
    let gid = match group {
        None => None,
        Some("") if user.is_empty() => None,
        Some("") => Some(
            db.user(user)
                .map(|u| u.gid)
                .ok_or_else(|| format!("invalid spec: '{spec}'"))?,
        ),
        Some(g) => Some(
            db.gid_of(g)
                .ok_or_else(|| format!("invalid group: '{spec}'"))?,
        ),
    };
    Ok((uid, gid))
}

/// chown and chgrp (`applet` says which reads its first operand how).
pub fn run(applet: &str, args: impl Iterator<Item = OsString>) -> i32 {
    let args = match strings(applet, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (opts, mut operands) = match scan(&args, &SPEC, |_| false) {
        Ok(x) => x,
        Err(e) => return usage(applet, &e),
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    if has('?') {
        if applet == "chgrp" {
            println!("Usage: chgrp [-R] [-h] [-c|-v] [-f] GROUP FILE...");
        } else {
            println!("Usage: chown [-R] [-h] [-c|-v] [-f] [OWNER][:[GROUP]] FILE...");
        }
        return 0;
    }
    let db = Db::load();
    let reference = opts
        .iter()
        .find(|(o, _)| *o == 'r')
        .and_then(|(_, v)| v.clone());
    let ids: Ids = match reference {
        Some(r) => match Info::of(&r, true) {
            Ok(i) if applet == "chgrp" => (None, Some(i.owner.gid)),
            Ok(i) => (Some(i.owner.uid), Some(i.owner.gid)),
            Err(e) => {
                eprintln!("{applet}: failed to get attributes of '{r}': {}", why(&e));
                return 1;
            }
        },
        None => {
            if operands.is_empty() {
                return usage(applet, "missing operand");
            }
            let spec = operands.remove(0);
            let parsed = if applet == "chgrp" {
                db.gid_of(&spec)
                    .map(|g| (None, Some(g)))
                    .ok_or_else(|| format!("invalid group: '{spec}'"))
            } else {
                parse_spec(&db, &spec)
            };
            match parsed {
                Ok(ids) => ids,
                Err(e) => {
                    eprintln!("{applet}: {e}");
                    return 1;
                }
            }
        }
    };
    if operands.is_empty() {
        return usage(
            applet,
            &format!("missing operand after '{}'", args.last().map_or("", |s| s)),
        );
    }
    let recursive = has('R');
    // -R acts on symlinks themselves (GNU's -P default); so does -h.
    let follow = !(has('h') || recursive) || has('D');
    let how = Report {
        applet,
        verbose: has('v'),
        changes: has('c'),
        quiet: has('f'),
        db: &db,
    };
    let mut ok = true;
    for file in &operands {
        ok &= if recursive {
            walk(file, &mut |p, _| how.change(p, follow && p == file, ids))
        } else {
            how.change(file, follow, ids)
        };
    }
    i32::from(!ok)
}

struct Report<'a> {
    applet: &'a str,
    verbose: bool,
    changes: bool,
    quiet: bool,
    db: &'a Db,
}

impl Report<'_> {
    fn change(&self, path: &str, follow: bool, (uid, gid): Ids) -> bool {
        let applet = self.applet;
        let old = match Info::of(path, follow) {
            Ok(i) => i.owner,
            Err(e) => {
                if !self.quiet {
                    eprintln!("{applet}: cannot access '{path}': {}", why(&e));
                }
                return false;
            }
        };
        if let Err(e) = set_owner(path, follow, None, uid, gid) {
            if !self.quiet {
                eprintln!("{applet}: changing ownership of '{path}': {}", why(&e));
            }
            return false;
        }
        let (nu, ng) = (uid.unwrap_or(old.uid), gid.unwrap_or(old.gid));
        let changed = (nu, ng) != (old.uid, old.gid);
        if self.verbose || (self.changes && changed) {
            let db = self.db;
            let show = |u: u32, g: u32| match (applet, uid) {
                ("chgrp", _) | (_, None) => db.group_name(g),
                _ if gid.is_none() => db.user_name(u),
                _ => format!("{}:{}", db.user_name(u), db.group_name(g)),
            };
            if changed {
                println!(
                    "changed ownership of '{path}' from {} to {}",
                    show(old.uid, old.gid),
                    show(nu, ng)
                );
            } else {
                println!("ownership of '{path}' retained as {}", show(nu, ng));
            }
        }
        true
    }
}
