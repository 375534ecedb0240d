//! Go `path/filepath.Match` syntax on `/`-separated paths: the glob language
//! of COPY/ADD sources, and the syntax check `.dockerignore` patterns get.

/// A pattern Go's `filepath.Match` would reject with `ErrBadPattern`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {0:?}")]
pub struct BadPattern(pub String);

/// One `[...]` class: `negated` when it starts with `^`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Class {
    pub negated: bool,
    pub ranges: Vec<(char, char)>,
}

impl Class {
    pub fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Parses a class body starting right after `[`; returns the class and the
/// number of chars consumed including the closing `]`.
pub(crate) fn parse_class(chars: &[char]) -> Option<(Class, usize)> {
    let mut i = 0;
    let mut negated = false;
    if chars.first() == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Some((Class { negated, ranges }, i + 1));
        }
        let (lo, n) = class_char(&chars[i.min(chars.len())..])?;
        i += n;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, n) = class_char(&chars[i + 1..])?;
            hi = h;
            i += 1 + n;
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped class character; `-` and `]` must be escaped.
fn class_char(chars: &[char]) -> Option<(char, usize)> {
    match chars.first()? {
        '-' | ']' => None,
        '\\' => chars.get(1).map(|c| (*c, 2)),
        c => Some((*c, 1)),
    }
}

#[derive(Clone, Debug)]
enum Tok {
    Lit(char),
    Star,
    Any,
    Class(Class),
}

fn compile(pattern: &str) -> Result<Vec<Tok>, BadPattern> {
    let chars: Vec<char> = pattern.chars().collect();
    let bad = || BadPattern(pattern.to_string());
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            '?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            '\\' => {
                let c = *chars.get(i + 1).ok_or_else(bad)?;
                toks.push(Tok::Lit(c));
                i += 2;
            }
            '[' => {
                let (class, n) = parse_class(&chars[i + 1..]).ok_or_else(bad)?;
                toks.push(Tok::Class(class));
                i += 1 + n;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(toks)
}

/// Checks `pattern` the way Go's `filepath.Match` does.
pub fn validate(pattern: &str) -> Result<(), BadPattern> {
    compile(pattern).map(|_| ())
}

/// Go's `filepath.Match(pattern, name)` with `/` as separator: `*` and `?`
/// never match `/`; the whole name must match.
pub fn fn_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let toks = compile(pattern)?;
    let name: Vec<char> = name.chars().collect();
    Ok(match_toks(&toks, &name))
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    // Iterative glob matching with single-star backtracking (a star never
    // crosses '/', so backtracking stops there).
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while p < s.len() {
        let ok = match toks.get(t) {
            Some(Tok::Star) => {
                star = Some((t, p));
                t += 1;
                continue;
            }
            Some(Tok::Any) => s[p] != '/',
            Some(Tok::Lit(c)) => s[p] == *c,
            Some(Tok::Class(c)) => c.matches(s[p]),
            None => false,
        };
        if ok {
            t += 1;
            p += 1;
        } else if let Some((st, sp)) = star {
            if s[sp] == '/' {
                return false;
            }
            star = Some((st, sp + 1));
            t = st + 1;
            p = sp + 1;
        } else {
            return false;
        }
    }
    toks[t.min(toks.len())..]
        .iter()
        .all(|x| matches!(x, Tok::Star))
}

/// Whether a path component has an unescaped `*`, `?` or `[` (fsutil's
/// test for "this source is a wildcard").
pub fn has_wildcards(s: &str) -> bool {
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                it.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_table() {
        // (pattern, name, result); None = ErrBadPattern.
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[-x]", "x", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "ab", None),
            ("*x", "xxx", Some(true)),
        ];
        for (p, n, want) in cases {
            let got = fn_match(p, n).ok();
            assert_eq!(got, *want, "Match({p:?}, {n:?})");
        }
    }

    #[test]
    fn wildcard_detection_skips_escapes() {
        assert!(has_wildcards("a*"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("a\\*b"));
        assert!(!has_wildcards("plain.txt"));
    }
}
