//! COPY/ADD rules: plan_copy over a real context directory.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use kiln::context::{Context, PatternMatcher};
use kiln::exec::copy::{plan_copy, CopyError, CopyOptions, DestKind};
use kiln::snapshot::{Content, Entry, EntryKind, ImagePath, Meta};

fn p(s: &str) -> ImagePath {
    ImagePath::parse(s).unwrap()
}

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// A context with a few files.
fn fixture() -> (tempfile::TempDir, Context) {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "a.txt",
        "b.txt",
        "c.md",
        "dir/x.txt",
        "dir/sub/y.txt",
        "dir/sub/z.md",
        "other/w.txt",
    ] {
        write(d.path(), f, f);
    }
    let c = Context::open(d.path(), None).unwrap();
    (d, c)
}

/// Destination stage: `/`, `/etc` (dir, mode 0700 owned 5:5), `/etc/file`,
/// `/srv -> /etc` symlink, `/app` dir.
fn stage() -> HashMap<String, DestKind> {
    let mut m = HashMap::new();
    let etc = Meta {
        mode: 0o700,
        uid: 5,
        gid: 5,
        mtime: 7,
    };
    m.insert("etc".into(), DestKind::Dir(etc));
    m.insert("etc/file".into(), DestKind::File);
    m.insert("srv".into(), DestKind::Symlink("/etc".into()));
    m.insert("app".into(), DestKind::Dir(Meta::new(0o755)));
    m
}

fn run(
    c: &Context,
    srcs: &[&str],
    dest: &str,
    workdir: &str,
    opts: &CopyOptions,
) -> Result<Vec<Entry>, CopyError> {
    let st = stage();
    let lookup = move |path: &ImagePath| -> io::Result<DestKind> {
        Ok(st.get(path.as_str()).cloned().unwrap_or(DestKind::Absent))
    };
    let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
    plan_copy(c, &srcs, dest, &p(workdir), opts, &lookup)
}

fn paths(es: &[Entry]) -> Vec<&str> {
    es.iter().map(|e| e.path.as_str()).collect()
}

fn content(e: &Entry) -> String {
    match &e.kind {
        EntryKind::File {
            content: Content::Host(h),
            ..
        } => fs::read_to_string(h).unwrap(),
        k => panic!("{:?} is {k:?}", e.path),
    }
}

fn get<'a>(es: &'a [Entry], path: &str) -> &'a Entry {
    es.iter()
        .find(|e| e.path.as_str() == path)
        .unwrap_or_else(|| panic!("{path} missing in {:?}", paths(es)))
}

fn o() -> CopyOptions {
    CopyOptions::default()
}

#[test]
fn single_file_to_new_path_creates_parents() {
    let (_d, c) = fixture();
    let es = run(&c, &["a.txt"], "/opt/tool/renamed", "", &o()).unwrap();
    assert_eq!(paths(&es), ["opt", "opt/tool", "opt/tool/renamed"]);
    assert_eq!(content(&es[2]), "a.txt");
    assert_eq!(es[0].meta, Meta::new(0o755));
    assert_eq!(es[2].meta.mode, 0o644);
}

#[test]
fn file_to_slash_dest_or_existing_dir_goes_inside() {
    let (_d, c) = fixture();
    let es = run(&c, &["a.txt"], "/new/", "", &o()).unwrap();
    assert_eq!(paths(&es), ["new", "new/a.txt"]);
    // Existing directory without a slash: inside, and the existing parent
    // keeps its metadata.
    let es = run(&c, &["a.txt"], "/etc", "", &o()).unwrap();
    assert_eq!(paths(&es), ["etc", "etc/a.txt"]);
    assert_eq!(
        es[0].meta,
        Meta {
            mode: 0o700,
            uid: 5,
            gid: 5,
            mtime: 7
        }
    );
    // Through a symlinked destination.
    let es = run(&c, &["a.txt"], "/srv/", "", &o()).unwrap();
    assert_eq!(paths(&es), ["etc", "etc/a.txt"]);
    // Existing file: replaced.
    let es = run(&c, &["b.txt"], "/etc/file", "", &o()).unwrap();
    assert_eq!(paths(&es), ["etc", "etc/file"]);
    assert_eq!(content(&es[1]), "b.txt");
}

