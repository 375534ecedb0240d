use super::*;
use std::io::Write;
use std::sync::Arc;

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// One tar entry to build, with names written raw so hostile ones survive.
enum T<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Char(&'a str, u32, u32),
}

fn tar_of(entries: &[T<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1000);
        let (name, data): (&str, &[u8]) = match e {
            T::Dir(n, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                (n, b"")
            }
            T::File(n, d, m) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                (n, d)
            }
            T::Sym(n, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(t).unwrap();
                (n, b"")
            }
            T::Hard(n, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_link_name(t).unwrap();
                (n, b"")
            }
            T::Char(n, ma, mi) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                (n, b"")
            }
        };
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn p(s: &str) -> ImagePath {
    ImagePath::parse(s).unwrap()
}

struct Fixture {
    tmp: tempfile::TempDir,
    fs: Rootfs,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/sentinel"), b"safe").unwrap();
        let fs = Rootfs::new(&tmp.path().join("rootfs")).unwrap();
        Fixture { tmp, fs }
    }
    fn apply(&mut self, entries: &[T<'_>]) -> Result<(), RootfsError> {
        self.fs
            .apply_layer(&tar_of(entries)[..], TAR, "sha256:test")
    }
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["sentinel"]);
        assert_eq!(
            std::fs::read(self.outside().join("sentinel")).unwrap(),
            b"safe"
        );
    }
    fn kind(&self, s: &str) -> Option<NodeKind> {
        self.fs.get(&p(s)).map(|n| n.kind.clone())
    }
}

#[test]
fn layer_entries_land_in_record_and_host() {
    let mut f = Fixture::new();
    f.apply(&[
        T::Dir("./", 0o755),
        T::Dir("./usr/", 0o755),
        T::File("./usr/bin/su", b"elf", 0o4755),
        T::Sym("./bin", "usr/bin"),
        T::Hard("./usr/bin/su2", "./usr/bin/su"),
        T::Char("./dev/null", 1, 3),
    ])
    .unwrap();
    let su = f.fs.get(&p("usr/bin/su")).unwrap();
    assert_eq!(su.kind, NodeKind::File { size: 3 });
    assert_eq!(su.meta.mode, 0o4755);
    // Implicit parent directory.
    assert_eq!(f.kind("usr/bin"), Some(NodeKind::Dir));
    assert_eq!(f.kind("usr/bin/su2"), Some(NodeKind::File { size: 3 }));
    assert_eq!(
        f.kind("dev/null"),
        Some(NodeKind::CharDevice { major: 1, minor: 3 })
    );
    let host = f.fs.host_path(&p("usr/bin/su"));
    assert_eq!(std::fs::read(&host).unwrap(), b"elf");
    assert_eq!(
        std::fs::read(f.fs.host_path(&p("usr/bin/su2"))).unwrap(),
        b"elf"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&host).unwrap().permissions().mode();
        assert_eq!(mode & 0o4000, 0, "setuid must stay in the record only");
        let dev = std::fs::symlink_metadata(f.fs.host_path(&p("dev/null"))).unwrap();
        assert!(
            dev.is_file() && dev.len() == 0,
            "device is an empty placeholder"
        );
    }
}

#[test]
fn dotdot_and_absolute_names_are_refused() {
    for bad in [
        "../outside/sentinel",
        "a/../../outside/sentinel",
        "/outside/sentinel",
    ] {
        let mut f = Fixture::new();
        let err = f.apply(&[T::File(bad, b"pwned", 0o644)]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(bad) && msg.contains("sha256:test"), "{msg}");
        f.assert_outside_untouched();
    }
}

#[test]
fn symlinked_parents_resolve_inside_the_rootfs() {
    let mut f = Fixture::new();
    let abs_outside = f.outside().display().to_string();
    f.apply(&[
        T::Sym("rel", "../../../outside"),
        T::Sym("abs", &abs_outside),
        T::Sym("root", "/"),
    ])
    .unwrap();
    f.apply(&[
        T::File("rel/sentinel", b"pwned", 0o644),
        T::File("abs/sentinel", b"pwned", 0o644),
        T::File("root/etc/x", b"x", 0o644),
    ])
    .unwrap();
    f.assert_outside_untouched();
    // Resolved with chroot semantics: `..` stops at `/`, absolute targets
    // start at the rootfs root.
    assert_eq!(f.kind("outside/sentinel"), Some(NodeKind::File { size: 5 }));
    let abs_inside = ImagePath::resolve(&ImagePath::root(), &abs_outside).join("sentinel");
    assert_eq!(
        f.fs.get(&abs_inside).map(|n| &n.kind),
        Some(&NodeKind::File { size: 5 })
    );
    assert_eq!(f.kind("etc/x"), Some(NodeKind::File { size: 1 }));
    assert!(f
        .fs
        .host_path(&p("outside/sentinel"))
        .starts_with(f.fs.dir()));
}

