//! A recursive-descent parser for the POSIX sh command language.
//!
//! It works on characters directly (no separate token stream) because
//! shell tokenisation depends on parser context: reserved words count only in
//! command position, `$( )` nests a whole program, and here-document bodies
//! start at the next newline. Every error carries a line and column; no input
//! makes it panic (recursion depth is bounded).

use std::sync::Arc;

use super::ast::*;

/// A syntax error with its 1-based position in the script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: syntax error: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a whole script.
pub fn parse(src: &str) -> Result<Program, SyntaxError> {
    let mut p = Parser::new(src);
    let list = p.parse_list()?;
    p.skip_blanks();
    if p.peek().is_some() {
        let what = p.describe_next();
        return Err(p.error(format!("unexpected {what}")));
    }
    Ok(list)
}

const MAX_DEPTH: usize = 150;
const TERMINATORS: &[&str] = &["then", "else", "elif", "fi", "do", "done", "esac", "}"];
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "{",
    "}", "!", "in",
];

struct Parser {
    src: Vec<char>,
    pos: usize,
    /// Where to continue after the newline that ends a line with here-documents.
    heredoc_resume: Option<usize>,
    depth: usize,
    /// Line offset of this (sub-)parser's text within the script.
    line_base: usize,
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Whether `s` is a valid variable name.
pub fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if is_name_start(c)) && cs.all(is_name_char)
}

/// Appends text to a part list, merging with a preceding part of the same kind.
fn push_text(parts: &mut Vec<WordPart>, quoted: bool, c: char) {
    match (parts.last_mut(), quoted) {
        (Some(WordPart::Lit(s)), false) | (Some(WordPart::Quoted(s)), true) => s.push(c),
        _ => parts.push(if quoted {
            WordPart::Quoted(c.to_string())
        } else {
            WordPart::Lit(c.to_string())
        }),
    }
}

impl Parser {
    fn new(src: &str) -> Self {
        Parser {
            src: src.chars().collect(),
            pos: 0,
            heredoc_resume: None,
            depth: 0,
            line_base: 0,
        }
    }

    fn sub(&self, text: &str) -> Parser {
        let mut p = Parser::new(text);
        p.depth = self.depth + 1;
        p.line_base = self.position().0 - 1;
        p
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src.get(self.pos + n).copied()
    }

    fn position(&self) -> (usize, usize) {
        let mut line = 1 + self.line_base;
        let mut col = 1;
        for &c in self.src.iter().take(self.pos) {
            if c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        (line, col)
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        let (line, column) = self.position();
        SyntaxError {
            line,
            column,
            message: message.into(),
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        Ok(())
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "end of file".into(),
            Some('\n') => "newline".into(),
            Some(_) => {
                if let Some(op) = self.peek_op() {
                    format!("'{op}'")
                } else if let Some(kw) = self.peek_keyword() {
                    format!("'{kw}'")
                } else {
                    let w: String = self.src[self.pos..]
                        .iter()
                        .take_while(|c| !is_meta(**c))
                        .take(20)
                        .collect();
                    format!("'{w}'")
                }
            }
        }
    }

    /// Skips blanks, line continuations and comments (not newlines).
    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t') => self.pos += 1,
                Some('\\') if self.peek_at(1) == Some('\n') => self.pos += 2,
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// Consumes one newline token, jumping over here-document bodies.
    fn eat_newline(&mut self) -> bool {
        self.skip_blanks();
        if self.peek() == Some('\n') {
            self.pos += 1;
            if let Some(resume) = self.heredoc_resume.take() {
                self.pos = resume.max(self.pos);
            }
            true
        } else {
            false
        }
    }

    fn skip_linebreaks(&mut self) {
        while self.eat_newline() {}
    }

    fn peek_op(&self) -> Option<&'static str> {
        const OPS: &[&str] = &[
            "&&", "||", ";;", "<<-", "<<", "<&", "<>", ">>", ">&", ">|", ";", "&", "|", "(", ")",
            "<", ">",
        ];
        let rest = &self.src[self.pos.min(self.src.len())..];
        OPS.iter()
            .find(|op| {
                let n = op.chars().count();
                rest.len() >= n && op.chars().zip(rest.iter()).all(|(a, b)| a == *b)
            })
            .copied()
    }

