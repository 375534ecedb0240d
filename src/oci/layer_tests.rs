use super::*;
use crate::snapshot::Meta;
use std::io::Read;
use std::sync::Arc;

fn p(s: &str) -> ImagePath {
    ImagePath::parse(s).unwrap()
}

fn meta(mode: u32, mtime: u64) -> Meta {
    Meta {
        mode,
        uid: 0,
        gid: 0,
        mtime,
    }
}

fn dir(s: &str) -> Entry {
    Entry {
        path: p(s),
        kind: EntryKind::Dir,
        meta: meta(0o755, 5),
    }
}

fn inline(s: &str, data: &[u8]) -> Entry {
    Entry {
        path: p(s),
        kind: EntryKind::File {
            size: data.len() as u64,
            content: Content::Inline(Arc::from(data)),
        },
        meta: meta(0o644, 5),
    }
}

fn entry(s: &str, kind: EntryKind) -> Entry {
    Entry {
        path: p(s),
        kind,
        meta: meta(0o644, 5),
    }
}

const OPTS: LayerOptions = LayerOptions {
    source_date_epoch: 1000,
};

fn tar_bytes(entries: Vec<Entry>) -> Vec<u8> {
    let mut out = Vec::new();
    write_tar(entries, &OPTS, &mut out).unwrap();
    out
}

/// (path, type flag, mode, mtime, size, link) as the `tar` crate reads them.
fn listing(tar: &[u8]) -> Vec<(String, u8, u32, u64, u64, String)> {
    let mut ar = ::tar::Archive::new(tar);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.entry_type().as_byte(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                e.size(),
                link,
            )
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn sample_tree(host_dir: &std::path::Path) -> Vec<Entry> {
    // > 2 MiB in total so compression spans several pieces.
    let big: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8 & 0x3f)
        .collect();
    let host = host_dir.join("big.bin");
    std::fs::write(&host, &big).unwrap();
    vec![
        inline("usr/bin/tool", b"#!/bin/sh\necho hi\n"),
        dir("usr"),
        dir("usr/bin"),
        entry(
            "usr/bin/big",
            EntryKind::File {
                size: big.len() as u64,
                content: Content::Host(host),
            },
        ),
        entry(
            "usr/bin/link",
            EntryKind::Hardlink {
                target: p("usr/bin/big"),
            },
        ),
        entry(
            "usr/sh",
            EntryKind::Symlink {
                target: "/bin/busybox".into(),
            },
        ),
        entry("usr.txt", EntryKind::Fifo),
        Entry {
            path: p("late"),
            kind: EntryKind::File {
                size: 0,
                content: Content::Inline(Arc::from(&b""[..])),
            },
            meta: Meta {
                mode: 0o4755,
                uid: 1000,
                gid: 1000,
                mtime: 99999,
            },
        },
    ]
}

#[test]
fn same_bytes_for_any_thread_count_and_it_decompresses_to_the_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&tmp.path().join("store")).unwrap();
    let entries = sample_tree(tmp.path());
    let one = write_layer_with_threads(&store, entries.clone(), &OPTS, 1).unwrap();
    let blob_one = store.read(&one.digest).unwrap();
    std::fs::remove_file(store.path(&one.digest)).unwrap();
    let three = write_layer_with_threads(&store, entries.clone(), &OPTS, 3).unwrap();
    assert_eq!(one, three);
    assert_eq!(store.read(&three.digest).unwrap(), blob_one);
    assert_eq!(one.size, blob_one.len() as u64);
    assert_eq!(one.digest, Digest::of(&blob_one));

    let tar = tar_bytes(entries);
    assert_eq!(gunzip(&blob_one), tar);
    assert_eq!(one.diff_id, Digest::of(&tar));
    // gzip header: no mtime, OS byte 255.
    assert_eq!(&blob_one[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
}

#[test]
fn entries_are_sorted_depth_first_with_contract_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let got = listing(&tar_bytes(sample_tree(tmp.path())));
    let names: Vec<_> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "late",
            "usr/",
            "usr/bin/",
            "usr/bin/big",
            "usr/bin/link",
            "usr/bin/tool",
            "usr/sh",
            "usr.txt"
        ]
    );
    let late = &got[0];
    assert_eq!((late.2, late.3), (0o4755, 1000), "mode kept, mtime clamped");
    let dir = &got[1];
    assert_eq!((dir.1, dir.2, dir.3), (b'5', 0o755, 5));
    assert_eq!(got[3].4, 2_500_000);
    assert_eq!((got[4].1, got[4].5.as_str()), (b'1', "usr/bin/big"));
    assert_eq!((got[6].1, got[6].5.as_str()), (b'2', "/bin/busybox"));
    assert_eq!(got[7].1, b'6');
}

