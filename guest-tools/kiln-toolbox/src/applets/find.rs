//! find: GNU findutils' common tests and actions. Directories are walked in
//! the order the filesystem lists them (kiln lists them sorted); `-exec` and
//! `-execdir` run their commands through kiln (`kiln.spawn`).

use super::command;
use super::common::why;
use super::glob;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::{self, Write as _};
use std::time::SystemTime;

/// Roughly GNU's limit on one `-exec ... +` command line.
const BATCH_BYTES: usize = 128 * 1024;

const HELP: &str = "\
Usage: find [-H] [-L] [-P] [PATH...] [EXPRESSION]
Walk each PATH (default .) and evaluate EXPRESSION on every file.

Tests:   -name -iname -path -ipath PATTERN, -type [fdl], -newer FILE,
         -size [+-]N[bcwkMG], -empty, -true, -false
Actions: -print, -print0, -delete, -prune, -quit,
         -exec CMD {} ;  -exec CMD {} +  -execdir CMD {} ;
Options: -maxdepth N, -mindepth N, -depth
Operators: ( EXPR ), ! EXPR, -not EXPR, EXPR -a EXPR, EXPR -o EXPR, EXPR , EXPR
Commands run through kiln (kiln.spawn).
";

/// Runs find.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args = command::strings(args.skip(1));
    if command::help(&args, HELP) {
        return 0;
    }
    let mut find = match Find::parse(args) {
        Ok(f) => f,
        Err(msg) => {
            eprintln!("find: {msg}");
            return 1;
        }
    };
    find.run()
}

#[derive(Debug)]
enum Cmp {
    Less,
    Equal,
    More,
}

#[derive(Debug)]
enum Expr {
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
    Const(bool),
    Name { pattern: String, fold: bool },
    Path { pattern: String, fold: bool },
    Type(Vec<char>),
    Newer(SystemTime),
    Size { cmp: Cmp, n: u64, unit: u64 },
    Empty,
    Print { nul: bool },
    Delete,
    Prune,
    Quit,
    Exec(usize),
}

/// One `-exec`/`-execdir`: its argv template and, for the `+` form, the
/// paths gathered so far.
struct Exec {
    argv: Vec<String>,
    batch: bool,
    in_dir: bool,
    pending: Vec<String>,
    pending_dir: String,
    pending_bytes: usize,
}

struct Find {
    roots: Vec<String>,
    expr: Expr,
    execs: Vec<Exec>,
    min_depth: usize,
    max_depth: usize,
    depth_first: bool,
    follow: Follow,
    out: io::BufWriter<io::Stdout>,
    status: i32,
    prune: bool,
    quit: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Follow {
    Never,
    CommandLine,
    Always,
}

/// What the walk needs of one file.
struct Entry<'a> {
    path: &'a str,
    meta: &'a Metadata,
}

struct Parser {
    tokens: Vec<String>,
    pos: usize,
    execs: Vec<Exec>,
    min_depth: usize,
    max_depth: usize,
    depth_first: bool,
    has_action: bool,
}

