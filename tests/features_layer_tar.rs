//! DESIGN.md's reproducibility contract checked on a real kiln layer:
//! depth-first bytewise order with parents first, mtimes clamped to
//! SOURCE_DATE_EPOCH, empty uname/gname, ustar headers with PAX only when
//! needed, and a gzip header with mtime 0 and no file name.

mod common;

use common::image::{read_tar, Fixture, Image};
use common::*;
use std::io::Read;
use std::process::Command;

/// Paths built from this fit ustar's prefix+name split: no PAX needed.
const LONG_DIR: &str = "long-directory-name-to-push-the-path-well-past-the-ustar-name-field";
/// A single name longer than ustar's 100-byte name field: PAX needed.
const LONG_NAME: &str = "a-file-name-that-is-longer-than-the-one-hundred-bytes-of-the-ustar-name-field-so-it-needs-a-pax-record.txt";

/// Builds a context whose names sort differently bytewise-per-component
/// than as whole strings (`a-b` < `a/` as strings), with mtimes after and
/// before SOURCE_DATE_EPOCH=1000.
fn build(fx: &Fixture) -> Image {
    let long = format!("{LONG_DIR}/{LONG_DIR}/file.txt");
    fx.write(&[
        ("tree/a/b", "b\n"),
        ("tree/a/c/d", "d\n"),
        ("tree/a-b", "ab\n"),
        ("tree/a.txt", "at\n"),
        ("tree/B", "B\n"),
        ("tree/old.txt", "old\n"),
        (&format!("tree/{long}"), "long\n"),
        (&format!("tree/{LONG_NAME}"), "very long\n"),
    ]);
    // A file older than the epoch keeps its mtime; newer ones are clamped.
    run_ok(
        Command::new("touch")
            .args(["-m", "-d", "@500"])
            .arg(fx.ctx().join("tree/old.txt")),
    );
    run_ok(
        Command::new("touch")
            .args(["-m", "-d", "@2000000000"])
            .arg(fx.ctx().join("tree/a.txt")),
    );
    fx.build(
        "FROM scratch\nCOPY tree /t/\n",
        &["--source-date-epoch", "1000"],
    )
}

fn components(p: &str) -> Vec<&[u8]> {
    p.split('/').map(str::as_bytes).collect()
}

#[test]
fn entries_are_depth_first_sorted_with_parents_first() {
    let fx = Fixture::new();
    let img = build(&fx);
    let entries = img.top_layer();
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert!(!paths.is_empty());
    for w in paths.windows(2) {
        assert!(
            components(w[0]) < components(w[1]),
            "{:?} must come before {:?} in depth-first bytewise order; got {paths:#?}",
            w[1],
            w[0]
        );
    }
    for (i, p) in paths.iter().enumerate() {
        if let Some((parent, _)) = p.rsplit_once('/') {
            assert!(
                paths[..i].contains(&parent),
                "parent {parent:?} of {p:?} missing or after it: {paths:#?}"
            );
        }
    }
    // The discriminating part: `a` and its children before `a-b`.
    let pos = |p: &str| {
        paths
            .iter()
            .position(|x| *x == p)
            .unwrap_or_else(|| panic!("{p} missing: {paths:?}"))
    };
    assert!(pos("t/B") < pos("t/a"));
    assert!(pos("t/a/c/d") < pos("t/a-b"));
    assert!(pos("t/a-b") < pos("t/a.txt"));
}

#[test]
fn mtimes_are_clamped_and_owner_names_empty() {
    let fx = Fixture::new();
    let img = build(&fx);
    let entries = img.top_layer();
    for e in &entries {
        assert!(e.mtime <= 1000, "{} has mtime {}", e.path, e.mtime);
        assert!(e.uname.is_empty(), "{} uname {:?}", e.path, e.uname);
        assert!(e.gname.is_empty(), "{} gname {:?}", e.path, e.gname);
        assert_eq!((e.uid, e.gid), (0, 0), "{}", e.path);
        let want = if e.is_dir() { 0o755 } else { 0o644 };
        assert_eq!(e.mode, want, "{}", e.path);
    }
    let get = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p}"))
    };
    assert_eq!(get("t/a.txt").mtime, 1000, "later mtime clamped");
    assert_eq!(get("t/a/b").mtime, 1000, "fresh file clamped");
    assert_eq!(get("t/old.txt").mtime, 500, "earlier mtime kept");
}

