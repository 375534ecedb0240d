//! Builtin commands that the shell runs itself (no WASI instance).

use super::ast::List;
use super::host::FileKind;
use super::parser::{self, is_name};
use super::{Ctrl, Flow, Shell, Var};
use crate::image_path::normalise;

const BUILTINS: &[&str] = &[
    ":", ".", "[", "break", "cd", "command", "continue", "echo", "eval", "exec", "exit", "export",
    "false", "getopts", "local", "printf", "pwd", "read", "readonly", "return", "set", "shift",
    "source", "test", "trap", "true", "type", "umask", "unset", "wait",
];

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "{",
    "}", "!", "in",
];

/// Whether `name` is a builtin of this shell.
pub(super) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Parses a status argument like `exit 3`; `None` for a bad number.
fn parse_status(s: &str) -> Option<i32> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| (n & 0xff) as i32)
}

/// Shell-quotes a value for `export -p`, `set` and `trap` output as dash
/// does: runs of other characters in single quotes (the first always),
/// runs of single quotes in double quotes (`it's` gives `'it'"'"'s'`).
fn quote(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut first = true;
    loop {
        let n = rest.find('\'').unwrap_or(rest.len());
        if n > 0 || first {
            out.push('\'');
            out.push_str(&rest[..n]);
            out.push('\'');
        }
        first = false;
        rest = &rest[n..];
        let q = rest.len() - rest.trim_start_matches('\'').len();
        if q == 0 {
            return out;
        }
        out.push('"');
        out.push_str(&rest[..q]);
        out.push('"');
        rest = &rest[q..];
    }
}

impl Shell {
    /// Runs a builtin; `None` if `argv[0]` is not one.
    pub(super) fn run_builtin(&mut self, argv: &[String]) -> Option<Flow> {
        let args = &argv[1..];
        let r = match argv[0].as_str() {
            ":" | "true" | "wait" => Ok(0),
            "false" => Ok(1),
            "echo" => Ok(self.builtin_echo(args)),
            "printf" => Ok(self.builtin_printf(args)),
            "pwd" => Ok(if self.out(format!("{}\n", self.cwd).as_bytes()) {
                0
            } else {
                1
            }),
            "cd" => Ok(self.builtin_cd(args)),
            "export" | "readonly" => self.builtin_export(args, argv[0] == "export"),
            "unset" => self.builtin_unset(args),
            "set" => self.builtin_set(args),
            "shift" => self.builtin_shift(args),
            "exit" => self.builtin_jump(args, "exit"),
            "return" => self.builtin_jump(args, "return"),
            "break" | "continue" => self.builtin_loop(args, argv[0] == "break"),
            "test" => Ok(self.builtin_test(args, "test")),
            "[" => {
                if args.last().map(String::as_str) != Some("]") {
                    self.err_msg("[: missing ]");
                    Ok(2)
                } else {
                    Ok(self.builtin_test(&args[..args.len() - 1], "["))
                }
            }
            "read" => Ok(self.builtin_read(args)),
            "local" => Ok(self.builtin_local(args)),
            "eval" => self.run_source_text(&args.join(" ")),
            "." | "source" => self.builtin_source(args),
            "command" => self.builtin_command(args),
            "type" => Ok(self.builtin_type(args)),
            "exec" => self.builtin_exec(args),
            "trap" => Ok(self.builtin_trap(args)),
            "getopts" => Ok(self.builtin_getopts(args)),
            "umask" => Ok(if args.is_empty() {
                (!self.out(b"0022\n")) as i32
            } else {
                0
            }),
            _ => return None,
        };
        Some(r)
    }

