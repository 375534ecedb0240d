//! An in-memory implementation of the shell's `Host` trait for tests: a tiny
//! filesystem and a few "external programs" written as Rust functions
//! (cat, tr, wc, seq, sort, head, mkdir, ls). It is a test fixture of the
//! trait, not a model of kiln's WASI sandbox.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use kiln_runtime::shell::{Child, FileInfo, FileKind, Host, Input, OpenMode, Output, Shell, Stdio};

#[derive(Debug, Clone)]
pub enum Node {
    File(Vec<u8>, u32),
    Dir,
    Symlink(String),
}

type Fs = Arc<Mutex<BTreeMap<String, Node>>>;

/// Arguments, streams and filesystem of a running fake program.
pub struct Ctx {
    pub args: Vec<String>,
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
    pub cwd: String,
    pub fs: Fs,
}

type Prog = fn(&mut Ctx) -> i32;

pub struct MemHost {
    pub fs: Fs,
    /// Paths that are hard links of another (its file identity).
    links: Mutex<BTreeMap<String, String>>,
    programs: BTreeMap<&'static str, Prog>,
}

use kiln_runtime::image_path::normalise;

fn resolve(cwd: &str, p: &str) -> String {
    kiln_runtime::image_path::join_normalised(cwd, p)
}

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

fn lookup(fs: &BTreeMap<String, Node>, path: &str, follow: bool) -> Option<(String, Node)> {
    let mut p = normalise(path);
    for _ in 0..10 {
        match fs.get(&p)? {
            Node::Symlink(t) if follow => {
                p = resolve(&parent(&p), t);
            }
            n => return Some((p, n.clone())),
        }
    }
    None
}

fn info(n: &Node) -> FileInfo {
    match n {
        Node::File(d, mode) => FileInfo {
            kind: FileKind::File,
            size: d.len() as u64,
            mode: *mode,
        },
        Node::Dir => FileInfo {
            kind: FileKind::Dir,
            size: 0,
            mode: 0o755,
        },
        Node::Symlink(_) => FileInfo {
            kind: FileKind::Symlink,
            size: 0,
            mode: 0o777,
        },
    }
}

struct MemWriter {
    fs: Fs,
    path: String,
}

impl Write for MemWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut fs = self.fs.lock().map_err(|_| io::Error::other("poisoned"))?;
        match fs.get_mut(&self.path) {
            Some(Node::File(d, _)) => {
                d.extend_from_slice(buf);
                Ok(buf.len())
            }
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Thread(std::thread::JoinHandle<i32>);

impl Child for Thread {
    fn wait(self: Box<Self>) -> i32 {
        self.0.join().unwrap_or(134)
    }
}

impl Default for MemHost {
    fn default() -> Self {
        Self::new()
    }
}

impl MemHost {
    pub fn new() -> MemHost {
        let mut fs = BTreeMap::new();
        for d in ["/", "/bin", "/work", "/tmp"] {
            fs.insert(d.to_string(), Node::Dir);
        }
        let mut programs: BTreeMap<&'static str, Prog> = BTreeMap::new();
        programs.insert("cat", prog_cat);
        programs.insert("tr", prog_tr);
        programs.insert("wc", prog_wc);
        programs.insert("seq", prog_seq);
        programs.insert("sort", prog_sort);
        programs.insert("head", prog_head);
        programs.insert("mkdir", prog_mkdir);
        programs.insert("ls", prog_ls);
        for name in programs.keys() {
            fs.insert(format!("/bin/{name}"), Node::File(b"\0asm".to_vec(), 0o755));
        }
        MemHost {
            fs: Arc::new(Mutex::new(fs)),
            links: Mutex::new(BTreeMap::new()),
            programs,
        }
    }

    /// Makes `path` count as a hard link of `target` for `test -ef` (the
    /// contents stay separate: this fixture has no inodes).
    pub fn same_inode(&self, path: &str, target: &str) {
        if let Ok(mut links) = self.links.lock() {
            links.insert(normalise(path), normalise(target));
        }
    }

    pub fn write_file(&self, path: &str, data: &[u8]) {
        if let Ok(mut fs) = self.fs.lock() {
            fs.insert(normalise(path), Node::File(data.to_vec(), 0o644));
        }
    }

    pub fn add(&self, path: &str, node: Node) {
        if let Ok(mut fs) = self.fs.lock() {
            fs.insert(normalise(path), node);
        }
    }

    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let fs = self.fs.lock().ok()?;
        match lookup(&fs, path, true)? {
            (_, Node::File(d, _)) => Some(d),
            _ => None,
        }
    }
}

