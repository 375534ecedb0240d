//! Lexical arithmetic on image paths (absolute, `/`-separated), shared by
//! the shell's `cd` and the device lookup: `.` and `..` are applied by name,
//! and `..` at `/` stays at `/`.

/// `path` with `.`, `..` and repeated slashes applied by name; the result
/// is absolute (a relative `path` is taken from `/`).
pub fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `path` taken relative to the directory `start` (unless it is absolute),
/// normalised.
pub fn join_normalised(start: &str, path: &str) -> String {
    if path.starts_with('/') {
        normalise(path)
    } else {
        normalise(&format!("{start}/{path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_apply_by_name_and_stop_at_root() {
        assert_eq!(join_normalised("/", "dev/null"), "/dev/null");
        assert_eq!(join_normalised("/usr/bin", "../../dev/./zero"), "/dev/zero");
        assert_eq!(join_normalised("/x", "/../../dev/null"), "/dev/null");
        assert_eq!(join_normalised("/", "."), "/");
        assert_eq!(normalise("//a//b/../c/"), "/a/c");
    }
}
