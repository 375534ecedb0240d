//! .dockerignore semantics, checked against moby/patternmatcher behaviour.

use kiln::context::dockerignore::{go_clean, load, parse_ignore_file, PatternMatcher};

fn pm(p: &[&str]) -> PatternMatcher {
    PatternMatcher::new(p).unwrap()
}

/// (pattern, path, exact match?, match-or-parent-match?)
const SINGLE: &[(&str, &str, bool, bool)] = &[
    ("**", "file", true, true),
    ("**", "dir/file", true, true),
    ("**/", "file", true, true),
    ("**/**", "dir/file", true, true),
    ("dir/**", "dir/file", true, true),
    ("dir/**", "dir/dir2/file", true, true),
    ("**/dir", "dir", true, true),
    ("**/dir", "dir/file", false, true),
    ("**/dir2/*", "dir/dir2/file", true, true),
    ("**/dir2/*", "dir/dir2/file/", false, true),
    ("**/dir2/**", "dir/dir2/dir3/file", true, true),
    ("**file", "file", true, true),
    ("**file", "dir/file", true, true),
    ("**/file", "dir/dir/file", true, true),
    ("**/file*", "dir/dir/file.txt", true, true),
    ("**/file*txt", "dir/dir/file.txt", true, true),
    ("**/**/*.txt", "dir/dir/file.txt", true, true),
    ("**/**/*.txt2", "dir/dir/file.txt", false, false),
    ("**/*.txt", "file.txt", true, true),
    ("**/**/*.txt", "file.txt", true, true),
    ("a**/*.txt", "a/file.txt", true, true),
    ("a**/*.txt", "a/dir/dir/file.txt", true, true),
    ("a/*.txt", "a/dir/file.txt", false, false),
    ("a/*.txt", "a/file.txt", true, true),
    ("a/*.txt**", "a/file.txt", true, true),
    ("a[b-d]e", "ae", false, false),
    ("a[b-d]e", "ace", true, true),
    ("a[^b-d]e", "aze", true, true),
    (".*", ".foo", true, true),
    (".*", "foo", false, false),
    ("abc.def", "abcdef", false, false),
    ("abc.def", "abc.def", true, true),
    ("abc?def", "abcZdef", true, true),
    ("abc?def", "abcdef", false, false),
    ("**/foo/bar", "foo/bar", true, true),
    ("**/foo/bar", "dir/dir2/foo/bar", true, true),
    ("abc/**", "abc", false, false),
    ("abc/**", "abc/def/ghi", true, true),
    ("**/.foo", ".foo", true, true),
    ("**/.foo", "bar.foo", false, false),
    ("a(b)c/def", "a(b)c/def", true, true),
    ("a(b)c/def", "a(b)c/xyz", false, false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true, true),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
        true,
    ),
    ("a\\\\", "a\\", true, true),
    ("a\\*b", "a*b", true, true),
    ("a\\*b", "axb", false, false),
    // Plain names only match at the top level.
    ("foo", "foo", true, true),
    ("foo", "a/foo", false, false),
    ("foo", "foo/bar/baz", false, true),
    ("*/temp*", "somedir/temporary.txt", true, true),
    ("*/temp*", "temp", false, false),
    ("*/*/temp*", "a/b/temp.txt", true, true),
    ("temp?", "tempa", true, true),
    ("temp?", "temp/x", false, false),
    // Cleaning: "./x", "x/", "x/../y".
    ("./docs/", "docs/a.md", false, true),
    ("a/../b", "b", true, true),
    // `**file` is a suffix test in Docker: it matches "xfile" too.
    ("**file", "dir/xfile", true, true),
    // A regexp `^` outside a class is an anchor, never a literal.
    ("a^b*", "a^bc", false, false),
    ("a^b", "a^b", true, true),
    // `*` and `?` never cross '/', a class can.
    ("a*b", "a/b", false, false),
    ("a?b", "a/b", false, false),
    ("a[^x]b", "a/b", true, true),
    ("a?b", "a☺b", true, true),
    ("[a-ζ]*", "α", true, true),
];

#[test]
fn single_pattern_table() {
    for &(pat, path, exact, parent) in SINGLE {
        let m = pm(&[pat]);
        assert_eq!(m.matches_exact(path), exact, "exact {pat:?} vs {path:?}");
        assert_eq!(
            m.matches_or_parent_matches(path),
            parent,
            "parent {pat:?} vs {path:?}"
        );
    }
}

#[test]
fn exceptions_and_order() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (&["**", "!dist/*.whl"], "dist/a-1.0+x.whl", false),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/other.md", true),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (
            &["*.md", "!README*.md", "README-secret.md"],
            "README-secret.md",
            true,
        ),
        (
            &["*.md", "!README*.md", "README-secret.md"],
            "README.md",
            false,
        ),
        (
            &["*.md", "README-secret.md", "!README*.md"],
            "README-secret.md",
            false,
        ),
        // An exception for a child does not re-include its excluded parent.
        (&["a", "!a/b/c"], "a/b", true),
        (&["a", "!a/b/c"], "a/b/c", false),
        (&["a", "!a/b/c"], "a/b/c/d", false),
    ];
    for (pats, path, want) in cases {
        assert_eq!(
            pm(pats).matches_or_parent_matches(path),
            *want,
            "{pats:?} vs {path:?}"
        );
    }
}

