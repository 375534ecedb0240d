//! cp: uutils' cp copies the bytes; then kiln's modes and owners are set,
//! which uutils cannot on WASI: new files get the source's mode bits less
//! the umask (022), as GNU cp gives them, and `-p`/`-a`/`--preserve` carry
//! mode and owner over. Preserved timestamps are set here too, with
//! `utimensat` not following symlinks: uutils' filetime cannot set a
//! symlink's times on WASI ("Wasm not implemented"), which `-a` needs.

use super::common::{set_owner, Info, UMASK};
use std::ffi::OsString;
use std::path::Path;

/// What the arguments ask for, as far as modes and owners go.
#[derive(Default)]
struct Asked {
    recursive: bool,
    no_deref: bool,
    deref: bool,
    mode: bool,
    ownership: bool,
    timestamps: bool,
    /// `-n`/`-u`: existing destinations may be left alone.
    no_clobber: bool,
    update: bool,
    target: Option<String>,
    no_target: bool,
    operands: Vec<String>,
}

/// Splits uutils' arguments from what kiln does itself: preserving mode
/// and ownership leaves uutils' hands (it cannot on WASI).
fn rewrite(args: &[String]) -> (Vec<String>, Asked) {
    let mut out = vec![args.first().cloned().unwrap_or_else(|| "cp".into())];
    let mut a = Asked::default();
    let mut i = 1;
    let mut operands_only = false;
    while i < args.len() {
        let arg = args[i].clone();
        i += 1;
        if operands_only || arg == "-" || !arg.starts_with('-') {
            a.operands.push(arg.clone());
            out.push(arg);
            continue;
        }
        if arg == "--" {
            operands_only = true;
            out.push(arg);
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match name {
                "archive" => {
                    archive(&mut a);
                    out.extend(["-R".into(), "-P".into(), "--preserve=links".into()]);
                }
                "preserve" | "no-preserve" => {
                    let on = name == "preserve";
                    let list = value.unwrap_or("mode,ownership,timestamps");
                    let mut keep = Vec::new();
                    for item in list.split(',') {
                        match item {
                            "mode" => a.mode = on,
                            "ownership" => a.ownership = on,
                            "timestamps" => a.timestamps = on,
                            "all" => {
                                a.mode = on;
                                a.ownership = on;
                                a.timestamps = on;
                                keep.push("links");
                            }
                            "links" => keep.push(item),
                            _ => {}
                        }
                    }
                    if !keep.is_empty() {
                        out.push(format!("--{name}={}", keep.join(",")));
                    }
                }
                "no-clobber" => {
                    a.no_clobber = true;
                    out.push(arg);
                }
                "update" => {
                    if value == Some("none") {
                        a.no_clobber = true;
                    } else if value != Some("all") {
                        a.update = true;
                    }
                    out.push(arg);
                }
                "recursive" => {
                    a.recursive = true;
                    out.push(arg);
                }
                "no-dereference" => {
                    a.no_deref = true;
                    out.push(arg);
                }
                "dereference" => {
                    a.deref = true;
                    out.push(arg);
                }
                "no-target-directory" => {
                    a.no_target = true;
                    out.push(arg);
                }
                "target-directory" => {
                    let v = match value {
                        Some(v) => Some(v.to_owned()),
                        None => {
                            i += 1;
                            args.get(i - 1).cloned()
                        }
                    };
                    a.target = v.clone();
                    out.push(format!("--target-directory={}", v.unwrap_or_default()));
                }
                _ => out.push(arg),
            }
            continue;
        }
        // A bundle of short options; S and t take a value.
        let mut kept = String::from("-");
        let chars: Vec<char> = arg[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            match c {
                'a' => {
                    archive(&mut a);
                    kept.push_str("RP");
                    out.push("--preserve=links".into());
                }
                'p' => {
                    a.mode = true;
                    a.ownership = true;
                    a.timestamps = true;
                }
                'n' => {
                    a.no_clobber = true;
                    kept.push(c);
                }
                'u' => {
                    a.update = true;
                    kept.push(c);
                }
                'r' | 'R' => {
                    a.recursive = true;
                    kept.push(c);
                }
                'P' | 'd' => {
                    a.no_deref = true;
                    kept.push(c);
                }
                'L' => {
                    a.deref = true;
                    kept.push(c);
                }
                'T' => {
                    a.no_target = true;
                    kept.push(c);
                }
                't' | 'S' => {
                    let rest: String = chars[j..].iter().collect();
                    let v = if rest.is_empty() {
                        i += 1;
                        args.get(i - 1).cloned().unwrap_or_default()
                    } else {
                        rest
                    };
                    if c == 't' {
                        a.target = Some(v.clone());
                    }
                    kept.push(c);
                    out.push(kept.clone());
                    out.push(v);
                    kept = String::from("-");
                    j = chars.len();
                }
                _ => kept.push(c),
            }
        }
        if kept.len() > 1 {
            out.push(kept);
        }
    }
    (out, a)
}

