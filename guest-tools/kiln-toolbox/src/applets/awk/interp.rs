//! Runs a parsed program: records and fields, variables and arrays, output
//! redirection, getline and the built-in functions.
//!
//! Deterministic by design: `for (k in a)` visits keys in insertion order,
//! and rand() is a fixed generator seeded with 0 unless srand(N) says.

use super::parser::{Expr, Function, Pattern, Program, Redirect, Stmt, Var};
use super::value::{sprintf, Value};
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::rc::Rc;

mod builtins;

/// An associative array; keys remember the order they were first set in.
#[derive(Default)]
pub struct Array {
    map: HashMap<String, (u64, Value)>,
    next: u64,
    /// An untyped argument that the called function used as an array.
    adopted: bool,
}

impl Array {
    fn get(&mut self, k: &str) -> Value {
        if let Some((_, v)) = self.map.get(k) {
            return v.clone();
        }
        // Referencing an element creates it, as in awk.
        self.set(k.to_owned(), Value::Uninit);
        Value::Uninit
    }
    fn set(&mut self, k: String, v: Value) {
        if let Some(slot) = self.map.get_mut(&k) {
            slot.1 = v;
        } else {
            self.map.insert(k, (self.next, v));
            self.next += 1;
        }
    }
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<(&u64, &String)> = self.map.iter().map(|(k, (n, _))| (n, k)).collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k.clone()).collect()
    }
}

type ArrayRef = Rc<RefCell<Array>>;

#[derive(Clone)]
enum Cell {
    Scalar(Value),
    Array(ArrayRef),
    /// A function argument that was an unset variable: a scalar until the
    /// function uses it as an array, which the caller then sees.
    Untyped(ArrayRef),
}

/// How a statement ended.
enum Flow {
    Normal,
    Break,
    Continue,
    Next,
    Exit,
    Return(Value),
}

/// A fatal runtime error (awk exits 2).
pub struct RunError(pub String);

type R<T> = Result<T, RunError>;

/// exit and next inside a function unwind through the call as errors.
const EXIT: &str = "\0exit";
const NEXT: &str = "\0next";

/// Turns the unwinding of exit/next back into control flow.
fn settle(r: R<Flow>) -> R<Flow> {
    match r {
        Err(RunError(m)) if m == EXIT => Ok(Flow::Exit),
        Err(RunError(m)) if m == NEXT => Ok(Flow::Next),
        other => other,
    }
}

/// Reads records from one source.
struct Reader {
    input: Box<dyn BufRead>,
    eof: bool,
}

impl Reader {
    fn new(input: Box<dyn Read>) -> Reader {
        Reader {
            input: Box::new(BufReader::new(input)),
            eof: false,
        }
    }