impl Host for MemHost {
    fn spawn(
        &self,
        argv: &[String],
        _env: &[(String, String)],
        cwd: &str,
        stdio: Stdio,
    ) -> io::Result<Box<dyn Child>> {
        let name = argv[0].rsplit('/').next().unwrap_or("");
        let prog = *self.programs.get(name).ok_or(io::ErrorKind::NotFound)?;
        let mut ctx = Ctx {
            args: argv[1..].to_vec(),
            stdin: stdio.stdin,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            cwd: cwd.to_string(),
            fs: Arc::clone(&self.fs),
        };
        Ok(Box::new(Thread(std::thread::spawn(move || prog(&mut ctx)))))
    }

    fn find_program(&self, name: &str, _env: &[(String, String)]) -> Option<String> {
        self.programs
            .contains_key(name)
            .then(|| format!("/bin/{name}"))
    }

    fn open_read(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        let fs = self.fs.lock().map_err(|_| io::Error::other("poisoned"))?;
        match lookup(&fs, path, true) {
            Some((_, Node::File(d, _))) => Ok(Box::new(io::Cursor::new(d))),
            Some(_) => Err(io::ErrorKind::IsADirectory.into()),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn open_write(&self, path: &str, mode: OpenMode) -> io::Result<Box<dyn Write + Send>> {
        let mut fs = self.fs.lock().map_err(|_| io::Error::other("poisoned"))?;
        let path = normalise(path);
        if !matches!(fs.get(&parent(&path)), Some(Node::Dir)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        match fs.get_mut(&path) {
            Some(Node::Dir) => return Err(io::ErrorKind::IsADirectory.into()),
            Some(Node::File(d, _)) => {
                if mode == OpenMode::Write {
                    d.clear();
                }
            }
            _ => {
                fs.insert(path.clone(), Node::File(Vec::new(), 0o644));
            }
        }
        Ok(Box::new(MemWriter {
            fs: Arc::clone(&self.fs),
            path,
        }))
    }

    fn metadata(&self, path: &str) -> Option<FileInfo> {
        let fs = self.fs.lock().ok()?;
        lookup(&fs, path, true).map(|(_, n)| info(&n))
    }

    fn symlink_metadata(&self, path: &str) -> Option<FileInfo> {
        let fs = self.fs.lock().ok()?;
        lookup(&fs, path, false).map(|(_, n)| info(&n))
    }

    /// The resolved path (or the path it is a "hard link" of) stands for
    /// the inode.
    fn file_id(&self, path: &str) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let fs = self.fs.lock().ok()?;
        let (p, _) = lookup(&fs, path, true)?;
        let p = match self.links.lock().ok()?.get(&p) {
            Some(target) => target.clone(),
            None => p,
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        p.hash(&mut h);
        Some(h.finish())
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let fs = self.fs.lock().map_err(|_| io::Error::other("poisoned"))?;
        let (dir, node) = lookup(&fs, path, true).ok_or(io::ErrorKind::NotFound)?;
        if !matches!(node, Node::Dir) {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        // Reverse order on purpose: the shell must sort.
        Ok(fs
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .rev()
            .collect())
    }
}

/// Output of one script run.
pub struct RunResult {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }
}

/// Runs `script` in a fresh shell over `host`, in /work, PATH=/bin.
pub fn run_with(host: Arc<MemHost>, script: &str, stdin: &str) -> RunResult {
    let out = Buf::default();
    let err = Buf::default();
    let mut sh = Shell::new(host);
    sh.set_env([("PATH", "/bin"), ("HOME", "/root")]);
    sh.set_cwd("/work");
    sh.set_stdio(Stdio {
        stdin: Input::from_reader(io::Cursor::new(stdin.as_bytes().to_vec())),
        stdout: Output::from_writer(out.clone()),
        stderr: Output::from_writer(err.clone()),
    });
    let status = sh.run_script(script);
    RunResult {
        status,
        stdout: out.text(),
        stderr: err.text(),
    }
}

pub fn run(script: &str) -> RunResult {
    run_with(Arc::new(MemHost::new()), script, "")
}

// ---- the fake programs ----

fn out(ctx: &Ctx, s: &[u8]) -> bool {
    ctx.stdout.write_all(s).is_ok()
}

fn read_inputs(ctx: &mut Ctx, files: &[String]) -> Result<Vec<u8>, i32> {
    if files.is_empty() {
        return ctx.stdin.read_to_end().map_err(|_| 1);
    }
    let mut data = Vec::new();
    for f in files {
        if f == "-" {
            data.extend(ctx.stdin.read_to_end().map_err(|_| 1)?);
            continue;
        }
        let fs = ctx.fs.lock().map_err(|_| 1)?;
        match lookup(&fs, &resolve(&ctx.cwd, f), true) {
            Some((_, Node::File(d, _))) => data.extend(d),
            _ => {
                let _ = ctx
                    .stderr
                    .write_all(format!("{f}: No such file or directory\n").as_bytes());
                return Err(1);
            }
        }
    }
    Ok(data)
}

fn prog_cat(ctx: &mut Ctx) -> i32 {
    let files = ctx.args.clone();
    match read_inputs(ctx, &files) {
        Ok(d) => (!out(ctx, &d)) as i32,
        Err(s) => s,
    }
}

fn expand_set(s: &str) -> Vec<char> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if i + 2 < cs.len() && cs[i + 1] == '-' {
            let (a, b) = (cs[i] as u32, cs[i + 2] as u32);
            out.extend((a..=b).filter_map(char::from_u32));
            i += 3;
        } else if cs[i] == '\\' && i + 1 < cs.len() {
            out.push(match cs[i + 1] {
                'n' => '\n',
                't' => '\t',
                c => c,
            });
            i += 2;
        } else {
            out.push(cs[i]);
            i += 1;
        }
    }
    out
}

fn prog_tr(ctx: &mut Ctx) -> i32 {
    let data = ctx.stdin.read_to_end().unwrap_or_default();
    let text = String::from_utf8_lossy(&data);
    let (delete, sets) = match ctx.args.first().map(String::as_str) {
        Some("-d") => (true, &ctx.args[1..]),
        _ => (false, &ctx.args[..]),
    };
    let from = expand_set(sets.first().map(String::as_str).unwrap_or(""));
    let to = expand_set(sets.get(1).map(String::as_str).unwrap_or(""));
    let mut res = String::new();
    for c in text.chars() {
        match from.iter().position(|f| *f == c) {
            Some(_) if delete => {}
            Some(i) => res.push(*to.get(i).or(to.last()).unwrap_or(&c)),
            None => res.push(c),
        }
    }
    (!out(ctx, res.as_bytes())) as i32
}

fn prog_wc(ctx: &mut Ctx) -> i32 {
    let mut flags = Vec::new();
    let mut files = Vec::new();
    for a in &ctx.args {
        if a.starts_with('-') && a.len() > 1 {
            flags.extend(a[1..].chars());
        } else {
            files.push(a.clone());
        }
    }
    let data = match read_inputs(ctx, &files) {
        Ok(d) => d,
        Err(s) => return s,
    };
    let lines = data.iter().filter(|b| **b == b'\n').count();
    let words = String::from_utf8_lossy(&data).split_whitespace().count();
    let counts: Vec<usize> = if flags.is_empty() {
        vec![lines, words, data.len()]
    } else {
        flags
            .iter()
            .map(|f| match f {
                'l' => lines,
                'w' => words,
                _ => data.len(),
            })
            .collect()
    };
    let mut line = if counts.len() == 1 {
        counts[0].to_string()
    } else {
        let width = if files.is_empty() {
            7
        } else {
            counts
                .iter()
                .max()
                .map(|m| m.to_string().len())
                .unwrap_or(1)
        };
        counts
            .iter()
            .map(|c| format!("{c:>width$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if let Some(f) = files.first() {
        line.push(' ');
        line.push_str(f);
    }
    line.push('\n');
    (!out(ctx, line.as_bytes())) as i32
}

fn prog_seq(ctx: &mut Ctx) -> i32 {
    let nums: Vec<i64> = ctx.args.iter().filter_map(|a| a.parse().ok()).collect();
    let (first, step, last) = match nums.as_slice() {
        [l] => (1, 1, *l),
        [f, l] => (*f, 1, *l),
        [f, s, l] => (*f, *s, *l),
        _ => return 1,
    };
    if step == 0 {
        return 1;
    }
    let mut s = String::new();
    let mut i = first;
    while (step > 0 && i <= last) || (step < 0 && i >= last) {
        s.push_str(&format!("{i}\n"));
        i += step;
    }
    (!out(ctx, s.as_bytes())) as i32
}

fn prog_sort(ctx: &mut Ctx) -> i32 {
    let mut flags = String::new();
    let mut files = Vec::new();
    for a in &ctx.args {
        if a.starts_with('-') && a.len() > 1 {
            flags.push_str(&a[1..]);
        } else {
            files.push(a.clone());
        }
    }
    let data = match read_inputs(ctx, &files) {
        Ok(d) => d,
        Err(s) => return s,
    };
    let text = String::from_utf8_lossy(&data);
    let mut lines: Vec<&str> = text.lines().collect();
    if flags.contains('n') {
        let key = |l: &str| -> i64 {
            let t = l.trim_start();
            let end = t
                .char_indices()
                .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
                .map(|(i, _)| i)
                .unwrap_or(t.len());
            t[..end].parse().unwrap_or(0)
        };
        lines.sort_by(|a, b| key(a).cmp(&key(b)).then(a.as_bytes().cmp(b.as_bytes())));
    } else {
        lines.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    }
    if flags.contains('r') {
        lines.reverse();
    }
    if flags.contains('u') {
        lines.dedup();
    }
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    (!out(ctx, s.as_bytes())) as i32
}

fn prog_head(ctx: &mut Ctx) -> i32 {
    let mut n = 10usize;
    let mut files = Vec::new();
    let mut i = 0;
    while i < ctx.args.len() {
        let a = &ctx.args[i];
        if a == "-n" {
            i += 1;
            n = ctx.args.get(i).and_then(|v| v.parse().ok()).unwrap_or(10);
        } else if let Some(v) = a
            .strip_prefix("-n")
            .or_else(|| a.strip_prefix('-'))
            .filter(|v| !v.is_empty())
        {
            n = v.parse().unwrap_or(10);
        } else {
            files.push(a.clone());
        }
        i += 1;
    }
    // Read only what is needed (like real head), so pipelines can end early.
    let mut s = Vec::new();
    let mut lines = 0;
    let mut buf = [0u8; 1];
    if files.is_empty() {
        while lines < n {
            match ctx.stdin.read(&mut buf) {
                Ok(1) => {
                    s.push(buf[0]);
                    if buf[0] == b'\n' {
                        lines += 1;
                    }
                }
                _ => break,
            }
        }
    } else {
        let data = match read_inputs(ctx, &files) {
            Ok(d) => d,
            Err(st) => return st,
        };
        for b in data {
            if lines >= n {
                break;
            }
            s.push(b);
            if b == b'\n' {
                lines += 1;
            }
        }
    }
    (!out(ctx, &s)) as i32
}

fn prog_mkdir(ctx: &mut Ctx) -> i32 {
    let Ok(mut fs) = ctx.fs.lock() else { return 1 };
    let parents = ctx.args.iter().any(|a| a == "-p");
    for a in ctx.args.iter().filter(|a| !a.starts_with('-')) {
        let p = resolve(&ctx.cwd, a);
        if parents {
            let mut cur = String::new();
            for c in p.split('/').filter(|c| !c.is_empty()) {
                cur.push('/');
                cur.push_str(c);
                fs.entry(cur.clone()).or_insert(Node::Dir);
            }
        } else if fs.contains_key(&p) || !matches!(fs.get(&parent(&p)), Some(Node::Dir)) {
            return 1;
        } else {
            fs.insert(p, Node::Dir);
        }
    }
    0
}

fn prog_ls(ctx: &mut Ctx) -> i32 {
    let dirs: Vec<String> = if ctx.args.is_empty() {
        vec![".".into()]
    } else {
        ctx.args.clone()
    };
    let Ok(fs) = ctx.fs.lock() else { return 1 };
    let mut s = String::new();
    for d in &dirs {
        let p = resolve(&ctx.cwd, d);
        let prefix = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        match fs.get(&p) {
            Some(Node::Dir) => {
                for k in fs.keys() {
                    if let Some(rest) = k.strip_prefix(&prefix) {
                        if !rest.is_empty() && !rest.contains('/') && !rest.starts_with('.') {
                            s.push_str(rest);
                            s.push('\n');
                        }
                    }
                }
            }
            Some(_) => {
                s.push_str(d);
                s.push('\n');
            }
            None => return 2,
        }
    }
    drop(fs);
    (!out(ctx, s.as_bytes())) as i32
}
