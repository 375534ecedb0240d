//! Running commands: lists, pipelines, compound commands, simple commands,
//! redirections and external programs through the host.

use std::io::{self, Cursor};
use std::sync::Arc;

use super::ast::*;
use super::host::{Input, OpenMode, Output, Stdio};
use super::{nesting, Ctrl, Fd, Flow, Shell, Var};

/// Exit status of a script the host interrupted (like timeout(1)).
const INTERRUPTED: i32 = 124;

/// Builtins whose variable assignments persist (POSIX special builtins).
const SPECIAL_BUILTINS: &[&str] = &[
    ":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly", "return", "set",
    "shift", "trap", "unset",
];

/// File descriptors replaced by a redirection, to put back afterwards.
pub(super) type SavedFds = Vec<(usize, Option<Fd>)>;

impl Shell {
    pub(super) fn run_list(&mut self, list: &List) -> Flow {
        let mut status = 0;
        for item in &list.0 {
            status = self.run_and_or(item)?;
        }
        Ok(status)
    }

    /// Runs `f` with `in_condition` set as given, restoring it afterwards.
    pub(super) fn with_condition<T>(&mut self, cond: bool, f: impl FnOnce(&mut Shell) -> T) -> T {
        let saved = self.in_condition;
        self.in_condition = saved || cond;
        let r = f(self);
        self.in_condition = saved;
        r
    }

    fn run_and_or(&mut self, ao: &AndOr) -> Flow {
        let n = ao.rest.len();
        let mut status = self.with_condition(n > 0, |sh| sh.run_pipeline(&ao.first))?;
        for (i, (op, p)) in ao.rest.iter().enumerate() {
            let run = match op {
                AndOrOp::And => status == 0,
                AndOrOp::Or => status != 0,
            };
            if run {
                status = self.with_condition(i + 1 < n, |sh| sh.run_pipeline(p))?;
            }
        }
        Ok(status)
    }

    fn run_pipeline(&mut self, p: &Pipeline) -> Flow {
        let status = if p.commands.len() == 1 {
            let cmd = &p.commands[0];
            if p.negated {
                self.with_condition(true, |sh| sh.run_command(cmd))?
            } else {
                self.run_command(cmd)?
            }
        } else {
            let statuses = self.with_condition(p.negated, |sh| sh.run_stages(&p.commands));
            if self.opts.pipefail {
                statuses
                    .iter()
                    .rev()
                    .find(|s| **s != 0)
                    .copied()
                    .unwrap_or(0)
            } else {
                statuses.last().copied().unwrap_or(0)
            }
        };
        let status = if p.negated {
            (status == 0) as i32
        } else {
            status
        };
        self.status = status;
        // Like dash, -e looks at simple commands, subshells and pipelines,
        // not at the status of other compound commands.
        let checks_errexit = p.commands.len() > 1
            || matches!(&p.commands[0], Command::Simple(_))
            || matches!(&p.commands[0], Command::Compound(c, _) if matches!(**c, Compound::Subshell(_)));
        if status != 0 && !p.negated && self.opts.errexit && !self.in_condition && checks_errexit {
            return Err(Ctrl::Exit(status));
        }
        Ok(status)
    }

