//! `.dockerignore` files and the pattern matcher behind them, with the
//! semantics of moby/patternmatcher (what `docker build` and BuildKit use),
//! so a context filters identically under kiln and Docker.
//!
//! Docker compiles each pattern to a Go regexp (or to a plain equality,
//! prefix or suffix test); this module mirrors that classification and the
//! regexp's meaning token by token, without a regexp engine. Known
//! differences, all for patterns nobody writes on purpose: `*` or `?` inside
//! `[...]` are literal here (Docker's translation mangles them), and
//! `\` before a letter is that letter here (a Perl class such as `\d` in
//! Docker's regexp).

use std::path::{Path, PathBuf};

use super::glob::{self, parse_class, BadPattern, Class};

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneBang,
    #[error("invalid .dockerignore pattern: {0}")]
    Syntax(#[from] BadPattern),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {err}")]
    InFile {
        path: PathBuf,
        err: Box<IgnoreError>,
    },
}

/// One token of a compiled pattern, named after the regexp piece Docker
/// would generate for it.
#[derive(Clone, Debug)]
enum Tok {
    Lit(char),
    /// `^` outside a class: a start-of-text anchor in Docker's regexp.
    Anchor,
    /// `*`: `[^/]*`
    Star,
    /// `?`: `[^/]`
    Any,
    /// `**` not at the end: `(.*/)?` (`.` does not match `\n`)
    AnyDirs,
    /// `**` at the end: `.*`
    AnyTail,
    Class(Class),
}

#[derive(Clone, Debug)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Vec<Tok>),
}

#[derive(Clone, Debug)]
struct Pattern {
    text: String,
    exclusion: bool,
    kind: Kind,
}

/// An ordered list of patterns; later ones override earlier ones, `!`
/// patterns re-include.
#[derive(Clone, Debug, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Like patternmatcher.New: trims, cleans (Go `filepath.Clean`), splits
    /// off `!`, checks Go glob syntax.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, IgnoreError> {
        let mut pm = PatternMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = go_clean(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err(IgnoreError::LoneBang);
                }
                p.remove(0);
                pm.exclusions = true;
            }
            glob::validate(&p)?;
            let kind = compile(&p);
            pm.patterns.push(Pattern {
                text: p,
                exclusion,
                kind,
            });
        }
        Ok(pm)
    }

    /// Whether any `!` pattern exists (then an excluded directory may still
    /// hold included files).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// patternmatcher's MatchesOrParentMatches: `path` (relative,
    /// `/`-separated, clean) is excluded when it or one of its parent
    /// directories matches, after later patterns had their say. The context
    /// root (`""` or `"."`) is never excluded.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        if path.is_empty() || path == "." {
            return false;
        }
        let parent_dirs: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pat in &self.patterns {
            if pat.exclusion != matched {
                continue;
            }
            let mut hit = pat.matches(path);
            if !hit {
                let mut end = 0;
                for (i, d) in parent_dirs.iter().enumerate() {
                    end += d.len() + usize::from(i > 0);
                    if pat.matches(&path[..end]) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pat.exclusion;
            }
        }
        matched
    }

    /// patternmatcher's MatchesExact: no parent matching.
    pub fn matches_exact(&self, path: &str) -> bool {
        let mut matched = false;
        for pat in &self.patterns {
            if pat.exclusion != matched {
                continue;
            }
            if pat.matches(path) {
                matched = !pat.exclusion;
            }
        }
        matched
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Regex(toks) => {
                let chars: Vec<char> = path.chars().collect();
                regex_match(toks, &chars)
            }
        }
    }
}