impl Find {
    fn parse(args: Vec<String>) -> Result<Find, String> {
        let mut follow = Follow::Never;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-P" => follow = Follow::Never,
                "-H" => follow = Follow::CommandLine,
                "-L" => follow = Follow::Always,
                _ => break,
            }
            i += 1;
        }
        let mut roots = Vec::new();
        while let Some(a) = args.get(i) {
            if is_expression_start(a) {
                break;
            }
            roots.push(a.clone());
            i += 1;
        }
        if roots.is_empty() {
            roots.push(".".into());
        }
        let mut p = Parser {
            tokens: args[i..].to_vec(),
            pos: 0,
            execs: Vec::new(),
            min_depth: 0,
            max_depth: usize::MAX,
            depth_first: false,
            has_action: false,
        };
        let expr = if p.tokens.is_empty() {
            Expr::Const(true)
        } else {
            let e = p.comma()?;
            if let Some(t) = p.peek() {
                return Err(if t == ")" {
                    "invalid expression; you have too many ')'".into()
                } else {
                    format!("paths must precede expression: `{t}'")
                });
            }
            e
        };
        let expr = if p.has_action {
            expr
        } else {
            Expr::And(Box::new(expr), Box::new(Expr::Print { nul: false }))
        };
        Ok(Find {
            roots,
            expr,
            execs: p.execs,
            min_depth: p.min_depth,
            max_depth: p.max_depth,
            depth_first: p.depth_first,
            follow,
            out: io::BufWriter::new(io::stdout()),
            status: 0,
            prune: false,
            quit: false,
        })
    }

    fn run(&mut self) -> i32 {
        for root in std::mem::take(&mut self.roots) {
            if self.quit {
                break;
            }
            let meta = if self.follow == Follow::Never {
                std::fs::symlink_metadata(&root)
            } else {
                std::fs::metadata(&root).or_else(|_| std::fs::symlink_metadata(&root))
            };
            match meta {
                Ok(meta) => self.visit(&root, &meta, 0),
                Err(e) => self.complain(&format!("'{root}': {}", why(&e))),
            }
        }
        for id in 0..self.execs.len() {
            self.flush_batch(id);
        }
        if self.out.flush().is_err() {
            self.status = 1;
        }
        self.status
    }

    fn complain(&mut self, msg: &str) {
        let _ = self.out.flush();
        eprintln!("find: {msg}");
        self.status = 1;
    }

    fn visit(&mut self, path: &str, meta: &Metadata, depth: usize) {
        let in_range = depth >= self.min_depth;
        self.prune = false;
        if in_range && !self.depth_first {
            self.eval_root(path, meta);
            if self.quit {
                return;
            }
        }
        let descend = meta.is_dir() && depth < self.max_depth && (self.depth_first || !self.prune);
        if descend {
            self.descend(path, depth);
        }
        if in_range && self.depth_first && !self.quit {
            self.eval_root(path, meta);
        }
    }

    fn descend(&mut self, path: &str, depth: usize) {
        let entries = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => return self.complain(&format!("'{path}': {}", why(&e))),
        };
        let mut names = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e.file_name().to_string_lossy().into_owned()),
                Err(e) => self.complain(&format!("'{path}': {}", why(&e))),
            }
        }
        for name in names {
            if self.quit {
                return;
            }
            let child = if path.ends_with('/') {
                format!("{path}{name}")
            } else {
                format!("{path}/{name}")
            };
            let meta = if self.follow == Follow::Always {
                std::fs::metadata(&child).or_else(|_| std::fs::symlink_metadata(&child))
            } else {
                std::fs::symlink_metadata(&child)
            };
            match meta {
                Ok(meta) => self.visit(&child, &meta, depth + 1),
                Err(e) => self.complain(&format!("'{child}': {}", why(&e))),
            }
        }
    }

    fn eval_root(&mut self, path: &str, meta: &Metadata) {
        let expr = std::mem::replace(&mut self.expr, Expr::Const(true));
        self.eval(&expr, &Entry { path, meta });
        self.expr = expr;
    }

    fn eval(&mut self, expr: &Expr, e: &Entry) -> bool {
        match expr {
            Expr::Not(x) => !self.eval(x, e),
            Expr::And(a, b) => self.eval(a, e) && !self.quit && self.eval(b, e),
            Expr::Or(a, b) => self.eval(a, e) || (!self.quit && self.eval(b, e)),
            Expr::Comma(a, b) => {
                self.eval(a, e);
                !self.quit && self.eval(b, e)
            }
            Expr::Const(v) => *v,
            Expr::Name { pattern, fold } => {
                glob::matches(pattern.as_bytes(), base_name(e.path).as_bytes(), *fold)
            }
            Expr::Path { pattern, fold } => {
                glob::matches(pattern.as_bytes(), e.path.as_bytes(), *fold)
            }
            Expr::Type(kinds) => kinds.contains(&type_char(e.meta)),
            Expr::Newer(t) => e.meta.modified().is_ok_and(|m| m > *t),
            Expr::Size { cmp, n, unit } => {
                let size = e.meta.len().div_ceil(*unit);
                match cmp {
                    Cmp::Less => size < *n,
                    Cmp::Equal => size == *n,
                    Cmp::More => size > *n,
                }
            }
            Expr::Empty => {
                if e.meta.is_dir() {
                    std::fs::read_dir(e.path).is_ok_and(|mut rd| rd.next().is_none())
                } else {
                    e.meta.is_file() && e.meta.len() == 0
                }
            }
            Expr::Print { nul } => {
                let end: &[u8] = if *nul { b"\0" } else { b"\n" };
                let ok = self.out.write_all(e.path.as_bytes()).is_ok()
                    && self.out.write_all(end).is_ok();
                if !ok {
                    self.status = 1;
                    self.quit = true;
                }
                true
            }
            Expr::Delete => self.delete(e),
            Expr::Prune => {
                self.prune = true;
                true
            }
            Expr::Quit => {
                self.quit = true;
                true
            }
            Expr::Exec(id) => self.exec(*id, e.path),
        }
    }

    fn delete(&mut self, e: &Entry) -> bool {
        if e.path == "." {
            return true;
        }
        let result = if e.meta.is_dir() {
            std::fs::remove_dir(e.path)
        } else {
            std::fs::remove_file(e.path)
        };
        match result {
            Ok(()) => true,
            Err(err) => {
                self.complain(&format!("cannot delete '{}': {}", e.path, why(&err)));
                false
            }
        }
    }

    /// Runs (or, for `+`, queues) one `-exec`/`-execdir` for `path`.
    fn exec(&mut self, id: usize, path: &str) -> bool {
        let Some(x) = self.execs.get(id) else {
            return false;
        };
        let (dir, shown) = if x.in_dir {
            let (parent, base) = match path.rfind('/') {
                Some(0) => ("/".to_owned(), &path[1..]),
                Some(i) => (path[..i].to_owned(), &path[i + 1..]),
                None => (".".to_owned(), path),
            };
            let base = if base.is_empty() { path } else { base };
            (absolute(&parent), format!("./{base}"))
        } else {
            (command::current_dir(), path.to_owned())
        };
        if x.batch {
            if x.pending_bytes + shown.len() > BATCH_BYTES
                || (x.in_dir && !x.pending.is_empty() && x.pending_dir != dir)
            {
                self.flush_batch(id);
            }
            let Some(x) = self.execs.get_mut(id) else {
                return false;
            };
            x.pending_bytes += shown.len() + 1;
            x.pending.push(shown);
            x.pending_dir = dir;
            return true;
        }
        let argv: Vec<String> = x.argv.iter().map(|a| a.replace("{}", &shown)).collect();
        self.spawn(&argv, &dir)
    }

    fn flush_batch(&mut self, id: usize) {
        let Some(x) = self.execs.get_mut(id) else {
            return;
        };
        if x.pending.is_empty() {
            return;
        }
        let mut argv = x.argv.clone();
        argv.append(&mut x.pending);
        x.pending_bytes = 0;
        let dir = std::mem::take(&mut x.pending_dir);
        if !self.spawn(&argv, &dir) {
            self.status = 1;
        }
    }

    fn spawn(&mut self, argv: &[String], dir: &str) -> bool {
        if self.out.flush().is_err() {
            self.status = 1;
        }
        let name = argv.first().cloned().unwrap_or_default();
        match command::run_in(argv, &command::current_env(), dir) {
            Ok(0) => true,
            Ok(command::NOT_FOUND | command::CANNOT_RUN) => {
                self.status = 1;
                false
            }
            Ok(_) => false,
            Err(e) => {
                self.complain(&format!("cannot run '{name}': {}", why(&e)));
                false
            }
        }
    }
}