    fn eat_op(&mut self, op: &str) -> bool {
        self.skip_blanks();
        if self.peek_op() == Some(op) {
            self.pos += op.len();
            true
        } else {
            false
        }
    }

    /// The reserved word at the current position, if any.
    fn peek_keyword(&self) -> Option<&'static str> {
        let mut end = self.pos;
        while end < self.src.len()
            && !is_meta(self.src[end])
            && !matches!(self.src[end], '\'' | '"' | '\\' | '$' | '`')
        {
            end += 1;
        }
        if end < self.src.len() && !is_meta(self.src[end]) {
            return None;
        }
        let w: String = self.src[self.pos..end].iter().collect();
        KEYWORDS.iter().find(|k| **k == w).copied()
    }

    fn at_keyword(&mut self, kw: &str) -> bool {
        self.skip_blanks();
        self.peek_keyword() == Some(kw)
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.at_keyword(kw) {
            self.pos += kw.chars().count();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str, context: &str) -> Result<(), SyntaxError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            let what = self.describe_next();
            Err(self.error(format!("expected '{kw}' {context}, found {what}")))
        }
    }

    /// A list of and-or lists, ending before a terminator word, `)`, `;;` or EOF.
    fn parse_list(&mut self) -> Result<List, SyntaxError> {
        let mut items = Vec::new();
        loop {
            self.skip_linebreaks();
            self.skip_blanks();
            if self.peek().is_none()
                || matches!(self.peek_op(), Some(")" | ";;"))
                || self
                    .peek_keyword()
                    .is_some_and(|k| TERMINATORS.contains(&k))
            {
                break;
            }
            items.push(self.parse_and_or()?);
            self.skip_blanks();
            match self.peek_op() {
                Some(";") | Some("&") => self.pos += 1,
                _ => {
                    if self.peek() != Some('\n') {
                        break;
                    }
                }
            }
        }
        Ok(List(items))
    }

    fn parse_nonempty_list(&mut self, context: &str) -> Result<List, SyntaxError> {
        let list = self.parse_list()?;
        if list.0.is_empty() {
            let what = self.describe_next();
            return Err(self.error(format!("unexpected {what} {context}")));
        }
        Ok(list)
    }

    fn parse_and_or(&mut self) -> Result<AndOr, SyntaxError> {
        let first = self.parse_pipeline()?;
        let mut rest = Vec::new();
        loop {
            let op = if self.eat_op("&&") {
                AndOrOp::And
            } else if self.eat_op("||") {
                AndOrOp::Or
            } else {
                break;
            };
            self.skip_linebreaks();
            rest.push((op, self.parse_pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn parse_pipeline(&mut self) -> Result<Pipeline, SyntaxError> {
        self.skip_blanks();
        let line = self.position().0;
        let negated = self.eat_keyword("!");
        let mut commands = vec![self.parse_command()?];
        while self.eat_op("|") {
            self.skip_linebreaks();
            commands.push(self.parse_command()?);
        }
        Ok(Pipeline {
            negated,
            commands,
            line,
        })
    }

    fn parse_command(&mut self) -> Result<Command, SyntaxError> {
        self.enter()?;
        let r = super::nesting::grow(|| self.parse_command_inner());
        self.depth -= 1;
        r
    }

    fn parse_command_inner(&mut self) -> Result<Command, SyntaxError> {
        self.skip_blanks();
        if self.peek_op() == Some("(") {
            return self.parse_compound_with_redirects();
        }
        match self.peek_keyword() {
            Some("{" | "if" | "while" | "until" | "for" | "case") => {
                return self.parse_compound_with_redirects()
            }
            Some(kw) if kw != "!" && kw != "in" => {
                return Err(self.error(format!("unexpected '{kw}'")));
            }
            _ => {}
        }
        // A function definition: NAME ( ) compound-command
        let save = self.pos;
        if let Some(word) = self.read_word()? {
            if let Some(name) = word.as_plain_literal().filter(|n| is_name(n)) {
                let name = name.to_string();
                if self.eat_op("(") {
                    if !self.eat_op(")") {
                        return Err(self.error(format!("expected ')' after '{name}('")));
                    }
                    self.skip_linebreaks();
                    self.skip_blanks();
                    let body = self.parse_compound_with_redirects()?;
                    return Ok(Command::FuncDef(name, Arc::new(body)));
                }
            }
        }
        self.pos = save;
        self.parse_simple()
    }

    fn parse_compound_with_redirects(&mut self) -> Result<Command, SyntaxError> {
        let compound = self.parse_compound()?;
        let mut redirects = Vec::new();
        while let Some(r) = self.try_redirect()? {
            redirects.push(r);
        }
        Ok(Command::Compound(Box::new(compound), redirects))
    }

    fn parse_compound(&mut self) -> Result<Compound, SyntaxError> {
        self.skip_blanks();
        if self.eat_op("(") {
            let body = self.parse_nonempty_list("in subshell")?;
            if !self.eat_op(")") {
                let what = self.describe_next();
                return Err(self.error(format!("expected ')' to close subshell, found {what}")));
            }
            return Ok(Compound::Subshell(body));
        }
        if self.eat_keyword("{") {
            let body = self.parse_nonempty_list("in '{ }' group")?;
            self.expect_keyword("}", "to close '{'")?;
            return Ok(Compound::Brace(body));
        }
        if self.eat_keyword("if") {
            let mut branches = Vec::new();
            let cond = self.parse_nonempty_list("after 'if'")?;
            self.expect_keyword("then", "after 'if' condition")?;
            let body = self.parse_nonempty_list("after 'then'")?;
            branches.push((cond, body));
            let mut otherwise = None;
            loop {
                if self.eat_keyword("elif") {
                    let cond = self.parse_nonempty_list("after 'elif'")?;
                    self.expect_keyword("then", "after 'elif' condition")?;
                    let body = self.parse_nonempty_list("after 'then'")?;
                    branches.push((cond, body));
                } else if self.eat_keyword("else") {
                    otherwise = Some(self.parse_nonempty_list("after 'else'")?);
                    self.expect_keyword("fi", "to close 'if'")?;
                    break;
                } else {
                    self.expect_keyword("fi", "to close 'if'")?;
                    break;
                }
            }
            return Ok(Compound::If {
                branches,
                otherwise,
            });
        }
        for (kw, until) in [("while", false), ("until", true)] {
            if self.eat_keyword(kw) {
                let cond = self.parse_nonempty_list(&format!("after '{kw}'"))?;
                let body = self.parse_do_group(kw)?;
                return Ok(Compound::While { until, cond, body });
            }
        }
        if self.eat_keyword("for") {
            self.skip_blanks();
            let name_pos = self.pos;
            let var = match self.read_word()? {
                Some(w) => match w.as_plain_literal().filter(|n| is_name(n)) {
                    Some(n) => n.to_string(),
                    None => {
                        self.pos = name_pos;
                        return Err(self.error("bad variable name after 'for'"));
                    }
                },
                None => return Err(self.error("expected a variable name after 'for'")),
            };
            self.skip_linebreaks();
            let mut items = None;
            if self.eat_keyword("in") {
                let mut words = Vec::new();
                loop {
                    self.skip_blanks();
                    match self.read_word()? {
                        Some(w) => words.push(w),
                        None => break,
                    }
                }
                if !self.eat_op(";") && !self.eat_newline() {
                    let what = self.describe_next();
                    return Err(self.error(format!("unexpected {what} in 'for' word list")));
                }
                items = Some(words);
            } else {
                self.eat_op(";");
            }
            self.skip_linebreaks();
            let body = self.parse_do_group("for")?;
            return Ok(Compound::For { var, items, body });
        }
        if self.eat_keyword("case") {
            return self.parse_case();
        }
        let what = self.describe_next();
        Err(self.error(format!("expected a compound command, found {what}")))
    }

    fn parse_do_group(&mut self, kw: &str) -> Result<List, SyntaxError> {
        self.expect_keyword("do", &format!("in '{kw}' loop"))?;
        let body = self.parse_nonempty_list("after 'do'")?;
        self.expect_keyword("done", &format!("to close '{kw}' loop"))?;
        Ok(body)
    }

    fn parse_case(&mut self) -> Result<Compound, SyntaxError> {
        self.skip_blanks();
        let word = self
            .read_word()?
            .ok_or_else(|| self.error("expected a word after 'case'"))?;
        self.skip_linebreaks();
        self.expect_keyword("in", "after 'case WORD'")?;
        let mut arms = Vec::new();
        loop {
            self.skip_linebreaks();
            if self.eat_keyword("esac") {
                break;
            }
            self.eat_op("(");
            let mut patterns = Vec::new();
            loop {
                self.skip_blanks();
                match self.read_word()? {
                    Some(w) => patterns.push(w),
                    None => {
                        let what = self.describe_next();
                        return Err(self.error(format!("expected a case pattern, found {what}")));
                    }
                }
                if !self.eat_op("|") {
                    break;
                }
            }
            if !self.eat_op(")") {
                let what = self.describe_next();
                return Err(self.error(format!("expected ')' after case pattern, found {what}")));
            }
            let body = self.parse_list()?;
            arms.push(CaseArm { patterns, body });
            self.skip_linebreaks();
            if !self.eat_op(";;") {
                self.expect_keyword("esac", "to close 'case'")?;
                break;
            }
        }
        Ok(Compound::Case { word, arms })
    }

    fn parse_simple(&mut self) -> Result<Command, SyntaxError> {
        let mut cmd = SimpleCommand::default();
        loop {
            self.skip_blanks();
            if let Some(r) = self.try_redirect()? {
                cmd.redirects.push(r);
                continue;
            }
            let Some(word) = self.read_word()? else {
                break;
            };
            if cmd.words.is_empty() {
                if let Some((name, value)) = split_assignment(&word) {
                    cmd.assigns.push((name, value));
                    continue;
                }
            }
            cmd.words.push(word);
        }
        if cmd.words.is_empty() && cmd.assigns.is_empty() && cmd.redirects.is_empty() {
            let what = self.describe_next();
            return Err(self.error(format!("unexpected {what}")));
        }
        Ok(Command::Simple(cmd))
    }

    fn try_redirect(&mut self) -> Result<Option<Redirect>, SyntaxError> {
        self.skip_blanks();
        let start = self.pos;
        let mut digits = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            digits.push(c);
            self.pos += 1;
        }
        let op = match self.peek_op() {
            Some(op @ ("<<-" | "<<" | "<&" | "<>" | ">>" | ">&" | ">|" | "<" | ">")) => op,
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        self.pos += op.len();
        let (default_fd, rop) = match op {
            "<" => (0, RedirOp::Read),
            "<>" => (0, RedirOp::ReadWrite),
            "<&" => (0, RedirOp::DupIn),
            "<<" | "<<-" => (0, RedirOp::HereDoc),
            ">>" => (1, RedirOp::Append),
            ">&" => (1, RedirOp::DupOut),
            _ => (1, RedirOp::Write),
        };
        let fd = if digits.is_empty() {
            default_fd
        } else {
            digits
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 10)
                .ok_or_else(|| self.error(format!("bad file descriptor {digits}")))?
        };
        self.skip_blanks();
        let word = self
            .read_word()?
            .ok_or_else(|| self.error(format!("expected a word after '{op}'")))?;
        let target = if rop == RedirOp::HereDoc {
            RedirTarget::HereDoc(self.read_heredoc(&word, op == "<<-")?)
        } else {
            RedirTarget::Word(word)
        };
        Ok(Some(Redirect {
            fd,
            op: rop,
            target,
        }))
    }

    /// Reads a here-document body starting at the next line (or after the
    /// previous body on the same line).
    fn read_heredoc(&mut self, delim_word: &Word, strip_tabs: bool) -> Result<Word, SyntaxError> {
        let mut quoted = false;
        let mut delim = String::new();
        for part in &delim_word.0 {
            match part {
                WordPart::Lit(s) => delim.push_str(s),
                WordPart::Quoted(s) => {
                    quoted = true;
                    delim.push_str(s);
                }
                WordPart::DQuoted(ps) => {
                    quoted = true;
                    for p in ps {
                        if let WordPart::Quoted(s) = p {
                            delim.push_str(s);
                        }
                    }
                }
                _ => return Err(self.error("here-document delimiter must be a literal word")),
            }
        }
        let mut i = match self.heredoc_resume {
            Some(r) => r,
            None => (self.line_end(self.pos) + 1).min(self.src.len()),
        };
        let body_start_pos = i;
        let mut body = String::new();
        loop {
            if i >= self.src.len() {
                break;
            }
            let mut j = i;
            while j < self.src.len() && self.src[j] != '\n' {
                j += 1;
            }
            let mut line: &[char] = &self.src[i..j];
            if strip_tabs {
                while let Some(('\t', rest)) = line.split_first() {
                    line = rest;
                }
            }
            let line: String = line.iter().collect();
            i = (j + 1).min(self.src.len());
            if line == delim {
                break;
            }
            body.push_str(&line);
            body.push('\n');
        }
        self.heredoc_resume = Some(i);
        if quoted {
            return Ok(Word(vec![WordPart::Quoted(body)]));
        }
        let mut sub = self.sub(&body);
        sub.line_base = self.line_base
            + self.src[..body_start_pos]
                .iter()
                .filter(|c| **c == '\n')
                .count();
        let mut parts = Vec::new();
        while let Some(c) = sub.peek() {
            match c {
                '\\' if matches!(sub.peek_at(1), Some('$' | '`' | '\\')) => {
                    push_text(&mut parts, true, sub.peek_at(1).unwrap_or('\\'));
                    sub.pos += 2;
                }
                '\\' if sub.peek_at(1) == Some('\n') => sub.pos += 2,
                '$' => sub.parse_dollar(&mut parts, true)?,
                '`' => sub.parse_backtick(&mut parts, true)?,
                _ => {
                    push_text(&mut parts, true, c);
                    sub.pos += 1;
                }
            }
        }
        Ok(Word(parts))
    }

    /// The newline that ends the current line, skipping quoted text and
    /// comments (here-document bodies start after it).
    fn line_end(&self, mut j: usize) -> usize {
        let n = self.src.len();
        while j < n && self.src[j] != '\n' {
            match self.src[j] {
                '\\' => j += 1,
                '\'' => {
                    j += 1;
                    while j < n && self.src[j] != '\'' {
                        j += 1;
                    }
                }
                '"' => {
                    j += 1;
                    while j < n && self.src[j] != '"' {
                        if self.src[j] == '\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                }
                '#' if j == 0 || matches!(self.src[j - 1], ' ' | '\t' | ';' | '&' | '|') => {
                    while j < n && self.src[j] != '\n' {
                        j += 1;
                    }
                    return j;
                }
                _ => {}
            }
            j += 1;
        }
        j.min(n)
    }

    /// Reads one word, or `None` if the next character cannot start a word.
    fn read_word(&mut self) -> Result<Option<Word>, SyntaxError> {
        self.skip_blanks();
        let start = self.pos;
        let mut parts = Vec::new();
        if self.peek() == Some('~') {
            let mut j = self.pos + 1;
            while j < self.src.len()
                && (is_name_char(self.src[j]) || matches!(self.src[j], '-' | '.'))
            {
                j += 1;
            }
            if j >= self.src.len() || self.src[j] == '/' || is_meta(self.src[j]) {
                parts.push(WordPart::Tilde(self.src[self.pos + 1..j].iter().collect()));
                self.pos = j;
            }
        }
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            match c {
                '\'' => {
                    self.pos += 1;
                    let mut s = String::new();
                    loop {
                        match self.peek() {
                            None => {
                                self.pos = start;
                                return Err(self.error("unterminated single quote"));
                            }
                            Some('\'') => break,
                            Some(c) => s.push(c),
                        }
                        self.pos += 1;
                    }
                    self.pos += 1;
                    parts.push(WordPart::Quoted(s));
                }
                '"' => {
                    let p = self.parse_dquoted()?;
                    parts.push(WordPart::DQuoted(p));
                }
                '\\' => match self.peek_at(1) {
                    Some('\n') => self.pos += 2,
                    Some(c) => {
                        push_text(&mut parts, true, c);
                        self.pos += 2;
                    }
                    None => {
                        push_text(&mut parts, false, '\\');
                        self.pos += 1;
                    }
                },
                '$' => self.parse_dollar(&mut parts, false)?,
                '`' => self.parse_backtick(&mut parts, false)?,
                _ => {
                    push_text(&mut parts, false, c);
                    self.pos += 1;
                }
            }
        }
        if self.pos == start {
            return Ok(None);
        }
        Ok(Some(Word(parts)))
    }

    fn parse_dquoted(&mut self) -> Result<Vec<WordPart>, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let mut parts = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return Err(self.error("unterminated double quote"));
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(parts);
                }
                Some('\\') => match self.peek_at(1) {
                    Some('\n') => self.pos += 2,
                    Some(c @ ('$' | '`' | '"' | '\\')) => {
                        push_text(&mut parts, true, c);
                        self.pos += 2;
                    }
                    _ => {
                        push_text(&mut parts, true, '\\');
                        self.pos += 1;
                    }
                },
                Some('$') => self.parse_dollar(&mut parts, true)?,
                Some('`') => self.parse_backtick(&mut parts, true)?,
                Some(c) => {
                    push_text(&mut parts, true, c);
                    self.pos += 1;
                }
            }
        }
    }

    fn parse_backtick(
        &mut self,
        parts: &mut Vec<WordPart>,
        in_dq: bool,
    ) -> Result<(), SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return Err(self.error("unterminated '`' command substitution"));
                }
                Some('`') => break,
                Some('\\') => {
                    match self.peek_at(1) {
                        Some(c @ ('$' | '`' | '\\')) => text.push(c),
                        Some('"') if in_dq => text.push('"'),
                        Some(c) => {
                            text.push('\\');
                            text.push(c);
                        }
                        None => text.push('\\'),
                    }
                    self.pos += 2;
                    continue;
                }
                Some(c) => text.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        let mut sub = self.sub(&text);
        let list = sub.parse_list()?;
        sub.skip_blanks();
        if sub.peek().is_some() {
            let what = sub.describe_next();
            return Err(sub.error(format!("unexpected {what} in '`' command substitution")));
        }
        parts.push(WordPart::CmdSub(Arc::new(list)));
        Ok(())
    }

    /// Parses what follows a `$` into `parts`.
    fn parse_dollar(&mut self, parts: &mut Vec<WordPart>, in_dq: bool) -> Result<(), SyntaxError> {
        self.enter()?;
        let r = super::nesting::grow(|| self.parse_dollar_inner(parts, in_dq));
        self.depth -= 1;
        r
    }

    fn parse_dollar_inner(
        &mut self,
        parts: &mut Vec<WordPart>,
        in_dq: bool,
    ) -> Result<(), SyntaxError> {
        let start = self.pos;
        match self.peek_at(1) {
            Some('(') if self.peek_at(2) == Some('(') => {
                self.pos += 3;
                let body_start = self.pos;
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        None => {
                            self.pos = start;
                            return Err(self.error("unterminated '$((' arithmetic expansion"));
                        }
                        Some('(') => depth += 1,
                        Some(')') if depth == 0 => {
                            if self.peek_at(1) == Some(')') {
                                break;
                            }
                            self.pos = start;
                            return Err(self.error("unbalanced ')' in '$((' arithmetic expansion"));
                        }
                        Some(')') => depth -= 1,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text: String = self.src[body_start..self.pos].iter().collect();
                self.pos += 2;
                let mut sub = self.sub(&text);
                let mut inner = Vec::new();
                while let Some(c) = sub.peek() {
                    match c {
                        '$' => sub.parse_dollar(&mut inner, true)?,
                        '`' => sub.parse_backtick(&mut inner, true)?,
                        '"' | '\'' => sub.pos += 1,
                        '\\' => {
                            if let Some(n) = sub.peek_at(1) {
                                push_text(&mut inner, true, n);
                            }
                            sub.pos += 2;
                        }
                        _ => {
                            push_text(&mut inner, true, c);
                            sub.pos += 1;
                        }
                    }
                }
                parts.push(WordPart::Arith(Word(inner)));
            }
            Some('(') => {
                self.pos += 2;
                let list = self.parse_list()?;
                self.skip_blanks();
                if !self.eat_op(")") {
                    let what = self.describe_next();
                    if self.peek().is_none() {
                        self.pos = start;
                    }
                    return Err(self.error(format!(
                        "expected ')' to close '$(' command substitution, found {what}"
                    )));
                }
                parts.push(WordPart::CmdSub(Arc::new(list)));
            }
            Some('{') => {
                self.pos += 2;
                let param = self.parse_braced_param(start, in_dq)?;
                parts.push(WordPart::Param(Box::new(param)));
            }
            Some(c @ ('?' | '#' | '@' | '*' | '$' | '!' | '-' | '0'..='9')) => {
                self.pos += 2;
                parts.push(WordPart::Param(Box::new(Param {
                    name: c.to_string(),
                    op: ParamOp::Plain,
                })));
            }
            Some(c) if is_name_start(c) => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                parts.push(WordPart::Param(Box::new(Param {
                    name,
                    op: ParamOp::Plain,
                })));
            }
            _ => {
                push_text(parts, in_dq, '$');
                self.pos += 1;
            }
        }
        Ok(())
    }

    fn parse_braced_param(&mut self, start: usize, in_dq: bool) -> Result<Param, SyntaxError> {
        let mut length = false;
        if self.peek() == Some('#') && !matches!(self.peek_at(1), Some('}') | None) {
            length = true;
            self.pos += 1;
        }
        let name = match self.peek() {
            Some(c @ ('?' | '#' | '@' | '*' | '$' | '!' | '-')) => {
                self.pos += 1;
                c.to_string()
            }
            Some(c) if c.is_ascii_digit() => {
                let mut n = String::new();
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    n.push(c);
                    self.pos += 1;
                }
                n
            }
            Some(c) if is_name_start(c) => {
                let mut n = String::new();
                while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
                    n.push(c);
                    self.pos += 1;
                }
                n
            }
            _ => return Err(self.error("bad substitution: expected a parameter name after '${'")),
        };
        if length {
            if self.peek() != Some('}') {
                return Err(self.error("bad substitution: expected '}' after '${#NAME'"));
            }
            self.pos += 1;
            return Ok(Param {
                name,
                op: ParamOp::Length,
            });
        }
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let kind = match self.peek() {
            Some('}') if !colon => {
                self.pos += 1;
                return Ok(Param {
                    name,
                    op: ParamOp::Plain,
                });
            }
            Some(c @ ('-' | '=' | '?' | '+')) => {
                self.pos += 1;
                c.to_string()
            }
            Some(c @ ('#' | '%')) if !colon => {
                self.pos += 1;
                if self.peek() == Some(c) {
                    self.pos += 1;
                    format!("{c}{c}")
                } else {
                    c.to_string()
                }
            }
            None => {
                self.pos = start;
                return Err(self.error("unterminated '${'"));
            }
            _ => return Err(self.error("bad substitution")),
        };
        // Trim patterns keep their own quoting even inside double quotes.
        let pattern_op = kind.starts_with('#') || kind.starts_with('%');
        let word = self.parse_brace_word(start, in_dq && !pattern_op)?;
        let op = match kind.as_str() {
            "-" => ParamOp::Default(colon, word),
            "=" => ParamOp::Assign(colon, word),
            "?" => ParamOp::Error(colon, word),
            "+" => ParamOp::Alt(colon, word),
            "#" => ParamOp::TrimPrefix(false, word),
            "##" => ParamOp::TrimPrefix(true, word),
            "%" => ParamOp::TrimSuffix(false, word),
            _ => ParamOp::TrimSuffix(true, word),
        };
        Ok(Param { name, op })
    }

    /// The word inside `${X:-word}`, up to the matching `}`.
    fn parse_brace_word(&mut self, start: usize, in_dq: bool) -> Result<Word, SyntaxError> {
        let mut parts = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return Err(self.error("unterminated '${'"));
                }
                Some('}') => {
                    self.pos += 1;
                    return Ok(Word(parts));
                }
                Some('\'') if !in_dq => {
                    self.pos += 1;
                    let mut s = String::new();
                    loop {
                        match self.peek() {
                            None => {
                                self.pos = start;
                                return Err(self.error("unterminated single quote"));
                            }
                            Some('\'') => break,
                            Some(c) => s.push(c),
                        }
                        self.pos += 1;
                    }
                    self.pos += 1;
                    parts.push(WordPart::Quoted(s));
                }
                Some('"') => {
                    let p = self.parse_dquoted()?;
                    parts.push(WordPart::DQuoted(p));
                }
                Some('\\') => match self.peek_at(1) {
                    Some('\n') => self.pos += 2,
                    Some(c) if !in_dq || matches!(c, '$' | '`' | '"' | '\\' | '}') => {
                        push_text(&mut parts, true, c);
                        self.pos += 2;
                    }
                    _ => {
                        push_text(&mut parts, in_dq, '\\');
                        self.pos += 1;
                    }
                },
                Some('$') => self.parse_dollar(&mut parts, in_dq)?,
                Some('`') => self.parse_backtick(&mut parts, in_dq)?,
                Some(c) => {
                    push_text(&mut parts, in_dq, c);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Splits `NAME=value` into its parts when the word is an assignment.
fn split_assignment(word: &Word) -> Option<(String, Word)> {
    let WordPart::Lit(first) = word.0.first()? else {
        return None;
    };
    let eq = first.find('=')?;
    let name = &first[..eq];
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::new();
    let rest = &first[eq + 1..];
    // `~` after `=` or an unquoted `:` is expanded (as in PATH=~/bin:~/x).
    let segments: Vec<&str> = rest.split(':').collect();
    let ends_word = word.0.len() == 1;
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            push_text(&mut parts, false, ':');
        }
        let last = i + 1 == segments.len();
        match seg.strip_prefix('~') {
            Some(tail) if tail.starts_with('/') || (tail.is_empty() && (!last || ends_word)) => {
                parts.push(WordPart::Tilde(String::new()));
                for c in tail.chars() {
                    push_text(&mut parts, false, c);
                }
            }
            _ => {
                for c in seg.chars() {
                    push_text(&mut parts, false, c);
                }
            }
        }
    }
    parts.extend(word.0[1..].iter().cloned());
    Some((name.to_string(), Word(parts)))
}
