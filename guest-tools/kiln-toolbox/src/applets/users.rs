//! adduser, addgroup (busybox and Debian flags), useradd and groupadd
//! (the common shadow flags): append to /etc/passwd and /etc/group (and
//! /etc/shadow, /etc/gshadow when the image has them) and make the home
//! directory, owned by the new user through `kiln.owner_set`.

use super::common::{scan, set_owner, strings, usage, walk, why, Db, Info, Opt, Spec};
use std::ffi::OsString;
use std::io::Write as _;

/// How ids are picked: lowest free from the bottom of the range (busybox,
/// Debian adduser) or after the highest used / highest free system id
/// (shadow's useradd and groupadd).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    LowestFree,
    Shadow,
}

fn pick_id(used: &[u32], system: bool, pick: Pick, prefer: Option<u32>) -> Option<u32> {
    let free = |id: &u32| !used.contains(id);
    if let Some(p) = prefer.filter(free) {
        let range = if system { 100..=999 } else { 1000..=59999 };
        if range.contains(&p) {
            return Some(p);
        }
    }
    match (pick, system) {
        (Pick::LowestFree, true) => (100..=999).find(free),
        (Pick::LowestFree, false) => (1000..=59999).find(free),
        (Pick::Shadow, true) => (100..=999).rev().find(free),
        (Pick::Shadow, false) => {
            let top = used
                .iter()
                .copied()
                .filter(|u| (1000..=59999).contains(u))
                .max();
            top.map_or(Some(1000), |t| Some(t + 1).filter(|n| *n <= 59999))
                .or_else(|| (1000..=59999).find(free))
        }
    }
}

/// Names as shadow accepts them by default.
fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && n.len() <= 32
        && n.trim_end_matches('$').chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' || c == '.'
        })
}

fn append(path: &str, line: &str) -> std::io::Result<()> {
    let old = std::fs::read(path).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    if !old.is_empty() && !old.ends_with(b"\n") {
        f.write_all(b"\n")?;
    }
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")
}

/// Days since 1970 by the step's clock (shadow's "last change").
fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// Appends a group; returns its gid.
fn add_group(
    applet: &str,
    db: &Db,
    name: &str,
    gid: Option<u32>,
    system: bool,
    pick: Pick,
) -> Result<u32, String> {
    if !valid_name(name) {
        return Err(format!("{applet}: invalid group name '{name}'"));
    }
    if db.group(name).is_some() {
        return Err(format!("{applet}: group '{name}' already exists"));
    }
    let used: Vec<u32> = db.groups.iter().map(|g| g.gid).collect();
    let gid = match gid {
        Some(g) if used.contains(&g) => return Err(format!("{applet}: GID '{g}' already exists")),
        Some(g) => g,
        None => pick_id(&used, system, pick, None).ok_or(format!("{applet}: no free GID"))?,
    };
    append("/etc/group", &format!("{name}:x:{gid}:"))
        .map_err(|e| format!("{applet}: /etc/group: {}", why(&e)))?;
    if std::path::Path::new("/etc/gshadow").exists() {
        append("/etc/gshadow", &format!("{name}:!::"))
            .map_err(|e| format!("{applet}: /etc/gshadow: {}", why(&e)))?;
    }
    Ok(gid)
}

/// Adds `user` to the member list of `group`.
fn add_member(applet: &str, group: &str, user: &str) -> Result<(), String> {
    let text = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("{applet}: /etc/group: {}", why(&e)))?;
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.first() != Some(&group) || f.len() < 4 {
                return l.to_owned();
            }
            found = true;
            let mut members: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
            if !members.contains(&user) {
                members.push(user);
            }
            format!("{}:{}:{}:{}", f[0], f[1], f[2], members.join(","))
        })
        .collect();
    if !found {
        return Err(format!("{applet}: group '{group}' does not exist"));
    }
    std::fs::write("/etc/group", lines.join("\n") + "\n")
        .map_err(|e| format!("{applet}: /etc/group: {}", why(&e)))
}

/// A user to append.
struct NewUser {
    name: String,
    uid: u32,
    gid: u32,
    gecos: String,
    home: String,
    shell: String,
    make_home: bool,
}