/// The name `-name` matches: the last component, trailing slashes ignored.
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "" } else { "/" };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

fn absolute(dir: &str) -> String {
    if dir.starts_with('/') {
        return dir.to_owned();
    }
    let cwd = command::current_dir();
    if dir == "." {
        return cwd;
    }
    let dir = dir.strip_prefix("./").unwrap_or(dir);
    if cwd.ends_with('/') {
        format!("{cwd}{dir}")
    } else {
        format!("{cwd}/{dir}")
    }
}

fn type_char(meta: &Metadata) -> char {
    let t = meta.file_type();
    if t.is_symlink() {
        'l'
    } else if t.is_dir() {
        'd'
    } else if t.is_file() {
        'f'
    } else {
        'u'
    }
}

/// Where the paths stop and the expression begins (as GNU find decides).
fn is_expression_start(arg: &str) -> bool {
    (arg.starts_with('-') && arg.len() > 1) || arg == "!" || arg == "(" || arg == ")" || arg == ","
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn comma(&mut self) -> Result<Expr, String> {
        let mut left = self.or()?;
        while self.peek() == Some(",") {
            self.pos += 1;
            if self.peek().is_none() {
                return Err("expected an expression after ','".into());
            }
            left = Expr::Comma(Box::new(left), Box::new(self.or()?));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while let Some(op @ ("-o" | "-or")) = self.peek() {
            let op = op.to_owned();
            self.pos += 1;
            if matches!(
                self.peek(),
                None | Some(")" | "," | "-o" | "-or" | "-a" | "-and")
            ) {
                return Err(format!("expected an expression after '{op}'"));
            }
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                None | Some(")" | "," | "-o" | "-or") => return Ok(left),
                Some(op @ ("-a" | "-and")) => {
                    let op = op.to_owned();
                    self.pos += 1;
                    if matches!(
                        self.peek(),
                        None | Some(")" | "," | "-o" | "-or" | "-a" | "-and")
                    ) {
                        return Err(format!("expected an expression after '{op}'"));
                    }
                }
                Some(_) => {}
            }
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        let Some(tok) = self.next() else {
            return Err("expected an expression".into());
        };
        match tok.as_str() {
            "!" | "-not" => {
                if matches!(self.peek(), None | Some(")" | "-o" | "-or" | "-a" | "-and" | ",")) {
                    return Err(format!("expected an expression after '{tok}'"));
                }
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            "(" => {
                if self.peek() == Some(")") {
                    return Err("invalid expression; empty parentheses are not allowed.".into());
                }
                let inner = self.comma()?;
                if self.next().as_deref() != Some(")") {
                    return Err("invalid expression; I was expecting to find a ')' somewhere but did not see one.".into());
                }
                Ok(inner)
            }
            "-o" | "-or" | "-a" | "-and" | "," => Err(format!(
                "invalid expression; you have used a binary operator '{tok}' with nothing before it."
            )),
            ")" => Err("invalid expression; you have too many ')'".into()),
            _ => self.primary(tok),
        }
    }

    fn arg(&mut self, pred: &str) -> Result<String, String> {
        self.next()
            .ok_or_else(|| format!("missing argument to `{pred}'"))
    }

    fn primary(&mut self, tok: String) -> Result<Expr, String> {
        let p = tok.as_str();
        Ok(match p {
            "-name" | "-iname" => Expr::Name {
                pattern: self.arg(p)?,
                fold: p == "-iname",
            },
            "-path" | "-wholename" | "-ipath" | "-iwholename" => Expr::Path {
                pattern: self.arg(p)?,
                fold: p.starts_with("-i"),
            },
            "-type" | "-xtype" => {
                let arg = self.arg(p)?;
                let mut kinds = Vec::new();
                for k in arg.split(',') {
                    match k {
                        "f" | "d" | "l" | "b" | "c" | "p" | "s" | "D" => kinds.extend(k.chars()),
                        _ => return Err(format!("Unknown argument to {p}: {arg}")),
                    }
                }
                Expr::Type(kinds)
            }
            "-newer" => {
                let file = self.arg(p)?;
                let time = std::fs::metadata(&file)
                    .and_then(|m| m.modified())
                    .map_err(|e| format!("'{file}': {}", why(&e)))?;
                Expr::Newer(time)
            }
            "-size" => {
                let arg = self.arg(p)?;
                size(&arg).ok_or_else(|| format!("invalid -size type `{arg}'"))?
            }
            "-empty" => Expr::Empty,
            "-true" => Expr::Const(true),
            "-false" => Expr::Const(false),
            "-print" | "-print0" => {
                self.has_action = true;
                Expr::Print {
                    nul: p == "-print0",
                }
            }
            "-delete" => {
                self.has_action = true;
                self.depth_first = true;
                Expr::Delete
            }
            "-prune" => Expr::Prune,
            "-quit" => Expr::Quit,
            "-exec" | "-execdir" => {
                self.has_action = true;
                let mut argv = Vec::new();
                let batch = loop {
                    let Some(t) = self.next() else {
                        return Err(format!("missing argument to `{p}'"));
                    };
                    if t == ";" {
                        break false;
                    }
                    if t == "+" && argv.last().is_some_and(|l: &String| l == "{}") {
                        argv.pop();
                        break true;
                    }
                    argv.push(t);
                };
                if argv.is_empty() {
                    return Err(format!("missing argument to `{p}'"));
                }
                self.execs.push(Exec {
                    argv,
                    batch,
                    in_dir: p == "-execdir",
                    pending: Vec::new(),
                    pending_dir: String::new(),
                    pending_bytes: 0,
                });
                Expr::Exec(self.execs.len() - 1)
            }
            "-maxdepth" | "-mindepth" => {
                let arg = self.arg(p)?;
                let n: usize = arg.parse().map_err(|_| {
                    format!("Expected a positive decimal integer argument to {p}, but got `{arg}'")
                })?;
                if p == "-maxdepth" {
                    self.max_depth = n;
                } else {
                    self.min_depth = n;
                }
                Expr::Const(true)
            }
            "-depth" | "-d" => {
                self.depth_first = true;
                Expr::Const(true)
            }
            "-xdev" | "-mount" | "-noleaf" | "-ignore_readdir_race" | "-nowarn" | "-warn" => {
                Expr::Const(true)
            }
            _ if p.starts_with('-') => return Err(format!("unknown predicate `{p}'")),
            _ => return Err(format!("paths must precede expression: `{p}'")),
        })
    }
}

/// `-size [+-]N[bcwkMG]`: N units of 512 bytes by default, rounded up.
fn size(arg: &str) -> Option<Expr> {
    let (cmp, rest) = match arg.as_bytes().first()? {
        b'+' => (Cmp::More, &arg[1..]),
        b'-' => (Cmp::Less, &arg[1..]),
        _ => (Cmp::Equal, arg),
    };
    let (digits, unit) = match rest.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&rest[..i], c),
        _ => (rest, 'b'),
    };
    let unit = match unit {
        'b' => 512,
        'c' => 1,
        'w' => 2,
        'k' => 1024,
        'M' => 1024 * 1024,
        'G' => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n = digits.parse().ok()?;
    Some(Expr::Size { cmp, n, unit })
}