    /// The next record by RS: one character, "" (paragraphs), or a regex.
    fn record(&mut self, rs: &str, re: Option<&Regex>) -> io::Result<Option<String>> {
        if self.eof {
            return Ok(None);
        }
        if rs.is_empty() {
            let mut rec = String::new();
            let mut line = Vec::new();
            loop {
                line.clear();
                if self.input.read_until(b'\n', &mut line)? == 0 {
                    self.eof = true;
                    break;
                }
                let l = String::from_utf8_lossy(&line);
                let l = l.strip_suffix('\n').unwrap_or(&l);
                if l.is_empty() {
                    if rec.is_empty() {
                        continue;
                    }
                    break;
                }
                if !rec.is_empty() {
                    rec.push('\n');
                }
                rec.push_str(l);
            }
            return Ok(if rec.is_empty() && self.eof {
                None
            } else {
                Some(rec)
            });
        }
        if let (Some(re), true) = (re, rs.chars().count() > 1) {
            let mut all = Vec::new();
            self.input.read_to_end(&mut all)?;
            self.eof = true;
            let text = String::from_utf8_lossy(&all).into_owned();
            let mut rest = text.as_str();
            let mut recs = Vec::new();
            while let Some(m) = re.find(rest).filter(|m| !m.as_str().is_empty()) {
                recs.push(rest[..m.start()].to_owned());
                rest = &rest[m.end()..];
            }
            if !rest.is_empty() {
                recs.push(rest.to_owned());
            }
            // Hand the rest back as a pre-split source.
            let joined: Vec<u8> = recs.join("\u{0}").into_bytes();
            self.input = Box::new(io::Cursor::new(joined));
            self.eof = false;
            return self.record("\u{0}", None);
        }
        let sep = rs.as_bytes().first().copied().unwrap_or(b'\n');
        let mut buf = Vec::new();
        if self.input.read_until(sep, &mut buf)? == 0 {
            self.eof = true;
            return Ok(None);
        }
        if buf.last() == Some(&sep) {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

pub struct Interp<'p> {
    prog: &'p Program,
    globals: HashMap<String, Cell>,
    frames: Vec<Vec<Cell>>,
    record: String,
    fields: Vec<String>,
    nf: usize,
    out: BufWriter<io::Stdout>,
    files: HashMap<String, BufWriter<File>>,
    readers: HashMap<String, Reader>,
    main: Option<Reader>,
    pending: String,
    argi: usize,
    regexes: HashMap<String, Regex>,
    ranges: Vec<bool>,
    seed: f64,
    rng: u64,
    exit_code: i32,
}

impl<'p> Interp<'p> {
    pub fn new(prog: &'p Program, argv: Vec<String>, assigns: Vec<(String, String)>) -> Interp<'p> {
        let mut it = Interp {
            prog,
            globals: HashMap::new(),
            frames: Vec::new(),
            record: String::new(),
            fields: Vec::new(),
            nf: 0,
            out: BufWriter::new(io::stdout()),
            files: HashMap::new(),
            readers: HashMap::new(),
            main: None,
            pending: String::new(),
            argi: 1,
            regexes: HashMap::new(),
            ranges: vec![false; prog.rules.len()],
            seed: 0.0,
            rng: 0,
            exit_code: 0,
        };
        it.srand(0.0);
        for (k, v) in [
            ("FS", " "),
            ("OFS", " "),
            ("ORS", "\n"),
            ("RS", "\n"),
            ("SUBSEP", "\u{1c}"),
            ("CONVFMT", "%.6g"),
            ("OFMT", "%.6g"),
            ("FILENAME", ""),
        ] {
            it.set_global(k, Value::Str(v.into()));
        }
        for k in ["NR", "FNR", "RSTART"] {
            it.set_global(k, Value::Num(0.0));
        }
        it.set_global("RLENGTH", Value::Num(-1.0));
        it.set_global("ARGC", Value::Num(argv.len() as f64));
        let args = it.array_of(&Var::Global("ARGV".into()));
        for (i, a) in argv.into_iter().enumerate() {
            args.borrow_mut().set(i.to_string(), Value::StrNum(a));
        }
        let env = it.array_of(&Var::Global("ENVIRON".into()));
        for (k, v) in std::env::vars() {
            env.borrow_mut().set(k, Value::StrNum(v));
        }
        for (k, v) in assigns {
            it.set_global(&k, Value::StrNum(v));
        }
        it
    }

    /// Runs BEGIN, the records, END; returns the exit status.
    pub fn run(&mut self) -> R<i32> {
        let prog = self.prog;
        let mut exiting = false;
        for rule in &prog.rules {
            if let (Pattern::Begin, Some(body)) = (&rule.pattern, &rule.action) {
                if let Flow::Exit = settle(self.block(body))? {
                    exiting = true;
                    break;
                }
            }
        }
        let has_main = prog
            .rules
            .iter()
            .any(|r| !matches!(r.pattern, Pattern::Begin));
        if !exiting && has_main {
            'records: while self.next_main_record()? {
                for (i, rule) in prog.rules.iter().enumerate() {
                    let hit = match &rule.pattern {
                        Pattern::Begin | Pattern::End => continue,
                        Pattern::All => true,
                        Pattern::Expr(e) => match self.eval(e) {
                            Ok(v) => v.truthy(),
                            Err(RunError(m)) if m == EXIT => {
                                exiting = true;
                                break 'records;
                            }
                            Err(e) => return Err(e),
                        },
                        Pattern::Range(a, b) => {
                            if self.ranges[i] {
                                if self.eval(b)?.truthy() {
                                    self.ranges[i] = false;
                                }
                                true
                            } else if self.eval(a)?.truthy() {
                                self.ranges[i] = !self.eval(b)?.truthy();
                                true
                            } else {
                                false
                            }
                        }
                    };
                    if !hit {
                        continue;
                    }
                    let flow = match &rule.action {
                        Some(body) => settle(self.block(body))?,
                        None => {
                            let text = self.record.clone() + &self.global_str("ORS");
                            self.print_to(None, text)?;
                            Flow::Normal
                        }
                    };
                    match flow {
                        Flow::Next => continue 'records,
                        Flow::Exit => {
                            exiting = true;
                            break 'records;
                        }
                        _ => {}
                    }
                }
            }
        }
        let _ = exiting;
        self.main = None;
        for rule in &prog.rules {
            if let (Pattern::End, Some(body)) = (&rule.pattern, &rule.action) {
                if let Flow::Exit = settle(self.block(body))? {
                    break;
                }
            }
        }
        self.flush_all();
        Ok(self.exit_code)
    }

    pub fn flush_all(&mut self) {
        let _ = self.out.flush();
        for f in self.files.values_mut() {
            let _ = f.flush();
        }
    }

    // ----- variables -----

    fn global_str(&self, name: &str) -> String {
        match self.globals.get(name) {
            Some(Cell::Scalar(v)) => v.string(&self.convfmt()),
            _ => String::new(),
        }
    }

    fn convfmt(&self) -> String {
        match self.globals.get("CONVFMT") {
            Some(Cell::Scalar(v)) => v.string("%.6g"),
            _ => "%.6g".into(),
        }
    }

    fn set_global(&mut self, name: &str, v: Value) {
        if name == "NF" {
            let n = v.num().max(0.0) as usize;
            self.set_nf(n);
            return;
        }
        self.globals.insert(name.to_owned(), Cell::Scalar(v));
    }

    fn get_var(&mut self, var: &Var) -> R<Value> {
        match var {
            Var::Global(n) if n == "NF" => Ok(Value::Num(self.nf as f64)),
            Var::Global(n) => match self.globals.get(n) {
                Some(Cell::Scalar(v)) => Ok(v.clone()),
                Some(Cell::Array(_)) => Err(RunError(format!(
                    "attempt to use array `{n}' in a scalar context"
                ))),
                Some(Cell::Untyped(_)) | None => Ok(Value::Uninit),
            },
            Var::Local(i) => match self.frames.last().and_then(|f| f.get(*i)) {
                Some(Cell::Scalar(v)) => Ok(v.clone()),
                Some(Cell::Array(_)) => {
                    Err(RunError("attempt to use array in a scalar context".into()))
                }
                Some(Cell::Untyped(_)) | None => Ok(Value::Uninit),
            },
        }
    }

    fn set_var(&mut self, var: &Var, v: Value) -> R<()> {
        match var {
            Var::Global(n) => {
                if let Some(Cell::Array(_)) = self.globals.get(n) {
                    return Err(RunError(format!(
                        "attempt to use array `{n}' in a scalar context"
                    )));
                }
                self.set_global(n, v);
            }
            Var::Local(i) => {
                if let Some(slot) = self.frames.last_mut().and_then(|f| f.get_mut(*i)) {
                    *slot = Cell::Scalar(v);
                }
            }
        }
        Ok(())
    }

    /// The array a name refers to, created on first use.
    fn array_of(&mut self, var: &Var) -> ArrayRef {
        let slot = match var {
            Var::Global(n) => self
                .globals
                .entry(n.clone())
                .or_insert_with(|| Cell::Scalar(Value::Uninit)),
            Var::Local(i) => {
                let Some(slot) = self.frames.last_mut().and_then(|f| f.get_mut(*i)) else {
                    return Rc::default();
                };
                slot
            }
        };
        match slot {
            Cell::Array(a) => a.clone(),
            Cell::Untyped(a) => {
                let a = a.clone();
                a.borrow_mut().adopted = true;
                *slot = Cell::Array(a.clone());
                a
            }
            Cell::Scalar(_) => {
                let a: ArrayRef = Rc::default();
                *slot = Cell::Array(a.clone());
                a
            }
        }
    }

    fn subscript(&mut self, subs: &[Expr]) -> R<String> {
        let conv = self.convfmt();
        let mut parts = Vec::new();
        for s in subs {
            parts.push(self.eval(s)?.string(&conv));
        }
        Ok(parts.join(&self.global_str("SUBSEP")))
    }

    // ----- records and fields -----

    fn set_record(&mut self, rec: String) {
        self.record = rec;
        self.split_record();
    }

    fn split_record(&mut self) {
        let fs = self.global_str("FS");
        let paragraph = self.global_str("RS").is_empty();
        let rec = std::mem::take(&mut self.record);
        self.fields = self.split(&rec, &fs, paragraph);
        self.record = rec;
        self.nf = self.fields.len();
    }

    fn split(&mut self, s: &str, fs: &str, paragraph: bool) -> Vec<String> {
        if fs == " " {
            return s
                .split([' ', '\t', '\n'])
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if s.is_empty() {
            return Vec::new();
        }
        if fs.is_empty() {
            return s.chars().map(String::from).collect();
        }
        let mut pattern = if fs.chars().count() == 1 && fs != "\\" {
            regex::escape(fs)
        } else {
            fs.to_owned()
        };
        if fs == "\t" {
            pattern = "\t".into();
        }
        // gawk: with RS = "", a newline separates fields too when FS is
        // one character, not when it is a regex.
        if paragraph && fs.chars().count() == 1 {
            pattern = format!("(?:{pattern})|\n");
        }
        match self.regex(&pattern) {
            Ok(re) => re_fields(&re, s),
            Err(_) => vec![s.to_owned()],
        }
    }

    fn get_field(&mut self, i: usize) -> Value {
        if i == 0 {
            return Value::StrNum(self.record.clone());
        }
        match self.fields.get(i - 1) {
            Some(f) => Value::StrNum(f.clone()),
            // A field past NF is the empty string, which compares as a
            // string (gawk: `$2 != 0` is true on a one-field line).
            None => Value::StrNum(String::new()),
        }
    }

    fn set_field(&mut self, i: usize, v: String) {
        if i == 0 {
            self.set_record(v);
            return;
        }
        if i > self.fields.len() {
            self.fields.resize(i, String::new());
        }
        self.fields[i - 1] = v;
        self.nf = self.nf.max(i);
        self.rebuild();
    }

    fn set_nf(&mut self, n: usize) {
        self.fields.resize(n, String::new());
        self.nf = n;
        self.rebuild();
    }

    fn rebuild(&mut self) {
        let ofs = self.global_str("OFS");
        self.record = self.fields[..self.nf].join(&ofs);
    }

    fn field_index(&mut self, e: &Expr) -> R<usize> {
        let n = self.eval(e)?.num();
        if n < 0.0 {
            return Err(RunError(format!(
                "trying to access out of range field {}",
                n as i64
            )));
        }
        Ok(n as usize)
    }

    /// Reads the next main-input record into $0; false at the end.
    fn next_main_record(&mut self) -> R<bool> {
        if !self.next_main_record_raw()? {
            return Ok(false);
        }
        let rec = std::mem::take(&mut self.pending);
        self.bump_nr();
        self.set_record(rec);
        Ok(true)
    }

    /// Reads the next main-input record into `pending`; false at the end.
    fn next_main_record_raw(&mut self) -> R<bool> {
        loop {
            if self.main.is_none() && !self.open_next_input()? {
                return Ok(false);
            }
            let rs = self.global_str("RS");
            let re = if rs.chars().count() > 1 {
                Some(self.regex(&rs)?)
            } else {
                None
            };
            let rec = match self.main.as_mut().map(|r| r.record(&rs, re.as_ref())) {
                Some(Ok(Some(rec))) => rec,
                Some(Ok(None)) | None => {
                    self.main = None;
                    continue;
                }
                Some(Err(e)) => return Err(RunError(format!("read error: {}", super::os_msg(&e)))),
            };
            self.pending = rec;
            return Ok(true);
        }
    }

    fn bump_nr(&mut self) {
        for k in ["NR", "FNR"] {
            let n = self
                .get_var(&Var::Global(k.into()))
                .map_or(0.0, |v| v.num());
            self.set_global(k, Value::Num(n + 1.0));
        }
    }

    /// Opens the next ARGV operand (applying var=value ones); stdin if none.
    fn open_next_input(&mut self) -> R<bool> {
        let argc = self.get_var(&Var::Global("ARGC".into()))?.num() as usize;
        let argv = self.array_of(&Var::Global("ARGV".into()));
        while self.argi < argc {
            let i = self.argi;
            self.argi += 1;
            let arg = argv
                .borrow()
                .map
                .get(&i.to_string())
                .map(|(_, v)| v.string("%.6g"));
            let Some(arg) = arg.filter(|a| !a.is_empty()) else {
                continue;
            };
            if let Some((name, value)) = super::assignment(&arg) {
                self.set_global(&name, Value::StrNum(value));
                continue;
            }
            self.set_global("FNR", Value::Num(0.0));
            self.set_global("FILENAME", Value::Str(arg.clone()));
            let input: Box<dyn Read> = if arg == "-" || arg == "/dev/stdin" {
                Box::new(io::stdin())
            } else {
                match File::open(&arg) {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        return Err(RunError(format!(
                            "cannot open \"{arg}\" ({})",
                            super::os_msg(&e)
                        )))
                    }
                }
            };
            self.main = Some(Reader::new(input));
            return Ok(true);
        }
        if self.argi == argc {
            // No file operand at all: read stdin once.
            self.argi += 1;
            let any_file = (1..argc).any(|i| {
                argv.borrow()
                    .map
                    .get(&i.to_string())
                    .map(|(_, v)| v.string("%.6g"))
                    .is_some_and(|a| !a.is_empty() && super::assignment(&a).is_none())
            });
            if !any_file {
                self.main = Some(Reader::new(Box::new(io::stdin())));
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ----- regexes -----

    fn regex(&mut self, src: &str) -> R<Regex> {
        if let Some(re) = self.regexes.get(src) {
            return Ok(re.clone());
        }
        let re = Regex::new(&translate_ere(src))
            .map_err(|e| RunError(format!("invalid regular expression /{src}/: {e}")))?;
        self.regexes.insert(src.to_owned(), re.clone());
        Ok(re)
    }

    /// A regex operand: a /literal/ as written, anything else by its value.
    fn regex_of(&mut self, e: &Expr) -> R<Regex> {
        match e {
            Expr::Regex(r) => self.regex(r),
            other => {
                let s = self.eval(other)?.string(&self.convfmt());
                self.regex(&s)
            }
        }
    }

    // ----- statements -----

    fn block(&mut self, body: &[Stmt]) -> R<Flow> {
        for s in body {
            match self.stmt(s)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn stmt(&mut self, s: &Stmt) -> R<Flow> {
        match s {
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::Print(args, redirect) => {
                let ofmt = self.global_str("OFMT");
                let line = if args.is_empty() {
                    self.record.clone()
                } else {
                    let mut parts = Vec::new();
                    for a in args {
                        parts.push(self.eval(a)?.string(&ofmt));
                    }
                    parts.join(&self.global_str("OFS"))
                };
                let text = line + &self.global_str("ORS");
                self.print_redirect(redirect.as_ref(), text)?;
            }
            Stmt::Printf(args, redirect) => {
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(a)?);
                }
                let conv = self.convfmt();
                let fmt = vals[0].string(&conv);
                let text = sprintf(&fmt, &vals[1..], &conv);
                self.print_redirect(redirect.as_ref(), text)?;
            }
            Stmt::If(c, a, b) => {
                if self.eval(c)?.truthy() {
                    return self.stmt(a);
                } else if let Some(b) = b {
                    return self.stmt(b);
                }
            }
            Stmt::While(c, body) => {
                while self.eval(c)?.truthy() {
                    match self.stmt(body)? {
                        Flow::Break => break,
                        Flow::Continue | Flow::Normal => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Do(body, c) => loop {
                match self.stmt(body)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                    other => return Ok(other),
                }
                if !self.eval(c)?.truthy() {
                    break;
                }
            },
            Stmt::For(init, cond, step, body) => {
                if let Some(i) = init {
                    self.eval(i)?;
                }
                loop {
                    if let Some(c) = cond {
                        if !self.eval(c)?.truthy() {
                            break;
                        }
                    }
                    match self.stmt(body)? {
                        Flow::Break => break,
                        Flow::Continue | Flow::Normal => {}
                        other => return Ok(other),
                    }
                    if let Some(s) = step {
                        self.eval(s)?;
                    }
                }
            }
            Stmt::ForIn(k, a, body) => {
                let arr = self.array_of(a);
                let keys = arr.borrow().keys();
                for key in keys {
                    if !arr.borrow().map.contains_key(&key) {
                        continue;
                    }
                    self.set_var(k, Value::StrNum(key))?;
                    match self.stmt(body)? {
                        Flow::Break => break,
                        Flow::Continue | Flow::Normal => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Block(b) => return self.block(b),
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Next => return Ok(Flow::Next),
            Stmt::Exit(e) => {
                if let Some(e) = e {
                    self.exit_code = self.eval(e)?.num() as i32;
                }
                return Ok(Flow::Exit);
            }
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Uninit,
                };
                return Ok(Flow::Return(v));
            }
            Stmt::Delete(a, subs) => {
                let arr = self.array_of(a);
                match subs {
                    Some(subs) => {
                        let k = self.subscript(subs)?;
                        arr.borrow_mut().map.remove(&k);
                    }
                    None => *arr.borrow_mut() = Array::default(),
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn print_redirect(&mut self, redirect: Option<&Redirect>, text: String) -> R<()> {
        let target = match redirect {
            None => None,
            Some(Redirect::Pipe) => {
                return Err(RunError(
                    "pipes are not supported (no shell in the sandbox)".into(),
                ))
            }
            Some(Redirect::Write(e)) => Some((self.eval(e)?.string(&self.convfmt()), false)),
            Some(Redirect::Append(e)) => Some((self.eval(e)?.string(&self.convfmt()), true)),
        };
        self.print_to(target, text)
    }

    fn print_to(&mut self, target: Option<(String, bool)>, text: String) -> R<()> {
        let err = |e: io::Error| RunError(format!("write error: {e}"));
        let Some((name, append)) = target else {
            return self.out.write_all(text.as_bytes()).map_err(err);
        };
        match name.as_str() {
            "/dev/stdout" | "-" => return self.out.write_all(text.as_bytes()).map_err(err),
            "/dev/stderr" => {
                let _ = self.out.flush();
                return io::stderr().write_all(text.as_bytes()).map_err(err);
            }
            _ => {}
        }
        if !self.files.contains_key(&name) {
            let f = if append {
                File::options().append(true).create(true).open(&name)
            } else {
                File::create(&name)
            }
            .map_err(|e| {
                RunError(format!(
                    "can't redirect to `{name}' ({})",
                    super::os_msg(&e)
                ))
            })?;
            self.files.insert(name.clone(), BufWriter::new(f));
        }
        match self.files.get_mut(&name) {
            Some(f) => f.write_all(text.as_bytes()).map_err(err),
            None => Ok(()),
        }
    }

    // ----- expressions -----

    fn assign(&mut self, target: &Expr, v: Value) -> R<Value> {
        match target {
            Expr::Var(var) => self.set_var(var, v.clone())?,
            Expr::Index(a, subs) => {
                let k = self.subscript(subs)?;
                self.array_of(a).borrow_mut().set(k, v.clone());
            }
            Expr::Field(i) => {
                let i = self.field_index(i)?;
                let s = v.string(&self.convfmt());
                self.set_field(i, s);
            }
            Expr::Group(inner) => return self.assign(inner, v),
            _ => return Err(RunError("assignment to a non-variable".into())),
        }
        Ok(v)
    }

    pub fn eval(&mut self, e: &Expr) -> R<Value> {
        Ok(match e {
            Expr::Num(n) => Value::Num(*n),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Regex(r) => {
                let re = self.regex(r)?;
                Value::Num(f64::from(u8::from(re.is_match(&self.record))))
            }
            Expr::Var(v) => self.get_var(v)?,
            Expr::Index(a, subs) => {
                let k = self.subscript(subs)?;
                self.array_of(a).borrow_mut().get(&k)
            }
            Expr::Field(i) => {
                let i = self.field_index(i)?;
                self.get_field(i)
            }
            Expr::Group(inner) => self.eval(inner)?,
            Expr::Assign(op, target, rhs) => {
                let r = self.eval(rhs)?;
                let v = match op {
                    // Copies keep their type: a copied field stays a strnum.
                    None => r,
                    Some(op) => {
                        let l = self.eval(target)?.num();
                        Value::Num(arith(op, l, r.num())?)
                    }
                };
                self.assign(target, v)?
            }
            Expr::Cond(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::And(a, b) => bool_val(self.eval(a)?.truthy() && self.eval(b)?.truthy()),
            Expr::Or(a, b) => bool_val(self.eval(a)?.truthy() || self.eval(b)?.truthy()),
            Expr::In(keys, a) => {
                let k = self.subscript(keys)?;
                bool_val(self.array_of(a).borrow().map.contains_key(&k))
            }
            Expr::Match(neg, s, re) => {
                let s = self.eval(s)?.string(&self.convfmt());
                let re = self.regex_of(re)?;
                bool_val(re.is_match(&s) != *neg)
            }
            Expr::Binary(op, a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                match *op {
                    "<" | "<=" | "==" | "!=" | ">" | ">=" => {
                        let ord = if a.is_numeric() && b.is_numeric() {
                            a.num().partial_cmp(&b.num())
                        } else {
                            let conv = self.convfmt();
                            Some(a.string(&conv).cmp(&b.string(&conv)))
                        };
                        use std::cmp::Ordering::*;
                        bool_val(match (*op, ord) {
                            ("<", Some(Less))
                            | ("<=", Some(Less | Equal))
                            | ("==", Some(Equal)) => true,
                            (">", Some(Greater)) | (">=", Some(Greater | Equal)) => true,
                            ("!=", o) => o != Some(Equal),
                            _ => false,
                        })
                    }
                    op => Value::Num(arith(op, a.num(), b.num())?),
                }
            }
            Expr::Concat(a, b) => {
                let conv = self.convfmt();
                let a = self.eval(a)?.string(&conv);
                let b = self.eval(b)?.string(&conv);
                Value::Str(a + &b)
            }
            Expr::Not(a) => bool_val(!self.eval(a)?.truthy()),
            Expr::Neg(a) => Value::Num(-self.eval(a)?.num()),
            Expr::Plus(a) => Value::Num(self.eval(a)?.num()),
            Expr::IncDec(pre, inc, target) => {
                let old = self.eval(target)?.num();
                let new = if *inc { old + 1.0 } else { old - 1.0 };
                self.assign(target, Value::Num(new))?;
                Value::Num(if *pre { new } else { old })
            }
            Expr::Call(name, args) => self.call(name, args)?,
            Expr::Builtin(name, args) => self.builtin(name, args)?,
            Expr::Getline(target, file) => self.getline(target.as_deref(), file.as_deref())?,
            Expr::PipeGetline => {
                return Err(RunError(
                    "pipes are not supported (no shell in the sandbox)".into(),
                ))
            }
        })
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> R<Value> {
        let prog = self.prog;
        let Some(Function { params, body }) = prog.functions.get(name) else {
            return Err(RunError(format!("function `{name}' not defined")));
        };
        if args.len() > params.len() {
            return Err(RunError(format!(
                "function `{name}' called with more arguments than declared"
            )));
        }
        if self.frames.len() > 10_000 {
            return Err(RunError(format!("function `{name}': recursion too deep")));
        }
        let mut frame = Vec::with_capacity(params.len());
        let mut untyped = Vec::new();
        for a in args {
            // Arrays go by reference; an unset variable may become one.
            let cell = match a {
                Expr::Var(v) => match self.cell(v) {
                    Some(Cell::Array(arr)) => Cell::Array(arr),
                    Some(Cell::Untyped(arr)) => Cell::Untyped(arr),
                    Some(Cell::Scalar(Value::Uninit)) | None => {
                        let arr: ArrayRef = Rc::default();
                        untyped.push((v.clone(), arr.clone()));
                        Cell::Untyped(arr)
                    }
                    Some(Cell::Scalar(val)) => Cell::Scalar(val),
                },
                e => Cell::Scalar(self.eval(e)?),
            };
            frame.push(cell);
        }
        while frame.len() < params.len() {
            frame.push(Cell::Scalar(Value::Uninit));
        }
        self.frames.push(frame);
        let flow = self.block(body);
        self.frames.pop();
        for (v, arr) in untyped {
            if arr.borrow().adopted {
                match &v {
                    Var::Global(n) => {
                        self.globals.insert(n.clone(), Cell::Array(arr));
                    }
                    Var::Local(i) => {
                        if let Some(slot) = self.frames.last_mut().and_then(|f| f.get_mut(*i)) {
                            *slot = Cell::Array(arr);
                        }
                    }
                }
            }
        }
        match flow? {
            Flow::Return(v) => Ok(v),
            Flow::Exit => Err(RunError(EXIT.into())),
            Flow::Next => Err(RunError(NEXT.into())),
            _ => Ok(Value::Uninit),
        }
    }

    fn cell(&self, v: &Var) -> Option<Cell> {
        match v {
            Var::Global(n) if n == "NF" => Some(Cell::Scalar(Value::Num(self.nf as f64))),
            Var::Global(n) => self.globals.get(n).cloned(),
            Var::Local(i) => self.frames.last().and_then(|f| f.get(*i)).cloned(),
        }
    }

    fn getline(&mut self, target: Option<&Expr>, file: Option<&Expr>) -> R<Value> {
        let rec = match file {
            None => {
                if !self.next_main_record_raw()? {
                    return Ok(Value::Num(0.0));
                }
                let rec = std::mem::take(&mut self.pending);
                self.bump_nr();
                rec
            }
            Some(f) => {
                let name = self.eval(f)?.string(&self.convfmt());
                if !self.readers.contains_key(&name) {
                    let input: Box<dyn Read> = if name == "-" || name == "/dev/stdin" {
                        Box::new(io::stdin())
                    } else {
                        match File::open(&name) {
                            Ok(f) => Box::new(f),
                            Err(_) => return Ok(Value::Num(-1.0)),
                        }
                    };
                    self.readers.insert(name.clone(), Reader::new(input));
                }
                let rs = self.global_str("RS");
                let re = if rs.chars().count() > 1 {
                    Some(self.regex(&rs)?)
                } else {
                    None
                };
                match self
                    .readers
                    .get_mut(&name)
                    .map(|r| r.record(&rs, re.as_ref()))
                {
                    Some(Ok(Some(rec))) => rec,
                    Some(Ok(None)) | None => return Ok(Value::Num(0.0)),
                    Some(Err(_)) => return Ok(Value::Num(-1.0)),
                }
            }
        };
        match target {
            None => self.set_record(rec),
            Some(t) => {
                self.assign(t, Value::StrNum(rec))?;
            }
        }
        Ok(Value::Num(1.0))
    }
}

/// Splits `s` at the matches of a regex FS as gawk's re_parse_field does:
/// an empty match is no separator (the scan moves one character on), and
/// `^` matches only at the very start of the record.
pub(crate) fn re_fields(re: &Regex, s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.is_empty() {
        return out;
    }
    let end = s.len();
    let mut scan = 0;
    let mut field = 0;
    let mut done = false;
    while scan < end {
        let Some(m) = re.find_at(s, scan) else { break };
        if m.start() == m.end() {
            scan += s[scan..].chars().next().map_or(1, char::len_utf8);
            if scan == end {
                out.push(s[field..].to_owned());
                done = true;
                break;
            }
            continue;
        }
        out.push(s[field..m.start()].to_owned());
        scan = m.end();
        field = scan;
        if scan == end {
            out.push(String::new());
        }
    }
    if !done && scan < end {
        // As gawk: the rest from where the scan stopped.
        out.push(s[scan..].to_owned());
    }
    out
}

fn bool_val(b: bool) -> Value {
    Value::Num(f64::from(u8::from(b)))
}

fn arith(op: &str, a: f64, b: f64) -> R<f64> {
    Ok(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => {
            if b == 0.0 {
                return Err(RunError("division by zero".into()));
            }
            a / b
        }
        "%" => {
            if b == 0.0 {
                return Err(RunError("division by zero in %".into()));
            }
            a % b
        }
        "^" => a.powf(b),
        _ => return Err(RunError(format!("unknown operator {op}"))),
    })
}

/// awk's ERE as the regex crate spells it.
pub fn translate_ere(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut in_bracket = false;
    let mut in_interval = false;
    while i < chars.len() {
        let c = chars[i];
        if in_bracket {
            match c {
                '[' if chars.get(i + 1) == Some(&':') => {
                    while i < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                        if out.ends_with(":]") {
                            break;
                        }
                    }
                    continue;
                }
                ']' => in_bracket = false,
                '\\' => {
                    out.push('\\');
                    if let Some(&n) = chars.get(i + 1) {
                        out.push(n);
                    }
                    i += 2;
                    continue;
                }
                // Set operators and nested classes of the regex crate.
                '[' | '&' | '~' => out.push('\\'),
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_bracket = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            '\\' => {
                let hex = chars[i + 1..]
                    .iter()
                    .skip(1)
                    .take(2)
                    .take_while(|d| d.is_ascii_hexdigit())
                    .count();
                match chars.get(i + 1) {
                    // `\x41`: at most two hex digits; as in gawk the
                    // character keeps its regex meaning (`\x2e` is `.`).
                    Some('x') if hex > 0 => {
                        let digits: String = chars[i + 2..i + 2 + hex].iter().collect();
                        let v = u32::from_str_radix(&digits, 16).unwrap_or(0);
                        let ch = char::from_u32(v).unwrap_or('?');
                        out.push(ch);
                        i += 2 + hex;
                        continue;
                    }
                    Some(&n) if n.is_ascii_alphanumeric() && !"nrtfvbdDsSwWB".contains(n) => {
                        out.push(n)
                    }
                    Some(&n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push_str("\\\\"),
                }
                i += 2;
                continue;
            }
            '{' => {
                // A brace that does not start an interval is literal.
                let rest: String = chars[i..].iter().collect();
                let interval = rest.find('}').is_some_and(|end| {
                    let inner = &rest[1..end];
                    !inner.is_empty() && inner.chars().all(|ch| ch.is_ascii_digit() || ch == ',')
                }) && i > 0;
                if interval {
                    in_interval = true;
                } else {
                    out.push('\\');
                }
            }
            '}' if in_interval => in_interval = false,
            '}' => out.push('\\'),
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

impl Interp<'_> {
    /// -F: the field separator before BEGIN runs.
    pub fn set_fs(&mut self, fs: String) {
        self.set_global("FS", Value::Str(fs));
    }
}