    /// dash's echo: `-n` only, backslash escapes always interpreted.
    fn builtin_echo(&mut self, args: &[String]) -> i32 {
        let (newline, args) = match args.first() {
            Some(a) if a == "-n" => (false, &args[1..]),
            _ => (true, args),
        };
        let mut out = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let (bytes, stop) = super::printf::unescape(a, true);
            out.extend_from_slice(&bytes);
            if stop {
                return (!self.out(&out)) as i32;
            }
        }
        if newline {
            out.push(b'\n');
        }
        (!self.out(&out)) as i32
    }

    fn builtin_printf(&mut self, args: &[String]) -> i32 {
        let Some(fmt) = args.first() else {
            self.err_msg("printf: usage: printf format [arg ...]");
            return 2;
        };
        let (bytes, errors) = super::printf::format(fmt, &args[1..]);
        let ok = self.out(&bytes);
        for e in &errors {
            self.err_msg(&format!("printf: {e}"));
        }
        if !ok || !errors.is_empty() {
            1
        } else {
            0
        }
    }

    fn builtin_cd(&mut self, args: &[String]) -> i32 {
        let args: Vec<&String> = args.iter().filter(|a| *a != "-L" && *a != "-P").collect();
        let target = match args.first().map(|s| s.as_str()) {
            None => match self.var("HOME") {
                Some(h) => h.to_string(),
                None => {
                    self.err_msg("cd: HOME not set");
                    return 2;
                }
            },
            Some("-") => self.var("OLDPWD").unwrap_or("/").to_string(),
            Some(d) => d.to_string(),
        };
        let new = normalise(&self.abs_path(&target));
        match self.host.metadata(&new) {
            Some(m) if m.kind == FileKind::Dir => {
                let old = std::mem::replace(&mut self.cwd, new.clone());
                self.assign("OLDPWD", &old);
                self.assign("PWD", &new);
                if args.first().map(|s| s.as_str()) == Some("-") {
                    self.out(format!("{new}\n").as_bytes());
                }
                0
            }
            _ => {
                self.err_msg(&format!("cd: can't cd to {target}"));
                2
            }
        }
    }

    /// `export` and `readonly`. Changing a readonly variable is fatal
    /// (status 2), as for every special builtin error in dash.
    fn builtin_export(&mut self, args: &[String], export: bool) -> Flow {
        let kw = if export { "export" } else { "readonly" };
        let names: Vec<&String> = args.iter().filter(|a| *a != "-p").collect();
        if names.is_empty() {
            let mut text = String::new();
            for (k, v) in &self.vars {
                if if export { v.exported } else { v.readonly } {
                    text.push_str(&format!("{kw} {k}={}\n", quote(&v.value)));
                }
            }
            return Ok((!self.out(text.as_bytes())) as i32);
        }
        let mut status = 0;
        for a in names {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a.as_str(), None),
            };
            if !is_name(name) {
                self.err_msg(&format!("{kw}: {name}: bad variable name"));
                status = 2;
                continue;
            }
            if value.is_some() && self.refuse_readonly(&format!("{kw}: "), name) {
                return Err(Ctrl::Exit(2));
            }
            let entry = self.vars.entry(name.to_string()).or_insert(Var {
                value: String::new(),
                exported: false,
                readonly: false,
            });
            if let Some(v) = value {
                entry.value = v.to_string();
            }
            if export {
                entry.exported = true;
            } else {
                entry.readonly = true;
            }
        }
        Ok(status)
    }

    fn builtin_unset(&mut self, args: &[String]) -> Flow {
        let mut functions = false;
        for a in args {
            match a.as_str() {
                "-f" => functions = true,
                "-v" => functions = false,
                name if functions => {
                    self.funcs.remove(name);
                }
                name => {
                    if self.refuse_readonly("unset: ", name) {
                        return Err(Ctrl::Exit(2));
                    }
                    self.vars.remove(name);
                }
            }
        }
        Ok(0)
    }

    fn builtin_set(&mut self, args: &[String]) -> Flow {
        if args.is_empty() {
            let mut text = String::new();
            for (k, v) in &self.vars {
                text.push_str(&format!("{k}={}\n", quote(&v.value)));
            }
            return Ok((!self.out(text.as_bytes())) as i32);
        }
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                self.positional = args[i + 1..].to_vec();
                return Ok(0);
            }
            let on = a.starts_with('-');
            if !(on || a.starts_with('+')) || a.len() < 2 {
                if a == "-" {
                    i += 1;
                }
                self.positional = args[i..].to_vec();
                return Ok(0);
            }
            for c in a[1..].chars() {
                match c {
                    'e' => self.opts.errexit = on,
                    'u' => self.opts.nounset = on,
                    'x' => self.opts.xtrace = on,
                    'f' => self.opts.noglob = on,
                    'o' => {
                        i += 1;
                        let opt = args.get(i).map(String::as_str).unwrap_or("");
                        match opt {
                            "pipefail" => self.opts.pipefail = on,
                            "errexit" => self.opts.errexit = on,
                            "nounset" => self.opts.nounset = on,
                            "xtrace" => self.opts.xtrace = on,
                            "noglob" => self.opts.noglob = on,
                            _ => {
                                self.err_msg(&format!("set: Illegal option -o {opt}"));
                                return Err(Ctrl::Exit(2));
                            }
                        }
                    }
                    'h' | 'v' | 'C' | 'a' | 'b' | 'm' | 'n' => {}
                    _ => {
                        self.err_msg(&format!("set: Illegal option -{c}"));
                        return Err(Ctrl::Exit(2));
                    }
                }
            }
            i += 1;
        }
        Ok(0)
    }

    fn builtin_shift(&mut self, args: &[String]) -> Flow {
        let n = match args.first() {
            None => 1,
            Some(s) => match s.parse::<usize>() {
                Ok(n) => n,
                Err(_) => {
                    self.err_msg(&format!("shift: Illegal number: {s}"));
                    return Err(Ctrl::Exit(2));
                }
            },
        };
        if n > self.positional.len() {
            self.err_msg("shift: can't shift that many");
            return Err(Ctrl::Exit(2));
        }
        self.positional.drain(..n);
        Ok(0)
    }

    fn builtin_jump(&mut self, args: &[String], what: &str) -> Flow {
        let status = match args.first() {
            None => self.status,
            Some(s) => match parse_status(s) {
                Some(n) => n,
                None => {
                    self.err_msg(&format!("{what}: Illegal number: {s}"));
                    return Err(Ctrl::Exit(2));
                }
            },
        };
        if what == "exit" || (self.locals.is_empty() && self.sourcing == 0) {
            Err(Ctrl::Exit(status))
        } else {
            Err(Ctrl::Return(status))
        }
    }

    fn builtin_loop(&mut self, args: &[String], is_break: bool) -> Flow {
        let n = match args.first() {
            None => 1,
            Some(s) => match s.parse::<usize>().ok().filter(|n| *n > 0) {
                Some(n) => n,
                None => {
                    self.err_msg(&format!("break: Illegal number: {s}"));
                    return Err(Ctrl::Exit(2));
                }
            },
        };
        if self.loop_depth == 0 {
            return Ok(0);
        }
        let n = n.min(self.loop_depth);
        Err(if is_break {
            Ctrl::Break(n)
        } else {
            Ctrl::Continue(n)
        })
    }

    /// Reads one byte at a time so that the rest of stdin stays for others.
    fn builtin_read(&mut self, args: &[String]) -> i32 {
        let mut raw = false;
        let mut names = Vec::new();
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "-r" if names.is_empty() => raw = true,
                "-p" if names.is_empty() => {
                    i += 1;
                    if let Some(p) = args.get(i) {
                        let _ = self.out_fd(2).write_all(p.as_bytes());
                    }
                }
                n => names.push(n.to_string()),
            }
            i += 1;
        }
        if names.is_empty() {
            names.push("REPLY".into());
        }
        let input = self.stdin();
        // (char, escaped) pairs of the line.
        let mut line: Vec<(char, bool)> = Vec::new();
        let mut bytes = Vec::new();
        let mut got_newline = false;
        let mut escape = false;
        let mut buf = [0u8; 1];
        while let Ok(1) = input.read(&mut buf) {
            let b = buf[0];
            if escape {
                escape = false;
                if b == b'\n' {
                    continue;
                }
                bytes.push(b);
                line.extend(String::from_utf8_lossy(&bytes).chars().map(|c| (c, true)));
                bytes.clear();
                continue;
            }
            if b == b'\n' {
                got_newline = true;
                break;
            }
            if b == b'\\' && !raw {
                escape = true;
                continue;
            }
            bytes.push(b);
            if std::str::from_utf8(&bytes).is_ok() || bytes.len() >= 4 {
                line.extend(String::from_utf8_lossy(&bytes).chars().map(|c| (c, false)));
                bytes.clear();
            }
        }
        line.extend(String::from_utf8_lossy(&bytes).chars().map(|c| (c, false)));
        let ifs = self.var("IFS").unwrap_or(" \t\n").to_string();
        let values = split_read_line(&line, &ifs, names.len());
        for (k, name) in names.iter().enumerate() {
            let v = values.get(k).cloned().unwrap_or_default();
            if is_name(name) {
                if self.refuse_readonly("read: ", name) {
                    return 2;
                }
                self.assign(name, &v);
            } else {
                self.err_msg(&format!("read: {name}: bad variable name"));
                return 2;
            }
        }
        if got_newline {
            0
        } else {
            1
        }
    }

    fn builtin_local(&mut self, args: &[String]) -> i32 {
        if self.locals.is_empty() {
            self.err_msg("local: not in a function");
            return 2;
        }
        for a in args {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a.as_str(), None),
            };
            if !is_name(name) {
                self.err_msg(&format!("local: {name}: bad variable name"));
                return 2;
            }
            if self.refuse_readonly("local: ", name) {
                return 2;
            }
            let old = self.vars.get(name).cloned();
            if let Some(frame) = self.locals.last_mut() {
                if !frame.iter().any(|(n, _)| n == name) {
                    frame.push((name.to_string(), old));
                }
            }
            if let Some(v) = value {
                self.assign(name, v);
            }
        }
        0
    }

    /// Parses and runs text in the current shell (`eval`, `.`).
    fn run_source_text(&mut self, text: &str) -> Flow {
        match parser::parse(text) {
            Ok(list) => {
                self.enter_nest("eval")?;
                let r = self.run_list_in_place(&list);
                self.nest -= 1;
                r
            }
            Err(e) => {
                self.err_msg(&e.to_string());
                Ok(2)
            }
        }
    }

    fn run_list_in_place(&mut self, list: &List) -> Flow {
        if list.0.is_empty() {
            return Ok(0);
        }
        self.run_list(list)
    }

    fn builtin_source(&mut self, args: &[String]) -> Flow {
        let Some(file) = args.first() else {
            self.err_msg(".: filename argument required");
            return Ok(2);
        };
        let path = self.abs_path(file);
        let text = self.host.open_read(&path).and_then(|mut r| {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut s).map(|_| s)
        });
        match text {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                // `return` in the file ends the `.` command only.
                self.sourcing += 1;
                let r = self.run_source_text(&text);
                self.sourcing -= 1;
                match r {
                    Err(Ctrl::Return(s)) => Ok(s),
                    r => r,
                }
            }
            Err(_) => {
                self.err_msg(&format!(".: cannot open {file}"));
                Err(Ctrl::Exit(2))
            }
        }
    }

    /// How `name` would run, for `command -v` and `type`.
    fn describe(&self, name: &str) -> Option<(String, String)> {
        if KEYWORDS.contains(&name) {
            return Some((name.into(), format!("{name} is a shell keyword")));
        }
        if self.funcs.contains_key(name) {
            return Some((name.into(), format!("{name} is a shell function")));
        }
        if is_builtin(name) {
            return Some((name.into(), format!("{name} is a shell builtin")));
        }
        let env = self.exported_env();
        self.host
            .find_program(name, &env)
            .map(|p| (p.clone(), format!("{name} is {p}")))
    }

    fn builtin_command(&mut self, args: &[String]) -> Flow {
        let mut verbose = None;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-v" => verbose = Some(false),
                "-V" => verbose = Some(true),
                "-p" => {}
                "--" => {
                    i += 1;
                    break;
                }
                _ => break,
            }
            i += 1;
        }
        let rest = &args[i.min(args.len())..];
        if let Some(long) = verbose {
            let mut status = 0;
            for name in rest {
                match self.describe(name) {
                    Some((short, desc)) => {
                        let line = if long { desc } else { short };
                        self.out(format!("{line}\n").as_bytes());
                    }
                    None => {
                        if long {
                            self.err_msg(&format!("command: {name}: not found"));
                        }
                        status = 127;
                    }
                }
            }
            return Ok(if status != 0 && !long { 1 } else { status });
        }
        if rest.is_empty() {
            return Ok(0);
        }
        if is_builtin(&rest[0]) {
            return self.run_builtin(rest).unwrap_or(Ok(0));
        }
        Ok(self.spawn_external(rest, &[]))
    }

    fn builtin_type(&mut self, args: &[String]) -> i32 {
        let mut status = 0;
        for name in args {
            match self.describe(name) {
                Some((_, desc)) => {
                    self.out(format!("{desc}\n").as_bytes());
                }
                None => {
                    self.out(format!("{name}: not found\n").as_bytes());
                    status = 127;
                }
            }
        }
        status
    }

    fn builtin_exec(&mut self, args: &[String]) -> Flow {
        if args.is_empty() {
            // Redirections of `exec` alone stay: callers restore the saved
            // table, so forget it by marking the current table as the base.
            self.keep_redirects = true;
            return Ok(0);
        }
        let status = if let Some(body) = self.funcs.get(&args[0]).cloned() {
            self.call_function(&body, args)?
        } else if is_builtin(&args[0]) {
            self.run_builtin(args).unwrap_or(Ok(0))?
        } else {
            self.spawn_external(args, &[])
        };
        Err(Ctrl::Exit(status))
    }

    /// `trap`: only EXIT (or 0) has an effect (kiln has no signals); an
    /// empty action is kept (listed, runs nothing), `-` resets. Without an
    /// action it lists the trap as dash does.
    fn builtin_trap(&mut self, args: &[String]) -> i32 {
        let args = match args.first() {
            Some(a) if a == "--" => &args[1..],
            _ => args,
        };
        match args {
            [] => match &self.exit_trap {
                Some(action) => {
                    (!self.out(format!("trap -- {} EXIT\n", quote(action)).as_bytes())) as i32
                }
                None => 0,
            },
            [action, signals @ ..] if !signals.is_empty() => {
                for s in signals {
                    if s == "EXIT" || s == "0" {
                        self.exit_trap = if action == "-" {
                            None
                        } else {
                            Some(action.clone())
                        };
                    }
                }
                0
            }
            _ => 0,
        }
    }
}

