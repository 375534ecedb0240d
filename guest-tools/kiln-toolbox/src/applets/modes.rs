//! chmod-style mode strings: octal (`755`, `4755`) and symbolic
//! (`u+x,go-w`, `a=r`, `g=u`, `+X`), with GNU's rules for a missing "who"
//! (the umask's bits are left alone) and for directories' setuid/setgid
//! (kept unless set or cleared explicitly).

/// A parsed mode string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The value and how many digits were written.
    Octal(u32, usize),
    Symbolic(Vec<Clause>),
}

/// `[ugoa]*` then one or more actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Bits the who letters cover (0: none given).
    who: u32,
    actions: Vec<(char, Perm)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    /// Letters from `rwxXst`.
    Letters(String),
    /// `u`, `g` or `o`: copy that class's current bits.
    Copy(char),
}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;

/// Parses `s`; the error is the text to show.
pub fn parse(s: &str) -> Result<Mode, String> {
    let bad = || format!("invalid mode: '{s}'");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v = u32::from_str_radix(s, 8).map_err(|_| bad())?;
        if v > 0o7777 {
            return Err(bad());
        }
        return Ok(Mode::Octal(v, s.len()));
    }
    let mut clauses = Vec::new();
    for part in s.split(',') {
        let mut chars = part.chars().peekable();
        let mut who = 0;
        while let Some(&c) = chars.peek() {
            who |= match c {
                'u' => USER,
                'g' => GROUP,
                'o' => OTHER,
                'a' => USER | GROUP | OTHER,
                _ => break,
            };
            chars.next();
        }
        let mut actions = Vec::new();
        while let Some(op) = chars.next() {
            if !matches!(op, '+' | '-' | '=') {
                return Err(bad());
            }
            let perm = match chars.peek() {
                Some(&c @ ('u' | 'g' | 'o')) => {
                    chars.next();
                    Perm::Copy(c)
                }
                _ => {
                    let mut letters = String::new();
                    while let Some(&c) = chars.peek() {
                        if !"rwxXst".contains(c) {
                            break;
                        }
                        letters.push(c);
                        chars.next();
                    }
                    Perm::Letters(letters)
                }
            };
            actions.push((op, perm));
        }
        if actions.is_empty() {
            return Err(bad());
        }
        clauses.push(Clause { who, actions });
    }
    Ok(Mode::Symbolic(clauses))
}

/// The mode `old` becomes; `umask` limits clauses without who letters.
pub fn apply(mode: &Mode, old: u32, is_dir: bool, umask: u32) -> u32 {
    let dir_special = if is_dir { old & 0o6000 } else { 0 };
    match mode {
        Mode::Octal(v, digits) => {
            if is_dir && *digits < 5 {
                v | dir_special
            } else {
                *v
            }
        }
        Mode::Symbolic(clauses) => {
            let mut cur = old & 0o7777;
            for c in clauses {
                let (mask, limit) = if c.who == 0 {
                    (0o7777, !umask & 0o7777)
                } else {
                    (c.who, c.who)
                };
                for (op, perm) in &c.actions {
                    let value = match perm {
                        Perm::Letters(l) => letters(l, cur, is_dir),
                        Perm::Copy(class) => {
                            let shift = match class {
                                'u' => 6,
                                'g' => 3,
                                _ => 0,
                            };
                            ((cur >> shift) & 7) * 0o111
                        }
                    } & limit;
                    let explicit_special = value & 0o6000;
                    cur = match op {
                        '+' => cur | value,
                        '-' => cur & !value,
                        _ => {
                            let keep = if is_dir {
                                0o6000 & !explicit_special
                            } else {
                                0
                            };
                            (cur & (!mask | keep)) | value
                        }
                    };
                }
            }
            cur
        }
    }
}

fn letters(l: &str, cur: u32, is_dir: bool) -> u32 {
    let mut v = 0;
    for c in l.chars() {
        v |= match c {
            'r' => 0o444,
            'w' => 0o222,
            'x' => 0o111,
            'X' if is_dir || cur & 0o111 != 0 => 0o111,
            's' => 0o6000,
            't' => 0o1000,
            _ => 0,
        };
    }
    v
}