#[test]
fn headers_are_ustar_with_pax_only_for_long_names() {
    let fx = Fixture::new();
    let img = build(&fx);
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(img.layer_blobs.last().unwrap().as_slice())
        .read_to_end(&mut raw)
        .unwrap();
    // Walk the raw headers, PAX extension headers included.
    let mut archive = tar::Archive::new(raw.as_slice());
    // For each real entry, in order: whether a PAX header preceded it.
    let mut has_pax = Vec::new();
    let mut pending_pax = false;
    for entry in archive.entries().unwrap().raw(true) {
        let mut entry = entry.unwrap();
        let h = entry.header();
        assert!(h.as_ustar().is_some(), "not a ustar header: {:?}", h.path());
        let kind = h.entry_type();
        assert!(
            !matches!(
                kind,
                tar::EntryType::GNULongName | tar::EntryType::GNULongLink
            ),
            "GNU long-name headers are not allowed"
        );
        assert!(
            kind != tar::EntryType::XGlobalHeader,
            "no global PAX headers"
        );
        if kind == tar::EntryType::XHeader {
            let name = String::from_utf8_lossy(&h.path_bytes()).into_owned();
            assert!(
                !name.contains(&std::process::id().to_string()),
                "PAX header name must be fixed: {name}"
            );
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            let body = String::from_utf8_lossy(&body);
            for key in ["atime", "ctime", "SCHILY.xattr", "LIBARCHIVE.xattr"] {
                assert!(!body.contains(key), "PAX record {key} leaked: {body}");
            }
            pending_pax = true;
            continue;
        }
        has_pax.push(pending_pax);
        pending_pax = false;
    }
    let entries = read_tar(&raw);
    assert_eq!(entries.len(), has_pax.len());
    let with_pax: Vec<&str> = entries
        .iter()
        .zip(&has_pax)
        .filter(|(_, p)| **p)
        .map(|(e, _)| e.path.as_str())
        .collect();
    // Only the name that cannot fit ustar has a PAX record; the long but
    // splittable paths use the ustar prefix field.
    assert_eq!(with_pax, [format!("t/{LONG_NAME}")]);
    let long_file = format!("t/{LONG_DIR}/{LONG_DIR}/file.txt");
    assert!(long_file.len() > 100);
    let e = entries
        .iter()
        .find(|e| e.path == long_file)
        .expect("long path entry");
    assert_eq!(e.text(), "long\n");
}

#[test]
fn gzip_header_has_mtime_zero_and_no_name() {
    let fx = Fixture::new();
    let img = build(&fx);
    for (i, blob) in img.layer_blobs.iter().enumerate() {
        assert_eq!(
            &blob[..3],
            &[0x1f, 0x8b, 8],
            "layer {i}: gzip/deflate magic"
        );
        let flags = blob[3];
        assert_eq!(flags & 0x08, 0, "layer {i}: no FNAME");
        assert_eq!(flags & 0x10, 0, "layer {i}: no FCOMMENT");
        assert_eq!(
            &blob[4..8],
            &[0, 0, 0, 0],
            "layer {i}: gzip mtime must be 0"
        );
    }
    // Media type matches the compression.
    assert_eq!(
        img.manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
}

#[test]
fn same_inputs_with_other_mtimes_give_the_same_layer() {
    let fx = Fixture::new();
    let first = build(&fx);
    // Touch every context file to "now" (all clamped to 1000 anyway).
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -name 'a*' -exec touch -m {{}} +",
        fx.ctx().display()
    )));
    let second = fx.build(
        "FROM scratch\nCOPY tree /t/\n",
        &["--source-date-epoch", "1000"],
    );
    assert_eq!(first.manifest, second.manifest);
}
