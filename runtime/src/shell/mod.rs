//! kiln's host-side POSIX shell: interprets shell-form RUN command lines and
//! heredoc RUN bodies. It runs on the host; every external command goes
//! through the [`Host`] trait (in kiln: one WASI instance per command, with
//! pipeline stages on threads joined by OS pipes).
//!
//! Behaviour follows dash (Debian's `/bin/sh`), which is what most Dockerfile
//! RUN lines are written against: `echo` interprets backslash escapes and
//! knows only `-n`; pipeline stages all run in subshells; `&` runs the
//! command synchronously (kiln has no job control); the whole script is
//! parsed before anything runs, so a syntax error anywhere runs nothing.

mod arith;
pub mod ast;
mod builtins;
mod exec;
mod expand;
mod getopts;
pub mod host;
mod nesting;
pub mod parser;
mod pattern;
mod printf;
mod test_cmd;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Stack of the interpreter thread and of pipeline-stage threads: the
/// interpreter recurses (functions, eval, command substitution, nested
/// shells), and only touched pages cost memory. Deeper recursion moves on
/// to extra stack segments (see [`nesting`]).
const STACK_SIZE: usize = 64 << 20;

pub use host::{Child, FileInfo, FileKind, Finished, Host, Input, OpenMode, Output, Stdio};
pub(crate) use nesting::{
    current as current_lineage, grow_by, too_deep, too_many_threads, with_lineage, Lineage,
};
pub use nesting::{MAX_NEST, MAX_THREADS};
pub use parser::{parse, SyntaxError};

/// A shell variable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Var {
    value: String,
    exported: bool,
    /// Set by `readonly`: assigning or unsetting it is an error.
    readonly: bool,
}

/// `set` options.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    errexit: bool,
    nounset: bool,
    xtrace: bool,
    pipefail: bool,
    noglob: bool,
}

/// An open file descriptor of the shell.
#[derive(Clone)]
enum Fd {
    In(Input),
    Out(Output),
}

/// Non-local control flow; `Exit` also carries fatal shell errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctrl {
    Exit(i32),
    Break(usize),
    Continue(usize),
    Return(i32),
}

type Flow = Result<i32, Ctrl>;

/// One shell process: variables, functions, options, cwd and open files.
/// Cloning it gives a subshell.
#[derive(Clone)]
pub struct Shell {
    host: Arc<dyn Host>,
    vars: BTreeMap<String, Var>,
    funcs: HashMap<String, Arc<ast::Command>>,
    positional: Vec<String>,
    arg0: String,
    cwd: String,
    opts: Options,
    status: i32,
    fds: Vec<Option<Fd>>,
    in_condition: bool,
    locals: Vec<Vec<(String, Option<Var>)>>,
    loop_depth: usize,
    subst_status: Option<i32>,
    exit_trap: Option<String>,
    /// How many `.` files are running: `return` ends the innermost.
    sourcing: usize,
    /// Set by `exec` without a command: keep its redirections.
    keep_redirects: bool,
    /// Current nesting of shells, function calls, eval, `.` and `$( )`
    /// (see [`nesting`]).
    nest: usize,
    /// The step's budget of pipeline-stage and pump threads, shared with
    /// every shell and program the step starts.
    threads: Arc<nesting::ThreadBudget>,
    /// A write to stdout failed with EPIPE: like SIGPIPE, end this (sub)shell.
    broken_pipe: Cell<bool>,
    /// Where `getopts` is in the current option group.
    getopts: getopts::GetoptsPlace,
}

impl Shell {
    /// A shell in `/` with no variables and null standard streams. Started
    /// by a command of another shell (through the host), it continues that
    /// shell's nesting count and thread budget.
    pub fn new(host: Arc<dyn Host>) -> Shell {
        let lineage = nesting::current();
        let mut sh = Shell {
            host,
            vars: BTreeMap::new(),
            funcs: HashMap::new(),
            positional: Vec::new(),
            arg0: "sh".into(),
            cwd: "/".into(),
            opts: Options::default(),
            status: 0,
            fds: vec![None; 10],
            in_condition: false,
            locals: Vec::new(),
            loop_depth: 0,
            subst_status: None,
            exit_trap: None,
            sourcing: 0,
            keep_redirects: false,
            nest: lineage.nest,
            threads: lineage.threads,
            broken_pipe: Cell::new(false),
            getopts: Default::default(),
        };
        sh.set_stdio(Stdio {
            stdin: Input::Null,
            stdout: Output::Null,
            stderr: Output::Null,
        });
        sh.set_var_raw("IFS", " \t\n");
        sh
    }

    /// Sets the shell's standard input, output and error.
    pub fn set_stdio(&mut self, stdio: Stdio) {
        self.fds[0] = Some(Fd::In(stdio.stdin));
        self.fds[1] = Some(Fd::Out(stdio.stdout));
        self.fds[2] = Some(Fd::Out(stdio.stderr));
    }

    /// Sets the working directory (an absolute image path, e.g. WORKDIR).
    pub fn set_cwd(&mut self, cwd: &str) {
        self.cwd = cwd.to_string();
        self.set_var_raw("PWD", cwd);
    }

