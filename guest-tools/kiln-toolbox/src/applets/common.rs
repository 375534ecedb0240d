//! What the mode and owner applets share: option scanning, absolute image
//! paths for the `kiln` module, the image's user database and mode text.

use crate::kiln_sys::{self, Owner};
use std::ffi::OsString;

/// The umask kiln's tools act under: the Linux default, never the host's.
pub const UMASK: u32 = 0o022;

/// Prints `applet: msg` and the usual hint; status 1.
pub fn usage(applet: &str, msg: &str) -> i32 {
    eprintln!("{applet}: {msg}\nTry '{applet} --help' for more information.");
    1
}

/// Each applet's `--help` text.
fn help_text(applet: &str) -> &'static str {
    match applet {
        "chmod" => "Usage: chmod [-R] [-c|-v] [-f] MODE[,MODE]... FILE...\n  or:  chmod [-R] --reference=RFILE FILE...\nMODE is octal (755) or symbolic ([ugoa]*[-+=]([rwxXst]*|[ugo]), comma-separated).",
        "chown" => "Usage: chown [-R] [-h] [-c|-v] [-f] [OWNER][:[GROUP]] FILE...\nOWNER and GROUP are names from the image's /etc/passwd and /etc/group, or numbers.",
        "chgrp" => "Usage: chgrp [-R] [-h] [-c|-v] [-f] GROUP FILE...\nGROUP is a name from the image's /etc/group, or a number.",
        "stat" => "Usage: stat [-L] [-t] [-c FORMAT | --printf=FORMAT] FILE...\nFORMAT directives: %a %A %b %B %d %D %f %F %g %G %h %i %n %N %o %s %u %U %x %X %y %Y %z %Z.",
        "id" => "Usage: id [-u|-g|-G] [-n] [-z] [USER]\nPrint user and group ids of USER, or of the user kiln runs the command as.",
        "whoami" => "Usage: whoami\nPrint the name of the user kiln runs the command as (from the image's /etc/passwd).",
        "install" => "Usage: install [-m MODE] [-o OWNER] [-g GROUP] [-D] [-p] SOURCE DEST\n  or:  install [...] SOURCE... DIRECTORY\n  or:  install [...] -t DIRECTORY SOURCE...\n  or:  install [...] -d DIRECTORY...",
        "adduser" => "Usage: adduser [-h DIR] [-g GECOS] [-s SHELL] [-G GROUP] [-S] [-D] [-H] [-u UID] USER\n  or:  adduser USER GROUP   (add USER to GROUP)",
        "addgroup" => "Usage: addgroup [-g GID] [-S] GROUP\n  or:  addgroup USER GROUP   (add USER to GROUP)",
        "useradd" => "Usage: useradd [-u UID] [-g GROUP] [-G G1,G2] [-m|-M] [-d HOME] [-s SHELL] [-c COMMENT] [-r] [-U|-N] NAME",
        "du" => "Usage: du [-a|-s] [-b|-h|-k|-m|--apparent-size] [-c] [-d N] [-L|-P] [FILE]...\nDisk usage: regular files use their size rounded up to 4 KiB blocks, directories 4 KiB (WASI reports no blocks).",
        "groupadd" => "Usage: groupadd [-g GID] [-r] [-f] NAME\nAppend group NAME to the image's /etc/group (and /etc/gshadow).",
        _ => "Usage: see the kiln toolbox documentation for this applet.",
    }
}

/// argv without argv[0], as UTF-8 (kiln's image paths are UTF-8);
/// `Err(0)` after printing the help for `--help`.
pub fn strings(applet: &str, args: impl Iterator<Item = OsString>) -> Result<Vec<String>, i32> {
    let args: Vec<OsString> = args.collect();
    if args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--help")
    {
        println!("{}", help_text(applet));
        return Err(0);
    }
    args.into_iter()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| usage(applet, &format!("argument is not UTF-8: {a:?}")))
        })
        .collect()
}

/// One option as scanned: its letter (long options map to one) and value.
pub type Opt = (char, Option<String>);

/// Options a scanner knows: short letters that take a value, and long
/// names with the letter they stand for and whether they take a value.
pub struct Spec {
    pub flags: &'static str,
    pub valued: &'static str,
    pub long: &'static [(&'static str, char, bool)],
}

