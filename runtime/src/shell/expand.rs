//! Word expansion: tilde, parameters, command substitution, arithmetic,
//! field splitting, pathname expansion and quote removal, in POSIX order.

use std::sync::{Arc, Mutex};

use super::arith::{self, ArithVars};
use super::ast::{List, Param, ParamOp, Word, WordPart};
use super::host::{FileKind, Output};
use super::pattern::{PatChar, Pattern};
use super::{Ctrl, Fd, Shell};

/// Fields being built; each character remembers whether it was quoted.
struct Fields {
    done: Vec<Vec<PatChar>>,
    cur: Vec<PatChar>,
    /// The current field exists even if empty (e.g. `""`).
    started: bool,
    /// IFS whitespace was seen: the next character starts a new field.
    pending_break: bool,
    /// `None`: no field splitting (assignments, `case`, here-documents).
    ifs: Option<String>,
    /// Inside the word of an unquoted `${x:-word}` / `${x:+word}`: its
    /// unquoted literal text is part of the expansion's result, so it is
    /// split like the rest (`${x:+-v -x}` gives two fields).
    split_lits: bool,
}

impl Fields {
    fn new(ifs: Option<String>) -> Fields {
        Fields {
            done: Vec::new(),
            cur: Vec::new(),
            started: false,
            pending_break: false,
            ifs,
            split_lits: false,
        }
    }

    fn flush_pending(&mut self) {
        if self.pending_break {
            self.pending_break = false;
            self.finish_field();
        }
    }

    fn finish_field(&mut self) {
        self.done.push(std::mem::take(&mut self.cur));
        self.started = false;
    }

    fn soft_break(&mut self) {
        self.pending_break = false;
        if self.started || !self.cur.is_empty() {
            self.finish_field();
        }
    }

    /// Source text: literal (unquoted: globbable) or quoted.
    fn push_text(&mut self, s: &str, quoted: bool) {
        if s.is_empty() && !quoted {
            return;
        }
        self.flush_pending();
        self.started = true;
        self.cur.extend(s.chars().map(|c| (c, quoted)));
    }

    /// The result of an expansion: split on IFS unless quoted.
    fn push_expansion(&mut self, s: &str, quoted: bool) {
        let ifs = match (&self.ifs, quoted) {
            (Some(ifs), false) => ifs.clone(),
            _ => return self.push_text(s, quoted),
        };
        for c in s.chars() {
            if ifs.contains(c) {
                if c == ' ' || c == '\t' || c == '\n' {
                    if self.started || !self.cur.is_empty() {
                        self.pending_break = true;
                    }
                } else {
                    self.pending_break = false;
                    self.finish_field();
                }
            } else {
                self.flush_pending();
                self.started = true;
                self.cur.push((c, false));
            }
        }
    }

    fn finish(mut self) -> Vec<Vec<PatChar>> {
        if self.started || !self.cur.is_empty() {
            self.done.push(self.cur);
        }
        self.done
    }
}

/// A `Write` target collecting command substitution output.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ShellVars<'a>(&'a mut Shell);

impl ArithVars for ShellVars<'_> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.0.var(name).map(str::to_string)
    }
    fn set_var(&mut self, name: &str, value: i64) -> Result<(), String> {
        if self.0.vars.get(name).is_some_and(|v| v.readonly) {
            return Err(format!("{name}: is read only"));
        }
        self.0.assign(name, &value.to_string());
        Ok(())
    }
}

fn chars_to_string(chars: &[PatChar]) -> String {
    chars.iter().map(|p| p.0).collect()
}

impl Shell {
    /// Full expansion of command words: splitting and globbing.
    pub(super) fn expand_words(&mut self, words: &[Word]) -> Result<Vec<String>, Ctrl> {
        let mut out = Vec::new();
        for w in words {
            let ifs = self.var("IFS").unwrap_or(" \t\n").to_string();
            let mut fields = Fields::new(Some(ifs));
            self.expand_parts(&w.0, false, &mut fields)?;
            for field in fields.finish() {
                out.extend(self.glob_field(&field));
            }
        }
        Ok(out)
    }