/// Splits a `read` line into at most `n` fields; the last takes the rest.
fn split_read_line(line: &[(char, bool)], ifs: &str, n: usize) -> Vec<String> {
    let is_ws = |c: char| ifs.contains(c) && matches!(c, ' ' | '\t' | '\n');
    let is_sep = |(c, esc): (char, bool)| !esc && ifs.contains(c);
    let mut out = Vec::new();
    let mut i = 0;
    // skip leading IFS whitespace
    while i < line.len() && !line[i].1 && is_ws(line[i].0) {
        i += 1;
    }
    while i < line.len() {
        if out.len() + 1 == n {
            // last variable: the rest, minus trailing IFS whitespace
            let mut end = line.len();
            while end > i && !line[end - 1].1 && is_ws(line[end - 1].0) {
                end -= 1;
            }
            out.push(line[i..end].iter().map(|p| p.0).collect());
            return out;
        }
        let start = i;
        while i < line.len() && !is_sep(line[i]) {
            i += 1;
        }
        out.push(line[start..i].iter().map(|p| p.0).collect());
        // consume one separator with surrounding whitespace
        while i < line.len() && !line[i].1 && is_ws(line[i].0) {
            i += 1;
        }
        if i < line.len() && is_sep(line[i]) && !is_ws(line[i].0) {
            i += 1;
            while i < line.len() && !line[i].1 && is_ws(line[i].0) {
                i += 1;
            }
        }
    }
    out
}
