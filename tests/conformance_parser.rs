//! BuildKit parser conformance: every `testfiles/*/Dockerfile` must dump to
//! its `result`, every `testfiles-negative/*/Dockerfile` must be rejected.

use std::fs;
use std::path::PathBuf;

use kiln::dockerfile::{dump, parse};

/// The conformance data dir, or None (after printing why) when it is absent
/// outside CI. In CI a missing dir fails the test.
fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KILN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    let parser_dir = dir.join("buildkit/parser");
    if parser_dir.is_dir() {
        return Some(parser_dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("conformance data missing at {}", parser_dir.display());
    }
    eprintln!(
        "SKIP: conformance data not found at {} (set KILN_CONFORMANCE_DIR)",
        parser_dir.display()
    );
    None
}

fn case_dirs(dir: PathBuf) -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Dockerfile").is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    cases.sort();
    cases
}

#[test]
fn positive_cases_dump_like_buildkit() {
    let Some(dir) = conformance_dir() else { return };
    let cases = case_dirs(dir.join("testfiles"));
    assert!(!cases.is_empty(), "no positive cases found");
    let mut failures = Vec::new();
    for (name, path) in &cases {
        let source = fs::read(path.join("Dockerfile")).expect("read Dockerfile");
        let source = String::from_utf8_lossy(&source);
        let expected = fs::read_to_string(path.join("result")).expect("read result");
        match parse(&source) {
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
            Ok(ast) => {
                let got = dump(&ast);
                if got.trim_end_matches('\n') != expected.trim_end_matches('\n') {
                    failures.push(format!("{name}:\n--- expected\n{expected}\n--- got\n{got}"));
                }
            }
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
fn negative_cases_are_rejected() {
    let Some(dir) = conformance_dir() else { return };
    let cases = case_dirs(dir.join("testfiles-negative"));
    assert!(!cases.is_empty(), "no negative cases found");
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, path)| {
            let source = fs::read(path.join("Dockerfile")).expect("read Dockerfile");
            parse(&String::from_utf8_lossy(&source)).is_ok()
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        accepted.is_empty(),
        "accepted invalid Dockerfiles: {accepted:?}"
    );
}