#[test]
fn relative_dest_uses_workdir_and_dot() {
    let (_d, c) = fixture();
    let es = run(&c, &["a.txt"], ".", "app", &o()).unwrap();
    assert_eq!(paths(&es), ["app", "app/a.txt"]);
    let es = run(&c, &["a.txt"], "sub/", "work", &o()).unwrap();
    assert_eq!(paths(&es), ["work", "work/sub", "work/sub/a.txt"]);
    let es = run(&c, &["a.txt"], "../../x", "work", &o()).unwrap();
    assert_eq!(paths(&es), ["x"]);
}

#[test]
fn directory_source_copies_its_contents() {
    let (_d, c) = fixture();
    let es = run(&c, &["dir"], "/dst", "", &o()).unwrap();
    assert_eq!(
        paths(&es),
        [
            "dst",
            "dst/sub",
            "dst/sub/y.txt",
            "dst/sub/z.md",
            "dst/x.txt"
        ]
    );
    let es = run(&c, &["."], "/app/", "", &o()).unwrap();
    assert!(paths(&es).contains(&"app/dir/sub/y.txt"));
    assert!(paths(&es).contains(&"app/a.txt"));
    assert!(!paths(&es).contains(&"app/dir/dir"));
    // A directory onto a file is an error.
    assert!(matches!(
        run(&c, &["dir"], "/etc/file", "", &o()),
        Err(CopyError::DirOntoFile(_))
    ));
    // A file onto an existing directory inside a copied tree is an error.
    let es = run(&c, &["dir/sub"], "/etc", "", &o()).unwrap();
    assert_eq!(paths(&es), ["etc", "etc/y.txt", "etc/z.md"]);
}

#[test]
fn multiple_sources_and_globs_need_a_slash() {
    let (_d, c) = fixture();
    let err = run(&c, &["a.txt", "b.txt"], "/dst", "", &o()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "When using COPY with more than one source file, the destination must be a directory and end with a /"
    );
    let add = CopyOptions {
        command: "ADD",
        ..o()
    };
    assert!(run(&c, &["*.txt"], "/dst", "", &add)
        .unwrap_err()
        .to_string()
        .starts_with("When using ADD"));
    assert!(matches!(
        run(&c, &["a.txt", "b.txt"], ".", "app", &o()),
        Err(CopyError::DestNotDir(_))
    ));
    let es = run(&c, &["*.txt", "c.md"], "/dst/", "", &o()).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/a.txt", "dst/b.txt", "dst/c.md"]);
    // A glob that matches exactly one file may target a file name.
    let es = run(&c, &["c.*"], "/dst", "", &o()).unwrap();
    assert_eq!(paths(&es), ["dst"]);
    assert_eq!(content(&es[0]), "c.md");
    // Globs in the middle, and a directory match copies contents.
    let es = run(&c, &["*/sub"], "/dst/", "", &o()).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/y.txt", "dst/z.md"]);
    let es = run(&c, &["d?r/*.txt", "[o]ther/*"], "/dst/", "", &o()).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/w.txt", "dst/x.txt"]);
}

#[test]
fn missing_sources_are_errors_naming_them() {
    let (_d, c) = fixture();
    let err = run(&c, &["nope.txt"], "/dst", "", &o()).unwrap_err();
    assert!(
        matches!(err, CopyError::NotFound(ref s) if s == "nope.txt"),
        "{err}"
    );
    let err = run(&c, &["*.none"], "/dst/", "", &o()).unwrap_err();
    assert!(
        err.to_string().contains("no source files were specified"),
        "{err}"
    );
    assert!(err.to_string().contains("*.none"), "{err}");
    // One empty glob among matching sources is fine.
    assert_eq!(
        run(&c, &["*.none", "a.txt"], "/dst/", "", &o())
            .unwrap()
            .len(),
        2
    );
    // A glob under a missing directory names the source.
    assert!(matches!(
        run(&c, &["nodir/*"], "/dst/", "", &o()),
        Err(CopyError::NotFound(_))
    ));
    assert!(matches!(
        run(&c, &["[x"], "/dst/", "", &o()),
        Err(CopyError::Pattern(_))
    ));
}