/// Classifies and tokenises a cleaned pattern the way patternmatcher's
/// compile does (the order of the type updates matters: `**` at the start
/// makes a suffix test unless a later glob char makes it a regexp).
fn compile(pattern: &str) -> Kind {
    #[derive(PartialEq)]
    enum Ty {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut ty = Ty::Exact;
    let mut toks = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if ty == Ty::Exact {
                        ty = Ty::Prefix;
                    } else {
                        toks.push(Tok::AnyTail);
                        ty = Ty::Regex;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    ty = Ty::Regex;
                }
                if first {
                    ty = Ty::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                ty = Ty::Regex;
            }
            '?' => {
                toks.push(Tok::Any);
                ty = Ty::Regex;
            }
            '\\' => match chars.get(i) {
                Some(n) => {
                    toks.push(Tok::Lit(*n));
                    i += 1;
                    ty = Ty::Regex;
                }
                None => toks.push(Tok::Lit('\\')),
            },
            '[' => {
                // Syntax was checked by glob::validate, so this parses.
                match parse_class(&chars[i..]) {
                    Some((class, n)) => {
                        toks.push(Tok::Class(class));
                        i += n;
                    }
                    None => toks.push(Tok::Lit('[')),
                }
                ty = Ty::Regex;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                ty = Ty::Regex;
            }
            '^' => toks.push(Tok::Anchor),
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    match ty {
        Ty::Exact => Kind::Exact,
        Ty::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Ty::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Ty::Regex => Kind::Regex(toks),
    }
}

/// Full-match of the regexp tokens against `s`: a search for a way from
/// (token 0, char 0) to (end, end) through the states (token, position),
/// each explored once, so pathological patterns stay polynomial. Iterative:
/// a pattern of any length cannot exhaust the stack.
fn regex_match(toks: &[Tok], s: &[char]) -> bool {
    let width = s.len() + 1;
    let mut seen = vec![false; (toks.len() + 1) * width];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((t, p)) = todo.pop() {
        if std::mem::replace(&mut seen[t * width + p], true) {
            continue;
        }
        let Some(tok) = toks.get(t) else {
            if p == s.len() {
                return true;
            }
            continue;
        };
        let next = t + 1;
        match tok {
            Tok::Lit(c) => {
                if s.get(p) == Some(c) {
                    todo.push((next, p + 1));
                }
            }
            Tok::Anchor => {
                if p == 0 {
                    todo.push((next, p));
                }
            }
            Tok::Any => {
                if s.get(p).is_some_and(|c| *c != '/') {
                    todo.push((next, p + 1));
                }
            }
            Tok::Class(cl) => {
                if s.get(p).is_some_and(|c| cl.matches(*c)) {
                    todo.push((next, p + 1));
                }
            }
            Tok::Star => {
                // Stop here, or take one more non-`/` character.
                todo.push((next, p));
                if s.get(p).is_some_and(|c| *c != '/') {
                    todo.push((t, p + 1));
                }
            }
            Tok::AnyTail => {
                if s[p..].iter().all(|c| *c != '\n') {
                    todo.push((next, s.len()));
                }
            }
            Tok::AnyDirs => {
                // Either nothing, or any run without '\n' ending in '/'.
                todo.push((next, p));
                for (q, c) in s.iter().enumerate().skip(p) {
                    if *c == '\n' {
                        break;
                    }
                    if *c == '/' {
                        todo.push((next, q + 1));
                    }
                }
            }
        }
    }
    false
}

/// Go's `filepath.Clean` on Unix: the shortest equivalent path, lexically.
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Reads ignore-file text like moby's ignorefile.ReadAll: UTF-8 BOM on the
/// first line dropped, lines starting with `#` skipped (only in column 1),
/// whitespace trimmed, blank lines skipped, each pattern cleaned and a
/// leading `/` removed (keeping a `!` prefix).
pub fn parse_ignore_file(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let mut line = line.strip_suffix('\r').unwrap_or(line);
        if n == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = go_clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        if invert {
            p.insert(0, '!');
        }
        out.push(p);
    }
    out
}

/// The ignore file BuildKit uses: `<Dockerfile>.dockerignore` next to the
/// Dockerfile wins over `<context>/.dockerignore`. `None` when neither
/// exists.
pub fn find_ignore_file(context_dir: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(df) = dockerfile {
        if let Some(name) = df.file_name() {
            let mut n = name.to_os_string();
            n.push(".dockerignore");
            let candidate = df.with_file_name(n);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let root = context_dir.join(".dockerignore");
    root.is_file().then_some(root)
}

/// Loads the matcher for a build: see [`find_ignore_file`]. A missing file
/// means no filtering; a non-UTF-8 or malformed one is an error naming it.
pub fn load(
    context_dir: &Path,
    dockerfile: Option<&Path>,
) -> Result<Option<PatternMatcher>, IgnoreError> {
    let Some(path) = find_ignore_file(context_dir, dockerfile) else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|source| IgnoreError::Read {
        path: path.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| IgnoreError::Read {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })?;
    let pm = PatternMatcher::new(&parse_ignore_file(&text)).map_err(|err| IgnoreError::InFile {
        path,
        err: Box::new(err),
    })?;
    Ok(Some(pm))
}
