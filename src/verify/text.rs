//! The first differing line of two text files, for content differences
//! a reader can act on without extracting the layers.

use serde::Serialize;

/// Lines longer than this are cut in reports.
const MAX_LINE: usize = 160;

/// Where two texts first differ: 1-based line number and that line on each
/// side (`None` where one text has ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineDiff {
    pub line: usize,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// Whether `b` reads as text: valid UTF-8 without NUL bytes.
pub fn looks_like_text(b: &[u8]) -> bool {
    !b.contains(&0) && std::str::from_utf8(b).is_ok()
}

/// The first line where `a` and `b` differ, or `None` when they are equal.
/// A missing final newline counts as a difference on the last line.
pub fn first_difference(a: &str, b: &str) -> Option<LineDiff> {
    if a == b {
        return None;
    }
    let mut la = a.split_inclusive('\n');
    let mut lb = b.split_inclusive('\n');
    let mut line = 0;
    loop {
        line += 1;
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                return Some(LineDiff {
                    line,
                    a: x.map(show),
                    b: y.map(show),
                })
            }
        }
    }
}

/// A line for display: without its newline (a missing one is marked),
/// cut to [`MAX_LINE`] characters.
fn show(line: &str) -> String {
    let (body, nl) = match line.strip_suffix('\n') {
        Some(b) => (b, true),
        None => (line, false),
    };
    let mut out: String = body.chars().take(MAX_LINE).collect();
    if body.chars().count() > MAX_LINE {
        out.push('…');
    }
    if !nl {
        out.push_str(" (no newline at end)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_difference() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
    }

    #[test]
    fn reports_the_first_differing_line_with_its_number() {
        let d = first_difference("one\ntwo\nthree\n", "one\nTWO\nthree\n").unwrap();
        assert_eq!(d.line, 2);
        assert_eq!(d.a.as_deref(), Some("two"));
        assert_eq!(d.b.as_deref(), Some("TWO"));
    }

    #[test]
    fn an_extra_line_is_a_difference_after_the_end() {
        let d = first_difference("a\n", "a\nb\n").unwrap();
        assert_eq!((d.line, d.a, d.b.as_deref()), (2, None, Some("b")));
    }

    #[test]
    fn a_missing_final_newline_is_shown() {
        let d = first_difference("a\n", "a").unwrap();
        assert_eq!(d.line, 1);
        assert_eq!(d.b.as_deref(), Some("a (no newline at end)"));
    }

    #[test]
    fn binary_is_not_text() {
        assert!(looks_like_text(b"hello\n"));
        assert!(!looks_like_text(b"a\0b"));
        assert!(!looks_like_text(&[0xff, 0xfe]));
    }
}