/// getopt-style scanning (options anywhere, `--` ends them, bundles, `-mVALUE`,
/// `--name=value`). `keep` says whether a dash argument is an operand anyway
/// (chmod's `-w`).
pub fn scan(
    args: &[String],
    spec: &Spec,
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<Opt>, Vec<String>), String> {
    let mut opts = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let hits: Vec<_> = spec
                .long
                .iter()
                .filter(|(l, _, _)| *l == name || l.starts_with(name))
                .collect();
            let hit = hits
                .iter()
                .find(|(l, _, _)| *l == name)
                .or(if hits.len() == 1 { hits.first() } else { None });
            let Some(&&(_, c, valued)) = hit else {
                return Err(format!("unrecognized option '--{name}'"));
            };
            let value = match (valued, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(format!("option '--{name}' requires an argument")),
                },
                (false, Some(_)) => {
                    return Err(format!("option '--{name}' doesn't allow an argument"))
                }
                (false, None) => None,
            };
            opts.push((c, value));
            continue;
        }
        if a.len() < 2 || !a.starts_with('-') || keep(a) {
            operands.push(a.clone());
            continue;
        }
        let body: Vec<char> = a[1..].chars().collect();
        let mut j = 0;
        while j < body.len() {
            let c = body[j];
            j += 1;
            if spec.valued.contains(c) {
                let rest: String = body[j..].iter().collect();
                let value = if !rest.is_empty() {
                    rest
                } else if let Some(v) = args.get(i) {
                    i += 1;
                    v.clone()
                } else {
                    return Err(format!("option requires an argument -- '{c}'"));
                };
                opts.push((c, Some(value)));
                break;
            }
            if !spec.flags.contains(c) {
                return Err(format!("invalid option -- '{c}'"));
            }
            opts.push((c, None));
        }
    }
    Ok((opts, operands))
}

/// The absolute image path of `path` (relative to the working directory).
pub fn abs(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| "/".into());
    if cwd.ends_with('/') {
        format!("{cwd}{path}")
    } else {
        format!("{cwd}/{path}")
    }
}

/// Mode and owner of `path` (relative or absolute).
pub fn owner(path: &str, follow: bool) -> std::io::Result<Owner> {
    kiln_sys::owner_get(&abs(path), follow)
}

/// Sets mode and/or owner of `path` (relative or absolute).
pub fn set_owner(
    path: &str,
    follow: bool,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> std::io::Result<()> {
    kiln_sys::owner_set(&abs(path), follow, mode, uid, gid)
}

/// `(uid, gid)` the command runs as (root when kiln does not say).
pub fn me() -> (u32, u32) {
    kiln_sys::user_get().unwrap_or((0, 0))
}

/// An error without Rust's " (os error N)" tail, as coreutils print them.
pub fn why(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "No such file or directory".into(),
        PermissionDenied => "Permission denied".into(),
        AlreadyExists => "File exists".into(),
        NotADirectory => "Not a directory".into(),
        IsADirectory => "Is a directory".into(),
        DirectoryNotEmpty => "Directory not empty".into(),
        Unsupported => "Operation not supported".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_owned(),
                None => s,
            }
        }
    }
}