fn add_user(applet: &str, u: &NewUser) -> Result<(), String> {
    let NewUser {
        name,
        uid,
        gid,
        gecos,
        home,
        shell,
        ..
    } = u;
    append(
        "/etc/passwd",
        &format!("{name}:x:{uid}:{gid}:{gecos}:{home}:{shell}"),
    )
    .map_err(|e| format!("{applet}: /etc/passwd: {}", why(&e)))?;
    if std::path::Path::new("/etc/shadow").exists() {
        append("/etc/shadow", &format!("{name}:!:{}:0:99999:7:::", today()))
            .map_err(|e| format!("{applet}: /etc/shadow: {}", why(&e)))?;
    }
    if u.make_home && !std::path::Path::new(home).exists() {
        std::fs::create_dir_all(home)
            .map_err(|e| format!("{applet}: cannot create {home}: {}", why(&e)))?;
        let own = |p: &str| set_owner(p, false, None, Some(*uid), Some(*gid));
        set_owner(home, false, Some(0o755), Some(*uid), Some(*gid))
            .map_err(|e| format!("{applet}: {home}: {}", why(&e)))?;
        if std::path::Path::new("/etc/skel").is_dir() {
            copy_skel("/etc/skel", home, &own);
        }
    }
    Ok(())
}

/// Copies /etc/skel into a new home, owned by the user, modes kept.
fn copy_skel(skel: &str, home: &str, own: &dyn Fn(&str) -> std::io::Result<()>) {
    walk(skel, &mut |p, is_dir| {
        let Some(rel) = p.strip_prefix(skel).filter(|r| !r.is_empty()) else {
            return true;
        };
        let to = format!("{home}{rel}");
        let made = if is_dir {
            std::fs::create_dir_all(&to)
        } else if let Ok(t) = std::fs::read_link(p) {
            #[allow(deprecated)] // the portable name; WASI has no std::os::unix
            std::fs::soft_link(t, &to)
        } else {
            std::fs::read(p).and_then(|b| std::fs::write(&to, b))
        };
        if made.is_ok() {
            if let Ok(i) = Info::of(p, false) {
                if !i.is_symlink() {
                    let _ = set_owner(&to, false, Some(i.owner.mode), None, None);
                }
            }
            let _ = own(&to);
        }
        true
    });
}

fn value(opts: &[Opt], c: char) -> Option<String> {
    opts.iter()
        .rev()
        .find(|(o, _)| *o == c)
        .and_then(|(_, v)| v.clone())
}

fn has(opts: &[Opt], c: char) -> bool {
    opts.iter().any(|(o, _)| *o == c)
}

