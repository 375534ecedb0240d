//! Heredoc detection (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) for RUN, COPY
//! and ADD. BuildKit finds heredoc words with its shell lexer (quotes and
//! escapes kept, no variables set); this is a port of just that subset.

use super::expand::{ExpandErrorKind, MAX_NESTING};

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (also the COPY/ADD file name).
    pub name: String,
    /// The body, every line with its newline, exactly as written (leading
    /// tabs are NOT removed here; see [`Heredoc::chomped_content`]).
    pub content: String,
    /// False when any part of the delimiter was quoted: no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines and the terminator.
    pub chomp: bool,
    /// The file descriptor in `3<<EOF` (0 when not given).
    pub fd: u32,
}

impl Heredoc {
    /// The content with leading tabs removed from every line when `chomp`.
    pub fn chomped_content(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// Stack wanted before one more nested word, and the segment to switch to
/// when less is left (as in the expander).
const RED_ZONE: usize = 64 << 10;
const STACK_SEGMENT: usize = 1 << 20;

/// Error from the heredoc lexer (BuildKit reports these as parse errors).
pub type LexError = String;

/// Parses one word as a heredoc opener: `^(\d*)<<(-?)\s*([^<]*)$`.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, LexError> {
    let digits_end = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let Some(after) = word[digits_end..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = word[..digits_end].parse::<u32>().unwrap_or(0);
    let words = Lexer::new(rest, false, false).words()?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = Lexer::new(rest, true, false).words()?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words.into_iter().next().unwrap_or_default(),
        content: String::new(),
        chomp,
        fd,
    }))
}

/// All heredoc openers in an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, LexError> {
    // BuildKit ignores lexing errors of the whole line (no heredocs then),
    // but a line nested too deep to lex is refused, not read as heredoc-free.
    let mut lexer = Lexer::new(line, true, true);
    let words = match lexer.words() {
        Ok(words) => words,
        Err(e) if lexer.too_deep => return Err(e),
        Err(_) => Vec::new(),
    };
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Word accumulator; the buffer lives in the lexer because BuildKit shares
/// it between nested `${...}` scans (and so do we, quirks included).
struct Words {
    words: Vec<String>,
    in_word: bool,
}

/// Shell-like word splitter with an empty environment in which unset
/// variables are kept as written.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    buf: String,
    /// How many `${...}` words the cursor is inside.
    nesting: usize,
    /// Lexing stopped at more than [`MAX_NESTING`] nested `${...}` words.
    too_deep: bool,
}

const ESCAPE: char = '\\';