/// One line of /etc/passwd.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// One line of /etc/group.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The image's users and groups (empty when the files are missing).
#[derive(Debug, Default)]
pub struct Db {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl Db {
    pub fn load() -> Db {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let users = read("/etc/passwd")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some(User {
                    name: (*f.first()?).to_owned(),
                    uid: f.get(2)?.parse().ok()?,
                    gid: f.get(3)?.parse().ok()?,
                })
            })
            .collect();
        let groups = read("/etc/group")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some(Group {
                    name: (*f.first()?).to_owned(),
                    gid: f.get(2)?.parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        Db { users, groups }
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
    pub fn user_by_id(&self, uid: u32) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
    pub fn group_by_id(&self, gid: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.gid == gid)
    }
    /// The user's name, or the number.
    pub fn user_name(&self, uid: u32) -> String {
        self.user_by_id(uid)
            .map_or_else(|| uid.to_string(), |u| u.name.clone())
    }
    /// The group's name, or the number.
    pub fn group_name(&self, gid: u32) -> String {
        self.group_by_id(gid)
            .map_or_else(|| gid.to_string(), |g| g.name.clone())
    }
    /// A user given by name or number (`+N` is always a number).
    pub fn uid_of(&self, s: &str) -> Option<u32> {
        if let Some(n) = s.strip_prefix('+') {
            return n.parse().ok();
        }
        self.user(s).map(|u| u.uid).or_else(|| s.parse().ok())
    }
    /// A group given by name or number (`+N` is always a number).
    pub fn gid_of(&self, s: &str) -> Option<u32> {
        if let Some(n) = s.strip_prefix('+') {
            return n.parse().ok();
        }
        self.group(s).map(|g| g.gid).or_else(|| s.parse().ok())
    }
}

/// What `stat(2)` tells of an entry (through wasi-libc, so through
/// kiln's view: virtual inode numbers and times), plus kiln's mode and owner.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    /// The `S_IFMT` bits.
    pub fmt: u32,
    pub size: u64,
    /// (seconds, nanoseconds) of access, modification, change.
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub owner: Owner,
}

impl Info {
    /// `stat` (follow) or `lstat` of `path`, with kiln's mode and owner.
    pub fn of(path: &str, follow: bool) -> std::io::Result<Info> {
        let c = std::ffi::CString::new(path)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: c is NUL-terminated and st is valid for one `stat`.
        let rc = unsafe {
            if follow {
                libc::stat(c.as_ptr(), st.as_mut_ptr())
            } else {
                libc::lstat(c.as_ptr(), st.as_mut_ptr())
            }
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: lstat filled it in.
        let st = unsafe { st.assume_init() };
        let owner = owner(path, follow)?;
        Ok(Info {
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            fmt: st.st_mode & libc::S_IFMT,
            size: u64::try_from(st.st_size).unwrap_or(0),
            atime: (st.st_atim.tv_sec, st.st_atim.tv_nsec.into()),
            mtime: (st.st_mtim.tv_sec, st.st_mtim.tv_nsec.into()),
            ctime: (st.st_ctim.tv_sec, st.st_ctim.tv_nsec.into()),
            owner,
        })
    }

    pub fn is_dir(&self) -> bool {
        self.fmt == libc::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.fmt == libc::S_IFLNK
    }
    pub fn is_file(&self) -> bool {
        self.fmt == libc::S_IFREG
    }

    /// `ls -l`'s type letter.
    pub fn type_char(&self) -> char {
        match self.fmt {
            libc::S_IFDIR => 'd',
            libc::S_IFLNK => 'l',
            libc::S_IFREG => '-',
            libc::S_IFBLK => 'b',
            libc::S_IFCHR => 'c',
            libc::S_IFSOCK => 's',
            _ => 'p',
        }
    }

    /// 512-byte blocks, estimated (p1 reports no allocation): whole 4 KiB
    /// pages for files and directories, none for symlinks.
    pub fn blocks(&self) -> u64 {
        match self.fmt {
            libc::S_IFREG => self.size.div_ceil(4096) * 8,
            libc::S_IFDIR => 8,
            _ => 0,
        }
    }
}

/// `rwxr-xr-x` with setuid, setgid and sticky shown as s/S and t/T.
pub fn perm_text(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for (shift, special, ch) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (mode & special != 0, x) {
            (true, true) => ch,
            (true, false) => ch.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// The paths of the entries of directory `path`, sorted by name (names
/// that are not UTF-8 are left out: kiln's image paths are UTF-8).
pub fn children(path: &str) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let sep = if path.ends_with('/') { "" } else { "/" };
    Ok(names.iter().map(|n| format!("{path}{sep}{n}")).collect())
}

/// Calls `f` on `path` and, when it is a directory (not a symlink), on
/// everything under it, parents first, names sorted.
pub fn walk(path: &str, f: &mut dyn FnMut(&str, bool) -> bool) -> bool {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let mut ok = f(path, is_dir);
    if is_dir {
        let Ok(children) = children(path) else {
            return ok;
        };
        for child in children {
            ok &= walk(&child, f);
        }
    }
    ok
}
