//! Which program a command name means inside a step: a WASI module in the
//! image (by name, or with `.wasm`), then a toolbox applet, then a script
//! with a `#!` line; a native binary found on the way is reported, so the
//! user learns why it did not run.

use crate::error::RunError;
use crate::fs::{FileKind, Rootfs};
use crate::magic::{check_wasm, is_wasm};
use crate::toolbox;
use std::io::Read as _;

/// The default PATH of a RUN step when the image sets none (BuildKit's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Shells kiln interprets itself, whatever the image has under these names.
const SHELLS: &[&str] = &["sh", "bash", "dash", "ash"];

/// What a command name resolved to.
#[derive(Debug)]
pub(crate) enum Found {
    /// A WebAssembly module in the image.
    Module { path: String },
    /// An applet of kiln's toolbox.
    Applet(String),
    /// kiln's own shell (`sh`, `bash`, ... by name or path).
    Shell,
    /// A file starting with `#!`, or a plain text file (run by the shell).
    Script {
        path: String,
        shebang: Option<Shebang>,
    },
    /// A file kiln cannot run (an ELF binary, a directory, ...).
    Unrunnable(RunError),
    /// Nothing by that name.
    Nothing,
}

/// A script's `#!` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shebang {
    pub interpreter: String,
    pub arg: Option<String>,
}

impl Shebang {
    /// Whether kiln's shell runs this script itself.
    pub fn is_shell(&self) -> bool {
        let base = basename(&self.interpreter);
        SHELLS.contains(&base)
            || (base == "env" && self.arg.as_deref().is_some_and(|a| SHELLS.contains(&a)))
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `name` (a bare name or a path) names a shell kiln interprets.
pub(crate) fn is_shell_name(name: &str) -> bool {
    SHELLS.contains(&basename(name))
}

/// An absolute image path for `name` relative to `cwd`.
pub(crate) fn absolute(cwd: &str, name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else if cwd.ends_with('/') {
        format!("{cwd}{name}")
    } else {
        format!("{cwd}/{name}")
    }
}

/// The first bytes of a regular file (following symlinks), or `None` if
/// there is no regular file there.
fn head(fs: &Rootfs, path: &str) -> Option<Vec<u8>> {
    let st = fs.stat_path(path, true).ok()?;
    if st.kind != FileKind::Regular {
        return None;
    }
    let mut f = fs.open_read(path).ok()?;
    let mut buf = vec![0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    buf.truncate(n);
    Some(buf)
}

/// Classifies the file at `path`, whose first bytes are `head`.
fn classify(path: &str, head: &[u8]) -> Found {
    if is_wasm(head) {
        return Found::Module {
            path: path.to_owned(),
        };
    }
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.trim().splitn(2, [' ', '\t']);
        let interpreter = words.next().unwrap_or_default().to_owned();
        let arg = words
            .next()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        return Found::Script {
            path: path.to_owned(),
            shebang: Some(Shebang { interpreter, arg }),
        };
    }
    match check_wasm(path, head) {
        Err(e @ RunError::NotWasm { .. }) if looks_binary(head) => Found::Unrunnable(e),
        _ => Found::Script {
            path: path.to_owned(),
            shebang: None,
        },
    }
}

/// Text files without `#!` are shell scripts (as for `execvp`'s ENOEXEC
/// fallback); anything with NUL bytes or a known magic is not.
fn looks_binary(head: &[u8]) -> bool {
    head.contains(&0) || head.starts_with(b"\x7fELF") || head.starts_with(b"MZ")
}

/// Resolves `name` as the shell would run it, with `path_var` (PATH) and
/// the working directory `cwd`.
pub(crate) fn find(fs: &Rootfs, name: &str, path_var: Option<&str>, cwd: &str) -> Found {
    if name.contains('/') {
        if is_shell_name(name) {
            return Found::Shell;
        }
        let path = absolute(cwd, name);
        return match fs.stat_path(&path, true) {
            Err(_) => Found::Nothing,
            Ok(st) if st.kind == FileKind::Directory => Found::Unrunnable(RunError::NotWasm {
                program: name.to_owned(),
                what: "is a directory".into(),
            }),
            Ok(_) => match head(fs, &path) {
                Some(h) => classify(name, &h),
                None => Found::Nothing,
            },
        };
    }
    if name.is_empty() {
        return Found::Nothing;
    }
    if is_shell_name(name) {
        return Found::Shell;
    }
    let mut fallback = None;
    for dir in path_var.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() { cwd } else { dir };
        for candidate in [name.to_owned(), format!("{name}.wasm")] {
            let path = absolute(dir, &candidate);
            let Some(h) = head(fs, &path) else {
                continue;
            };
            match classify(&path, &h) {
                found @ Found::Module { .. } => return found,
                other => {
                    if fallback.is_none() && candidate == name {
                        fallback = Some(other);
                    }
                }
            }
        }
    }
    if toolbox::provides(name) {
        return Found::Applet(name.to_owned());
    }
    fallback.unwrap_or(Found::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_are_split_into_interpreter_and_one_argument() {
        let Found::Script { shebang, .. } = classify("/x", b"#!/usr/bin/env  python3 -u\nprint()")
        else {
            panic!("not a script");
        };
        let s = shebang.unwrap();
        assert_eq!(s.interpreter, "/usr/bin/env");
        assert_eq!(s.arg.as_deref(), Some("python3 -u"));
        assert!(!s.is_shell());
        let sh = Shebang {
            interpreter: "/bin/bash".into(),
            arg: None,
        };
        assert!(sh.is_shell());
    }

    #[test]
    fn elf_files_are_unrunnable_and_text_files_are_scripts() {
        assert!(matches!(
            classify("/bin/ls", b"\x7fELF\x02\x01\x01\0\0"),
            Found::Unrunnable(RunError::NotWasm { .. })
        ));
        assert!(matches!(
            classify("/x.sh", b"echo hi\n"),
            Found::Script { shebang: None, .. }
        ));
        assert!(matches!(
            classify("/m", b"\0asm\x01\0\0\0"),
            Found::Module { .. }
        ));
    }
}