#[test]
fn dotdot_sources_stay_in_the_context() {
    let (_d, c) = fixture();
    let es = run(&c, &["../../../a.txt"], "/x", "", &o()).unwrap();
    assert_eq!(content(get(&es, "x")), "a.txt");
    let es = run(&c, &[".."], "/r/", "", &o()).unwrap();
    assert!(paths(&es).contains(&"r/a.txt"));
}

#[test]
fn chown_and_chmod() {
    let (_d, c) = fixture();
    let opts = CopyOptions {
        chown: Some((1000, 1001)),
        chmod: Some(0o600),
        source_date_epoch: Some(99),
        ..o()
    };
    let es = run(&c, &["dir"], "/new/dst", "", &opts).unwrap();
    let created = get(&es, "new");
    assert_eq!(
        created.meta,
        Meta {
            mode: 0o755,
            uid: 1000,
            gid: 1001,
            mtime: 99
        }
    );
    assert_eq!(get(&es, "new/dst").meta.mode, 0o755);
    let sub = get(&es, "new/dst/sub");
    assert_eq!(
        (sub.meta.mode, sub.meta.uid, sub.meta.gid),
        (0o600, 1000, 1001)
    );
    let f = get(&es, "new/dst/x.txt");
    assert_eq!((f.meta.mode, f.meta.uid, f.meta.gid), (0o600, 1000, 1001));
    assert!(f.meta.mtime > 99, "copied files keep their own mtime");
    // Existing parents keep theirs.
    let es = run(&c, &["a.txt"], "/etc/", "", &opts).unwrap();
    assert_eq!(
        get(&es, "etc").meta,
        Meta {
            mode: 0o700,
            uid: 5,
            gid: 5,
            mtime: 7
        }
    );
}

#[test]
fn parents_keep_the_source_path() {
    let (_d, c) = fixture();
    let opts = CopyOptions {
        parents: true,
        ..o()
    };
    let es = run(&c, &["dir/sub/y.txt", "other/w.txt"], "/dst/", "", &opts).unwrap();
    assert_eq!(
        paths(&es),
        [
            "dst",
            "dst/dir",
            "dst/dir/sub",
            "dst/dir/sub/y.txt",
            "dst/other",
            "dst/other/w.txt"
        ]
    );
    // Pivot: only what follows "/./" is kept.
    let es = run(&c, &["./dir/./sub/*.md"], "/dst/", "", &opts).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/sub", "dst/sub/z.md"]);
    // A directory source lands under its own path.
    let es = run(&c, &["dir/sub"], "/dst/", "", &opts).unwrap();
    assert_eq!(
        paths(&es),
        [
            "dst",
            "dst/dir",
            "dst/dir/sub",
            "dst/dir/sub/y.txt",
            "dst/dir/sub/z.md"
        ]
    );
}

#[test]
fn exclude_patterns_skip_matches() {
    let (_d, c) = fixture();
    let opts = CopyOptions {
        exclude: vec!["*.md".into(), "sub/y.txt".into()],
        ..o()
    };
    let es = run(&c, &["dir"], "/dst/", "", &opts).unwrap();
    // `*` never crosses '/': sub/z.md stays.
    assert_eq!(paths(&es), ["dst", "dst/sub", "dst/sub/z.md", "dst/x.txt"]);
    let opts = CopyOptions {
        exclude: vec!["**/*.md".into(), "sub/y.txt".into()],
        ..o()
    };
    let es = run(&c, &["dir"], "/dst/", "", &opts).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/sub", "dst/x.txt"]);
    let es = run(
        &c,
        &["*"],
        "/dst/",
        "",
        &CopyOptions {
            exclude: vec!["*.txt".into(), "dir".into()],
            ..o()
        },
    )
    .unwrap();
    // other/w.txt is "w.txt" relative to the copied directory `other`.
    assert_eq!(paths(&es), ["dst", "dst/c.md"]);
    // An exception re-includes below an excluded directory.
    let opts = CopyOptions {
        exclude: vec!["sub".into(), "!sub/z.md".into()],
        ..o()
    };
    let es = run(&c, &["dir"], "/dst/", "", &opts).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/sub", "dst/sub/z.md", "dst/x.txt"]);
    assert!(matches!(
        run(
            &c,
            &["dir"],
            "/dst/",
            "",
            &CopyOptions {
                exclude: vec!["[".into()],
                ..o()
            }
        ),
        Err(CopyError::Exclude(_))
    ));
}

