//! Build errors that point at the Dockerfile line that caused them.

use std::fmt;

/// An error raised while executing one instruction: shows the file, the
/// line and the instruction text, then what went wrong.
#[derive(Debug)]
pub struct StepError {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub source: anyhow::Error,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.text.lines().next().unwrap_or("");
        write!(
            f,
            "{}:{}: {}\n  {:>4} | {}",
            self.file,
            self.line,
            crate::error_text::of(&self.source),
            self.line,
            first
        )
    }
}

impl std::error::Error for StepError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_file_line_and_text() {
        let e = StepError {
            file: "Dockerfile".into(),
            line: 7,
            text: "COPY missing /x\n".into(),
            source: anyhow::anyhow!("\"missing\" not found in the build context"),
        };
        assert_eq!(
            e.to_string(),
            "Dockerfile:7: \"missing\" not found in the build context\n     7 | COPY missing /x"
        );
    }
}
