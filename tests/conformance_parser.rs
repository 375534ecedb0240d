//! BuildKit parser conformance: every `testfiles/*/Dockerfile` must dump to
//! its `result`, every `testfiles-negative/*/Dockerfile` must be rejected.

use std::fs;

use kiln::dockerfile::{dump, parse};

mod common;
use common::{case_dirs, conformance_dir};

#[test]
fn positive_cases_dump_like_buildkit() {
    let Some(dir) = conformance_dir("buildkit/parser") else {
        return;
    };
    let cases = case_dirs(&dir.join("testfiles"));
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
    let Some(dir) = conformance_dir("buildkit/parser") else {
        return;
    };
    let cases = case_dirs(&dir.join("testfiles-negative"));
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