#[test]
fn dockerignored_sources_are_not_found() {
    let (d, _) = fixture();
    let c = Context::open(
        d.path(),
        Some(PatternMatcher::new(&["dir/sub", "*.md"]).unwrap()),
    )
    .unwrap();
    assert!(matches!(
        run(&c, &["c.md"], "/x", "", &o()),
        Err(CopyError::NotFound(_))
    ));
    let es = run(&c, &["."], "/x/", "", &o()).unwrap();
    assert_eq!(
        paths(&es),
        [
            "x",
            "x/a.txt",
            "x/b.txt",
            "x/dir",
            "x/dir/x.txt",
            "x/other",
            "x/other/w.txt"
        ]
    );
}

#[test]
fn destination_conflicts() {
    let (_d, c) = fixture();
    // A file where the stage has a directory.
    let st = |path: &ImagePath| -> io::Result<DestKind> {
        Ok(match path.as_str() {
            "d" | "d/x.txt" => DestKind::Dir(Meta::new(0o755)),
            "f" => DestKind::File,
            _ => DestKind::Absent,
        })
    };
    let srcs = vec!["dir".to_string()];
    let err = plan_copy(&c, &srcs, "/d", &ImagePath::root(), &o(), &st).unwrap_err();
    assert!(
        matches!(err, CopyError::ReplaceDir(ref p) if p.as_str() == "d/x.txt"),
        "{err}"
    );
    let srcs = vec!["a.txt".to_string()];
    let err = plan_copy(&c, &srcs, "/f/x", &ImagePath::root(), &o(), &st).unwrap_err();
    assert!(matches!(err, CopyError::NotADirectory(..)), "{err}");
}

#[cfg(unix)]
#[test]
fn symlinks_copied_as_links_but_named_sources_are_followed() {
    use std::os::unix::fs::symlink;
    let (d, c) = fixture();
    symlink("x.txt", d.path().join("dir/link")).unwrap();
    symlink("/dir", d.path().join("dirlink")).unwrap();
    symlink("/a.txt", d.path().join("alink")).unwrap();
    symlink("../../../../etc/passwd", d.path().join("evil")).unwrap();
    let es = run(&c, &["dir"], "/dst/", "", &o()).unwrap();
    match &get(&es, "dst/link").kind {
        EntryKind::Symlink { target } => assert_eq!(target, "x.txt"),
        k => panic!("{k:?}"),
    }
    // A named symlink is followed: its target's content under its own name.
    let es = run(&c, &["alink"], "/dst/", "", &o()).unwrap();
    assert_eq!(content(get(&es, "dst/alink")), "a.txt");
    let es = run(&c, &["dirlink"], "/dst/", "", &o()).unwrap();
    assert!(paths(&es).contains(&"dst/sub/y.txt"));
    // A link pointing outside resolves inside the context, where nothing is.
    assert!(matches!(
        run(&c, &["evil"], "/dst/", "", &o()),
        Err(CopyError::NotFound(_))
    ));
    // Globs do not descend through symlinked directories.
    let es = run(&c, &["dir*/x.txt"], "/dst/", "", &o()).unwrap();
    assert_eq!(paths(&es), ["dst", "dst/x.txt"]);
}
