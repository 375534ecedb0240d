//! The `test` / `[` builtin: POSIX expressions with file tests through the host.

use super::host::FileKind;
use super::Shell;
use crate::image_path::normalise;

const UNARY: &[&str] = &[
    "-e", "-f", "-d", "-s", "-r", "-w", "-x", "-h", "-L", "-b", "-c", "-p", "-S", "-t", "-n", "-z",
];
const BINARY: &[&str] = &[
    "=", "==", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef",
];

struct TestParser<'a> {
    args: &'a [String],
    pos: usize,
    sh: &'a Shell,
    depth: usize,
}

impl TestParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.args.get(self.pos).map(String::as_str)
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek() == Some("-o") {
            self.pos += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek() == Some("-a") {
            self.pos += 1;
            let r = self.not()?;
            v = v && r;
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<bool, String> {
        self.depth += 1;
        if self.depth > 100 {
            return Err("expression too deep".into());
        }
        // `! x` negates unless `!` is itself the left operand of a binary op.
        let binary_next = self
            .args
            .get(self.pos + 1)
            .is_some_and(|a| BINARY.contains(&a.as_str()))
            && self.pos + 2 < self.args.len();
        let r = super::nesting::grow(|| {
            if self.peek() == Some("!") && !binary_next {
                self.pos += 1;
                self.not().map(|v| !v)
            } else {
                self.primary()
            }
        });
        self.depth -= 1;
        r
    }

    fn primary(&mut self) -> Result<bool, String> {
        let Some(a) = self.peek().map(str::to_string) else {
            return Err("argument expected".into());
        };
        if let Some(op) = self.args.get(self.pos + 1).map(String::as_str) {
            if BINARY.contains(&op) && self.pos + 2 < self.args.len() {
                let b = self.args[self.pos + 2].clone();
                self.pos += 3;
                return self.binary(&a, op, &b);
            }
        }
        if a == "(" && self.pos + 1 < self.args.len() {
            self.pos += 1;
            let v = self.or()?;
            if self.peek() != Some(")") {
                return Err("closing paren expected".into());
            }
            self.pos += 1;
            return Ok(v);
        }
        if UNARY.contains(&a.as_str()) && self.pos + 1 < self.args.len() {
            let operand = self.args[self.pos + 1].clone();
            self.pos += 2;
            return Ok(self.unary(&a, &operand));
        }
        self.pos += 1;
        Ok(!a.is_empty())
    }

    fn unary(&self, op: &str, x: &str) -> bool {
        let host = &self.sh.host;
        let path = || self.sh.abs_path(x);
        match op {
            "-n" => !x.is_empty(),
            "-z" => x.is_empty(),
            "-t" => false,
            "-h" | "-L" => {
                !x.is_empty()
                    && host
                        .symlink_metadata(&path())
                        .is_some_and(|m| m.kind == FileKind::Symlink)
            }
            _ => {
                if x.is_empty() {
                    return false;
                }
                let Some(m) = host.metadata(&path()) else {
                    return false;
                };
                match op {
                    "-e" | "-r" | "-w" => true,
                    "-f" => m.kind == FileKind::File,
                    "-d" => m.kind == FileKind::Dir,
                    "-s" => m.size > 0,
                    "-x" => m.mode & 0o111 != 0,
                    "-b" | "-c" | "-p" | "-S" => m.kind == FileKind::Other,
                    _ => false,
                }
            }
        }
    }

    fn exists(&self, x: &str) -> bool {
        !x.is_empty() && self.sh.host.metadata(&self.sh.abs_path(x)).is_some()
    }

    /// `-ef`: both exist and are the same file (same inode in kiln).
    fn same_file(&self, a: &str, b: &str) -> bool {
        if !self.exists(a) || !self.exists(b) {
            return false;
        }
        let (pa, pb) = (self.sh.abs_path(a), self.sh.abs_path(b));
        let host = &self.sh.host;
        match (host.file_id(&pa), host.file_id(&pb)) {
            (Some(x), Some(y)) => x == y,
            _ => normalise(&pa) == normalise(&pb),
        }
    }

    fn binary(&self, a: &str, op: &str, b: &str) -> Result<bool, String> {
        let int = |s: &str| -> Result<i64, String> {
            let t = s.trim();
            t.parse::<i64>().map_err(|_| format!("Illegal number: {s}"))
        };
        Ok(match op {
            "=" | "==" => a == b,
            "!=" => a != b,
            "<" => a.as_bytes() < b.as_bytes(),
            ">" => a.as_bytes() > b.as_bytes(),
            "-eq" => int(a)? == int(b)?,
            "-ne" => int(a)? != int(b)?,
            "-lt" => int(a)? < int(b)?,
            "-le" => int(a)? <= int(b)?,
            "-gt" => int(a)? > int(b)?,
            "-ge" => int(a)? >= int(b)?,
            "-ef" => self.same_file(a, b),
            _ => false,
        })
    }
}

impl Shell {
    pub(super) fn builtin_test(&mut self, args: &[String], name: &str) -> i32 {
        if args.is_empty() {
            return 1;
        }
        let mut p = TestParser {
            args,
            pos: 0,
            sh: self,
            depth: 0,
        };
        let r = p.or();
        let leftover = p.args.get(p.pos).cloned();
        match (r, leftover) {
            (Ok(v), None) => (!v) as i32,
            (Ok(_), Some(extra)) => {
                self.err_msg(&format!("{name}: {extra}: unexpected operator"));
                2
            }
            (Err(e), _) => {
                self.err_msg(&format!("{name}: {e}"));
                2
            }
        }
    }
}