fn finish(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn parse_id(applet: &str, what: &str, v: Option<String>) -> Result<Option<u32>, String> {
    v.map(|s| {
        s.parse::<u32>()
            .map_err(|_| format!("{applet}: invalid {what} '{s}'"))
    })
    .transpose()
}

/// busybox `adduser [-h DIR] [-g GECOS] [-s SHELL] [-G GRP] [-S] [-D] [-H]
/// [-u UID] [-k SKEL] USER [GROUP]` and Debian's long options.
pub mod adduser {
    use super::*;

    const SPEC: Spec = Spec {
        flags: "SDHq",
        valued: "hgsGuk",
        long: &[
            ("home", 'h', true),
            ("gecos", 'g', true),
            ("comment", 'g', true),
            ("shell", 's', true),
            ("ingroup", 'G', true),
            ("uid", 'u', true),
            ("gid", 'i', true),
            ("system", 'S', false),
            ("disabled-password", 'D', false),
            ("disabled-login", 'D', false),
            ("no-create-home", 'H', false),
            ("group", 'U', false),
            ("quiet", 'q', false),
            ("home-dir", 'h', true),
        ],
    };

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        const A: &str = "adduser";
        let args = match strings(A, args) {
            Ok(a) => a,
            Err(code) => return code,
        };
        let (opts, ops) = match scan(&args, &SPEC, |_| false) {
            Ok(x) => x,
            Err(e) => return usage(A, &e),
        };
        let db = Db::load();
        match ops.as_slice() {
            [user, group] => {
                if db.user(user).is_none() {
                    eprintln!("{A}: unknown user {user}");
                    return 1;
                }
                finish(add_member(A, group, user))
            }
            [name] => finish(run(&db, &opts, name)),
            _ => usage(A, "give one user name (or USER GROUP)"),
        }
    }

    fn run(db: &Db, opts: &[Opt], name: &str) -> Result<(), String> {
        const A: &str = "adduser";
        if !valid_name(name) {
            return Err(format!("{A}: invalid user name '{name}'"));
        }
        if db.user(name).is_some() {
            return Err(format!("{A}: user '{name}' in use"));
        }
        let system = has(opts, 'S');
        let used: Vec<u32> = db.users.iter().map(|u| u.uid).collect();
        let uid = match parse_id(A, "uid", value(opts, 'u'))? {
            Some(u) if used.contains(&u) => return Err(format!("{A}: uid '{u}' in use")),
            Some(u) => u,
            None => {
                pick_id(&used, system, Pick::LowestFree, None).ok_or(format!("{A}: no free uid"))?
            }
        };
        let gid = match (value(opts, 'G'), parse_id(A, "gid", value(opts, 'i'))?) {
            (Some(g), _) => db.gid_of(&g).ok_or(format!("{A}: unknown group {g}"))?,
            (None, Some(g)) => g,
            (None, None) if system && !has(opts, 'U') && db.group("nogroup").is_some() => {
                db.group("nogroup").map_or(65534, |g| g.gid)
            }
            (None, None) => {
                let prefer = (!db.groups.iter().any(|g| g.gid == uid)).then_some(uid);
                let gid = prefer
                    .or_else(|| {
                        pick_id(
                            &db.groups.iter().map(|g| g.gid).collect::<Vec<_>>(),
                            system,
                            Pick::LowestFree,
                            None,
                        )
                    })
                    .ok_or(format!("{A}: no free gid"))?;
                add_group(A, db, name, Some(gid), system, Pick::LowestFree)?
            }
        };
        let home = value(opts, 'h').unwrap_or_else(|| format!("/home/{name}"));
        add_user(
            A,
            &NewUser {
                name: name.to_owned(),
                uid,
                gid,
                gecos: value(opts, 'g').unwrap_or_default(),
                home,
                shell: value(opts, 's').unwrap_or_else(|| "/bin/sh".into()),
                make_home: !has(opts, 'H'),
            },
        )
    }
}

/// busybox `addgroup [-g GID] [-S] GROUP`, `addgroup USER GROUP`, and
/// Debian's `--system`/`--gid`.
pub mod addgroup {
    use super::*;

    const SPEC: Spec = Spec {
        flags: "Sq",
        valued: "g",
        long: &[
            ("gid", 'g', true),
            ("system", 'S', false),
            ("quiet", 'q', false),
        ],
    };

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        const A: &str = "addgroup";
        let args = match strings(A, args) {
            Ok(a) => a,
            Err(code) => return code,
        };
        let (opts, ops) = match scan(&args, &SPEC, |_| false) {
            Ok(x) => x,
            Err(e) => return usage(A, &e),
        };
        let db = Db::load();
        match ops.as_slice() {
            [user, group] => finish(add_member(A, group, user)),
            [group] => finish(
                parse_id(A, "gid", value(&opts, 'g'))
                    .and_then(|gid| {
                        add_group(A, &db, group, gid, has(&opts, 'S'), Pick::LowestFree)
                    })
                    .map(|_| ()),
            ),
            _ => usage(A, "give one group name (or USER GROUP)"),
        }
    }
}

/// `useradd [-u UID] [-g GROUP] [-G G1,G2] [-m|-M] [-d HOME] [-s SHELL]
/// [-c COMMENT] [-r] [-U|-N] NAME`.
pub mod useradd {
    use super::*;

