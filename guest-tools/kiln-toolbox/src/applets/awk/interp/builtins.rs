//! The built-in functions.

use super::{Interp, RunError, R};
use crate::applets::awk::parser::Expr;
use crate::applets::awk::value::{sprintf, Value};
use regex::Regex;
use std::io::Write as _;

impl Interp<'_> {
    pub(super) fn builtin(&mut self, name: &str, args: &[Expr]) -> R<Value> {
        let conv = self.convfmt();
        let arity = |lo: usize, hi: usize| -> R<()> {
            if args.len() < lo || args.len() > hi {
                Err(RunError(format!(
                    "{name}: called with {} arguments",
                    args.len()
                )))
            } else {
                Ok(())
            }
        };
        Ok(match name {
            "length" => {
                arity(0, 1)?;
                match args.first() {
                    None => Value::Num(self.record.chars().count() as f64),
                    Some(Expr::Var(v)) if matches!(self.cell(v), Some(super::Cell::Array(_))) => {
                        Value::Num(self.array_of(v).borrow().map.len() as f64)
                    }
                    Some(e) => Value::Num(self.eval(e)?.string(&conv).chars().count() as f64),
                }
            }
            "substr" => {
                arity(2, 3)?;
                let s: Vec<char> = self.eval(&args[0])?.string(&conv).chars().collect();
                // As gawk: a start below 1 counts as 1, then n characters.
                let from = self.eval(&args[1])?.num().trunc().max(1.0);
                let end = match args.get(2) {
                    Some(n) => from + self.eval(n)?.num().trunc(),
                    None => f64::INFINITY,
                };
                let to = end.min(s.len() as f64 + 1.0);
                if to <= from {
                    Value::Str(String::new())
                } else {
                    Value::Str(s[(from as usize - 1)..(to as usize - 1)].iter().collect())
                }
            }
            "index" => {
                arity(2, 2)?;
                let s = self.eval(&args[0])?.string(&conv);
                let t = self.eval(&args[1])?.string(&conv);
                Value::Num(match s.find(&t) {
                    Some(b) => (s[..b].chars().count() + 1) as f64,
                    None => 0.0,
                })
            }
            "split" => {
                arity(2, 3)?;
                let s = self.eval(&args[0])?.string(&conv);
                let Expr::Var(target) = &args[1] else {
                    return Err(RunError("split: second argument is not an array".into()));
                };
                let parts = match args.get(2) {
                    None => {
                        let fs = self.global_str("FS");
                        self.split(&s, &fs, false)
                    }
                    Some(Expr::Regex(r)) => {
                        let re = self.regex(r)?;
                        if s.is_empty() {
                            Vec::new()
                        } else {
                            super::re_fields(&re, &s)
                        }
                    }
                    Some(e) => {
                        let fs = self.eval(e)?.string(&conv);
                        self.split(&s, &fs, false)
                    }
                };
                let arr = self.array_of(target);
                let mut arr = arr.borrow_mut();
                arr.map.clear();
                for (i, p) in parts.iter().enumerate() {
                    arr.set((i + 1).to_string(), Value::StrNum(p.clone()));
                }
                Value::Num(parts.len() as f64)
            }
            "sub" | "gsub" => {
                arity(2, 3)?;
                let re = self.regex_of(&args[0])?;
                let repl = self.eval(&args[1])?.string(&conv);
                let target = args
                    .get(2)
                    .cloned()
                    .unwrap_or(Expr::Field(Box::new(Expr::Num(0.0))));
                let s = self.eval(&target)?.string(&conv);
                let (out, n) = substitute(&re, &repl, &s, name == "gsub");
                if n > 0 {
                    self.assign(&target, Value::Str(out))?;
                }
                Value::Num(n as f64)
            }
            "match" => {
                arity(2, 2)?;
                let s = self.eval(&args[0])?.string(&conv);
                let re = self.regex_of(&args[1])?;
                let (start, len) = match re.find(&s) {
                    Some(m) => (
                        s[..m.start()].chars().count() as f64 + 1.0,
                        m.as_str().chars().count() as f64,
                    ),
                    None => (0.0, -1.0),
                };
                self.set_global("RSTART", Value::Num(start));
                self.set_global("RLENGTH", Value::Num(len));
                Value::Num(start)
            }
            "sprintf" => {
                if args.is_empty() {
                    return Err(RunError("sprintf: no format".into()));
                }
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(a)?);
                }
                Value::Str(sprintf(&vals[0].string(&conv), &vals[1..], &conv))
            }
            "tolower" | "toupper" => {
                arity(1, 1)?;
                let s = self.eval(&args[0])?.string(&conv);
                Value::Str(if name == "tolower" {
                    s.to_lowercase()
                } else {
                    s.to_uppercase()
                })
            }
            "int" | "sqrt" | "exp" | "log" | "sin" | "cos" => {
                arity(1, 1)?;
                let x = self.eval(&args[0])?.num();
                Value::Num(match name {
                    "int" => x.trunc(),
                    "sqrt" => x.sqrt(),
                    "exp" => x.exp(),
                    "log" => x.ln(),
                    "sin" => x.sin(),
                    _ => x.cos(),
                })
            }
            "atan2" => {
                arity(2, 2)?;
                let y = self.eval(&args[0])?.num();
                let x = self.eval(&args[1])?.num();
                Value::Num(y.atan2(x))
            }
            "rand" => {
                arity(0, 0)?;
                Value::Num(self.rand())
            }
            "srand" => {
                arity(0, 1)?;
                let seed = match args.first() {
                    Some(e) => self.eval(e)?.num(),
                    None => 0.0,
                };
                let old = self.seed;
                self.srand(seed);
                Value::Num(old)
            }
            "close" => {
                arity(1, 2)?;
                let f = self.eval(&args[0])?.string(&conv);
                let mut found = self.readers.remove(&f).is_some();
                if let Some(mut w) = self.files.remove(&f) {
                    found = true;
                    let _ = w.flush();
                }
                Value::Num(if found { 0.0 } else { -1.0 })
            }
            "fflush" => {
                self.flush_all();
                Value::Num(0.0)
            }
            "system" => {
                let _ = self.out.flush();
                return Err(RunError(
                    "system() is not supported (no shell in the sandbox)".into(),
                ));
            }
            _ => return Err(RunError(format!("function `{name}' not defined"))),
        })
    }

    pub(super) fn srand(&mut self, seed: f64) {
        self.seed = seed;
        self.rng = (seed as i64 as u64) ^ 0x9E37_79B9_7F4A_7C15;
    }

    /// splitmix64: a fixed, documented sequence for each seed.
    fn rand(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// sub/gsub: `&` is the match, `\&` a literal `&`, `\\` a backslash.
fn substitute(re: &Regex, repl: &str, s: &str, global: bool) -> (String, usize) {
    let mut out = String::new();
    let mut pos = 0;
    let mut count = 0;
    let mut last_end: Option<usize> = None;
    while pos <= s.len() {
        let Some(m) = re.find_at(s, pos) else { break };
        if m.start() == m.end() && last_end == Some(m.start()) {
            // No empty match right after a match: step over one character.
            let Some(c) = s[m.start()..].chars().next() else {
                break;
            };
            out.push_str(&s[pos..m.start() + c.len_utf8()]);
            pos = m.start() + c.len_utf8();
            continue;
        }
        out.push_str(&s[pos..m.start()]);
        expand(repl, m.as_str(), &mut out);
        count += 1;
        if m.start() == m.end() {
            match s[m.start()..].chars().next() {
                Some(c) => {
                    out.push(c);
                    pos = m.start() + c.len_utf8();
                }
                None => {
                    pos = s.len() + 1;
                }
            }
        } else {
            pos = m.end();
            last_end = Some(m.end());
        }
        if !global {
            break;
        }
    }
    if pos <= s.len() {
        out.push_str(&s[pos..]);
    }
    (out, count)
}

fn expand(repl: &str, matched: &str, out: &mut String) {
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'&') => {
                chars.next();
                out.push('&');
            }
            '\\' if chars.peek() == Some(&'\\') => {
                chars.next();
                out.push('\\');
            }
            '&' => out.push_str(matched),
            c => out.push(c),
        }
    }
}
