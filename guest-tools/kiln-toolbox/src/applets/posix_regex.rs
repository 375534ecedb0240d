//! POSIX basic and extended regular expressions (with the GNU extensions
//! grep users rely on: `\|`, `\+`, `\?`, `\<`, `\>`, `\w`, `\s`, `\b`)
//! translated to the `regex` crate's syntax. The `regex` crate has no
//! backreferences, so `\1`..`\9` are an error here.

/// Which POSIX syntax a pattern is written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Syntax {
    /// BRE (`grep`, `grep -G`).
    Basic,
    /// ERE (`grep -E`).
    Extended,
}

/// Translates `pattern` into `regex` syntax; errors are GNU grep's messages.
pub fn translate(pattern: &[u8], syntax: Syntax) -> Result<String, String> {
    Translator {
        pat: pattern,
        i: 0,
        out: String::new(),
        syntax,
        groups: Vec::new(),
        closed: 0,
        atom: None,
        after_quantifier: false,
    }
    .run()
}

/// A pattern that matches `literal` exactly (`grep -F`).
pub fn literal(literal: &[u8]) -> String {
    let mut out = String::new();
    for &b in literal {
        push_literal(&mut out, b);
    }
    out
}

/// Appends a byte that matches itself: letters and digits as they are,
/// everything else as `\xNN` (valid inside and outside classes, and a
/// single byte because the regex is built with Unicode off).
fn push_literal(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() {
        out.push(b as char);
    } else {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

const CLASSES: &[&str] = &[
    "alpha", "digit", "alnum", "upper", "lower", "space", "blank", "punct", "print", "graph",
    "cntrl", "xdigit",
];

struct Translator<'a> {
    pat: &'a [u8],
    i: usize,
    out: String,
    syntax: Syntax,
    /// Where each open group starts in `out`.
    groups: Vec<usize>,
    /// How many groups have been closed (for `\N` validity).
    closed: usize,
    /// Where the last repeatable atom starts in `out`; `None` at the start of
    /// the expression, a group or an alternative.
    atom: Option<usize>,
    after_quantifier: bool,
}

impl Translator<'_> {
    fn run(mut self) -> Result<String, String> {
        let ere = self.syntax == Syntax::Extended;
        while self.i < self.pat.len() {
            let c = self.pat[self.i];
            self.i += 1;
            match c {
                b'\\' => self.escape()?,
                b'[' => {
                    let start = self.out.len();
                    self.bracket()?;
                    self.set_atom(start);
                }
                b'.' => {
                    let start = self.out.len();
                    self.out.push('.');
                    self.set_atom(start);
                }
                b'*' => self.quantifier("*")?,
                b'^' if ere || self.atom.is_none() && !self.after_quantifier => {
                    self.out.push('^');
                    self.atom = None;
                }
                b'$' if ere || self.at_bre_end() => {
                    self.out.push('$');
                    self.atom = None;
                }
                b'(' if ere => self.open(),
                b')' if ere && !self.groups.is_empty() => self.close()?,
                b'|' if ere => self.alternate(),
                b'+' if ere => self.quantifier("+")?,
                b'?' if ere => self.quantifier("?")?,
                b'{' if ere => {
                    if self.atom.is_some() && self.interval_ahead() {
                        self.interval(b"}")?;
                    } else {
                        self.literal(b'{');
                    }
                }
                other => self.literal(other),
            }
        }
        if !self.groups.is_empty() {
            return Err("Unmatched ( or \\(".into());
        }
        Ok(self.out)
    }

    fn set_atom(&mut self, start: usize) {
        self.atom = Some(start);
        self.after_quantifier = false;
    }

    fn literal(&mut self, b: u8) {
        let start = self.out.len();
        push_literal(&mut self.out, b);
        self.set_atom(start);
    }

    /// A BRE `$` is an anchor only at the end of the pattern, a group or an
    /// alternative.
    fn at_bre_end(&self) -> bool {
        let rest = &self.pat[self.i..];
        rest.is_empty() || rest.starts_with(b"\\)") || rest.starts_with(b"\\|")
    }

    fn open(&mut self) {
        self.groups.push(self.out.len());
        self.out.push('(');
        self.atom = None;
        self.after_quantifier = false;
    }

    fn close(&mut self) -> Result<(), String> {
        let Some(start) = self.groups.pop() else {
            return Err("Unmatched ) or \\)".into());
        };
        self.out.push(')');
        self.closed += 1;
        self.set_atom(start);
        Ok(())
    }

    fn alternate(&mut self) {
        self.out.push('|');
        self.atom = None;
        self.after_quantifier = false;
    }

    /// Applies `op` to the last atom; with nothing to repeat the operator is
    /// an ordinary character, as in GNU grep.
    fn quantifier(&mut self, op: &str) -> Result<(), String> {
        let Some(start) = self.atom else {
            let b = op.as_bytes()[0];
            self.literal(b);
            return Ok(());
        };
        if self.after_quantifier {
            // `a**`, `a\{2\}*`: repeat the repetition.
            self.out.insert_str(start, "(?:");
            self.out.push(')');
        }
        self.out.push_str(op);
        self.after_quantifier = true;
        Ok(())
    }

    fn escape(&mut self) -> Result<(), String> {
        let Some(&c) = self.pat.get(self.i) else {
            return Err("Trailing backslash".into());
        };
        self.i += 1;
        let bre = self.syntax == Syntax::Basic;
        match c {
            b'(' if bre => self.open(),
            b')' if bre => self.close()?,
            b'|' if bre => self.alternate(),
            b'+' if bre => self.quantifier("+")?,
            b'?' if bre => self.quantifier("?")?,
            b'{' if bre => {
                if self.atom.is_none() {
                    return Err("Invalid preceding regular expression".into());
                }
                self.interval(b"\\}")?;
            }
            b'1'..=b'9' => {
                if usize::from(c - b'0') > self.closed {
                    return Err("Invalid back reference".into());
                }
                return Err(format!(
                    "back-references (\\{}) are not supported by kiln's grep",
                    c as char
                ));
            }
            b'<' | b'>' | b'b' | b'B' | b'`' | b'\'' => {
                self.out.push_str(match c {
                    b'<' => "\\b{start}",
                    b'>' => "\\b{end}",
                    b'b' => "\\b",
                    b'B' => "\\B",
                    b'`' => "\\A",
                    _ => "\\z",
                });
                self.atom = None;
            }
            b'w' | b'W' | b's' | b'S' => {
                let start = self.out.len();
                self.out.push('\\');
                self.out.push(c as char);
                self.set_atom(start);
            }
            other => self.literal(other),
        }
        Ok(())
    }

    /// Whether an ERE `{` starts a valid interval (otherwise it is literal).
    fn interval_ahead(&self) -> bool {
        let rest = &self.pat[self.i..];
        let Some(end) = rest.iter().position(|&b| b == b'}') else {
            return false;
        };
        let body = &rest[..end];
        !body.is_empty()
            && body.iter().all(|b| b.is_ascii_digit() || *b == b',')
            && body.iter().filter(|&&b| b == b',').count() <= 1
            && body != b","
    }

    /// Parses `m`, `m,`, `m,n` or `,n` up to `close` (`}` or `\}`).
    fn interval(&mut self, close: &[u8]) -> Result<(), String> {
        let rest = &self.pat[self.i..];
        let Some(end) = rest.windows(close.len()).position(|w| w == close) else {
            return Err(if close.len() == 2 {
                "Unmatched \\{".into()
            } else {
                "Unmatched {".into()
            });
        };
        let body = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.i += end + close.len();
        let invalid = || "Invalid content of \\{\\}".to_owned();
        let number = |s: &str| -> Result<Option<u32>, String> {
            if s.is_empty() {
                Ok(None)
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse()
                    .map(Some)
                    .map_err(|_| "Regular expression too big".to_owned())
            } else {
                Err(invalid())
            }
        };
        let op = match body.split_once(',') {
            None => {
                let n = number(&body)?.ok_or_else(invalid)?;
                format!("{{{n}}}")
            }
            Some((lo, hi)) => {
                let lo = number(lo)?.unwrap_or(0);
                match number(hi)? {
                    Some(hi) if hi < lo => return Err(invalid()),
                    Some(hi) => format!("{{{lo},{hi}}}"),
                    None => format!("{{{lo},}}"),
                }
            }
        };
        self.quantifier(&op)
    }

    /// A bracket expression; `self.i` is just after the `[`.
    fn bracket(&mut self) -> Result<(), String> {
        const UNMATCHED: &str = "Unmatched [, [^, [:, [., or [=";
        let pat = self.pat;
        let mut i = self.i;
        let mut out = String::from("[");
        if pat.get(i) == Some(&b'^') {
            out.push('^');
            i += 1;
        }
        let mut first = true;
        loop {
            let Some(&b) = pat.get(i) else {
                return Err(UNMATCHED.into());
            };
            if b == b']' && !first {
                i += 1;
                break;
            }
            first = false;
            if b == b'[' && matches!(pat.get(i + 1), Some(b':' | b'=' | b'.')) {
                let kind = pat[i + 1];
                let close = [kind, b']'];
                let Some(len) = pat[i + 2..].windows(2).position(|w| w == close) else {
                    return Err(UNMATCHED.into());
                };
                let name = &pat[i + 2..i + 2 + len];
                i += len + 4;
                if kind == b':' {
                    let name = String::from_utf8_lossy(name);
                    if !CLASSES.contains(&name.as_ref()) {
                        return Err("Invalid character class name".into());
                    }
                    out.push_str(&format!("[:{name}:]"));
                } else {
                    // Equivalence classes and collating symbols: in the C
                    // locale, just the one character.
                    let [c] = name else {
                        return Err("Invalid collation character".into());
                    };
                    push_literal(&mut out, *c);
                }
                continue;
            }
            let is_range =
                pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']');
            if is_range {
                let hi = pat[i + 2];
                if hi < b {
                    return Err("Invalid range end".into());
                }
                push_literal(&mut out, b);
                out.push('-');
                push_literal(&mut out, hi);
                i += 3;
            } else {
                push_literal(&mut out, b);
                i += 1;
            }
        }
        out.push(']');
        self.out.push_str(&out);
        self.i = i;
        Ok(())
    }
}