    /// Expansion to a single string, without splitting or globbing.
    pub(super) fn expand_string(&mut self, word: &Word) -> Result<String, Ctrl> {
        let mut fields = Fields::new(None);
        self.expand_parts(&word.0, false, &mut fields)?;
        let parts: Vec<String> = fields.finish().iter().map(|f| chars_to_string(f)).collect();
        Ok(parts.join(" "))
    }

    /// Expansion to a pattern: quoted characters stay literal.
    pub(super) fn expand_pattern(&mut self, word: &Word) -> Result<Pattern, Ctrl> {
        let mut fields = Fields::new(None);
        self.expand_parts(&word.0, false, &mut fields)?;
        let chars: Vec<PatChar> = fields.finish().concat();
        Ok(Pattern::new(&chars))
    }

    /// Expands word parts into `out`; recursive through `${x:-word}`, so it
    /// makes sure of stack first (see [`super::nesting::grow`]).
    fn expand_parts(
        &mut self,
        parts: &[WordPart],
        in_dq: bool,
        out: &mut Fields,
    ) -> Result<(), Ctrl> {
        super::nesting::grow(|| self.expand_parts_here(parts, in_dq, out))
    }

    fn expand_parts_here(
        &mut self,
        parts: &[WordPart],
        in_dq: bool,
        out: &mut Fields,
    ) -> Result<(), Ctrl> {
        for part in parts {
            match part {
                WordPart::Lit(s) if out.split_lits && !in_dq => out.push_expansion(s, false),
                WordPart::Lit(s) => out.push_text(s, in_dq),
                WordPart::Quoted(s) => out.push_text(s, true),
                WordPart::DQuoted(inner) => {
                    let only_at = matches!(inner.as_slice(),
                        [WordPart::Param(p)] if p.name == "@" && p.op == ParamOp::Plain);
                    if !only_at {
                        out.push_text("", true);
                    }
                    self.expand_parts(inner, true, out)?;
                }
                WordPart::Tilde(user) => {
                    if user.is_empty() {
                        let home = self.var("HOME").unwrap_or("/").to_string();
                        out.push_text(&home, true);
                    } else {
                        out.push_text(&format!("~{user}"), in_dq);
                    }
                }
                WordPart::Param(p) => self.expand_param(p, in_dq, out)?,
                WordPart::CmdSub(list) => {
                    let s = self.command_subst(list)?;
                    out.push_expansion(&s, in_dq);
                }
                WordPart::Arith(w) => {
                    let text = self.expand_string(w)?;
                    match arith::eval(&text, &mut ShellVars(self)) {
                        Ok(v) => out.push_expansion(&v.to_string(), in_dq),
                        Err(e) => {
                            self.err_msg(&e);
                            return Err(Ctrl::Exit(2));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The value of a parameter, `None` when unset.
    pub(super) fn param_value(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "#" => Some(self.positional.len().to_string()),
            "$" => Some("1".into()),
            "!" => None,
            "-" => {
                let mut s = String::new();
                for (on, c) in [
                    (self.opts.errexit, 'e'),
                    (self.opts.noglob, 'f'),
                    (self.opts.nounset, 'u'),
                    (self.opts.xtrace, 'x'),
                ] {
                    if on {
                        s.push(c);
                    }
                }
                Some(s)
            }
            "@" | "*" => Some(self.positional.join(" ")),
            "0" => Some(self.arg0.clone()),
            n if n.bytes().all(|b| b.is_ascii_digit()) => {
                let i: usize = n.parse().ok()?;
                self.positional.get(i.checked_sub(1)?).cloned()
            }
            n => self.var(n).map(str::to_string),
        }
    }

    fn expand_param(&mut self, p: &Param, in_dq: bool, out: &mut Fields) -> Result<(), Ctrl> {
        let is_list = p.name == "@" || p.name == "*";
        let value = if is_list && self.positional.is_empty() {
            None
        } else {
            self.param_value(&p.name)
        };
        let is_set = value.is_some() || is_list;
        let null = value.as_deref().is_none_or(str::is_empty);
        let test_unset = |colon: bool| if colon { null } else { !is_set };
        match &p.op {
            ParamOp::Plain => {
                if !is_set && self.opts.nounset {
                    return self.unset_error(&p.name);
                }
                if is_list {
                    return self.expand_positional(&p.name, in_dq, out);
                }
                out.push_expansion(&value.unwrap_or_default(), in_dq);
            }
            ParamOp::Length => {
                if !is_set && self.opts.nounset {
                    return self.unset_error(&p.name);
                }
                let n = if is_list {
                    self.positional.len()
                } else {
                    value.unwrap_or_default().chars().count()
                };
                out.push_expansion(&n.to_string(), in_dq);
            }
            ParamOp::Default(colon, w) => {
                if test_unset(*colon) {
                    self.expand_word_of_param(w, in_dq, out)?;
                } else if is_list {
                    self.expand_positional(&p.name, in_dq, out)?;
                } else {
                    out.push_expansion(&value.unwrap_or_default(), in_dq);
                }
            }
            ParamOp::Assign(colon, w) => {
                if test_unset(*colon) {
                    let v = self.expand_string(w)?;
                    if is_list || !super::parser::is_name(&p.name) {
                        self.err_msg(&format!("{}: bad variable name", p.name));
                        return Err(Ctrl::Exit(2));
                    }
                    self.set_var(&p.name, &v)?;
                    out.push_expansion(&v, in_dq);
                } else {
                    out.push_expansion(&value.unwrap_or_default(), in_dq);
                }
            }
            ParamOp::Error(colon, w) => {
                if test_unset(*colon) {
                    let msg = self.expand_string(w)?;
                    let msg = if msg.is_empty() {
                        if *colon && is_set {
                            "parameter null or not set".to_string()
                        } else {
                            "parameter not set".to_string()
                        }
                    } else {
                        msg
                    };
                    self.err_msg(&format!("{}: {msg}", p.name));
                    return Err(Ctrl::Exit(2));
                }
                if is_list {
                    self.expand_positional(&p.name, in_dq, out)?;
                } else {
                    out.push_expansion(&value.unwrap_or_default(), in_dq);
                }
            }
            ParamOp::Alt(colon, w) => {
                if !test_unset(*colon) {
                    self.expand_word_of_param(w, in_dq, out)?;
                } else if in_dq {
                    out.push_text("", true);
                }
            }
            ParamOp::TrimPrefix(longest, w) | ParamOp::TrimSuffix(longest, w) => {
                if !is_set && self.opts.nounset {
                    return self.unset_error(&p.name);
                }
                let pat = self.expand_pattern(w)?;
                let v = value.unwrap_or_default();
                let r = if matches!(p.op, ParamOp::TrimPrefix(..)) {
                    pat.trim_prefix(&v, *longest)
                } else {
                    pat.trim_suffix(&v, *longest)
                };
                out.push_expansion(&r, in_dq);
            }
        }
        Ok(())
    }

    /// The word of `${x:-word}` or `${x:+word}` in place of the parameter.
    fn expand_word_of_param(
        &mut self,
        w: &Word,
        in_dq: bool,
        out: &mut Fields,
    ) -> Result<(), Ctrl> {
        let saved = out.split_lits;
        out.split_lits = !in_dq;
        let r = self.expand_parts(&w.0, in_dq, out);
        out.split_lits = saved;
        r
    }

    fn unset_error(&self, name: &str) -> Result<(), Ctrl> {
        self.err_msg(&format!("{name}: parameter not set"));
        Err(Ctrl::Exit(2))
    }

    /// `$@`, `$*`, `"$@"`, `"$*"`.
    fn expand_positional(&mut self, name: &str, in_dq: bool, out: &mut Fields) -> Result<(), Ctrl> {
        let params = self.positional.clone();
        if in_dq && name == "*" {
            let sep = self
                .var("IFS")
                .map(|s| s.chars().next().map(String::from).unwrap_or_default())
                .unwrap_or_else(|| " ".into());
            out.push_text(&params.join(&sep), true);
            return Ok(());
        }
        if out.ifs.is_none() {
            out.push_text(&params.join(" "), in_dq);
            return Ok(());
        }
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                if in_dq {
                    out.pending_break = false;
                    out.finish_field();
                } else {
                    out.soft_break();
                }
            }
            if in_dq {
                out.push_text(p, true);
            } else {
                out.push_expansion(p, false);
            }
        }
        Ok(())
    }

    /// Runs `$( )` in a subshell and returns its output minus trailing newlines.
    pub(super) fn command_subst(&mut self, list: &List) -> Result<String, Ctrl> {
        let buf = Buffer::default();
        self.enter_nest("command substitution")?;
        let mut sub = self.subshell();
        sub.fds[1] = Some(Fd::Out(Output::from_writer(buf.clone())));
        let r = sub.run_list(list);
        let status = sub.end_subshell(r);
        drop(sub);
        self.nest -= 1;
        self.subst_status = Some(status);
        self.status = status;
        let bytes = buf.0.lock().map(|b| b.clone()).unwrap_or_default();
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        while s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// Pathname expansion of one field; the field itself when nothing matches.
    fn glob_field(&self, field: &[PatChar]) -> Vec<String> {
        let literal = chars_to_string(field);
        let has_meta = field
            .iter()
            .any(|(c, q)| !q && matches!(c, '*' | '?' | '['));
        if self.opts.noglob || !has_meta {
            return vec![literal];
        }
        let components: Vec<&[PatChar]> = field.split(|(c, _)| *c == '/').collect();
        let absolute = literal.starts_with('/');
        // Each candidate is the path as the user will see it.
        let mut paths: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
        let n = components.len();
        for (i, comp) in components.iter().enumerate() {
            if comp.is_empty() {
                if i == 0 {
                    continue;
                }
                if i == n - 1 {
                    // trailing slash: keep directories only
                    paths.retain(|p| {
                        self.host
                            .metadata(&self.abs_path(if p.is_empty() { "." } else { p }))
                            .is_some_and(|m| m.kind == FileKind::Dir)
                    });
                    continue;
                }
                continue;
            }
            let pat = Pattern::new(comp);
            let join = |p: &str, name: &str| {
                if p.is_empty() {
                    name.to_string()
                } else if p.ends_with('/') {
                    format!("{p}{name}")
                } else {
                    format!("{p}/{name}")
                }
            };
            let mut next = Vec::new();
            if pat.has_wildcards() {
                for p in &paths {
                    let dir = self.abs_path(if p.is_empty() { "." } else { p });
                    let Ok(mut names) = self.host.read_dir(&dir) else {
                        continue;
                    };
                    names.sort();
                    for name in names {
                        if name.starts_with('.') && !pat.starts_with_dot() {
                            continue;
                        }
                        if pat.matches(&name) {
                            next.push(join(p, &name));
                        }
                    }
                }
            } else {
                let name = chars_to_string(comp);
                for p in &paths {
                    let candidate = join(p, &name);
                    if self
                        .host
                        .symlink_metadata(&self.abs_path(&candidate))
                        .is_some()
                    {
                        next.push(candidate);
                    }
                }
            }
            paths = next;
            if paths.is_empty() {
                break;
            }
        }
        if literal.ends_with('/') {
            for p in &mut paths {
                if !p.ends_with('/') {
                    p.push('/');
                }
            }
        }
        if paths.is_empty() {
            return vec![literal];
        }
        paths.sort();
        paths
    }
}
