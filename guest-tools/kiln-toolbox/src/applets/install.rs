//! install: copies files (or makes directories) and sets kiln's mode and
//! owner on them (default mode 0755).

use super::common::{abs, scan, set_owner, strings, usage, why, Db, Spec};
use super::modes;
use std::ffi::OsString;
use std::path::Path;

const APPLET: &str = "install";

const SPEC: Spec = Spec {
    flags: "dDTvscCpb",
    valued: "mogtS",
    long: &[
        ("directory", 'd', false),
        ("mode", 'm', true),
        ("owner", 'o', true),
        ("group", 'g', true),
        ("target-directory", 't', true),
        ("no-target-directory", 'T', false),
        ("verbose", 'v', false),
        ("strip", 's', false),
        ("compare", 'C', false),
        ("preserve-timestamps", 'p', false),
        ("help", '?', false),
    ],
};

/// What to set on every installed entry.
struct Attrs {
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    verbose: bool,
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
    let value = |c: char| {
        opts.iter()
            .rev()
            .find(|(o, _)| *o == c)
            .and_then(|(_, v)| v.clone())
    };
    if has('?') {
        println!("Usage: install [-m MODE] [-o OWNER] [-g GROUP] [-D] SOURCE DEST\n  or:  install [...] SOURCE... DIRECTORY\n  or:  install [...] -t DIRECTORY SOURCE...\n  or:  install [...] -d DIRECTORY...");
        return 0;
    }
    let db = Db::load();
    let mode = match value('m') {
        None => 0o755,
        Some(m) => match modes::parse(&m) {
            // Like GNU install: relative to 0, no umask.
            Ok(spec) => modes::apply(&spec, 0, false, 0),
            Err(e) => return usage(APPLET, &e),
        },
    };
    let uid = match value('o') {
        None => None,
        Some(o) => match db.uid_of(&o) {
            Some(u) => Some(u),
            None => {
                eprintln!("{APPLET}: invalid user '{o}'");
                return 1;
            }
        },
    };
    let gid = match value('g') {
        None => None,
        Some(g) => match db.gid_of(&g) {
            Some(g) => Some(g),
            None => {
                eprintln!("{APPLET}: invalid group '{g}'");
                return 1;
            }
        },
    };
    let attrs = Attrs {
        mode,
        uid,
        gid,
        verbose: has('v'),
    };
    if operands.is_empty() {
        return usage(APPLET, "missing file operand");
    }
    if has('d') {
        let mut ok = true;
        for d in &operands {
            ok &= make_dirs(d, Some(&attrs));
        }
        return i32::from(!ok);
    }
    let (sources, target_dir, dest) = match (value('t'), has('T')) {
        (Some(t), _) => (&operands[..], Some(t), None),
        (None, true) => match operands.as_slice() {
            [s, d] => (std::slice::from_ref(s), None, Some(d.clone())),
            _ => {
                return usage(
                    APPLET,
                    "with -T, give exactly one source and one destination",
                )
            }
        },
        (None, false) => {
            let Some((last, rest)) = operands.split_last() else {
                return usage(APPLET, "missing file operand");
            };
            if rest.is_empty() {
                return usage(
                    APPLET,
                    &format!("missing destination file operand after '{last}'"),
                );
            }
            if rest.len() > 1 || Path::new(last).is_dir() {
                (rest, Some(last.clone()), None)
            } else {
                (rest, None, Some(last.clone()))
            }
        }
    };
    if has('D') {
        let lead = match (&target_dir, &dest) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(d)) => Path::new(d)
                .parent()
                .map(|p| p.to_string_lossy().into_owned()),
            _ => None,
        };
        if let Some(l) = lead.filter(|l| !l.is_empty()) {
            if !make_dirs(&l, None) {
                return 1;
            }
        }
    }
    let mut ok = true;
    for src in sources {
        let to = match (&target_dir, &dest) {
            (Some(t), _) => {
                let base = Path::new(src)
                    .file_name()
                    .map(|b| b.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{}/{base}", t.trim_end_matches('/'))
            }
            (None, Some(d)) => d.clone(),
            _ => continue,
        };
        ok &= copy(src, &to, &attrs, has('p'));
    }
    i32::from(!ok)
}

/// `mkdir -p`, then the attributes on the last one (if given).
fn make_dirs(dir: &str, attrs: Option<&Attrs>) -> bool {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("{APPLET}: cannot create directory '{dir}': {}", why(&e));
        return false;
    }
    let Some(a) = attrs else { return true };
    if a.verbose {
        println!("{APPLET}: creating directory '{dir}'");
    }
    apply(dir, a)
}

fn apply(path: &str, a: &Attrs) -> bool {
    match set_owner(path, true, Some(a.mode), a.uid, a.gid) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "{APPLET}: cannot change permissions of '{path}': {}",
                why(&e)
            );
            false
        }
    }
}

fn copy(src: &str, to: &str, a: &Attrs, keep_times: bool) -> bool {
    if Path::new(src).is_dir() {
        eprintln!("{APPLET}: omitting directory '{src}'");
        return false;
    }
    if abs(src) == abs(to) {
        eprintln!("{APPLET}: '{src}' and '{to}' are the same file");
        return false;
    }
    let copied = (|| {
        let mut from = std::fs::File::open(src)?;
        // A fresh inode, as GNU install makes: links to the old file keep it.
        match std::fs::remove_file(to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut out = std::fs::File::create(to)?;
        std::io::copy(&mut from, &mut out)?;
        if keep_times {
            let m = from.metadata()?;
            let times = std::fs::FileTimes::new()
                .set_accessed(m.accessed()?)
                .set_modified(m.modified()?);
            out.set_times(times)?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        eprintln!("{APPLET}: cannot install '{src}' to '{to}': {}", why(&e));
        return false;
    }
    if a.verbose {
        println!("'{src}' -> '{to}'");
    }
    apply(to, a)
}