    const SPEC: Spec = Spec {
        flags: "mMrUNol",
        valued: "ugGdscKek",
        long: &[
            ("uid", 'u', true),
            ("gid", 'g', true),
            ("groups", 'G', true),
            ("create-home", 'm', false),
            ("no-create-home", 'M', false),
            ("home-dir", 'd', true),
            ("shell", 's', true),
            ("comment", 'c', true),
            ("system", 'r', false),
            ("user-group", 'U', false),
            ("no-user-group", 'N', false),
            ("non-unique", 'o', false),
            ("no-log-init", 'l', false),
        ],
    };

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        const A: &str = "useradd";
        let args = match strings(A, args) {
            Ok(a) => a,
            Err(code) => return code,
        };
        let (opts, ops) = match scan(&args, &SPEC, |_| false) {
            Ok(x) => x,
            Err(e) => return usage(A, &e),
        };
        let [name] = ops.as_slice() else {
            return usage(A, "give one user name");
        };
        finish(run(&Db::load(), &opts, name))
    }

    fn run(db: &Db, opts: &[Opt], name: &str) -> Result<(), String> {
        const A: &str = "useradd";
        if !valid_name(name) {
            return Err(format!("{A}: invalid user name '{name}'"));
        }
        if db.user(name).is_some() {
            return Err(format!("{A}: user '{name}' already exists"));
        }
        let system = has(opts, 'r');
        let used: Vec<u32> = db.users.iter().map(|u| u.uid).collect();
        let uid = match parse_id(A, "user ID", value(opts, 'u'))? {
            Some(u) if used.contains(&u) && !has(opts, 'o') => {
                return Err(format!("{A}: UID {u} is not unique"))
            }
            Some(u) => u,
            None => {
                pick_id(&used, system, Pick::Shadow, None).ok_or(format!("{A}: no free UID"))?
            }
        };
        let supplementary: Vec<String> = value(opts, 'G')
            .map(|g| {
                g.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for g in &supplementary {
            if db.gid_of(g).is_none() {
                return Err(format!("{A}: group '{g}' does not exist"));
            }
        }
        let gid = match value(opts, 'g') {
            Some(g) => db
                .gid_of(&g)
                .ok_or(format!("{A}: group '{g}' does not exist"))?,
            None if has(opts, 'N') => db.group("users").map_or(100, |g| g.gid),
            None => {
                let gids: Vec<u32> = db.groups.iter().map(|g| g.gid).collect();
                let prefer = (!gids.contains(&uid)).then_some(uid);
                let gid = prefer
                    .or_else(|| pick_id(&gids, system, Pick::Shadow, None))
                    .ok_or(format!("{A}: no free GID"))?;
                add_group(A, db, name, Some(gid), system, Pick::Shadow)?
            }
        };
        add_user(
            A,
            &NewUser {
                name: name.to_owned(),
                uid,
                gid,
                gecos: value(opts, 'c').unwrap_or_default(),
                home: value(opts, 'd').unwrap_or_else(|| format!("/home/{name}")),
                shell: value(opts, 's').unwrap_or_else(|| "/bin/sh".into()),
                make_home: has(opts, 'm') && !has(opts, 'M'),
            },
        )?;
        let db = Db::load();
        for g in supplementary {
            let name_of = db
                .gid_of(&g)
                .and_then(|id| db.group_by_id(id))
                .map(|x| x.name.clone());
            add_member(A, &name_of.unwrap_or(g), name)?;
        }
        Ok(())
    }
}

/// `groupadd [-g GID] [-r] [-f] NAME`.
pub mod groupadd {
    use super::*;

    const SPEC: Spec = Spec {
        flags: "rfo",
        valued: "gK",
        long: &[
            ("gid", 'g', true),
            ("system", 'r', false),
            ("force", 'f', false),
            ("non-unique", 'o', false),
        ],
    };

    pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
        const A: &str = "groupadd";
        let args = match strings(A, args) {
            Ok(a) => a,
            Err(code) => return code,
        };
        let (opts, ops) = match scan(&args, &SPEC, |_| false) {
            Ok(x) => x,
            Err(e) => return usage(A, &e),
        };
        let [name] = ops.as_slice() else {
            return usage(A, "give one group name");
        };
        let db = Db::load();
        if has(&opts, 'f') && db.group(name).is_some() {
            return 0;
        }
        let gid = match parse_id(A, "GID", value(&opts, 'g')) {
            Ok(g) => g,
            Err(e) => return finish(Err(e)),
        };
        // -f with a taken GID picks another, as shadow does.
        let gid = gid.filter(|g| !(has(&opts, 'f') && db.group_by_id(*g).is_some()));
        finish(add_group(A, &db, name, gid, has(&opts, 'r'), Pick::Shadow).map(|_| ()))
    }
}