#[test]
fn a_file_replacing_an_escaping_symlink_does_not_follow_it() {
    let mut f = Fixture::new();
    let abs = f.outside().join("sentinel").display().to_string();
    f.apply(&[T::Sym("victim", &abs)]).unwrap();
    f.apply(&[T::File("victim", b"pwned", 0o644)]).unwrap();
    f.assert_outside_untouched();
    assert_eq!(f.kind("victim"), Some(NodeKind::File { size: 5 }));
}

#[test]
fn hard_links_outside_or_to_missing_targets_are_refused() {
    let mut f = Fixture::new();
    let abs_outside = f.outside().display().to_string();
    f.apply(&[T::Sym("out", &abs_outside)]).unwrap();
    for (name, target) in [
        ("h1", "../outside/sentinel"),
        ("h2", "out/sentinel"),
        ("h3", "missing"),
        ("h4", "/etc/passwd"),
    ] {
        let err = f.apply(&[T::Hard(name, target)]).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
        assert!(f.fs.get(&p(name)).is_none());
    }
    f.assert_outside_untouched();
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_layers_only() {
    let mut f = Fixture::new();
    f.apply(&[
        T::File("a/x", b"1", 0o644),
        T::File("a/y", b"2", 0o644),
        T::File("b/z", b"3", 0o644),
        T::File("c/old", b"4", 0o644),
        T::File("c/sub/deep", b"5", 0o644),
    ])
    .unwrap();
    f.apply(&[
        T::File("a/.wh.x", b"", 0o644),
        T::File(".wh.b", b"", 0o644),
        // The new file comes before the opaque marker: it must survive.
        T::File("c/new", b"6", 0o644),
        T::File("c/.wh..wh..opq", b"", 0o644),
        T::File(".wh.nothing-here", b"", 0o644),
    ])
    .unwrap();
    let paths: Vec<&str> = f.fs.record().keys().map(|k| k.as_str()).collect();
    assert_eq!(paths, ["", "a", "a/y", "c", "c/new"]);
    for gone in ["a/x", "b", "c/old", "c/sub"] {
        assert!(!f.fs.host_path(&p(gone)).exists(), "{gone} still on host");
    }
    assert_eq!(std::fs::read(f.fs.host_path(&p("c/new"))).unwrap(), b"6");
}

#[test]
fn compressed_layers_are_recognised_by_magic() {
    let raw = tar_of(&[T::File("hello", b"hi", 0o600)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&raw[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (bytes, mt) in [
        (gz.clone(), "application/vnd.oci.image.layer.v1.tar+gzip"),
        (gz, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        // Mislabelled: the magic decides.
        (zst, "application/vnd.oci.image.layer.v1.tar+gzip"),
    ] {
        let mut f = Fixture::new();
        f.fs.apply_layer(&bytes[..], mt, "l").unwrap();
        assert_eq!(f.kind("hello"), Some(NodeKind::File { size: 2 }));
        assert_eq!(f.fs.get(&p("hello")).unwrap().meta.mode, 0o600);
    }
    let mut f = Fixture::new();
    let err =
        f.fs.apply_layer(&raw[..], "application/vnd.oci.image.config.v1+json", "l")
            .unwrap_err();
    assert!(matches!(err, RootfsError::MediaType { .. }));
}

#[test]
fn source_tree_resolves_parents_inside_and_reads_the_record() {
    let mut f = Fixture::new();
    f.apply(&[
        T::File("usr/lib/libc.so", b"libc", 0o755),
        T::File("usr/lib/b", b"", 0o644),
        T::File("usr/lib/a.txt", b"", 0o644),
        T::Dir("usr/lib/a", 0o700),
        T::Sym("lib", "/usr/lib"),
    ])
    .unwrap();
    let e = f.fs.lstat(&p("lib/libc.so")).unwrap().unwrap();
    assert_eq!(e.path, p("lib/libc.so"));
    assert_eq!(e.meta.mode, 0o755);
    match e.kind {
        EntryKind::File {
            size: 4,
            content: Content::Host(h),
        } => {
            assert_eq!(h, f.fs.host_path(&p("usr/lib/libc.so")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.fs.lstat(&p("lib")).unwrap().unwrap().kind,
        EntryKind::Symlink { target } if target == "/usr/lib"
    ));
    assert!(f.fs.lstat(&p("lib/missing")).unwrap().is_none());
    assert!(f.fs.lstat(&p("usr/lib/libc.so/x")).unwrap().is_none());
    assert_eq!(
        f.fs.read_dir(&p("lib")).unwrap(),
        ["a", "a.txt", "b", "libc.so"]
    );
    assert!(f.fs.read_dir(&p("usr/lib/b")).is_err());
}

#[test]
fn symlink_loops_are_errors_not_hangs() {
    let mut f = Fixture::new();
    f.apply(&[T::Sym("x", "y"), T::Sym("y", "x")]).unwrap();
    assert!(f.apply(&[T::File("x/file", b"", 0o644)]).is_err());
    assert!(f.fs.lstat(&p("x/file")).is_err());
}

#[test]
fn apply_entries_takes_kiln_entries_without_a_tar() {
    let mut f = Fixture::new();
    f.apply(&[T::File("app/old", b"o", 0o644), T::Sym("link", "app")])
        .unwrap();
    let src = f.tmp.path().join("ctx-file");
    std::fs::write(&src, b"from host").unwrap();
    let meta = Meta {
        mode: 0o640,
        uid: 1,
        gid: 2,
        mtime: 3,
    };
    let entries = vec![
        Entry {
            path: p("link/new"),
            kind: EntryKind::File {
                size: 9,
                content: Content::Host(src),
            },
            meta,
        },
        Entry {
            path: p("app/inline"),
            kind: EntryKind::File {
                size: 2,
                content: Content::Inline(Arc::from(&b"hi"[..])),
            },
            meta,
        },
        Entry {
            path: p("app/old"),
            kind: EntryKind::Whiteout,
            meta,
        },
    ];
    f.fs.apply_entries(&entries).unwrap();
    assert_eq!(f.fs.get(&p("app/new")).unwrap().meta, meta);
    // Contents are borrowed from their sources, not copied into the tree.
    let read = |path: &str| match f.fs.lstat(&p(path)).unwrap().unwrap().kind {
        EntryKind::File { content, .. } => content.read_all().unwrap(),
        other => panic!("{path} is {other:?}"),
    };
    assert_eq!(read("app/new"), b"from host");
    assert_eq!(read("app/inline"), b"hi");
    assert!(!f.fs.host_path(&p("app/inline")).exists());
    assert!(f.fs.get(&p("app/old")).is_none());
}

#[cfg(unix)]
#[test]
fn export_local_copies_tree_with_modes_and_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new();
    f.apply(&[
        T::Dir("bin", 0o711),
        T::File("bin/tool", b"t", 0o750),
        T::Sym("bin/alias", "tool"),
        T::Char("dev/null", 1, 3),
    ])
    .unwrap();
    let dest = f.tmp.path().join("export");
    let skipped = f.fs.export_local(&dest).unwrap();
    assert_eq!(skipped, [p("dev/null")]);
    let mode = |rel: &str| {
        std::fs::metadata(dest.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin"), 0o711);
    assert_eq!(mode("bin/tool"), 0o750);
    assert_eq!(
        std::fs::read_link(dest.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    let mtime = std::fs::metadata(dest.join("bin/tool"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000)
    );
}

#[test]
fn long_names_hardlinked_symlinks_and_type_changes() {
    let mut f = Fixture::new();
    let long = format!("deep/{}/file", "n".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(2);
    b.append_data(&mut h, &long, &b"ok"[..]).unwrap();
    let raw = b.into_inner().unwrap();
    f.fs.apply_layer(&raw[..], TAR, "long").unwrap();
    assert_eq!(f.kind(&long), Some(NodeKind::File { size: 2 }));

    f.apply(&[
        T::Sym("s", "/deep"),
        T::Hard("s2", "s"),
        T::File("d/inner", b"x", 0o644),
    ])
    .unwrap();
    assert_eq!(
        f.kind("s2"),
        Some(NodeKind::Symlink {
            target: "/deep".into()
        })
    );
    // A directory replaced by a file, and a file by a directory.
    f.apply(&[T::File("d", b"now a file", 0o644), T::Dir("s2", 0o755)])
        .unwrap();
    assert_eq!(f.kind("d"), Some(NodeKind::File { size: 10 }));
    assert!(f.fs.get(&p("d/inner")).is_none());
    assert_eq!(f.kind("s2"), Some(NodeKind::Dir));
    assert!(f.fs.host_path(&p("s2")).is_dir());
}

#[test]
fn add_archive_entries_through_their_own_symlinks_stay_inside() {
    let mut f = Fixture::new();
    let abs_outside = f.outside().display().to_string();
    let archive = tar_of(&[
        T::Sym("esc", &abs_outside),
        T::File("esc/sentinel", b"pwned", 0o644),
        T::Sym("up", "../../.."),
        T::File("up/top", b"t", 0o600),
    ]);
    let src = f.tmp.path().join("a.tar");
    std::fs::write(&src, archive).unwrap();
    let scratch = f.tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let entries = super::archive::extract(&src, &p("srv"), &scratch)
        .unwrap()
        .unwrap();
    // Extracting twice into the same scratch dir must not collide.
    assert!(super::archive::extract(&src, &p("srv"), &scratch)
        .unwrap()
        .is_some());
    f.fs.apply_entries(&entries).unwrap();
    f.assert_outside_untouched();
    let inside = ImagePath::resolve(&ImagePath::root(), &abs_outside).join("sentinel");
    assert_eq!(
        f.fs.get(&inside).map(|n| &n.kind),
        Some(&NodeKind::File { size: 5 })
    );
    // `srv/up` -> `../../..` stops at `/`.
    assert_eq!(f.kind("top"), Some(NodeKind::File { size: 1 }));
    assert_eq!(f.fs.get(&p("top")).unwrap().meta.mode, 0o600);
}
