//! One line for an error and its causes, each said once.
//!
//! Many errors (kiln's own `thiserror` types, reqwest's) put their source's
//! text in their own message and also report it as their source, so a plain
//! walk of the chain (anyhow's `{:#}`) repeats it. A cause whose text the
//! line already holds is left out.

/// `first: cause: cause ...`, skipping causes already in the line.
pub fn joined<'a>(messages: impl IntoIterator<Item = String> + 'a) -> String {
    let mut out = String::new();
    for msg in messages {
        if out.is_empty() {
            out = msg;
        } else if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
    }
    out
}

/// An anyhow error with its causes.
pub fn of(err: &anyhow::Error) -> String {
    joined(err.chain().map(|e| e.to_string()))
}

/// A standard error with its causes.
pub fn of_std(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        messages.push(e.to_string());
        cur = e.source();
    }
    joined(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("fetching x: {source}")]
    struct Shown {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = anyhow::Error::new(Shown { source: io }).context("pulling y");
        assert_eq!(
            format!("{err:#}"),
            "pulling y: fetching x: refused: refused"
        );
        assert_eq!(of(&err), "pulling y: fetching x: refused");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(of(&plain), "outer: inner");
    }
}
