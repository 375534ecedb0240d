//! Parser directives (`# syntax=`, `# escape=`, `# check=`): recognised only
//! on the leading comment lines, before any instruction, blank line or other
//! comment, as BuildKit's DirectiveParser does.

use std::collections::HashSet;

/// Directive names BuildKit knows; any other `# key=value` ends the header.
const VALID: [&str; 3] = ["syntax", "escape", "check"];

/// A directive found at the top of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-case name (`syntax`, `escape` or `check`).
    pub name: String,
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// Tracks whether directives may still appear and which were seen.
#[derive(Debug, Default)]
pub struct DirectiveParser {
    done: bool,
    seen: HashSet<String>,
}

/// RE2's `\s`: ASCII whitespace without `\v`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

impl DirectiveParser {
    /// Looks at one (newline-trimmed) line. Returns the directive's name and
    /// value if the line is one, or an error for a repeated directive.
    pub fn parse_line(&mut self, line: &str) -> Result<Option<(String, String)>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let Some((name, value)) = match_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if !VALID.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(name.clone()) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        Ok(Some((name, value)))
    }
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn match_directive(s: &str) -> Option<(String, String)> {
    let first = s.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let name = &s[..name_end];
    let rest = s[name_end..].trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    if rest.is_empty() {
        return None;
    }
    let value = rest.trim_matches(is_re_space);
    if value.is_empty() {
        // `.+?` must take one character; backtracking gives it the last one.
        let last = rest.chars().last()?;
        return Some((name.to_string(), last.to_string()));
    }
    Some((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_directive_lines() {
        assert_eq!(
            match_directive("escape = `"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            match_directive("syntax=docker/dockerfile:1  "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("1escape=x"), None);
        assert_eq!(match_directive("Comment here. x"), None);
    }

    #[test]
    fn header_ends_at_first_non_directive() {
        let mut p = DirectiveParser::default();
        assert!(p.parse_line("# Syntax=x").unwrap().is_some());
        assert!(p.parse_line("# hello").unwrap().is_none());
        assert!(p.parse_line("# escape=`").unwrap().is_none());
    }

    #[test]
    fn duplicate_is_error() {
        let mut p = DirectiveParser::default();
        p.parse_line("# escape=`").unwrap();
        let err = p.parse_line("#ESCAPE=\\").unwrap_err();
        assert!(err.contains("only one escape parser directive"));
    }
}
