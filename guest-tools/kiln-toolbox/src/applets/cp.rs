//! cp: uutils' cp copies the bytes; then kiln's modes and owners are set,
//! which uutils cannot on WASI: new files get the source's mode bits less
//! the umask (022), as GNU cp gives them, and `-p`/`-a`/`--preserve` carry
//! mode and owner over.

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
                    a.recursive = true;
                    a.no_deref = true;
                    a.mode = true;
                    a.ownership = true;
                    out.extend(["-R".into(), "-P".into(), "--preserve=timestamps".into()]);
                }
                "preserve" => {
                    let list = value.unwrap_or("mode,ownership,timestamps");
                    let mut keep = Vec::new();
                    for item in list.split(',') {
                        match item {
                            "mode" => a.mode = true,
                            "ownership" => a.ownership = true,
                            "all" => {
                                a.mode = true;
                                a.ownership = true;
                                keep.push("timestamps");
                            }
                            "timestamps" | "links" => keep.push(item),
                            _ => {}
                        }
                    }
                    if !keep.is_empty() {
                        out.push(format!("--preserve={}", keep.join(",")));
                    }
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
                    a.recursive = true;
                    a.no_deref = true;
                    a.mode = true;
                    a.ownership = true;
                    kept.push_str("RP");
                    out.push("--preserve=timestamps".into());
                }
                'p' => {
                    a.mode = true;
                    a.ownership = true;
                    out.push("--preserve=timestamps".into());
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

/// Source and destination of every entry the copy makes, with whether the
/// destination existed before.
fn pairs(a: &Asked) -> Vec<(String, String, bool)> {
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

fn add(src: &str, to: &str, a: &Asked, out: &mut Vec<(String, String, bool)>) {
    let existed = std::fs::symlink_metadata(to).is_ok();
    out.push((src.to_owned(), to.to_owned(), existed));
    let follow = follows(a);
    let Ok(info) = Info::of(src, follow) else {
        return;
    };
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
    for (src, to, existed) in &before {
        let Ok(s) = Info::of(src, follows(&asked)) else {
            continue;
        };
        let Ok(d) = Info::of(to, false) else { continue };
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
