//! `kiln debug parse FILE` (the binary, not the library) over BuildKit's
//! parser conformance cases: every positive case dumps to its `result`,
//! every negative case exits non-zero with a clear message.

mod common;

use common::*;
use std::fs;

#[test]
fn debug_parse_reproduces_every_result() {
    let Some(dir) = conformance_dir("buildkit/parser") else {
        return;
    };
    let cases = case_dirs(&dir.join("testfiles"));
    assert!(!cases.is_empty(), "no positive cases");
    let cache = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let file = path.join("Dockerfile");
        let out = kiln(cache.path(), &["debug", "parse", file.to_str().unwrap()]);
        let expected = fs::read(path.join("result")).expect("read result");
        if !out.status.success() {
            failures.push(format!(
                "{name}: exit {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        // Byte comparison, trailing newlines aside.
        let trim = |b: &[u8]| {
            let mut b = b.to_vec();
            while b.last() == Some(&b'\n') {
                b.pop();
            }
            b
        };
        if trim(&out.stdout) != trim(&expected) {
            failures.push(format!(
                "{name}:\n--- expected\n{}\n--- got\n{}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn debug_parse_rejects_every_negative_case_clearly() {
    let Some(dir) = conformance_dir("buildkit/parser") else {
        return;
    };
    let cases = case_dirs(&dir.join("testfiles-negative"));
    assert!(!cases.is_empty(), "no negative cases");
    let cache = tempfile::tempdir().unwrap();
    for (name, path) in &cases {
        let file = path.join("Dockerfile");
        let out = kiln(cache.path(), &["debug", "parse", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(!stderr.contains("panicked"), "{name}: panicked:\n{stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("error:") && first.len() > "error: ".len() + 10,
            "{name}: no clear error message:\n{stderr}"
        );
        assert!(
            stderr.contains("Dockerfile"),
            "{name}: error should name the file:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{name}: printed an AST anyway");
    }
}

#[test]
fn debug_parse_of_a_missing_file_is_an_error() {
    let cache = tempfile::tempdir().unwrap();
    let err = kiln_err(cache.path(), &["debug", "parse", "/nonexistent/Dockerfile"]);
    assert!(err.contains("/nonexistent/Dockerfile"), "{err}");
}
