//! BuildKit's own word-expansion cases (shell/envVarTest, shell/wordsTest),
//! run against `kiln::dockerfile::expand`. The data lives outside the repo;
//! see shared/conformance/README.md for the file formats.

use kiln::dockerfile::expand::Lexer;

mod common;
use common::conformance_dir;

fn read(dir: &std::path::Path, rel: &str) -> String {
    let path = dir.join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn env_var_test() {
    let Some(dir) = conformance_dir("") else {
        return;
    };
    let text = read(&dir, "buildkit/shell/envVarTest");
    let env: Vec<(String, String)> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut ran = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.trim().split('|').collect();
        let [platform, source, expected] = fields[..] else {
            failures.push(format!("line {line_no}: malformed {raw:?}"));
            continue;
        };
        let (platform, source, expected) = (platform.trim(), source.trim(), expected.trim());
        match platform {
            "A" | "U" => {}
            "W" => continue,
            other => {
                failures.push(format!("line {line_no}: unknown platform {other:?}"));
                continue;
            }
        }
        ran += 1;
        let got = lexer.process_word(source, &env);
        match (expected, got) {
            ("error", Ok(word)) => failures.push(format!(
                "line {line_no}: {source:?} should fail, got {word:?}"
            )),
            ("error", Err(_)) => {}
            (_, Err(e)) => failures.push(format!(
                "line {line_no}: {source:?} should give {expected:?}, failed: {e}"
            )),
            (_, Ok(word)) if word != expected => failures.push(format!(
                "line {line_no}: {source:?} should give {expected:?}, got {word:?}"
            )),
            _ => {}
        }
    }
    assert!(ran > 200, "only {ran} cases found in envVarTest");
    assert!(
        failures.is_empty(),
        "{} of {ran} envVarTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn words_test() {
    let Some(dir) = conformance_dir("") else {
        return;
    };
    let text = read(&dir, "buildkit/shell/wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        if raw.starts_with('#') || raw.is_empty() {
            continue;
        }
        if let Some(rest) = raw.strip_prefix("ENV ") {
            let assignment = rest.trim_start_matches(' ');
            let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.push((name.to_string(), value.to_string()));
            continue;
        }
        let fields: Vec<&str> = raw.split('|').collect();
        let [input, expected] = fields[..] else {
            failures.push(format!("line {line_no}: malformed {raw:?}"));
            continue;
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        ran += 1;
        let got = lexer
            .process_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "line {line_no}: {input:?} should give {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(ran > 20, "only {ran} cases found in wordsTest");
    assert!(
        failures.is_empty(),
        "{} of {ran} wordsTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
