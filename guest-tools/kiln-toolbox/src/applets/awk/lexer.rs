//! Turns awk source into tokens. Whether `/` starts a regex or divides is
//! decided from the previous token, as awk's grammar allows.

/// One token and the source line it is on (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Num(f64),
    Str(String),
    Regex(String),
    /// A name directly followed by `(`: a call of a user function.
    FuncName(String),
    Name(String),
    Builtin(String),
    Keyword(&'static str),
    /// Operators and punctuation.
    Op(&'static str),
    Newline,
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

const KEYWORDS: &[&str] = &[
    "BEGIN", "END", "function", "func", "if", "else", "while", "for", "do", "break", "continue",
    "next", "nextfile", "exit", "return", "delete", "in", "getline", "print", "printf",
];

pub const BUILTINS: &[&str] = &[
    "length", "substr", "index", "split", "sub", "gsub", "match", "sprintf", "tolower", "toupper",
    "int", "sqrt", "exp", "log", "sin", "cos", "atan2", "rand", "srand", "close", "fflush",
    "system",
];

/// Longest first, so `**=` wins over `**` and `*`.
const OPS: &[&str] = &[
    "**=", "&&", "||", "==", "!=", "<=", ">=", "!~", "++", "--", "+=", "-=", "*=", "/=", "%=",
    "^=", ">>", "**", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "/", "%", "^", "!",
    ">", "<", "|", "?", ":", "~", "$", "=",
];

/// A lexing error: the message and its line.
pub struct LexError {
    pub line: usize,
    pub msg: String,
}

pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            out.push(Token {
                tok: Tok::Newline,
                line,
            });
            line += 1;
            i += 1;
            continue;
        }
        if c == ' ' || c == '\t' || c == '\r' {
            i += 1;
            continue;
        }
        if c == '\\' && chars.get(i + 1) == Some(&'\n') {
            i += 2;
            line += 1;
            continue;
        }
        if c == '\\' && chars.get(i + 1) == Some(&'\r') && chars.get(i + 2) == Some(&'\n') {
            i += 3;
            line += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start_line = line;
        let tok = if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            Tok::Num(super::value::str_to_num(&text))
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                Tok::Keyword(k)
            } else if BUILTINS.contains(&word.as_str()) {
                Tok::Builtin(word)
            } else if chars.get(i) == Some(&'(') {
                Tok::FuncName(word)
            } else {
                Tok::Name(word)
            }
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        return Err(LexError {
                            line,
                            msg: "unterminated string".into(),
                        })
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    // A backslash-newline continues the string (POSIX).
                    Some('\\') if chars.get(i + 1) == Some(&'\n') => {
                        i += 2;
                        line += 1;
                    }
                    Some('\\') => {
                        i += 1;
                        i += escape(&chars[i..], &mut s, false);
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c == '/' && regex_allowed(out.last().map(|t| &t.tok)) {
            i += 1;
            let mut s = String::new();
            let mut in_bracket = false;
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        return Err(LexError {
                            line,
                            msg: "unterminated regexp".into(),
                        })
                    }
                    Some('/') if !in_bracket => {
                        i += 1;
                        break;
                    }
                    Some('\\') if chars.get(i + 1) == Some(&'/') => {
                        s.push('/');
                        i += 2;
                    }
                    Some('\\') => {
                        s.push('\\');
                        if let Some(&n) = chars.get(i + 1) {
                            s.push(n);
                        }
                        i += 2;
                    }
                    Some('[') if !in_bracket => {
                        in_bracket = true;
                        s.push('[');
                        i += 1;
                        // `]` right after `[` or `[^` is a literal member.
                        if chars.get(i) == Some(&'^') {
                            s.push('^');
                            i += 1;
                        }
                        if chars.get(i) == Some(&']') {
                            s.push(']');
                            i += 1;
                        }
                    }
                    Some('[') if chars.get(i + 1) == Some(&':') => {
                        // A class like [:alpha:] inside brackets.
                        while let Some(&ch) = chars.get(i) {
                            s.push(ch);
                            i += 1;
                            if ch == ']' && s.ends_with(":]") {
                                break;
                            }
                        }
                    }
                    Some(']') if in_bracket => {
                        in_bracket = false;
                        s.push(']');
                        i += 1;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Regex(s)
        } else {
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
                return Err(LexError {
                    line,
                    msg: format!("invalid char '{c}' in expression"),
                });
            };
            i += op.chars().count();
            // `**` and `**=` are gawk's spellings of `^` and `^=`.
            Tok::Op(match *op {
                "**" => "^",
                "**=" => "^=",
                o => o,
            })
        };
        out.push(Token {
            tok,
            line: start_line,
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(out)
}

/// A `/` after an operand divides; anywhere else it starts a regex.
fn regex_allowed(prev: Option<&Tok>) -> bool {
    match prev {
        Some(Tok::Num(_) | Tok::Str(_) | Tok::Name(_) | Tok::Regex(_)) => false,
        Some(Tok::Builtin(_)) => false,
        Some(Tok::Op(o)) => !matches!(*o, ")" | "]" | "$" | "++" | "--"),
        Some(Tok::Keyword("getline")) => false,
        _ => true,
    }
}

/// Processes one escape after a backslash into `out`; returns the chars used.
/// In `-v` values and strings alike; an unknown escape keeps the character.
pub fn escape(rest: &[char], out: &mut String, _regex: bool) -> usize {
    let Some(&c) = rest.first() else {
        out.push('\\');
        return 0;
    };
    let simple = match c {
        'n' => Some('\n'),
        't' => Some('\t'),
        'r' => Some('\r'),
        '\\' => Some('\\'),
        '"' => Some('"'),
        '/' => Some('/'),
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'v' => Some('\u{b}'),
        _ => None,
    };
    if let Some(s) = simple {
        out.push(s);
        return 1;
    }
    if c == 'x' {
        // gawk reads at most two hex digits; `\x` without one is `x`.
        let mut v = 0u32;
        let mut n = 0;
        while n < 2 && rest.get(1 + n).is_some_and(|d| d.is_ascii_hexdigit()) {
            v = v * 16 + rest[1 + n].to_digit(16).unwrap_or(0);
            n += 1;
        }
        out.push(if n == 0 {
            'x'
        } else {
            char::from_u32(v).unwrap_or('?')
        });
        return 1 + n;
    }
    if c.is_digit(8) {
        let mut v = 0u32;
        let mut n = 0;
        while n < 3 && rest.get(n).is_some_and(|d| d.is_digit(8)) {
            v = v * 8 + rest[n].to_digit(8).unwrap_or(0);
            n += 1;
        }
        out.push(char::from_u32(v).unwrap_or('?'));
        return n;
    }
    // Keep the backslash: "\." in a dynamic regex still means a literal dot.
    out.push('\\');
    out.push(c);
    1
}

/// Processes the escapes of a `-v` or command-line assignment value.
pub fn unescape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 1;
            i += escape(&chars[i..], &mut out, false);
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