#[test]
fn root_is_never_excluded_and_errors() {
    assert!(!pm(&["*", "**"]).matches_or_parent_matches(""));
    assert!(!pm(&["*"]).matches_or_parent_matches("."));
    assert!(!pm(&[]).matches_or_parent_matches("any/path"));
    assert!(PatternMatcher::new(&["!"]).is_err());
    assert!(PatternMatcher::new(&["["]).is_err());
    assert!(PatternMatcher::new(&["a/[-x]"]).is_err());
    assert!(PatternMatcher::new(&["trailing\\"]).is_err());
    assert!(pm(&["docs", "  !docs/README.md  "]).has_exclusions());
    assert!(!pm(&["docs"]).has_exclusions());
    assert!(pm(&["", "  "]).is_empty());
}

#[test]
fn go_clean_matches_go() {
    let cases = [
        ("", "."),
        (".", "."),
        ("/", "/"),
        ("a/", "a"),
        ("./a//b/./c/", "a/b/c"),
        ("a/../..", ".."),
        ("../a/../../b", "../../b"),
        ("/../a", "/a"),
        ("a/b/../../..", ".."),
        ("!./foo", "!./foo"),
    ];
    for (i, o) in cases {
        assert_eq!(go_clean(i), o, "Clean({i:?})");
    }
}

#[test]
fn ignore_file_parsing() {
    let text = "\u{feff}# comment\n  # not a comment\n\n/abs/path\n!  /keep/me/ \r\nfoo/./bar/\n/\n!\n  spaced  \n";
    assert_eq!(
        parse_ignore_file(text),
        [
            "# not a comment",
            "abs/path",
            "!keep/me",
            "foo/bar",
            "/",
            "!",
            "spaced"
        ]
    );
    // A leading '/' makes no difference.
    let m = PatternMatcher::new(&parse_ignore_file("/secret\n")).unwrap();
    assert!(m.matches_or_parent_matches("secret/x"));
    // "# x" is only a comment in column 1: indented, it is a pattern.
    let m = PatternMatcher::new(&parse_ignore_file("   # x")).unwrap();
    assert!(m.matches_exact("# x"));
    // "!" alone is an error when compiled.
    assert!(PatternMatcher::new(&parse_ignore_file("a\n!\n")).is_err());
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    std::fs::create_dir(ctx.join("build")).unwrap();
    std::fs::write(ctx.join(".dockerignore"), "from-root\n").unwrap();
    let df = ctx.join("build/app.Dockerfile");
    std::fs::write(&df, "FROM scratch\n").unwrap();
    // Without a specific file, the context's one is used.
    let m = load(ctx, Some(&df)).unwrap().unwrap();
    assert!(m.matches_exact("from-root"));
    std::fs::write(
        ctx.join("build/app.Dockerfile.dockerignore"),
        "from-specific\n",
    )
    .unwrap();
    let m = load(ctx, Some(&df)).unwrap().unwrap();
    assert!(m.matches_exact("from-specific"));
    assert!(!m.matches_exact("from-root"));
    // No dockerfile given: the root file.
    assert!(load(ctx, None).unwrap().unwrap().matches_exact("from-root"));
    // No file at all.
    let empty = tempfile::tempdir().unwrap();
    assert!(load(empty.path(), None).unwrap().is_none());
    // A bad pattern names the file.
    std::fs::write(ctx.join(".dockerignore"), "[\n").unwrap();
    let err = load(ctx, None).unwrap_err().to_string();
    assert!(err.contains(".dockerignore"), "{err}");
}

#[test]
fn huge_patterns_do_not_exhaust_the_stack() {
    // Matching used to recurse once per token: 100,000 of them overflowed
    // the stack and aborted the build.
    // `a**...**b`: `**` inside a pattern is `(.*/)?`, 50,000 times.
    let stars = format!("a{}b", "*".repeat(100_000));
    let m = pm(&[stars.as_str()]);
    for (path, hit) in [("ab", true), ("a/b", true), ("a/c/b", true), ("a-b", false)] {
        assert_eq!(m.matches_exact(path), hit, "{path}");
    }
    // `^*^*...x`: 100,000 anchor and run tokens.
    let runs = format!("{}x", "^*".repeat(50_000));
    let dirs = format!("{}y", "**/".repeat(50_000));
    let m = pm(&[runs.as_str(), dirs.as_str()]);
    assert!(m.matches_exact("x"));
    assert!(m.matches_exact("zx"));
    assert!(!m.matches_exact("z/x"));
    assert!(m.matches_exact("d/e/y"));
    assert!(!m.matches_exact("d/e/z"));
}
