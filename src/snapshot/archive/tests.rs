use super::*;
use std::io::Write;

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(1000);
    h.set_gid(2000);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

/// Writes the raw name bytes into the header, bypassing the tar crate's own
/// checks, so hostile names can be produced.
fn raw_name(h: &mut tar::Header, name: &str) {
    let bytes = name.as_bytes();
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o750, 0);
    raw_name(&mut h, "./dir/");
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o4755, 5);
    raw_name(&mut h, "./dir/hello");
    h.set_cksum();
    b.append(&h, &b"hello"[..]).unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    h.set_link_name("/etc/passwd").unwrap();
    raw_name(&mut h, "dir/link");
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    let mut h = header(tar::EntryType::Link, 0o644, 0);
    h.set_link_name("dir/hello").unwrap();
    raw_name(&mut h, "dir/hard");
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    b.into_inner().unwrap()
}

fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
    match kind {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Xz => {
            let mut e =
                lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1))
                    .unwrap();
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

fn extract_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<Option<Vec<Entry>>, ArchiveError>) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("input.bin");
    std::fs::write(&src, bytes).unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let dest = ImagePath::parse("opt/app").unwrap();
    let r = extract(&src, &dest, &scratch);
    (tmp, r)
}

#[test]
fn every_format_is_detected_by_magic_and_extracted() {
    let tar = sample_tar();
    for kind in [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let bytes = compress(kind, &tar);
        assert_eq!(Compression::detect(&bytes), kind);
        let (_tmp, r) = extract_bytes(&bytes);
        let entries = r
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"))
            .expect("an archive");
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/app/dir",
                "opt/app/dir/hello",
                "opt/app/dir/link",
                "opt/app/dir/hard"
            ],
            "{kind:?}"
        );
        assert_eq!(entries[0].meta.mode, 0o750);
        let file = &entries[1];
        assert_eq!(
            file.meta,
            Meta {
                mode: 0o4755,
                uid: 1000,
                gid: 2000,
                mtime: 1_700_000_000
            }
        );
        match &file.kind {
            EntryKind::File {
                size: 5,
                content: Content::Host(p),
            } => {
                assert_eq!(std::fs::read(p).unwrap(), b"hello");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&entries[2].kind, EntryKind::Symlink { target } if target == "/etc/passwd")
        );
        assert!(
            matches!(&entries[3].kind, EntryKind::Hardlink { target } if target.as_str() == "opt/app/dir/hello")
        );
    }
}

#[test]
fn multi_frame_zstd_is_decoded_whole() {
    let tar = sample_tar();
    let (a, b) = tar.split_at(700);
    let mut bytes = compress(Compression::Zstd, a);
    bytes.extend(compress(Compression::Zstd, b));
    let (_tmp, r) = extract_bytes(&bytes);
    assert_eq!(r.unwrap().unwrap().len(), 4);
}

#[test]
fn non_archives_return_none() {
    for bytes in [
        b"just some text".to_vec(),
        Vec::new(),
        compress(Compression::Gzip, b"a gzipped text file, not a tar"),
        compress(Compression::Xz, b"xz of text"),
        vec![0u8; 1024],
    ] {
        let (_tmp, r) = extract_bytes(&bytes);
        assert!(r.unwrap().is_none());
    }
}

fn single_entry_tar(kind: tar::EntryType, name: &str, link: Option<&str>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(kind, 0o644, 0);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    raw_name(&mut h, name);
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn hostile_names_are_refused_with_the_entry_named() {
    for (kind, name, link) in [
        (tar::EntryType::Regular, "../escape", None),
        (tar::EntryType::Regular, "a/../../escape", None),
        (tar::EntryType::Regular, "/etc/passwd", None),
        (tar::EntryType::Link, "hard", Some("../../etc/passwd")),
        (tar::EntryType::Link, "hard", Some("missing")),
        (tar::EntryType::Regular, "dir/.wh.x", None),
    ] {
        let (_tmp, r) = extract_bytes(&single_entry_tar(kind, name, link));
        let err = r.expect_err(name).to_string();
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn system_tools_output_is_understood_when_installed() {
    let tools = [
        ("gzip", Compression::Gzip),
        ("bzip2", Compression::Bzip2),
        ("xz", Compression::Xz),
        ("zstd", Compression::Zstd),
    ];
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("plain.tar"), sample_tar()).unwrap();
    for (tool, kind) in tools {
        let out = std::process::Command::new(tool)
            .args(["-c", "-q"])
            .stdin(File::open(tmp.path().join("plain.tar")).unwrap())
            .output();
        let out = match out {
            Ok(o) if o.status.success() => o.stdout,
            _ if std::env::var_os("CI").is_some() => panic!("{tool} is needed in CI"),
            _ => {
                eprintln!("skipping {tool}: not installed");
                continue;
            }
        };
        assert_eq!(Compression::detect(&out), kind);
        let (_t, r) = extract_bytes(&out);
        assert_eq!(r.unwrap().unwrap().len(), 4, "{tool}");
    }
}