impl Lexer {
    fn new(s: &str, raw_quotes: bool, raw_escapes: bool) -> Self {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            raw_quotes,
            raw_escapes,
            buf: String::new(),
            nesting: 0,
            too_deep: false,
        }
    }

    fn words(&mut self) -> Result<Vec<String>, LexError> {
        let raw = self.raw_escapes;
        self.process_stop_on(None, raw).map(|(_, w)| w)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn add_char(&mut self, w: &mut Words, ch: char) {
        if ch.is_whitespace() && w.in_word {
            if !self.buf.is_empty() {
                w.words.push(std::mem::take(&mut self.buf));
                w.in_word = false;
            }
        } else if !ch.is_whitespace() {
            self.buf.push(ch);
            w.in_word = true;
        }
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), LexError> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), LexError> {
        let mut result = String::new();
        self.buf.clear();
        let mut w = Words {
            words: Vec::new(),
            in_word: false,
        };
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, self.finish(w)));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' => Some(self.process_single_quote()?),
                '"' => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    for c in tmp.chars() {
                        self.add_char(&mut w, c);
                    }
                } else {
                    self.buf.push_str(&tmp);
                    w.in_word = true;
                }
                continue;
            }
            self.next();
            let mut c = ch;
            if ch == ESCAPE {
                if self.raw_escapes {
                    self.buf.push(ch);
                    w.in_word = true;
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(n) => c = n,
                }
                self.buf.push(c);
                w.in_word = true;
            } else {
                self.add_char(&mut w, c);
            }
            result.push(c);
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, self.finish(w)))
    }

    fn finish(&mut self, mut w: Words) -> Vec<String> {
        if !self.buf.is_empty() {
            w.words.push(std::mem::take(&mut self.buf));
        }
        w.words
    }

    fn process_single_quote(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        if let Some(q) = self.next() {
            if self.raw_quotes {
                out.push(q);
            }
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        if let Some(q) = self.next() {
            if self.raw_quotes {
                out.push(q);
            }
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.process_dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some('"') | Some('$') | Some(ESCAPE) => {
                                ch = self.next().unwrap_or_default();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `$name` / `${...}` with nothing set: kept as written.
    fn process_dollar(&mut self) -> Result<String, LexError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{') | Some('}') | Some(':') => {
                return Err("syntax error: bad substitution".into())
            }
            _ => {}
        }
        let name = self.process_name();
        let ch = self.next();
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':') | Some('+') | Some('-') | Some('?') | Some('#') | Some('%') => {
                let mut chs = String::new();
                let mut modifier = ch;
                if ch == Some(':') {
                    chs.push(':');
                    modifier = self.next();
                    if let Some(m) = modifier {
                        chs.push(m);
                    }
                } else if let Some(c) = ch {
                    chs.push(c);
                }
                let raw = matches!(modifier, Some('#') | Some('%'));
                if ch == Some(':') && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = self.stop_on_or_missing('}', raw, "syntax error: missing '}'")?;
                Ok(format!("${{{name}{chs}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let pattern =
                    self.stop_on_or_missing('/', true, "syntax error: missing '/' in ${}")?;
                let repl = self.stop_on_or_missing('}', true, "syntax error: missing '}'")?;
                Ok(format!("${{{name}/{pattern}/{repl}}}"))
            }
            _ => Err(format!(
                "unsupported modifier ({}) in substitution",
                ch.map(String::from).unwrap_or_default()
            )),
        }
    }

    /// A word nested in `${...}` up to `stop`, one level deeper (refused
    /// beyond [`MAX_NESTING`], like the expander does).
    fn stop_on_or_missing(
        &mut self,
        stop: char,
        raw: bool,
        missing: &str,
    ) -> Result<String, LexError> {
        if self.nesting >= MAX_NESTING {
            self.too_deep = true;
        }
        if self.too_deep {
            return Err(ExpandErrorKind::NestedTooDeep.to_string());
        }
        self.nesting += 1;
        let r = stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, || {
            self.process_stop_on(Some(stop), raw)
        });
        self.nesting -= 1;
        match r {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() && !self.too_deep => Err(missing.to_string()),
            Err(e) => Err(e),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, bool, bool, u32)> {
        heredocs_from_line(line)
            .unwrap()
            .into_iter()
            .map(|h| (h.name, h.expand, h.chomp, h.fd))
            .collect()
    }

    #[test]
    fn detects_openers() {
        assert_eq!(names("RUN <<EOF"), vec![("EOF".into(), true, false, 0)]);
        assert_eq!(names("RUN 3<<-X cat"), vec![("X".into(), true, true, 3)]);
        assert_eq!(names("COPY <<A <<B /d").len(), 2);
        assert!(names(r#"RUN "<<NO""#).is_empty());
        assert!(names("RUN a<<NO").is_empty());
        assert_eq!(names("RUN <<  EOF  > foo")[0].0, "EOF");
        assert_eq!(names("RUN <<$EOF")[0].0, "$EOF");
    }

    #[test]
    fn quoting_disables_expansion() {
        assert_eq!(names("RUN <<'E'")[0], ("E".into(), false, false, 0));
        assert_eq!(names(r#"RUN <<"E""#)[0], ("E".into(), false, false, 0));
        assert_eq!(names("RUN <<eo'f'")[0], ("eof".into(), false, false, 0));
        assert_eq!(names(r"RUN <<eo\'f")[0], ("eo'f".into(), true, false, 0));
        assert_eq!(names(r"RUN <<'e'o\'f")[0], ("eo'f".into(), false, false, 0));
        assert_eq!(
            names("RUN <<'one two'")[0],
            ("one two".into(), false, false, 0)
        );
    }

    #[test]
    fn chomp_strips_leading_tabs() {
        let h = Heredoc {
            name: "X".into(),
            content: "\t\ta\n\tb\n c\n".into(),
            expand: true,
            chomp: true,
            fd: 0,
        };
        assert_eq!(h.chomped_content(), "a\nb\n c\n");
    }
}
