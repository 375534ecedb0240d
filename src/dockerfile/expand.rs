//! Word expansion for Dockerfile instruction arguments, with BuildKit's
//! semantics (moby/buildkit `frontend/dockerfile/shell/lex.go`).
//!
//! Docker users write `COPY $SRC ${DEST:-/app}` and expect exactly what
//! `docker build` does, including its quirks, so this follows BuildKit's
//! lexer character for character rather than POSIX `sh`:
//!
//! - quotes: `'...'` is literal; `"..."` expands `$` and lets the escape
//!   character escape only `"`, `$` and itself;
//! - the escape character (`\`, or `` ` `` under `# escape=`) makes the next
//!   character literal; a trailing one is dropped;
//! - `$NAME`, `${NAME}`, positional (`$1`, `$001`) and special (`$@`, `$#`, ...)
//!   parameters, which are ordinary variable names here;
//! - `${N:-w}` `${N-w}` `${N:+w}` `${N+w}` `${N:?m}` `${N?m}`, pattern removal
//!   `${N#p}` `${N##p}` `${N%p}` `${N%%p}` and substitution `${N/p/r}`
//!   `${N//p/r}`, whose words are themselves expanded;
//! - `<<` followed by blanks is kept as one piece (heredoc markers).
//!
//! [`Lexer::process_words`] also splits the result into words on unquoted
//! whitespace, counting whitespace that came out of an unquoted expansion.
//!
//! Nesting is bounded: a word nested more than [`MAX_NESTING`] `${...}`
//! deep is an error (BuildKit has no limit; Go's stacks grow), so a hostile
//! Dockerfile cannot overflow the stack of the thread expanding it.
//!
//! One deliberate difference: since 2024 BuildKit shares one word buffer
//! between nested `${...}` words, so `process_words("ab${X:-c}")` there
//! loses the `ab` and yields `["c"]`. We keep each word's own buffer and
//! yield `["abc"]`, which is what the lexer is documented to do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use thiserror::Error;

/// Deepest nesting of words inside `${...}` (`${A:-${B:-...}}`, patterns
/// and replacements alike). Real Dockerfiles nest two or three levels. A
/// level takes under 5 KiB of stack in a debug build (less in release), so
/// the limit needs about 0.5 MiB, a quarter of a 2 MiB worker thread's
/// stack; and each level makes sure of room first (on a new stack segment
/// when needed), so a smaller stack is not overflowed either.
pub const MAX_NESTING: usize = 100;

/// Stack the expander wants left before it recurses one more level, and the
/// size of the extra stack segment it switches to when less is left (so the
/// bounded recursion fits whatever stack the calling thread has).
const RED_ZONE: usize = 64 << 10;
const STACK_SEGMENT: usize = 1 << 20;

/// Where variable values come from (ARGs, ENV, build args).
pub trait VarLookup {
    /// The value of `name`, or `None` when it is unset (not the same as set
    /// to the empty string).
    fn lookup(&self, name: &str) -> Option<&str>;
}

/// Lets unsized lookups such as a `&[(String, String)]` be passed as
/// `&dyn VarLookup` (write `&slice`).
impl<T: VarLookup + ?Sized> VarLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

impl VarLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<S: BuildHasher> VarLookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Ordered pairs; the last occurrence of a name wins, as in Docker env lists.
impl VarLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl VarLookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// An image-config style env list of `NAME=value` strings; the last entry
/// for a name wins and an entry without `=` sets the name to "" (BuildKit's
/// `EnvsFromSlice`).
#[derive(Debug, Clone, Copy)]
pub struct EnvList<'a>(pub &'a [String]);

impl VarLookup for EnvList<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find_map(|entry| {
            let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            (k == name).then_some(v)
        })
    }
}

/// What went wrong while expanding one word.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandErrorKind {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${NAME` followed by something that is not a supported operator,
    /// such as `${X:=v}` or `${X:#p}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${NAME?msg}` / `${NAME:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    /// More than [`MAX_NESTING`] `${...}` words inside one another.
    #[error("variable expansion nested too deep (more than {MAX_NESTING} levels)")]
    NestedTooDeep,
}

/// A failed expansion, naming the word it happened in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    /// The word as written, before expansion.
    pub word: String,
    pub kind: ExpandErrorKind,
}

/// Everything one expansion produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word, quotes removed, whitespace kept.
    pub result: String,
    /// The same split into words the way [`Lexer::process_words`] does.
    pub words: Vec<String>,
    /// Variable names that were looked up and set. A build step's cache key
    /// depends on exactly these.
    pub matched: BTreeSet<String>,
    /// Variable names that were looked up and unset (for lint warnings).
    pub unmatched: BTreeSet<String>,
}

/// The Dockerfile word lexer. Cheap to copy; holds only settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Lexer {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer whose escape character is `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`; the
    /// parser uses it to tell quoted heredoc markers apart).
    pub fn with_raw_quotes(mut self, on: bool) -> Lexer {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit `RawEscapes`).
    pub fn with_raw_escapes(mut self, on: bool) -> Lexer {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (BuildKit `SkipProcessQuotes`).
    pub fn with_skip_process_quotes(mut self, on: bool) -> Lexer {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written, e.g. `${X:-d}`
    /// (BuildKit `SkipUnsetEnv`).
    pub fn with_skip_unset_env(mut self, on: bool) -> Lexer {
        self.skip_unset_env = on;
        self
    }

    /// Expands `word` into one string (BuildKit `ProcessWord`).
    pub fn process_word(&self, word: &str, env: &dyn VarLookup) -> Result<String, ExpandError> {
        self.process_word_with_matches(word, env).map(|e| e.result)
    }

    /// Expands `word` and splits it on unquoted whitespace (BuildKit
    /// `ProcessWords`). Empty words, even quoted ones like `""`, are dropped.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Vec<String>, ExpandError> {
        self.process_word_with_matches(word, env).map(|e| e.words)
    }

    /// Expands `word` and reports which variables it referenced (BuildKit
    /// `ProcessWordWithMatches`). Names inside default words count even when
    /// the default is not used, as in BuildKit.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Expansion, ExpandError> {
        let mut shell = Shell {
            lexer: self,
            env,
            scan: Scan::new(word),
            raw_escapes: self.raw_escapes,
            nesting: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (result, words) = shell
            .process_until(None, self.raw_escapes)
            .map_err(|kind| ExpandError {
                word: word.to_string(),
                kind,
            })?;
        Ok(Expansion {
            result,
            words,
            matched: shell.matched,
            unmatched: shell.unmatched,
        })
    }
}