    /// The current working directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Adds exported environment variables (ENV, build args, PATH).
    pub fn set_env<'a>(&mut self, env: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (k, v) in env {
            self.vars.insert(
                k.to_string(),
                Var {
                    value: v.to_string(),
                    exported: true,
                    readonly: false,
                },
            );
        }
    }

    /// Sets `$0` and the positional parameters.
    pub fn set_args(&mut self, arg0: &str, args: &[String]) {
        self.arg0 = arg0.to_string();
        self.positional = args.to_vec();
    }

    /// A variable's value.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.value.as_str())
    }

    /// The exported variables, sorted by name (the environment of children).
    pub fn exported_env(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter(|(_, v)| v.exported)
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    /// Parses and runs a script; returns its exit status. A syntax error
    /// prints `sh: line N, column M: syntax error: ...` and returns 2.
    pub fn run_script(&mut self, src: &str) -> i32 {
        match parser::parse(src) {
            Ok(program) => self.run_program(&program),
            Err(e) => {
                self.err_msg(&e.to_string());
                2
            }
        }
    }

    /// Runs a parsed script; returns its exit status. The shell is one more
    /// level of nesting. The interpreter runs on a thread of its own with a
    /// large stack, unless it is already on one (a shell run by a command
    /// of another shell).
    pub fn run_program(&mut self, program: &ast::Program) -> i32 {
        let name = self.arg0.clone();
        if let Err(Ctrl::Exit(status)) = self.enter_nest(&name) {
            return status;
        }
        let status = if nesting::on_shell_thread() {
            nesting::grow(|| self.run_program_here(program))
        } else {
            let on_thread = std::thread::scope(|scope| {
                let spawned = std::thread::Builder::new()
                    .name("kiln-sh".into())
                    .stack_size(STACK_SIZE)
                    .spawn_scoped(scope, || {
                        nesting::mark_shell_thread();
                        self.run_program_here(program)
                    });
                spawned.ok().map(|handle| handle.join().unwrap_or(2))
            });
            match on_thread {
                Some(status) => status,
                None => nesting::grow(|| self.run_program_here(program)),
            }
        };
        self.nest -= 1;
        status
    }

    fn run_program_here(&mut self, program: &ast::Program) -> i32 {
        let status = match self.run_list(program) {
            Ok(s) => s,
            Err(Ctrl::Exit(s)) => s,
            Err(Ctrl::Return(s)) => s,
            Err(Ctrl::Break(_) | Ctrl::Continue(_)) => self.status,
        };
        self.run_exit_trap(status) & 0xff
    }

    /// A subshell of this shell (`( )`, `$( )`, a pipeline stage): a copy
    /// whose EXIT trap is reset, as traps are in a forked shell.
    fn subshell(&self) -> Shell {
        let mut sub = self.clone();
        sub.exit_trap = None;
        sub
    }

    /// Ends a subshell whose commands ended with `r`: its exit status, after
    /// its EXIT trap ran. `break`/`continue` end the subshell with status 0.
    fn end_subshell(&mut self, r: Flow) -> i32 {
        let status = match r {
            Ok(s) | Err(Ctrl::Exit(s)) | Err(Ctrl::Return(s)) => s,
            Err(Ctrl::Break(_) | Ctrl::Continue(_)) => 0,
        };
        self.run_exit_trap(status)
    }

    /// Runs the EXIT trap (once) of a shell ending with `status`; `exit` in
    /// the trap changes the status.
    fn run_exit_trap(&mut self, status: i32) -> i32 {
        self.status = status;
        let Some(trap) = self.exit_trap.take() else {
            return status;
        };
        let p = match parser::parse(&trap) {
            Ok(p) => p,
            Err(e) => {
                self.err_msg(&e.to_string());
                return 2;
            }
        };
        match self.run_list(&p) {
            Err(Ctrl::Exit(s)) => s,
            _ => status,
        }
    }

    fn set_var_raw(&mut self, name: &str, value: &str) {
        match self.vars.get_mut(name) {
            Some(v) => v.value = value.to_string(),
            None => {
                self.vars.insert(
                    name.to_string(),
                    Var {
                        value: value.to_string(),
                        exported: false,
                        readonly: false,
                    },
                );
            }
        }
    }

    fn stdin(&self) -> Input {
        match &self.fds[0] {
            Some(Fd::In(i)) => i.clone(),
            _ => Input::Null,
        }
    }

    fn out_fd(&self, fd: usize) -> Output {
        match self.fds.get(fd) {
            Some(Some(Fd::Out(o))) => o.clone(),
            _ => Output::Null,
        }
    }

    /// Writes to standard output; false if that failed (e.g. closed pipe).
    fn out(&self, bytes: &[u8]) -> bool {
        match self.out_fd(1).write_all(bytes) {
            Ok(()) => true,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    self.broken_pipe.set(true);
                }
                false
            }
        }
    }

    /// Enters one level of shell/function/eval/substitution nesting.
    fn enter_nest(&mut self, what: &str) -> Result<(), Ctrl> {
        if self.nest >= MAX_NEST {
            self.err_msg(&too_deep(what));
            return Err(Ctrl::Exit(2));
        }
        self.nest += 1;
        Ok(())
    }

    /// What a command this shell starts now inherits.
    fn lineage(&self) -> Lineage {
        Lineage {
            nest: self.nest,
            threads: Arc::clone(&self.threads),
        }
    }

    /// Writes `sh: MSG` and a newline to standard error.
    fn err_msg(&self, msg: &str) {
        let _ = self.out_fd(2).write_all(format!("sh: {msg}\n").as_bytes());
    }

    /// An image path for `p`, resolved against the cwd (not normalised).
    fn abs_path(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else if self.cwd.ends_with('/') {
            format!("{}{}", self.cwd, p)
        } else {
            format!("{}/{}", self.cwd, p)
        }
    }
}