    /// Runs pipeline stages concurrently, each in a subshell on its own
    /// thread, joined by OS pipes. The threads come out of the step's
    /// budget: a pipeline that would exceed it fails (status 2).
    fn run_stages(&mut self, commands: &[Command]) -> Vec<i32> {
        let n = commands.len();
        let Some(_threads) = self.threads.take(n) else {
            self.err_msg(&format!("pipeline: {}", nesting::too_many_threads()));
            return vec![2];
        };
        let mut shells = Vec::with_capacity(n);
        let mut next_in: Option<Input> = None;
        for i in 0..n {
            // Like `( )`, a stage keeps the loop depth: `break` in it ends
            // the stage (dash).
            let mut sub = self.subshell();
            if let Some(input) = next_in.take() {
                sub.fds[0] = Some(Fd::In(input));
            }
            if i + 1 < n {
                match io::pipe() {
                    Ok((r, w)) => {
                        sub.fds[1] = Some(Fd::Out(Output::Pipe(Arc::new(w))));
                        next_in = Some(Input::Pipe(Arc::new(r)));
                    }
                    Err(e) => {
                        self.err_msg(&format!("cannot create pipe: {e}"));
                        return vec![1];
                    }
                }
            }
            shells.push(sub);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = shells
                .into_iter()
                .zip(commands)
                .map(|(mut sub, cmd)| {
                    std::thread::Builder::new()
                        .name("kiln-sh-stage".into())
                        .stack_size(super::STACK_SIZE)
                        .spawn_scoped(scope, move || {
                            nesting::mark_shell_thread();
                            let r = sub.run_command(cmd);
                            sub.end_subshell(r)
                        })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or(1),
                    Err(_) => 1,
                })
                .collect()
        })
    }

    /// Runs one command: the executor's recursive entry point, so it makes
    /// sure of stack for one more level (see [`nesting::grow`]).
    pub(super) fn run_command(&mut self, cmd: &Command) -> Flow {
        nesting::grow(|| self.run_command_here(cmd))
    }

    fn run_command_here(&mut self, cmd: &Command) -> Flow {
        match cmd {
            Command::Simple(sc) => self.run_simple(sc),
            Command::FuncDef(name, body) => {
                self.funcs.insert(name.clone(), Arc::clone(body));
                Ok(0)
            }
            Command::Compound(c, redirects) => {
                let Some(saved) = self.apply_redirects(redirects)? else {
                    return Ok(1);
                };
                let r = self.run_compound(c);
                self.restore_fds(saved);
                r
            }
        }
    }

    fn run_compound(&mut self, c: &Compound) -> Flow {
        match c {
            Compound::Brace(list) => self.run_list(list),
            Compound::Subshell(list) => {
                // `break`/`continue` inside end the subshell (as in dash),
                // so it keeps the loop depth.
                let mut sub = self.subshell();
                let r = sub.run_list(list);
                Ok(sub.end_subshell(r))
            }
            Compound::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    if self.with_condition(true, |sh| sh.run_list(cond))? == 0 {
                        return self.run_list(body);
                    }
                }
                match otherwise {
                    Some(body) => self.run_list(body),
                    None => Ok(0),
                }
            }
            Compound::While { until, cond, body } => {
                let mut status = 0;
                self.loop_depth += 1;
                let r = loop {
                    if let Some(why) = self.host.interrupted() {
                        self.err_msg(&why);
                        break Err(Ctrl::Exit(INTERRUPTED));
                    }
                    let c = match self.with_condition(true, |sh| sh.run_list(cond)) {
                        Ok(c) => c,
                        Err(Ctrl::Break(n)) => break self.loop_break(n, status),
                        Err(Ctrl::Continue(n)) if n <= 1 => continue,
                        Err(Ctrl::Continue(n)) => break Err(Ctrl::Continue(n - 1)),
                        Err(e) => break Err(e),
                    };
                    if (c == 0) == *until {
                        break Ok(status);
                    }
                    match self.run_list(body) {
                        Ok(s) => status = s,
                        Err(Ctrl::Break(n)) => break self.loop_break(n, 0),
                        Err(Ctrl::Continue(n)) if n <= 1 => status = 0,
                        Err(Ctrl::Continue(n)) => break Err(Ctrl::Continue(n - 1)),
                        Err(e) => break Err(e),
                    }
                };
                self.loop_depth -= 1;
                r
            }
            Compound::For { var, items, body } => {
                let values = match items {
                    Some(words) => self.expand_words(words)?,
                    None => self.positional.clone(),
                };
                let mut status = 0;
                self.loop_depth += 1;
                let mut r = Ok(0);
                for v in values {
                    if let Some(why) = self.host.interrupted() {
                        self.err_msg(&why);
                        r = Err(Ctrl::Exit(INTERRUPTED));
                        break;
                    }
                    if let Err(e) = self.set_var(var, &v) {
                        r = Err(e);
                        break;
                    }
                    match self.run_list(body) {
                        Ok(s) => status = s,
                        Err(Ctrl::Break(n)) => {
                            r = self.loop_break(n, 0);
                            status = 0;
                            break;
                        }
                        Err(Ctrl::Continue(n)) if n <= 1 => status = 0,
                        Err(Ctrl::Continue(n)) => {
                            r = Err(Ctrl::Continue(n - 1));
                            break;
                        }
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                self.loop_depth -= 1;
                r.map(|_| status)
            }
            Compound::Case { word, arms } => {
                let subject = self.expand_string(word)?;
                for arm in arms {
                    for pat in &arm.patterns {
                        if self.expand_pattern(pat)?.matches(&subject) {
                            return self.run_list(&arm.body);
                        }
                    }
                }
                Ok(0)
            }
        }
    }

    fn loop_break(&self, n: usize, status: i32) -> Flow {
        if n <= 1 {
            Ok(status)
        } else {
            Err(Ctrl::Break(n - 1))
        }
    }

    /// Sets a variable, keeping its export flag; a readonly variable keeps
    /// its value (callers that must fail use [`Shell::set_var`]).
    pub(super) fn assign(&mut self, name: &str, value: &str) {
        if !self.vars.get(name).is_some_and(|v| v.readonly) {
            self.set_var_raw(name, value);
        }
    }

    /// Whether `name` is a readonly variable; if so, says so on stderr
    /// (`sh: PREFIXname: is read only`).
    pub(super) fn refuse_readonly(&self, prefix: &str, name: &str) -> bool {
        let ro = self.vars.get(name).is_some_and(|v| v.readonly);
        if ro {
            self.err_msg(&format!("{prefix}{name}: is read only"));
        }
        ro
    }

    /// An assignment (`x=v`, `for x`, `${x=v}`): assigning a readonly
    /// variable is a fatal error (status 2), as in dash.
    pub(super) fn set_var(&mut self, name: &str, value: &str) -> Result<(), Ctrl> {
        if self.refuse_readonly("", name) {
            return Err(Ctrl::Exit(2));
        }
        self.assign(name, value);
        Ok(())
    }

    fn run_simple(&mut self, sc: &SimpleCommand) -> Flow {
        self.subst_status = None;
        let argv = self.expand_words(&sc.words)?;
        let mut assigns = Vec::with_capacity(sc.assigns.len());
        // Assignments are expanded left to right after the words, and later
        // ones see earlier ones even before a command (`b=$a c=$b cmd`: c
        // gets the new b), as in dash; before a command they are undone
        // here and applied again for the command alone.
        let mut saved: Vec<(String, Option<Var>)> = Vec::new();
        let mut failed = None;
        for (name, w) in &sc.assigns {
            let v = match self.expand_string(w) {
                Ok(v) => v,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if !argv.is_empty() {
                saved.push((name.clone(), self.vars.get(name).cloned()));
            }
            if let Err(e) = self.set_var(name, &v) {
                failed = Some(e);
                break;
            }
            assigns.push((name.clone(), v));
        }
        self.restore_vars(saved);
        if let Some(e) = failed {
            return Err(e);
        }
        if self.opts.xtrace {
            let mut line = String::from("+");
            for (k, v) in &assigns {
                line.push_str(&format!(" {k}={v}"));
            }
            for a in &argv {
                line.push(' ');
                line.push_str(a);
            }
            line.push('\n');
            let _ = self.out_fd(2).write_all(line.as_bytes());
        }
        if argv.is_empty() {
            let status = self.subst_status.unwrap_or(0);
            let Some(saved) = self.apply_redirects(&sc.redirects)? else {
                return Ok(1);
            };
            self.restore_fds(saved);
            return Ok(status);
        }
        let Some(saved) = self.apply_redirects(&sc.redirects)? else {
            return Ok(1);
        };
        let r = self.dispatch(&argv, &assigns);
        if self.broken_pipe.get() {
            // What SIGPIPE does to a shell writing into a closed pipe.
            self.restore_fds(saved);
            return Err(Ctrl::Exit(141));
        }
        if std::mem::take(&mut self.keep_redirects) {
            return r;
        }
        self.restore_fds(saved);
        r
    }

    fn dispatch(&mut self, argv: &[String], assigns: &[(String, String)]) -> Flow {
        let name = argv[0].as_str();
        if SPECIAL_BUILTINS.contains(&name) {
            for (k, v) in assigns {
                self.assign(k, v);
            }
            return self.run_builtin(argv).unwrap_or(Ok(0));
        }
        if let Some(body) = self.funcs.get(name).cloned() {
            return self.with_temp_assigns(assigns, |sh| sh.call_function(&body, argv));
        }
        if super::builtins::is_builtin(name) {
            return self.with_temp_assigns(assigns, |sh| sh.run_builtin(argv).unwrap_or(Ok(0)));
        }
        Ok(self.spawn_external(argv, assigns))
    }

    /// Runs `f` with variables temporarily set (and exported).
    fn with_temp_assigns(
        &mut self,
        assigns: &[(String, String)],
        f: impl FnOnce(&mut Shell) -> Flow,
    ) -> Flow {
        let saved: Vec<(String, Option<Var>)> = assigns
            .iter()
            .map(|(k, _)| (k.clone(), self.vars.get(k).cloned()))
            .collect();
        for (k, v) in assigns {
            self.vars.insert(
                k.clone(),
                Var {
                    value: v.clone(),
                    exported: true,
                    readonly: false,
                },
            );
        }
        let r = f(self);
        self.restore_vars(saved);
        r
    }

    pub(super) fn call_function(&mut self, body: &Command, argv: &[String]) -> Flow {
        self.enter_nest(&argv[0])?;
        let r = self.call_function_inner(body, argv);
        self.nest -= 1;
        r
    }

    fn call_function_inner(&mut self, body: &Command, argv: &[String]) -> Flow {
        let saved_args = std::mem::replace(&mut self.positional, argv[1..].to_vec());
        let saved_loop = std::mem::replace(&mut self.loop_depth, 0);
        self.locals.push(Vec::new());
        let r = match self.run_command(body) {
            Err(Ctrl::Return(s)) => Ok(s),
            Err(Ctrl::Break(_) | Ctrl::Continue(_)) => Ok(self.status),
            other => other,
        };
        if let Some(frame) = self.locals.pop() {
            for (name, old) in frame.into_iter().rev() {
                match old {
                    Some(v) => {
                        self.vars.insert(name, v);
                    }
                    None => {
                        self.vars.remove(&name);
                    }
                }
            }
        }
        self.loop_depth = saved_loop;
        self.positional = saved_args;
        r
    }

    pub(super) fn spawn_external(&mut self, argv: &[String], assigns: &[(String, String)]) -> i32 {
        let mut env = self.exported_env();
        for (k, v) in assigns {
            match env.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        env.sort();
        let stdio = Stdio {
            stdin: self.stdin(),
            stdout: self.out_fd(1),
            stderr: self.out_fd(2),
        };
        // A shell or program the host starts for this command continues
        // this shell's nesting count and thread budget.
        let spawned = nesting::with_lineage(self.lineage(), || {
            self.host
                .spawn(argv, &env, &self.cwd, stdio)
                .map(|child| child.wait())
        });
        match spawned {
            Ok(status) => status,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.err_msg(&format!("{}: not found", argv[0]));
                127
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                self.err_msg(&format!("{}: Permission denied", argv[0]));
                126
            }
            Err(e) => {
                self.err_msg(&format!("{}: {e}", argv[0]));
                126
            }
        }
    }

    /// Applies redirections. `Ok(None)`: one failed (message printed, all
    /// undone; the command's status is 1, the shell goes on, as in dash).
    pub(super) fn apply_redirects(
        &mut self,
        redirects: &[Redirect],
    ) -> Result<Option<SavedFds>, Ctrl> {
        let mut saved: SavedFds = Vec::new();
        for r in redirects {
            match self.open_redirect(r) {
                Ok(Ok(fd)) => {
                    let i = r.fd as usize;
                    saved.push((i, self.fds[i].clone()));
                    self.fds[i] = fd;
                }
                Ok(Err(())) => {
                    self.restore_fds(saved);
                    return Ok(None);
                }
                Err(e) => {
                    self.restore_fds(saved);
                    return Err(e);
                }
            }
        }
        Ok(Some(saved))
    }

    /// Puts back variables saved before temporary assignments (a `None`
    /// was unset), last saved first.
    fn restore_vars(&mut self, saved: Vec<(String, Option<Var>)>) {
        for (k, old) in saved.into_iter().rev() {
            match old {
                Some(v) => {
                    self.vars.insert(k, v);
                }
                None => {
                    self.vars.remove(&k);
                }
            }
        }
    }

    pub(super) fn restore_fds(&mut self, saved: SavedFds) {
        for (i, fd) in saved.into_iter().rev() {
            self.fds[i] = fd;
        }
    }

    /// Opens one redirection target: `Ok(Err(()))` when it failed.
    #[allow(clippy::result_unit_err)]
    fn open_redirect(&mut self, r: &Redirect) -> Result<Result<Option<Fd>, ()>, Ctrl> {
        let word = match &r.target {
            RedirTarget::HereDoc(body) => {
                let text = self.expand_string(body)?;
                return Ok(Ok(Some(Fd::In(Input::from_reader(Cursor::new(
                    text.into_bytes(),
                ))))));
            }
            RedirTarget::Word(w) => self.expand_string(w)?,
        };
        match r.op {
            RedirOp::DupIn | RedirOp::DupOut => {
                if word == "-" {
                    return Ok(Ok(None));
                }
                match word.parse::<usize>().ok().filter(|n| *n < 10) {
                    Some(n) => match &self.fds[n] {
                        Some(fd) => Ok(Ok(Some(fd.clone()))),
                        None => {
                            self.err_msg(&format!("{n}: Bad file descriptor"));
                            Ok(Err(()))
                        }
                    },
                    None => {
                        self.err_msg(&format!("{word}: bad file descriptor"));
                        Ok(Err(()))
                    }
                }
            }
            RedirOp::Read | RedirOp::ReadWrite => {
                if word == "/dev/null" {
                    return Ok(Ok(Some(Fd::In(Input::Null))));
                }
                let path = self.abs_path(&word);
                if self.host.stdio_alias(&path) == Some(0) {
                    return Ok(Ok(Some(Fd::In(self.stdin()))));
                }
                match self.host.open_read(&path) {
                    Ok(r) => Ok(Ok(Some(Fd::In(Input::from_reader(r))))),
                    Err(e) => {
                        self.err_msg(&format!("cannot open {word}: {}", describe_io(&e)));
                        Ok(Err(()))
                    }
                }
            }
            RedirOp::Write | RedirOp::Append => {
                if word == "/dev/null" {
                    return Ok(Ok(Some(Fd::Out(Output::Null))));
                }
                let path = self.abs_path(&word);
                if let Some(n @ (1 | 2)) = self.host.stdio_alias(&path) {
                    return Ok(Ok(Some(Fd::Out(self.out_fd(n)))));
                }
                let mode = if r.op == RedirOp::Append {
                    OpenMode::Append
                } else {
                    OpenMode::Write
                };
                match self.host.open_write(&path, mode) {
                    Ok(w) => Ok(Ok(Some(Fd::Out(Output::from_writer(w))))),
                    Err(e) => {
                        self.err_msg(&format!("cannot create {word}: {}", describe_io(&e)));
                        Ok(Err(()))
                    }
                }
            }
            RedirOp::HereDoc => Ok(Ok(None)),
        }
    }
}

/// dash-style short descriptions of I/O errors.
pub(super) fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "nonexistent directory or file".into(),
        io::ErrorKind::PermissionDenied => "Permission denied".into(),
        io::ErrorKind::IsADirectory => "Is a directory".into(),
        _ => e.to_string(),
    }
}