#[test]
fn system_tar_lists_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&tmp.path().join("store")).unwrap();
    let layer = write_layer(&store, sample_tree(tmp.path()), &OPTS).unwrap();
    let out = match std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(store.path(&layer.digest))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "tar missing in CI: {e}");
            eprintln!("skipping: no tar ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(lines[0].starts_with("-rwsr-xr-x 1000/1000"), "{}", lines[0]);
    assert!(lines[1].starts_with("drwxr-xr-x 0/0") && lines[1].ends_with(" usr/"));
    assert!(
        lines[4].contains("usr/bin/link link to usr/bin/big"),
        "{}",
        lines[4]
    );
    assert!(lines[6].starts_with("lrwxrwxrwx") || lines[6].starts_with("lrw-r--r--"));
    assert!(lines[7].starts_with("prw-r--r--"), "{}", lines[7]);
}

#[test]
fn empty_layer_is_just_the_end_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path()).unwrap();
    let layer = write_layer(&store, Vec::new(), &OPTS).unwrap();
    let tar = gunzip(&store.read(&layer.digest).unwrap());
    assert_eq!(tar, vec![0u8; 1024]);
    assert_eq!(layer.diff_id, Digest::of(&[0u8; 1024]));
    // The root directory entry is accepted and not written.
    assert_eq!(tar_bytes(vec![dir("")]), vec![0u8; 1024]);
}

#[test]
fn long_and_non_ascii_names_use_pax_with_a_fixed_header_name() {
    let long = "n".repeat(150);
    let deep = format!("{}/{}", "d".repeat(150), "f".repeat(50));
    let entries = vec![
        inline(&long, b"x"),
        inline("caf\u{e9}", b"y"),
        dir(&"d".repeat(150)),
        inline(&deep, b"z"),
        entry(
            "s",
            EntryKind::Symlink {
                target: "t".repeat(120),
            },
        ),
    ];
    let tar = tar_bytes(entries);
    let got = listing(&tar);
    let names: Vec<_> = got.iter().map(|g| g.0.clone()).collect();
    assert!(names.contains(&long));
    assert!(names.contains(&"caf\u{e9}".to_string()));
    assert!(names.contains(&deep));
    assert_eq!(got.iter().find(|g| g.0 == "s").unwrap().5, "t".repeat(120));
    let pax_headers = tar
        .chunks(512)
        .filter(|b| b.starts_with(b"././@PaxHeader\0") && b[156] == b'x')
        .count();
    // long name, non-ASCII name, the 150-byte directory (no prefix split
    // fits) and the long link; the deep file splits into ustar prefix+name.
    assert_eq!(pax_headers, 4);
}

#[test]
fn whiteouts_and_opaque_directories() {
    let tar = tar_bytes(vec![
        dir("etc"),
        entry("etc", EntryKind::Opaque),
        inline("etc/-first", b""),
        entry("gone", EntryKind::Whiteout),
        entry("etc/old", EntryKind::Whiteout),
    ]);
    let got = listing(&tar);
    let names: Vec<_> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/.wh..wh..opq",
            "etc/-first",
            "etc/.wh.old",
            ".wh.gone"
        ]
    );
    assert!(got[1..]
        .iter()
        .filter(|g| g.0.contains(".wh."))
        .all(|g| g.1 == b'0' && g.4 == 0));
}

#[test]
fn structural_errors_are_reported() {
    let dup = order_and_check(vec![inline("a", b""), inline("a", b"x")]);
    assert!(matches!(dup, Err(LayerError::Duplicate(_))));
    let orphan = order_and_check(vec![inline("a/b", b"")]);
    assert!(matches!(orphan, Err(LayerError::MissingParent { .. })));
    let opaque = order_and_check(vec![entry("a", EntryKind::Opaque)]);
    assert!(matches!(opaque, Err(LayerError::OpaqueWithoutDir(_))));
    let link = order_and_check(vec![
        entry("a", EntryKind::Hardlink { target: p("b") }),
        inline("b", b""),
    ]);
    assert!(matches!(link, Err(LayerError::HardlinkTarget { .. })));
    let reserved = order_and_check(vec![inline(".wh.x", b"")]);
    assert!(matches!(reserved, Err(LayerError::ReservedName(_))));
}

#[test]
fn a_host_file_whose_size_changed_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("f");
    std::fs::write(&host, b"grown content").unwrap();
    let e = entry(
        "f",
        EntryKind::File {
            size: 4,
            content: Content::Host(host),
        },
    );
    let mut out = Vec::new();
    let err = write_tar(vec![e], &OPTS, &mut out).unwrap_err();
    assert!(matches!(err, LayerError::SizeChanged { .. }), "{err}");
    let err = write_tar(
        vec![inline("g", b"abc")]
            .into_iter()
            .map(|mut e| {
                e.kind = EntryKind::File {
                    size: 9,
                    content: Content::Inline(Arc::from(&b"abc"[..])),
                };
                e
            })
            .collect(),
        &OPTS,
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, LayerError::SizeChanged { .. }), "{err}");
}
