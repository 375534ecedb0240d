//! Shell pattern matching (`*`, `?`, `[...]`) for `case`, `${X#p}` and
//! pathname expansion. Characters that were quoted in the source match
//! themselves only.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ClassItem {
    Char(char),
    Range(char, char),
    Named(String),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Vec<Tok>);

/// A pattern character with its quoting (`true` = quoted, literal).
pub type PatChar = (char, bool);

impl Pattern {
    /// Compiles pattern characters.
    pub fn new(chars: &[PatChar]) -> Pattern {
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let (c, quoted) = chars[i];
            if quoted {
                toks.push(Tok::Char(c));
                i += 1;
                continue;
            }
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '[' => {
                    if let Some((tok, next)) = parse_class(chars, i + 1) {
                        toks.push(tok);
                        i = next;
                        continue;
                    }
                    toks.push(Tok::Char('['));
                }
                '\\' if i + 1 < chars.len() => {
                    toks.push(Tok::Char(chars[i + 1].0));
                    i += 1;
                }
                c => toks.push(Tok::Char(c)),
            }
            i += 1;
        }
        Pattern(toks)
    }

    /// Compiles an unquoted pattern string.
    #[cfg(test)]
    pub fn from_str_unquoted(s: &str) -> Pattern {
        let chars: Vec<PatChar> = s.chars().map(|c| (c, false)).collect();
        Pattern::new(&chars)
    }

    /// Whether the pattern contains any wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.0.iter().any(|t| !matches!(t, Tok::Char(_)))
    }

    /// Whether the pattern starts with a literal `.`.
    pub fn starts_with_dot(&self) -> bool {
        matches!(self.0.first(), Some(Tok::Char('.')))
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        match_from(&self.0, &chars)
    }

    /// Removes the shortest or longest matching prefix of `s`.
    pub fn trim_prefix(&self, s: &str, longest: bool) -> String {
        let chars: Vec<char> = s.chars().collect();
        let mut ends: Vec<usize> = (0..=chars.len()).collect();
        if longest {
            ends.reverse();
        }
        for end in ends {
            if match_from(&self.0, &chars[..end]) {
                return chars[end..].iter().collect();
            }
        }
        s.to_string()
    }

    /// Removes the shortest or longest matching suffix of `s`.
    pub fn trim_suffix(&self, s: &str, longest: bool) -> String {
        let chars: Vec<char> = s.chars().collect();
        let mut starts: Vec<usize> = (0..=chars.len()).collect();
        if !longest {
            starts.reverse();
        }
        for start in starts {
            if match_from(&self.0, &chars[start..]) {
                return chars[..start].iter().collect();
            }
        }
        s.to_string()
    }
}

fn parse_class(chars: &[PatChar], mut i: usize) -> Option<(Tok, usize)> {
    let mut negated = false;
    if let Some(&(c @ ('!' | '^'), false)) = chars.get(i) {
        let _ = c;
        negated = true;
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let &(c, quoted) = chars.get(i)?;
        if c == ']' && !quoted && !first {
            return Some((Tok::Class { negated, items }, i + 1));
        }
        first = false;
        if c == '[' && !quoted && chars.get(i + 1) == Some(&(':', false)) {
            let rest: String = chars[i + 2..].iter().map(|p| p.0).collect();
            if let Some(end) = rest.find(":]") {
                items.push(ClassItem::Named(rest[..end].to_string()));
                i += 2 + rest[..end].chars().count() + 2;
                continue;
            }
        }
        if chars.get(i + 1).map(|p| p.0) == Some('-') {
            if let Some(&(hi, _)) = chars.get(i + 2) {
                if hi != ']' {
                    items.push(ClassItem::Range(c, hi));
                    i += 3;
                    continue;
                }
            }
        }
        items.push(ClassItem::Char(c));
        i += 1;
    }
}

fn class_matches(items: &[ClassItem], c: char) -> bool {
    items.iter().any(|item| match item {
        ClassItem::Char(x) => *x == c,
        ClassItem::Range(lo, hi) => *lo <= c && c <= *hi,
        ClassItem::Named(name) => match name.as_str() {
            "alpha" => c.is_ascii_alphabetic(),
            "digit" => c.is_ascii_digit(),
            "alnum" => c.is_ascii_alphanumeric(),
            "upper" => c.is_ascii_uppercase(),
            "lower" => c.is_ascii_lowercase(),
            "space" => c.is_ascii_whitespace(),
            "blank" => c == ' ' || c == '\t',
            "punct" => c.is_ascii_punctuation(),
            "xdigit" => c.is_ascii_hexdigit(),
            "cntrl" => c.is_ascii_control(),
            "print" => c.is_ascii_graphic() || c == ' ',
            "graph" => c.is_ascii_graphic(),
            _ => false,
        },
    })
}

/// Iterative wildcard matching with single-star backtracking (linear space).
fn match_from(toks: &[Tok], s: &[char]) -> bool {
    let (mut t, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if t < toks.len() {
            let ok = match &toks[t] {
                Tok::Star => {
                    star = Some((t, i));
                    t += 1;
                    continue;
                }
                Tok::Any => i < s.len(),
                Tok::Char(c) => i < s.len() && s[i] == *c,
                Tok::Class { negated, items } => {
                    i < s.len() && class_matches(items, s[i]) != *negated
                }
            };
            if ok {
                t += 1;
                i += 1;
                continue;
            }
        } else if i == s.len() {
            return true;
        }
        match star {
            Some((st, si)) if si < s.len() => {
                star = Some((st, si + 1));
                t = st + 1;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_classes() {
        let p = Pattern::from_str_unquoted;
        assert!(p("*.txt").matches("a.txt"));
        assert!(!p("*.txt").matches("a.txt.gz"));
        assert!(p("a?c").matches("abc"));
        assert!(p("[a-c]x").matches("bx"));
        assert!(p("[!a-c]x").matches("dx"));
        assert!(!p("[!a-c]x").matches("ax"));
        assert!(p("[[:digit:]]*").matches("1abc"));
        assert!(p("*").matches(""));
        assert!(p("a*b*c").matches("aXbYbZc"));
        assert!(p("[").matches("["));
    }

    #[test]
    fn quoted_star_is_literal() {
        let p = Pattern::new(&[('*', true), ('a', false)]);
        assert!(p.matches("*a"));
        assert!(!p.matches("xa"));
    }

    #[test]
    fn trims() {
        let p = Pattern::from_str_unquoted("*/");
        assert_eq!(p.trim_prefix("a/b/c", false), "b/c");
        assert_eq!(p.trim_prefix("a/b/c", true), "c");
        let p = Pattern::from_str_unquoted(".*");
        assert_eq!(p.trim_suffix("f.tar.gz", false), "f.tar");
        assert_eq!(p.trim_suffix("f.tar.gz", true), "f");
    }
}
