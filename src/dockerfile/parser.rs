//! Dockerfile text -> AST, with BuildKit's exact rules (frontend/dockerfile/
//! parser): directives, comments, line continuations, per-instruction
//! argument forms, flags, ONBUILD nesting and heredocs.

use std::fmt;

use super::directives::DirectiveParser;
use super::heredoc::heredocs_from_line;
use super::line_parsers::{parse_args, split_command, style_of, Style};

pub use super::directives::Directive;
pub use super::heredoc::Heredoc;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// The escape/line-continuation character (`\` or `` ` ``).
    pub escape: char,
    /// Parser directives in file order.
    pub directives: Vec<Directive>,
    /// Instructions in file order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings (empty continuation lines), as BuildKit reports.
    pub warnings: Vec<Warning>,
}

impl Ast {
    fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// The `# syntax=` directive, if any.
    pub fn syntax(&self) -> Option<&str> {
        self.directive("syntax")
    }

    /// The `# check=` directive, if any.
    pub fn check(&self) -> Option<&str> {
        self.directive("check")
    }
}

/// A non-fatal parser finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    /// 1-based line the warning points at.
    pub line: usize,
}

/// One instruction.
///
/// `args` layout depends on the instruction, as in BuildKit's AST: ENV and
/// LABEL hold `[name, value, sep]` triples (`sep` is `=` or empty for the
/// legacy `ENV name value` form; values keep their quotes); HEALTHCHECK holds
/// the type word then the command; ARG holds words with quotes kept; shell
/// form commands are one string; exec form (`json`) the array elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Lower-case instruction name as written (may be unknown).
    pub keyword: String,
    /// Leading `--flag[=value]` words, quotes removed, otherwise as written.
    pub flags: Vec<String>,
    pub args: Vec<String>,
    /// Arguments were given in exec (JSON array) form.
    pub json: bool,
    /// Heredoc bodies, in the order the openers appear (RUN/COPY/ADD, also
    /// when nested in ONBUILD: they stay on the ONBUILD node).
    pub heredocs: Vec<Heredoc>,
    /// For ONBUILD: the triggered instruction.
    pub onbuild_inner: Option<Box<Node>>,
    /// 1-based first line of the instruction.
    pub start_line: usize,
    /// 1-based last line, including continuation and heredoc lines.
    pub end_line: usize,
    /// The logical line: continuations joined, comment lines removed
    /// (BuildKit's `Original`).
    pub original: String,
    /// Comment lines directly before the instruction (without `#`).
    pub comments: Vec<String>,
}

impl Node {
    /// Whether the keyword is one of the Dockerfile instructions.
    pub fn is_known(&self) -> bool {
        style_of(&self.keyword) != Style::Ignore
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.keyword[..], &self.onbuild_inner) {
            ("onbuild", Some(inner)) => inner,
            _ => self,
        };
        matches!(&node.keyword[..], "run" | "copy" | "add") && !node.json
    }
}