/// `-a`: `-dR --preserve=all`.
fn archive(a: &mut Asked) {
    a.recursive = true;
    a.no_deref = true;
    a.mode = true;
    a.ownership = true;
    a.timestamps = true;
}

/// One entry the copy makes: source, destination, whether the destination
/// existed before, and whether cp leaves it alone (`-n`, `-u`).
type Pair = (String, String, bool, bool);

/// Source and destination of every entry the copy makes.
fn pairs(a: &Asked) -> Vec<Pair> {
    let mut ops = a.operands.clone();
    let (sources, dest_dir, dest) = match &a.target {
        Some(t) => (ops, Some(t.clone()), None),
        None => {
            let Some(last) = ops.pop() else {
                return Vec::new();
            };
            if !a.no_target && Path::new(&last).is_dir() {
                (ops, Some(last), None)
            } else {
                (ops, None, Some(last))
            }
        }
    };
    let mut out = Vec::new();
    for src in sources {
        let to = match (&dest_dir, &dest) {
            (Some(d), _) => {
                let base = Path::new(src.trim_end_matches('/'))
                    .file_name()
                    .map(|b| b.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{}/{base}", d.trim_end_matches('/'))
            }
            (None, Some(d)) => d.clone(),
            _ => continue,
        };
        add(&src, &to, a, &mut out);
    }
    out
}

fn add(src: &str, to: &str, a: &Asked, out: &mut Vec<Pair>) {
    let dest = Info::of(to, false).ok();
    let existed = dest.is_some();
    let follow = follows(a);
    let Ok(info) = Info::of(src, follow) else {
        out.push((src.to_owned(), to.to_owned(), existed, false));
        return;
    };
    let kept = dest
        .as_ref()
        .is_some_and(|d| !d.is_dir() && (a.no_clobber || (a.update && d.mtime >= info.mtime)));
    out.push((src.to_owned(), to.to_owned(), existed, kept));
    if a.recursive && info.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(src)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for n in names {
            add(&format!("{src}/{n}"), &format!("{to}/{n}"), a, out);
        }
    }
}

/// Whether the copy followed a symlink at this source.
fn follows(a: &Asked) -> bool {
    if a.deref {
        return true;
    }
    if a.no_deref {
        return false;
    }
    // GNU: symlinks are followed only when not copying recursively.
    !a.recursive
}

/// Sets the access and modification times of `path`, not following a
/// final symlink.
fn set_times(path: &str, atime: (i64, i64), mtime: (i64, i64)) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let ts = |(sec, nsec): (i64, i64)| libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    };
    let times = [ts(atime), ts(mtime)];
    // SAFETY: c is NUL-terminated and times holds two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.collect();
    let Some(strs) = args
        .iter()
        .map(|a| a.to_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
    else {
        return uu_cp::uumain(args.into_iter());
    };
    let (uu_args, asked) = rewrite(&strs);
    let before = pairs(&asked);
    let status = uu_cp::uumain(uu_args.into_iter().map(OsString::from));
    let mut failed = false;
    for (src, to, existed, kept) in &before {
        if *kept {
            continue;
        }
        let Ok(s) = Info::of(src, follows(&asked)) else {
            continue;
        };
        let Ok(d) = Info::of(to, false) else { continue };
        if asked.timestamps {
            if let Err(e) = set_times(to, s.atime, s.mtime) {
                eprintln!(
                    "cp: preserving times for '{to}': {}",
                    super::common::why(&e)
                );
                failed = true;
            }
        }
        let link = d.is_symlink();
        let mode = if asked.mode {
            Some(s.owner.mode)
        } else if !*existed {
            Some(s.owner.mode & !UMASK & 0o777)
        } else {
            None
        };
        let mode = mode.filter(|_| !link);
        let (uid, gid) = if asked.ownership {
            (Some(s.owner.uid), Some(s.owner.gid))
        } else {
            (None, None)
        };
        if mode.is_none() && uid.is_none() {
            continue;
        }
        if let Err(e) = set_owner(to, false, mode, uid, gid) {
            eprintln!(
                "cp: cannot set the mode of '{to}': {}",
                super::common::why(&e)
            );
            failed = true;
        }
    }
    if failed && status == 0 {
        1
    } else {
        status
    }
}