/// A character cursor with one character of look-ahead, like Go's
/// `text/scanner` as BuildKit uses it (which also drops a leading BOM).
struct Scan {
    chars: Vec<char>,
    pos: usize,
}

impl Scan {
    fn new(text: &str) -> Scan {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        Scan {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
}

/// Collects words while a word is expanded: whitespace from unquoted text
/// and unquoted expansions separates words, everything else is kept.
#[derive(Default)]
struct Words {
    current: String,
    done: Vec<String>,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            self.flush();
        } else {
            self.current.push(ch);
        }
    }

    fn add_str(&mut self, text: &str) {
        text.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
    }

    fn add_raw_str(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.done
    }
}

type Res<T> = Result<T, ExpandErrorKind>;

/// The state of one expansion.
struct Shell<'a> {
    lexer: &'a Lexer,
    env: &'a dyn VarLookup,
    scan: Scan,
    /// Whether escape characters are kept; switched on inside patterns.
    raw_escapes: bool,
    /// How many `${...}` words the cursor is inside.
    nesting: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Shell<'a> {
    /// Processes text up to `stop` (consumed) or the end when `stop` is
    /// `None`; returns the expanded text and its words.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Res<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.process_until_inner(stop);
        self.raw_escapes = saved;
        out
    }

    /// A word nested in `${...}` (a default, pattern or replacement) up to
    /// `stop`: one level deeper, refused beyond [`MAX_NESTING`].
    fn nested_word(&mut self, stop: char, raw_escapes: bool) -> Res<(String, Vec<String>)> {
        if self.nesting >= MAX_NESTING {
            return Err(ExpandErrorKind::NestedTooDeep);
        }
        self.nesting += 1;
        let out = stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, || {
            self.process_until(Some(stop), raw_escapes)
        });
        self.nesting -= 1;
        out
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let quotes = !self.lexer.skip_process_quotes;
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.scan.peek() {
            if Some(ch) == stop {
                self.scan.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_str(&value);
                }
                '<' => {
                    let text = self.possible_heredoc();
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                '\'' if quotes => {
                    let text = self.single_quoted()?;
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                '"' if quotes => {
                    let text = self.double_quoted()?;
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                _ => {
                    self.scan.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // A trailing escape character is dropped.
                        let Some(escaped) = self.scan.next() else {
                            break;
                        };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(ExpandErrorKind::Unterminated(stop)),
            None => Ok((result, words.finish())),
        }
    }

    /// `'...'`: everything literal up to the next `'`; nothing escapes it.
    fn single_quoted(&mut self) -> Res<String> {
        let raw = self.lexer.raw_quotes;
        let mut out = String::new();
        if let Some(open) = self.scan.next().filter(|_| raw) {
            out.push(open);
        }
        loop {
            match self.scan.next() {
                None => return Err(ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if raw {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"..."`: expands `$`; the escape character escapes only `"`, `$`
    /// and itself and is literal before anything else.
    fn double_quoted(&mut self) -> Res<String> {
        let raw = self.lexer.raw_quotes;
        let escape = self.lexer.escape;
        let mut out = String::new();
        if let Some(open) = self.scan.next().filter(|_| raw) {
            out.push(open);
        }
        loop {
            match self.scan.peek() {
                None => return Err(ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.scan.next();
                    if raw {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(_) => {
                    let Some(mut ch) = self.scan.next() else {
                        continue;
                    };
                    if ch == escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.scan.peek() {
                            // Left for the unterminated-quote error above.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == escape => {
                                self.scan.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `<` is literal, but `<<` swallows the blanks after it so a heredoc
    /// marker like `<< EOF` stays one word.
    fn possible_heredoc(&mut self) -> String {
        self.scan.next();
        if self.scan.peek() != Some('<') {
            return "<".to_string();
        }
        self.scan.next();
        let mut out = "<<".to_string();
        while let Some(c) = self.scan.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.scan.next();
        }
        out
    }

    /// Looks a variable up and records whether it was set.
    fn get_env(&mut self, name: &str) -> Option<&'a str> {
        let env = self.env;
        let value = env.lookup(name);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        if !seen.contains(name) {
            seen.insert(name.to_string());
        }
        value
    }

    /// After a nested word failed: running off the end means the `${` was
    /// never closed, anything else (and nesting too deep, always) is the
    /// nested word's own error.
    fn at_end_or(&self, err: ExpandErrorKind, if_end: ExpandErrorKind) -> ExpandErrorKind {
        if self.scan.at_end() && err != ExpandErrorKind::NestedTooDeep {
            if_end
        } else {
            err
        }
    }

    /// `$...` at the cursor.
    fn dollar(&mut self) -> Res<String> {
        self.scan.next();
        if self.scan.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v.to_string(),
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.scan.next();
        match self.scan.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let op = self.scan.next();
        match op {
            // BuildKit reports this as an unsupported modifier.
            None => Err(ExpandErrorKind::MissingBrace),
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v.to_string(),
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.scan.next();
                self.modifier(&name, true, op)
            }
            Some('+' | '-' | '?' | '#' | '%') => self.modifier(&name, false, op),
            Some('/') => self.substitute(&name),
            Some(c) => Err(ExpandErrorKind::UnsupportedModifier(c.to_string())),
        }
    }

    /// `${NAME[:]OP word}` after the operator; `colon` makes an empty value
    /// count as unset.
    fn modifier(&mut self, name: &str, colon: bool, op: Option<char>) -> Res<String> {
        // Go renders the end-of-input rune as U+FFFD; so do we.
        let op_text = op.unwrap_or('\u{FFFD}');
        let shown = if colon {
            format!(":{op_text}")
        } else {
            op_text.to_string()
        };
        let pattern_op = matches!(op, Some('#' | '%'));
        if colon && pattern_op {
            return Err(ExpandErrorKind::UnsupportedModifier(shown));
        }
        let word = match self.nested_word('}', pattern_op) {
            Ok((word, _)) => word,
            Err(e) => return Err(self.at_end_or(e, ExpandErrorKind::MissingBrace)),
        };
        let found = self.get_env(name);
        if found.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{shown}{word}}}"));
        }
        let set = found.is_some();
        let value = found.unwrap_or("");
        let unset = !set || (colon && value.is_empty());
        match op {
            Some('-') if unset => Ok(word),
            Some('-') => Ok(value.to_string()),
            Some('+') if unset => Ok(String::new()),
            Some('+') => Ok(word),
            Some('?') if !set => Err(required(name, word, "is not allowed to be unset")),
            Some('?') if unset => Err(required(name, word, "is not allowed to be empty")),
            Some('?') => Ok(value.to_string()),
            Some(c @ ('#' | '%')) => {
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (longest, pattern) = match word.strip_prefix(c) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                if c == '#' {
                    pattern::trim_prefix(pattern, value, longest)
                } else {
                    pattern::trim_suffix(pattern, value, longest)
                }
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier(shown)),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`
    /// after the first `/`.
    fn substitute(&mut self, name: &str) -> Res<String> {
        let all = self.scan.peek() == Some('/');
        if all {
            self.scan.next();
        }
        let pattern = match self.nested_word('/', true) {
            Ok((p, _)) => p,
            Err(e) => return Err(self.at_end_or(e, ExpandErrorKind::MissingSlash)),
        };
        let replacement = match self.nested_word('}', true) {
            Ok((r, _)) => r,
            Err(e) => return Err(self.at_end_or(e, ExpandErrorKind::MissingBrace)),
        };
        let value = match self.get_env(name) {
            Some(v) => v,
            None if self.lexer.skip_unset_env => {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            None => "",
        };
        pattern::substitute(&pattern, value, &replacement, all)
    }

    /// A variable name: a run of digits, one special-parameter character,
    /// or letters, digits and `_` (Unicode letters and digits, as in Go).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.scan.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.scan.peek().filter(|&c| is_digit(c)) {
                    name.push(d);
                    self.scan.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.scan.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            name.push(ch);
            self.scan.next();
        }
        name
    }
}

fn required(name: &str, word: String, default: &str) -> ExpandErrorKind {
    ExpandErrorKind::Required {
        name: name.to_string(),
        message: if word.is_empty() {
            default.to_string()
        } else {
            word
        },
    }
}

/// POSIX special parameters; never set in a Dockerfile, but they are names.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Go's `unicode.IsLetter`: general category L*.
fn is_letter(ch: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    if ch.is_ascii() {
        return ch.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(ch),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
    )
}

/// Go's `unicode.IsDigit`: general category Nd.
fn is_digit(ch: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory};
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    get_general_category(ch) == GeneralCategory::DecimalNumber
}

/// Shell wildcard patterns as BuildKit implements them: `*` any run and `?`
/// any one character (neither matches a newline, since BuildKit turns them
/// into Go regexps), `\` escaping `*`, `?` and `\`, and `\}` / `\/` for a
/// literal `}` / `/`. No bracket expressions.
///
/// Matching is our own: a depth-first search in the priority order of a
/// backtracking regexp engine (which is what Go's leftmost-first matching
/// reproduces), with failed states remembered so it stays O(pattern × value).
mod pattern {
    use super::{ExpandErrorKind, Res};
    use std::collections::HashSet;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Tok {
        Lit(char),
        AnyOne,
        AnyRun,
    }

    struct Pattern {
        toks: Vec<Tok>,
        /// `*` prefers the longest run (`.*`) instead of the shortest (`.*?`).
        greedy: bool,
        /// Match only at the start (`^`).
        anchored: bool,
    }

    fn compile(pattern: &str, greedy: bool, anchored: bool) -> Res<Pattern> {
        let invalid = |reason: String| ExpandErrorKind::InvalidPattern {
            pattern: pattern.to_string(),
            reason,
        };
        // Go's text/scanner, used by BuildKit here too, skips a leading BOM.
        let text = pattern.strip_prefix('\u{FEFF}').unwrap_or(pattern);
        let mut chars = text.chars().peekable();
        let mut toks = Vec::new();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => toks.push(Tok::AnyRun),
                '?' => toks.push(Tok::AnyOne),
                '\\' => {
                    // `\}` and `\/` only protect the character from ending
                    // the `${...}` part; the next loop takes it literally.
                    if matches!(chars.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match chars.next() {
                        Some(c @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(c)),
                        Some(c) => return Err(invalid(format!("invalid escape '\\{c}'"))),
                        None => {
                            return Err(invalid("invalid escape '\\' at end of pattern".into()))
                        }
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern {
            toks,
            greedy,
            anchored,
        })
    }

    impl Pattern {
        /// The first match (as char indices) starting at or after `from`,
        /// chosen the way Go's leftmost-first regexp matching would.
        fn find(&self, hay: &[char], from: usize) -> Option<(usize, usize)> {
            let starts = if self.anchored {
                if from != 0 {
                    return None;
                }
                0..=0
            } else {
                from..=hay.len()
            };
            // A state seen before and not accepted has failed for good,
            // whichever start it was reached from.
            let mut seen: HashSet<(usize, usize)> = HashSet::new();
            let mut stack = Vec::new();
            let can_take = |i: usize| hay.get(i).is_some_and(|&c| c != '\n');
            for start in starts {
                stack.push((0usize, start));
                while let Some((p, i)) = stack.pop() {
                    if !seen.insert((p, i)) {
                        continue;
                    }
                    let Some(tok) = self.toks.get(p) else {
                        return Some((start, i));
                    };
                    // Pushed last is tried first.
                    match *tok {
                        Tok::Lit(c) => {
                            if hay.get(i) == Some(&c) {
                                stack.push((p + 1, i + 1));
                            }
                        }
                        Tok::AnyOne => {
                            if can_take(i) {
                                stack.push((p + 1, i + 1));
                            }
                        }
                        Tok::AnyRun if self.greedy => {
                            stack.push((p + 1, i));
                            if can_take(i) {
                                stack.push((p, i + 1));
                            }
                        }
                        Tok::AnyRun => {
                            if can_take(i) {
                                stack.push((p, i + 1));
                            }
                            stack.push((p + 1, i));
                        }
                    }
                }
            }
            None
        }
    }

    /// `${V#p}` / `${V##p}`: drop the shortest / longest matching prefix.
    pub(super) fn trim_prefix(pattern: &str, value: &str, longest: bool) -> Res<String> {
        let pat = compile(pattern, longest, true)?;
        let hay: Vec<char> = value.chars().collect();
        Ok(match pat.find(&hay, 0) {
            Some((_, end)) => hay[end..].iter().collect(),
            None => value.to_string(),
        })
    }

    /// `${V%p}` / `${V%%p}`: the same at the end, done as a prefix match on
    /// the reversed value with the reversed pattern.
    pub(super) fn trim_suffix(pattern: &str, value: &str, longest: bool) -> Res<String> {
        let reversed_value: String = value.chars().rev().collect();
        let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, longest)?;
        Ok(trimmed.chars().rev().collect())
    }

    /// Reverses a pattern keeping each `\x` pair in order (`a\*c` becomes
    /// `c\*a`), pairing escapes from the left as BuildKit does.
    pub(super) fn reverse_pattern(pattern: &str) -> String {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pieces: Vec<&[char]> = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let len = if chars[i] == '\\' && i + 1 < chars.len() {
                2
            } else {
                1
            };
            pieces.push(&chars[i..i + len]);
            i += len;
        }
        pieces.iter().rev().flat_map(|p| p.iter()).collect()
    }

    /// `${V/p/r}` (first match) and `${V//p/r}` (every match). `*` is
    /// greedy here. Like BuildKit (Go's `ReplaceAllString`), replace-all
    /// expands `$0` / `${0}` in the replacement to the matched text, `$$` to
    /// `$`, and other `$name` references to nothing.
    pub(super) fn substitute(
        pattern: &str,
        value: &str,
        replacement: &str,
        all: bool,
    ) -> Res<String> {
        let pat = compile(pattern, true, false)?;
        let hay: Vec<char> = value.chars().collect();
        if !all {
            return Ok(match pat.find(&hay, 0) {
                Some((a, b)) => {
                    let mut out: String = hay[..a].iter().collect();
                    out.push_str(replacement);
                    out.extend(&hay[b..]);
                    out
                }
                None => value.to_string(),
            });
        }
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= hay.len() {
            let Some((a, b)) = pat.find(&hay, search) else {
                break;
            };
            out.extend(&hay[last_end..a]);
            // No empty match right after the previous match.
            if b > last_end || a == 0 {
                let matched: String = hay[a..b].iter().collect();
                expand_template(&mut out, replacement, &matched);
            }
            last_end = b;
            search = if search + 1 > b { search + 1 } else { b };
        }
        out.extend(&hay[last_end.min(hay.len())..]);
        Ok(out)
    }

    /// Go's `Regexp.Expand` for a regexp whose only group is the whole match.
    fn expand_template(out: &mut String, template: &str, matched: &str) {
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            match template_ref(rest) {
                Some((name, after)) => {
                    if name == "0" {
                        out.push_str(matched);
                    }
                    rest = after;
                }
                // Malformed: the `$` is literal.
                None => out.push('$'),
            }
        }
        out.push_str(rest);
    }

    /// Splits a `name` or `{name}` reference off the front of `text`.
    fn template_ref(text: &str) -> Option<(&str, &str)> {
        let (braced, body) = match text.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, text),
        };
        let len: usize = body
            .chars()
            .take_while(|&c| super::is_letter(c) || super::is_digit(c) || c == '_')
            .map(char::len_utf8)
            .sum();
        if len == 0 {
            return None;
        }
        let (name, after) = body.split_at(len);
        if braced {
            return after.strip_prefix('}').map(|a| (name, a));
        }
        Some((name, after))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reverse_pattern_keeps_escape_pairs() {
            assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
            assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
            assert_eq!(reverse_pattern("ab\\"), "\\ba");
            assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
            assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
            assert_eq!(reverse_pattern(""), "");
        }

        #[test]
        fn invalid_escapes_are_rejected() {
            for bad in ["\\", "\\x", "\\\\\\"] {
                assert!(compile(bad, true, true).is_err(), "{bad:?}");
            }
            assert!(compile("\\}\\/\\*\\?\\\\", true, true).is_ok());
        }

        #[test]
        fn wildcards_do_not_cross_newlines() {
            assert_eq!(trim_prefix("*", "ab\ncd", true).unwrap(), "\ncd");
            assert_eq!(trim_prefix("?", "\nx", true).unwrap(), "\nx");
        }

        #[test]
        fn first_and_all_matches() {
            assert_eq!(substitute("o", "foo", "0", false).unwrap(), "f0o");
            assert_eq!(substitute("o", "foo", "0", true).unwrap(), "f00");
            // No empty match right after a match, as in Go.
            assert_eq!(substitute("", "ab", "-", true).unwrap(), "-a-b-");
            assert_eq!(substitute("*", "ab", "X", true).unwrap(), "X");
        }

        #[test]
        fn replace_all_template() {
            assert_eq!(substitute("b", "abc", "[$0]", true).unwrap(), "a[b]c");
            assert_eq!(substitute("b", "abc", "[${0}]", true).unwrap(), "a[b]c");
            assert_eq!(substitute("b", "abc", "$$", true).unwrap(), "a$c");
            assert_eq!(substitute("b", "abc", "$x.", true).unwrap(), "a.c");
            assert_eq!(substitute("b", "abc", "$.", true).unwrap(), "a$.c");
            assert_eq!(substitute("b", "abc", "${0", true).unwrap(), "a${0c");
            // First-match replacement is literal.
            assert_eq!(substitute("b", "abc", "[$0]", false).unwrap(), "a[$0]c");
        }

        #[test]
        fn lazy_and_greedy_runs() {
            assert_eq!(trim_prefix("*x", "axbxc", false).unwrap(), "bxc");
            assert_eq!(trim_prefix("*x", "axbxc", true).unwrap(), "c");
            assert_eq!(trim_suffix("x*", "axbxc", false).unwrap(), "axb");
            assert_eq!(trim_suffix("x*", "axbxc", true).unwrap(), "a");
        }

        /// Plain exhaustive backtracking, the definition of the priority
        /// order the memoised search must reproduce.
        fn naive(toks: &[Tok], greedy: bool, hay: &[char], i: usize) -> Option<usize> {
            let Some((tok, rest)) = toks.split_first() else {
                return Some(i);
            };
            let take = hay.get(i).filter(|&&c| c != '\n');
            match tok {
                Tok::Lit(c) => (hay.get(i) == Some(c))
                    .then(|| naive(rest, greedy, hay, i + 1))
                    .flatten(),
                Tok::AnyOne => take.and_then(|_| naive(rest, greedy, hay, i + 1)),
                Tok::AnyRun => {
                    let more = || take.and_then(|_| naive(toks, greedy, hay, i + 1));
                    let stop = || naive(rest, greedy, hay, i);
                    if greedy {
                        more().or_else(stop)
                    } else {
                        stop().or_else(more)
                    }
                }
            }
        }

        #[test]
        fn search_agrees_with_plain_backtracking() {
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            let mut pick = |n: usize| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n as u64) as usize
            };
            let pattern_alphabet = ['a', 'b', '*', '?', '\\'];
            let hay_alphabet = ['a', 'b', '\n', '*'];
            for _ in 0..3000 {
                let pattern: String = (0..pick(6)).map(|_| pattern_alphabet[pick(5)]).collect();
                let hay: Vec<char> = (0..pick(8)).map(|_| hay_alphabet[pick(4)]).collect();
                let (greedy, anchored) = (pick(2) == 0, pick(2) == 0);
                let Ok(pat) = compile(&pattern, greedy, anchored) else {
                    continue;
                };
                let from = pick(hay.len() + 1);
                let expected = if anchored {
                    (from == 0)
                        .then(|| naive(&pat.toks, greedy, &hay, 0).map(|e| (0, e)))
                        .flatten()
                } else {
                    (from..=hay.len())
                        .find_map(|s| naive(&pat.toks, greedy, &hay, s).map(|e| (s, e)))
                };
                assert_eq!(
                    pat.find(&hay, from),
                    expected,
                    "{pattern:?} greedy={greedy} anchored={anchored} on {hay:?} from {from}"
                );
            }
        }

        #[test]
        fn trimming_keeps_a_prefix_or_suffix() {
            for value in ["", "abc", "a.b.c", "x\ny", "ééé"] {
                for pattern in ["", "*", "?", "a*", "*.", ".*", "?*?"] {
                    for longest in [false, true] {
                        let p = trim_prefix(pattern, value, longest).unwrap();
                        assert!(value.ends_with(&p), "{value:?} # {pattern:?} -> {p:?}");
                        let s = trim_suffix(pattern, value, longest).unwrap();
                        assert!(value.starts_with(&s), "{value:?} % {pattern:?} -> {s:?}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(input: &str, vars: &[(&str, &str)]) -> Result<String, ExpandError> {
        Lexer::default().process_word(input, &env(vars))
    }

    fn ok(input: &str, vars: &[(&str, &str)]) -> String {
        word(input, vars).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn err(input: &str, vars: &[(&str, &str)]) -> ExpandErrorKind {
        match word(input, vars) {
            Ok(w) => panic!("{input:?} should fail, gave {w:?}"),
            Err(e) => {
                assert_eq!(e.word, input);
                e.kind
            }
        }
    }

    fn words(input: &str, vars: &[(&str, &str)]) -> Vec<String> {
        Lexer::default()
            .process_words(input, &env(vars))
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const FOO_BAR: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

    #[test]
    fn default_values() {
        assert_eq!(ok("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", FOO_BAR), "xxx  ccc");
        assert_eq!(
            ok("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", FOO_BAR),
            "xxx bbb ccc"
        );
        assert_eq!(ok("${BAZ:-$FOO}", FOO_BAR), "xxx");
        assert_eq!(ok("${BAZ:-${QUX:-\"q q\"}}", FOO_BAR), "q q");
        assert_eq!(ok("${FOO:-}", &[]), "");
    }

    #[test]
    fn alternative_values() {
        assert_eq!(ok("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", FOO_BAR), "aaa bbb ");
        assert_eq!(ok("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", FOO_BAR), "aaa  ");
        let release = "app-${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tgz";
        let base = [("OS", "linux"), ("ARCH", "arm")];
        assert_eq!(ok(release, &base), "app-linux-arm.tgz");
        assert_eq!(
            ok(release, &[base[0], base[1], ("VARIANT", "")]),
            "app-linux-arm.tgz"
        );
        assert_eq!(
            ok(release, &[base[0], base[1], ("VARIANT", "v7")]),
            "app-linux-arm-v7.tgz"
        );
    }

    #[test]
    fn required_values() {
        assert_eq!(ok("${FOO?aaa}", FOO_BAR), "xxx");
        assert_eq!(ok("${BAR?bbb}", FOO_BAR), "");
        assert_eq!(ok("${FOO:?aaa}", FOO_BAR), "xxx");
        let required = |name: &str, message: &str| ExpandErrorKind::Required {
            name: name.into(),
            message: message.into(),
        };
        assert_eq!(err("${BAZ?ccc}", FOO_BAR), required("BAZ", "ccc"));
        assert_eq!(
            err("${BAR:?}", FOO_BAR),
            required("BAR", "is not allowed to be empty")
        );
        assert_eq!(
            err("${BAZ:?}", FOO_BAR),
            required("BAZ", "is not allowed to be unset")
        );
        // The message is expanded too.
        let vars = [("ARG", "x"), ("VAR", "")];
        assert_eq!(
            err("${VAR:?message here$ARG}", &vars),
            required("VAR", "message herex")
        );
        let e = word("${NOPE?need it}", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to process \"${NOPE?need it}\": NOPE: need it"
        );
    }

    #[test]
    fn prefix_removal() {
        let vars = [("FOO", "xxyy"), ("BAR", "x")];
        assert_eq!(ok("${FOO#*x*y}", &vars), "y");
        assert_eq!(ok("${FOO#*}", &vars), "xxyy");
        assert_eq!(ok("${FOO#$BAR}", &vars), "xyy");
        assert_eq!(ok("${FOO#}", &vars), "xxyy");
        assert_eq!(ok("${FOO##*x}", &vars), "yy");
        assert_eq!(ok("${FOO##}", &vars), "xxyy");
        assert_eq!(ok("${FOO#zz}", &vars), "xxyy");
        assert_eq!(ok("${FOO#?\\?}", &[("FOO", "???y")]), "?y");
        assert_eq!(ok("${UNSET#x}", &vars), "");
        // Regexp metacharacters are literal; `\}` is a literal brace.
        let meta = [("FOO", "()[]{}^$.*?|\\x")];
        assert_eq!(ok("${FOO#()[]{\\}^$.\\*\\?|\\\\}", &meta), "x");
    }

    #[test]
    fn suffix_removal() {
        assert_eq!(ok("${FOO%x}", &[("FOO", "xxyy")]), "xxyy");
        assert_eq!(ok("${FOO%y}", &[("FOO", "xxyy")]), "xxy");
        assert_eq!(ok("${FOO%%\\**}", &[("FOO", "xx**")]), "xx");
        assert_eq!(ok("${FOO%%\\**\\*}", &[("FOO", "a***yy*")]), "a");
        assert_eq!(ok("${FOO%}", &[("FOO", "xxyy")]), "xxyy");
        assert_eq!(ok("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")]), "xxyy");
        assert_eq!(ok("${F%.*}", &[("F", "a.tar.gz")]), "a.tar");
        assert_eq!(ok("${F%%.*}", &[("F", "a.tar.gz")]), "a");
        assert_eq!(
            ok("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")]),
            ".xxyy."
        );
    }

    #[test]
    fn colon_before_pattern_operators_is_rejected() {
        for input in ["${FOO:#}", "${FOO:##}", "${FOO:%}", "${FOO:%%}"] {
            let kind = err(input, &[]);
            assert!(
                matches!(kind, ExpandErrorKind::UnsupportedModifier(ref m) if m.starts_with(':')),
                "{input}: {kind:?}"
            );
        }
    }

    #[test]
    fn substitution() {
        let vars = [("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")];
        assert_eq!(
            ok("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", &vars),
            "/foo.*/*.txt - /foo..*.txt"
        );
        let vars = [("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")];
        assert_eq!(
            ok("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &vars),
            "/tmp/bar.txt - /bar.txt"
        );
        let vars = [("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")];
        assert_eq!(
            ok("${FOO/$N/$R} - ${FOO//$N/$R}", &vars),
            "/foo/b/c.txt - /foo/c.txt"
        );
        let vars = [
            ("U", "http://google.de"),
            ("N", "http://"),
            ("R", "https://"),
        ];
        assert_eq!(ok("${U/$N/$R}", &vars), "https://google.de");
        // Escaped separators stay escaped in the replacement.
        assert_eq!(
            ok("${FOO//\\//\\/}", &[("FOO", "/tmp/foo.txt")]),
            "\\/tmp\\/foo.txt"
        );
        assert_eq!(
            ok("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")]),
            "wwxxyy"
        );
        assert_eq!(ok("${FOO///}", &[("FOO", "xxyy")]), "xxyy");
        assert_eq!(ok("${FOO///}", &[]), "");
        assert_eq!(ok("${V/a*/X}", &[("V", "baac")]), "bX");
        assert_eq!(
            err("${FOO//ww}", &[("FOO", "xxyy")]),
            ExpandErrorKind::MissingSlash
        );
        assert_eq!(
            err("${FOO//}", &[("FOO", "xxyy")]),
            ExpandErrorKind::MissingSlash
        );
        assert_eq!(
            err("${FOO/a/b", &[("FOO", "xxyy")]),
            ExpandErrorKind::MissingBrace
        );
        assert!(matches!(
            err("${FOO/\\x/b}", &[("FOO", "x")]),
            ExpandErrorKind::InvalidPattern { .. }
        ));
    }

    #[test]
    fn unsupported_and_malformed() {
        let unsupported = |m: &str| ExpandErrorKind::UnsupportedModifier(m.into());
        assert_eq!(err("${FOO=aaa}", FOO_BAR), unsupported("="));
        assert_eq!(err("${FOO:=aaa}", FOO_BAR), unsupported(":="));
        assert_eq!(err("${FOO=}", &[]), unsupported("="));
        assert_eq!(err("${X:YYY}", &[]), unsupported(":Y"));
        assert_eq!(err("${.}", &[]), unsupported("."));
        assert_eq!(err("${}", &[]), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${:-x}", &[]), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${{x}", &[]), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${", &[]), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${X", &[]), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${X:", &[]), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${X:-abc", &[]), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${X:-\"abc}", &[]), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${X:-${}}", &[]), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("'abc", &[]), ExpandErrorKind::UnterminatedSingleQuote);
        assert_eq!(err("\"abc", &[]), ExpandErrorKind::UnterminatedDoubleQuote);
        assert_eq!(
            err("\"abc\\\"", &[]),
            ExpandErrorKind::UnterminatedDoubleQuote
        );
        let e = word("a${X:=1}", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to process \"a${X:=1}\": unsupported modifier (:=) in substitution"
        );
    }

    #[test]
    fn parameter_names() {
        let vars = [
            ("A", "1"),
            ("A_2", "2"),
            ("이름", "kim"),
            ("٣", "arabic-three"),
        ];
        assert_eq!(ok("$A.$A_2-$Ab", &vars), "1.2-");
        assert_eq!(ok("$이름!", &vars), "kim!");
        // Digits (any script's) form positional names; specials are one char.
        assert_eq!(ok("$1x $12x $٣x", &vars), "x x arabic-threex");
        assert_eq!(ok("$@@ $$$ $#x", &vars), "@ $ x");
        assert_eq!(ok("a$ b$", &vars), "a$ b$");
        assert_eq!(ok("$-a ${-:-d} ${#}", &vars), "a d ");
    }

    #[test]
    fn quotes_and_escapes() {
        let vars = [("PWD", "/home")];
        assert_eq!(
            ok("'$PWD \\x' \"$PWD \\x \\$ \\\" \\\\\"", &vars),
            "$PWD \\x /home \\x $ \" \\"
        );
        assert_eq!(ok("a\\ b\\$PWD\\", &vars), "a b$PWD");
        assert_eq!(ok("\"it's\" 'say \"hi\"'", &vars), "it's say \"hi\"");
    }

    #[test]
    fn backtick_escape_mode() {
        let lexer = Lexer::new('`');
        assert_eq!(lexer.escape(), '`');
        let vars = env(&[("PWD", "/home"), ("D", "C:\\dir")]);
        let run = |input: &str| lexer.process_word(input, &vars).unwrap();
        // Backslashes are ordinary characters: Windows paths survive.
        assert_eq!(run("C:\\Program Files\\x"), "C:\\Program Files\\x");
        assert_eq!(run("$D\\sub"), "C:\\dir\\sub");
        assert_eq!(run("\\$PWD"), "\\/home");
        assert_eq!(run("`$PWD"), "$PWD");
        assert_eq!(run("a` b"), "a b");
        assert_eq!(run("a``b"), "a`b");
        assert_eq!(run("trailing`"), "trailing");
        assert_eq!(run("\"q`\"q\""), "q\"q");
        assert_eq!(run("\"`$PWD ``\""), "$PWD `");
        assert_eq!(run("\"\\\""), "\\");
        assert_eq!(run("'`$PWD'"), "`$PWD");
        // Patterns still escape with `\` in this mode.
        let star = env(&[("S", "*a*")]);
        assert_eq!(lexer.process_word("${S#\\*}", &star).unwrap(), "a*");
        assert_eq!(
            lexer.process_words("a` b c", &vars).unwrap(),
            vec!["a b".to_string(), "c".to_string()]
        );
        assert!(lexer.process_word("\"abc`\"", &vars).is_err());
    }

    #[test]
    fn word_splitting() {
        let vars = [("SP", "a  b"), ("LEAD", "  x"), ("EMPTY", "")];
        assert_eq!(
            words("  one   two\tthree  ", &vars),
            ["one", "two", "three"]
        );
        assert_eq!(words("pre${SP}post", &vars), ["prea", "bpost"]);
        assert_eq!(words("pre\"${SP}\"post", &vars), ["prea  bpost"]);
        assert_eq!(words("$LEAD", &vars), ["x"]);
        assert_eq!(words("a\\ b", &vars), ["a b"]);
        // Empty words vanish, quoted or not.
        assert_eq!(words("\"\" '' $EMPTY x", &vars), ["x"]);
        // Heredoc markers keep their blanks.
        assert_eq!(
            words("cat << EOF > out", &vars),
            ["cat", "<< EOF", ">", "out"]
        );
        assert_eq!(words("a <b", &vars), ["a", "<b"]);
        // Each nested word has its own buffer (BuildKit drops "ab" here).
        assert_eq!(words("ab${X:-c d}e", &vars), ["abc", "de"]);
        assert_eq!(words("ab\"${X:-c}\"", &vars), ["abc"]);
    }

    #[test]
    fn matches_are_reported() {
        let vars = env(&[("FOO", "xxx"), ("BAR", ""), ("N", "x")]);
        let lexer = Lexer::default();
        let got = lexer
            .process_word_with_matches("x ${UNUSED}", &vars)
            .unwrap();
        assert_eq!(got.result, "x ");
        assert_eq!(got.words, ["x"]);
        assert!(got.matched.is_empty());
        assert_eq!(got.unmatched, names(&["UNUSED"]));

        let got = lexer
            .process_word_with_matches("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &vars)
            .unwrap();
        assert_eq!(got.result, "xxx bbb ccc");
        assert_eq!(got.matched, names(&["BAR", "FOO"]));
        assert_eq!(got.unmatched, names(&["BAZ"]));

        // Names in an unused default word still count (cache keys must
        // depend on them, as BuildKit's do).
        let got = lexer
            .process_word_with_matches("${FOO:-$QUX}${FOO#$N}", &vars)
            .unwrap();
        assert_eq!(got.result, "xxxxx");
        assert_eq!(got.matched, names(&["FOO", "N"]));
        assert_eq!(got.unmatched, names(&["QUX"]));

        let got = lexer
            .process_word_with_matches("'$FOO' \\$BAR", &vars)
            .unwrap();
        assert!(got.matched.is_empty() && got.unmatched.is_empty());
    }

    #[test]
    fn raw_and_skip_options() {
        let vars = env(&[("SET", "v")]);
        let raw = Lexer::default().with_raw_quotes(true);
        assert_eq!(
            raw.process_word("'a'\"b$SET\"", &vars).unwrap(),
            "'a'\"bv\""
        );
        let raw_esc = Lexer::default().with_raw_escapes(true);
        assert_eq!(
            raw_esc.process_word("a\\ b\"\\$\"", &vars).unwrap(),
            "a\\ b\\$"
        );
        let no_quotes = Lexer::default().with_skip_process_quotes(true);
        assert_eq!(
            no_quotes.process_word("'$SET' \"x\"", &vars).unwrap(),
            "'v' \"x\""
        );
        let keep = Lexer::default().with_skip_unset_env(true);
        assert_eq!(
            keep.process_word("$SET $U ${U} ${U:-d} ${U/a/b} ${SET:-d}", &vars)
                .unwrap(),
            "v $U ${U} ${U:-d} ${U/a/b} v"
        );
        // Heredoc detection in the parser relies on this combination.
        let heredoc = Lexer::default()
            .with_raw_quotes(true)
            .with_raw_escapes(true)
            .with_skip_unset_env(true);
        assert_eq!(
            heredoc.process_words("cat <<\"EOF\" $X", &vars).unwrap(),
            ["cat", "<<\"EOF\"", "$X"]
        );
    }

    #[test]
    fn lookups() {
        let pairs = vec![
            ("A".to_string(), "1".to_string()),
            ("A".to_string(), "2".to_string()),
        ];
        assert_eq!(pairs.as_slice().lookup("A"), Some("2"));
        let slice: &[(String, String)] = &pairs;
        assert_eq!(Lexer::default().process_word("$A", &slice).unwrap(), "2");
        assert_eq!(
            Lexer::default()
                .process_word("$A", &EnvList(&["A=e".into()]))
                .unwrap(),
            "e"
        );
        assert_eq!(pairs.lookup("B"), None);
        let list = ["A=1".to_string(), "B".to_string(), "A=x=y".to_string()];
        assert_eq!(EnvList(&list).lookup("A"), Some("x=y"));
        assert_eq!(EnvList(&list).lookup("B"), Some(""));
        assert_eq!(EnvList(&list).lookup("C"), None);
        let hash: HashMap<String, String> = [("K".to_string(), "v".to_string())].into();
        assert_eq!(Lexer::default().process_word("$K", &hash).unwrap(), "v");
    }

    /// A small deterministic generator, so property tests need no crate
    /// and failures reproduce.
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    const PLAIN: &[char] = &[
        'a', 'Z', '0', '_', '.', '/', '-', ':', '}', '{', 'é', '한', '=', '*',
    ];
    const ANY: &[char] = &[
        'a', ' ', '\t', '\n', '$', '{', '}', ':', '-', '+', '?', '#', '%', '/', '\\', '\'', '"',
        '`', '<', 'é', '*',
    ];

    #[test]
    fn plain_words_are_unchanged() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let vars = env(&[("a", "SHOULD NOT APPEAR")]);
        for _ in 0..2000 {
            let plain = g.string(PLAIN, 12);
            for lexer in [Lexer::new('\\'), Lexer::new('`')] {
                assert_eq!(lexer.process_word(&plain, &vars).unwrap(), plain);
                let expected: Vec<String> = plain.split_whitespace().map(String::from).collect();
                assert_eq!(lexer.process_words(&plain, &vars).unwrap(), expected);
            }
            // Blanks only separate words.
            let spaced = format!(" {plain}\t{plain}  ");
            let expected: Vec<String> = spaced.split_whitespace().map(String::from).collect();
            assert_eq!(words(&spaced, &[]), expected);
        }
    }

    #[test]
    fn quoting_and_escaping_preserve_any_text() {
        let mut g = Gen(0xdead_beef_cafe_f00d);
        let vars = env(&[("a", "SHOULD NOT APPEAR")]);
        for _ in 0..2000 {
            let text = g.string(ANY, 12);
            for escape in ['\\', '`'] {
                let lexer = Lexer::new(escape);
                let escaped: String = text.chars().flat_map(|c| [escape, c]).collect();
                assert_eq!(
                    lexer.process_word(&escaped, &vars).unwrap(),
                    text,
                    "{escaped:?}"
                );
                let as_words = lexer.process_words(&escaped, &vars).unwrap();
                let expected: Vec<&str> = Some(text.as_str())
                    .filter(|t| !t.is_empty())
                    .into_iter()
                    .collect();
                assert_eq!(as_words, expected, "{escaped:?}");

                let mut dq = String::from('"');
                for c in text.chars() {
                    if c == '"' || c == '$' || c == escape {
                        dq.push(escape);
                    }
                    dq.push(c);
                }
                dq.push('"');
                assert_eq!(lexer.process_word(&dq, &vars).unwrap(), text, "{dq:?}");
            }
            let sq_text: String = text.chars().filter(|&c| c != '\'').collect();
            assert_eq!(ok(&format!("'{sq_text}'"), &[]), sq_text);
        }
    }

    #[test]
    fn values_are_not_expanded_again() {
        let mut g = Gen(0x0123_4567_89ab_cdef);
        for _ in 0..2000 {
            let value = g.string(ANY, 10);
            let vars = [("V", value.as_str()), ("a", "SHOULD NOT APPEAR")];
            assert_eq!(ok("$V", &vars), value);
            assert_eq!(ok("${V}", &vars), value);
            assert_eq!(ok("\"${V}\"", &vars), value);
            assert_eq!(ok("${V-x}${V+}", &vars), value);
            assert_eq!(ok("${V#}${V%}", &vars), format!("{value}{value}"));
            let quoted = words("\"$V\"", &vars);
            assert_eq!(quoted.concat(), value);
            let unquoted: Vec<String> = value.split_whitespace().map(String::from).collect();
            assert_eq!(words("$V", &vars), unquoted);
            if !value.contains('\n') {
                assert_eq!(ok("${V##*}|${V%%*}|${V#*}", &vars), format!("||{value}"));
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut g = Gen(0xfeed_face_0bad_c0de);
        let vars = env(&[("a", "x*y"), ("ab", ""), ("1", "one")]);
        for _ in 0..20000 {
            let input = g.string(ANY, 16);
            for lexer in [
                Lexer::new('\\'),
                Lexer::new('`'),
                Lexer::default().with_skip_unset_env(true),
            ] {
                let whole = lexer.process_word_with_matches(&input, &vars);
                let split = lexer.process_words(&input, &vars);
                assert_eq!(whole.is_ok(), split.is_ok(), "{input:?}");
                if let Ok(whole) = whole {
                    assert!(whole.words.iter().all(|w| !w.is_empty()));
                    assert!(whole.matched.is_disjoint(&whole.unmatched));
                }
            }
        }
    }

    /// `depth` words nested in one another, built with `open` and `close`
    /// around a final `x`.
    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!("{}x{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn nesting_is_bounded() {
        let forms = [
            ("${A:-", "}"),
            ("\"${A:-", "}\""),
            ("${A#", "}"),
            ("${A/", "/r}"),
            ("${A/p/", "}"),
        ];
        for (open, close) in forms {
            // Up to the limit it works...
            let deepest = nested(open, close, MAX_NESTING);
            assert!(word(&deepest, &[]).is_ok(), "{open}");
            // ...one more level, or thousands, is an error, not an abort.
            for depth in [MAX_NESTING + 1, 3000] {
                let e = word(&nested(open, close, depth), &[]).unwrap_err();
                assert_eq!(e.kind, ExpandErrorKind::NestedTooDeep, "{open} {depth}");
            }
        }
        // Also when the input ends right where the limit is hit.
        assert_eq!(
            err(&"${A:-".repeat(MAX_NESTING + 1), &[]),
            ExpandErrorKind::NestedTooDeep
        );
        assert_eq!(
            err(&"${A:-".repeat(MAX_NESTING), &[]),
            ExpandErrorKind::MissingBrace
        );
        let e = word(&nested("${A:-", "}", 3000), &[]).unwrap_err();
        assert!(
            e.to_string().ends_with(&format!(
                "variable expansion nested too deep (more than {MAX_NESTING} levels)"
            )),
            "{e}"
        );
    }

    #[test]
    fn nesting_fits_a_small_thread_stack() {
        // Worker threads may have small stacks: the deepest allowed word
        // still expands (on an extra stack segment when needed).
        let deepest = nested("\"${A:-", "}\"", MAX_NESTING);
        let too_deep = nested("\"${A:-", "}\"", 3000);
        let (ok, err) = std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || {
                let lexer = Lexer::default();
                let none: &[(String, String)] = &[];
                (
                    lexer.process_word(&deepest, &none),
                    lexer.process_word(&too_deep, &none),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(ok.unwrap(), "x");
        assert_eq!(err.unwrap_err().kind, ExpandErrorKind::NestedTooDeep);
    }

    #[test]
    fn leading_bom_is_dropped() {
        assert_eq!(ok("\u{FEFF}a\u{FEFF}", &[]), "a\u{FEFF}");
    }
}