/// A parse failure with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based first line of the offending instruction (0: empty file).
    pub line: usize,
    /// 1-based last line of the offending instruction.
    pub end_line: usize,
    pub message: String,
    /// The offending source lines, `(line number, text)`.
    pub source_lines: Vec<(usize, String)>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dockerfile:{}: {}", self.line, self.message)?;
        for (n, text) in &self.source_lines {
            write!(f, "\n  {n} | {text}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

fn error_at(lines: &[&str], start: usize, end: usize, message: impl Into<String>) -> ParseError {
    let end = end.max(start);
    let source_lines = (start.max(1)..=end)
        .filter_map(|n| lines.get(n - 1).map(|l| (n, trim_newline(l).to_string())))
        .collect();
    ParseError {
        line: start,
        end_line: end,
        message: message.into(),
        source_lines,
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing line-continuation escape (and blanks after it).
/// Returns the line and whether it is complete (no continuation). An escape
/// preceded by another escape is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    match before.chars().last() {
        None => ("", false),
        Some(c) if c == escape => (line, true),
        Some(_) => (before, false),
    }
}

/// Parser state shared by all lines.
struct State {
    escape: char,
    directive_parser: DirectiveParser,
    directives: Vec<Directive>,
}

impl State {
    /// BuildKit's processLine: trims the newline (and leading blanks on the
    /// first line of an instruction), checks for a directive, and blanks
    /// comment lines.
    fn process_line<'a>(
        &mut self,
        raw: &'a str,
        strip_left: bool,
        line_no: usize,
    ) -> Result<(&'a str, bool), String> {
        let mut token = trim_newline(raw);
        if strip_left {
            token = token.trim_start();
        }
        let found = match self.directive_parser.parse_line(token)? {
            Some((name, value)) => {
                if name == "escape" {
                    self.escape = match value.as_str() {
                        "`" => '`',
                        "\\" => '\\',
                        _ => {
                            return Err(format!(
                                "invalid escape token '{value}' does not match ` or \\"
                            ))
                        }
                    };
                }
                self.directives.push(Directive {
                    name,
                    value,
                    line: line_no,
                });
                true
            }
            None => false,
        };
        Ok((if is_comment(token) { "" } else { token }, found))
    }
}

/// Deepest chain of `ONBUILD ONBUILD ...` the parser builds nodes for.
/// Chaining is an error anyway (see `parse_instructions`); the bound keeps a
/// line of thousands of ONBUILD words from recursing without limit.
const MAX_ONBUILD_NESTING: usize = 8;

/// Builds a node from one logical line (no line numbers yet).
fn node_from_line(line: &str, escape: char, comments: Vec<String>) -> Result<Node, String> {
    node_at_depth(line, escape, comments, 0)
}

/// [`node_from_line`] inside `depth` ONBUILDs.
fn node_at_depth(
    line: &str,
    escape: char,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, String> {
    let (cmd, flags, rest) = split_command(line, escape);
    let keyword = cmd.to_lowercase();
    let style = style_of(&keyword);
    let mut node = Node {
        keyword,
        flags,
        args: Vec::new(),
        json: false,
        heredocs: Vec::new(),
        onbuild_inner: None,
        start_line: 0,
        end_line: 0,
        original: line.to_string(),
        comments,
    };
    if style == Style::SubCommand {
        if !rest.is_empty() {
            if depth >= MAX_ONBUILD_NESTING {
                return Err(format!(
                    "ONBUILD nested too deep (more than {MAX_ONBUILD_NESTING} levels)"
                ));
            }
            let inner = node_at_depth(&rest, escape, Vec::new(), depth + 1)?;
            node.onbuild_inner = Some(Box::new(inner));
        }
    } else {
        let parsed = parse_args(style, &rest, escape)?;
        node.args = parsed.args;
        node.json = parsed.json;
    }
    Ok(node)
}

fn set_lines(node: &mut Node, start: usize, end: usize) {
    node.start_line = start;
    node.end_line = end;
    if let Some(inner) = node.onbuild_inner.as_mut() {
        set_lines(inner, start, end);
    }
}

/// Parses a Dockerfile. Fails like BuildKit: on bad directives, non-string
/// JSON arrays, malformed ENV/LABEL, unterminated heredocs and files without
/// any instruction.
pub fn parse(source: &str) -> Result<Ast, ParseError> {
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let mut st = State {
        escape: '\\',
        directive_parser: DirectiveParser::default(),
        directives: Vec::new(),
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut current = 0usize;
    let mut idx = 0usize;

    while idx < lines.len() {
        let mut raw = lines[idx];
        idx += 1;
        if current == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        if is_comment(raw) {
            let mut chars = raw.chars();
            chars.next();
            let comment = chars.as_str().trim();
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment.to_string());
            }
        }
        let (token, is_directive) = st
            .process_line(raw, true, current + 1)
            .map_err(|m| error_at(&lines, current + 1, current + 1, m))?;
        if is_directive {
            comments.pop();
        }
        current += 1;
        let start = current;
        let (first, mut complete) = trim_continuation(token, st.escape);
        if complete && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        let mut empty_continuation = false;
        while !complete && idx < lines.len() {
            let raw = lines[idx];
            idx += 1;
            let (token, _) = st
                .process_line(raw, false, current + 1)
                .map_err(|m| error_at(&lines, current + 1, current + 1, m))?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, done) = trim_continuation(token, st.escape);
            complete = done;
            buf.push_str(part);
        }
        if empty_continuation {
            warnings.push(Warning {
                message: format!("Empty continuation line found in: {buf}"),
                line: current,
            });
        }

        let mut node = node_from_line(&buf, st.escape, std::mem::take(&mut comments))
            .map_err(|m| error_at(&lines, start, current, m))?;

        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|m| error_at(&lines, start, current, m))?;
            for mut doc in docs {
                let mut terminated = false;
                while idx < lines.len() {
                    let raw = lines[idx];
                    idx += 1;
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(error_at(&lines, start, current, "unterminated heredoc"));
                }
                node.heredocs.push(doc);
            }
        }
        set_lines(&mut node, start, current);
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(error_at(
            &lines,
            current,
            current,
            "file with no instructions",
        ));
    }
    Ok(Ast {
        escape: st.escape,
        directives: st.directives,
        nodes,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_heredocs_per_instruction() {
        let ast = parse("FROM x\nCOPY <<A <<B /dest\none\nA\ntwo\nB\nRUN ls\n").unwrap();
        let copy = &ast.nodes[1];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[0].name, "A");
        assert_eq!(copy.heredocs[0].content, "one\n");
        assert_eq!(copy.heredocs[1].content, "two\n");
        assert_eq!((copy.start_line, copy.end_line), (2, 6));
        assert_eq!(copy.args, vec!["<<A", "<<B", "/dest"]);
        assert_eq!(ast.nodes[2].start_line, 7);
    }

    #[test]
    fn chomp_heredoc_terminator_may_be_tab_indented() {
        let ast = parse("FROM x\nRUN <<-EOF\n\techo hi\n\tEOF\n").unwrap();
        let doc = &ast.nodes[1].heredocs[0];
        assert!(doc.chomp && doc.expand);
        assert_eq!(doc.content, "\techo hi\n");
        assert_eq!(doc.chomped_content(), "echo hi\n");
    }

    #[test]
    fn quoted_delimiter_disables_expansion() {
        let ast = parse("FROM x\nRUN <<'EOF' sh\necho $A\nEOF\nRUN <<\"E2\"\nE2\n").unwrap();
        assert!(!ast.nodes[1].heredocs[0].expand);
        assert_eq!(ast.nodes[1].heredocs[0].content, "echo $A\n");
        assert!(!ast.nodes[2].heredocs[0].expand);
    }

    #[test]
    fn heredocs_only_for_run_copy_add_shell_form() {
        let ast = parse("FROM x\nUSER <<X\nX\nRUN [\"a\", \"<<Y\"]\n").unwrap();
        assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
        assert_eq!(ast.nodes[2].keyword, "x");
        let ast = parse("FROM x\nONBUILD RUN <<X\nbody\nX\n").unwrap();
        assert_eq!(ast.nodes[1].heredocs[0].content, "body\n");
    }

    #[test]
    fn unterminated_heredoc_reports_start_line() {
        let err = parse("FROM x\n\nRUN <<EOF\nabc\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.message, "unterminated heredoc");
        assert!(err
            .to_string()
            .starts_with("Dockerfile:3: unterminated heredoc\n  3 | RUN <<EOF"));
    }

    #[test]
    fn error_line_numbers() {
        let err = parse("FROM x\n# c\nENV \\\n  PATH\n").unwrap_err();
        assert_eq!((err.line, err.end_line), (3, 4));
        assert_eq!(err.message, "ENV must have two arguments");
        assert_eq!(
            err.to_string(),
            "Dockerfile:3: ENV must have two arguments\n  3 | ENV \\\n  4 |   PATH"
        );
        let err = parse("# only\n\n").unwrap_err();
        assert_eq!(err.message, "file with no instructions");
        assert!(parse("").is_err());
    }

    #[test]
    fn directives() {
        let ast =
            parse("# syntax=docker/dockerfile:1\n# CHECK=skip=all\n#escape=`\nFROM a `\n  b\n")
                .unwrap();
        assert_eq!(ast.syntax(), Some("docker/dockerfile:1"));
        assert_eq!(ast.check(), Some("skip=all"));
        assert_eq!(ast.escape, '`');
        assert_eq!(ast.nodes[0].args, vec!["a", "b"]);
        let err = parse("# escape=`\n# escape=\\\nFROM x\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse("# escape=x\nFROM x\n")
            .unwrap_err()
            .message
            .contains("invalid escape"));
        // After a plain comment, directives are ordinary comments.
        let ast = parse("# hi\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(ast.escape, '\\');
        assert!(ast.directives.is_empty());
    }

    #[test]
    fn comments_inside_continuations_and_lines() {
        let ast = parse("FROM x\nRUN a \\\n# skipped\n\n  b\n").unwrap();
        assert_eq!(ast.nodes[1].args, vec!["a   b"]);
        assert_eq!((ast.nodes[1].start_line, ast.nodes[1].end_line), (2, 5));
        assert_eq!(ast.warnings.len(), 1);
        assert_eq!(ast.nodes[1].original, "RUN a   b");
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_crash() {
        // Variables nested thousands deep on a line the heredoc scan lexes.
        let deep = format!("{}x{}", "${A:-".repeat(3000), "}".repeat(3000));
        let e = parse(&format!("FROM x\nRUN cat <<EOF {deep}\nhi\nEOF\n")).unwrap_err();
        assert!(e.to_string().contains("nested too deep"), "{e}");
        assert!(e.to_string().starts_with("Dockerfile:2: "), "{e}");
        // A few levels are fine, heredoc and all.
        let ast = parse("FROM x\nRUN cat <<EOF ${A:-${B:-x}}\nhi\nEOF\n").unwrap();
        assert_eq!(ast.nodes[1].heredocs[0].content, "hi\n");
        // ONBUILD chains: two are parsed (and refused later, as BuildKit
        // does), thousands are refused here.
        let chained = parse("FROM x\nONBUILD ONBUILD RUN x\n").unwrap();
        let inner = chained.nodes[1].onbuild_inner.as_ref().unwrap();
        assert_eq!(inner.keyword, "onbuild");
        let e = parse(&format!("FROM x\n{}RUN x\n", "ONBUILD ".repeat(100_000))).unwrap_err();
        assert!(e.to_string().contains("ONBUILD nested too deep"), "{e}");
    }

    #[test]
    fn onbuild_nests() {
        let ast = parse("FROM x\nONBUILD --f=1 ADD --chown=a b c\n").unwrap();
        let n = &ast.nodes[1];
        assert_eq!(n.flags, vec!["--f=1"]);
        let inner = n.onbuild_inner.as_ref().unwrap();
        assert_eq!(inner.keyword, "add");
        assert_eq!(inner.flags, vec!["--chown=a"]);
        assert_eq!(inner.args, vec!["b", "c"]);
        assert_eq!(inner.start_line, 2);
    }
}
