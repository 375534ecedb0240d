//! Sandbox escapes: RUN steps that try to read or write host paths through
//! absolute paths, `..`, hostile symlinks from the context or made by the
//! step itself, and hard links. Sentinel files outside the build prove that
//! nothing outside was read (its bytes never reach a layer) or written.

mod common;

use common::image::Fixture;

/// A file outside every directory kiln may touch, with content that must
/// never show up in an image.
fn sentinel(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.tmp.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sentinel.txt");
    std::fs::write(&file, "HOST-SECRET-SENTINEL\n").unwrap();
    file
}

fn assert_no_sentinel(img: &common::image::Image) {
    for layer in img.layers() {
        for e in layer {
            assert!(
                !e.text().contains("HOST-SECRET-SENTINEL"),
                "host bytes reached the image at {}",
                e.path
            );
        }
    }
}

#[test]
fn absolute_and_dotdot_paths_stay_inside_the_rootfs() {
    let fx = Fixture::new();
    let s = sentinel(&fx);
    let abs = s.to_str().unwrap();
    let dotdot = format!("/../../../../../../../../..{abs}");
    let img = fx.build(
        &format!(
            "FROM scratch\nRUN (cat {abs} || true) > /r1 2>&1; (cat {dotdot} || true) > /r2 2>&1; \
             (cat /etc/hostname /proc/self/environ || true) > /r3 2>&1; \
             mkdir -p $(dirname {abs}) && echo inside > {abs} && echo inside > {dotdot}2\n"
        ),
        &[],
    );
    assert_no_sentinel(&img);
    assert_eq!(
        std::fs::read_to_string(&s).unwrap(),
        "HOST-SECRET-SENTINEL\n"
    );
    assert!(!std::path::Path::new(&format!("{abs}2")).exists());
    // The writes landed inside the image, at the same image paths.
    let files = img.files();
    let inside = abs.trim_start_matches('/');
    assert_eq!(files[inside].text(), "inside\n");
    assert!(
        files["r1"].text().contains("No such file"),
        "{}",
        files["r1"].text()
    );
}

#[test]
fn hostile_symlinks_from_the_context_resolve_inside_the_rootfs() {
    let fx = Fixture::new();
    let s = sentinel(&fx);
    let outside_dir = s.parent().unwrap().to_str().unwrap().to_string();
    // COPY keeps symlinks as symlinks: both point at the host's files.
    fx.write(&[("links/x", "x")]);
    std::os::unix::fs::symlink(&outside_dir, fx.ctx().join("links/to-outside")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../../../", fx.ctx().join("links/up"))
        .unwrap();
    let img = fx.build(
        "FROM scratch\nCOPY links /links/\n\
         RUN (cat /links/to-outside/sentinel.txt || true) > /r1 2>&1; \
             (ls /links/up/ || true) > /r2 2>&1; \
             echo pwned > /links/to-outside/pwned 2>/dev/null; \
             echo pwned > /links/up/pwned-root 2>/dev/null; true\n",
        &[],
    );
    assert_no_sentinel(&img);
    assert!(!s.parent().unwrap().join("pwned").exists());
    assert!(!std::path::Path::new("/pwned-root").exists());
    let files = img.files();
    // `up` is `/` of the image: listing it shows the image's own root.
    assert!(
        files["r2"].text().contains("links"),
        "{}",
        files["r2"].text()
    );
}

#[test]
fn symlinks_and_links_made_by_the_step_cannot_reach_out() {
    let fx = Fixture::new();
    let s = sentinel(&fx);
    let outside_dir = s.parent().unwrap().to_str().unwrap().to_string();
    let img = fx.build(
        &format!(
            "FROM scratch\nRUN mkdir /a && echo a > /a/f && ln -s {outside_dir} /esc && \
             (cat /esc/sentinel.txt || true) > /r1 2>&1 && \
             (ln {outside_dir}/sentinel.txt /hard || true) > /r2 2>&1 && \
             rm -r /a && ln -s {outside_dir} /a && (echo pwned > /a/new || true)\n"
        ),
        &[],
    );
    assert_no_sentinel(&img);
    assert!(!s.parent().unwrap().join("new").exists());
    assert_eq!(
        std::fs::read_to_string(&s).unwrap(),
        "HOST-SECRET-SENTINEL\n"
    );
    let files = img.files();
    assert_eq!(files["a"].entry_type, tar::EntryType::Symlink);
    assert!(!files.contains_key("a/f"), "{:?}", files.keys());
}

#[test]
fn mounts_through_hostile_symlinks_stay_inside() {
    let fx = Fixture::new();
    let s = sentinel(&fx);
    let outside_dir = s.parent().unwrap().to_str().unwrap().to_string();
    fx.write(&[("d/x", "x")]);
    std::os::unix::fs::symlink(&outside_dir, fx.ctx().join("d/mnt")).unwrap();
    let img = fx.build(
        "FROM scratch\nCOPY d /\nRUN --mount=type=tmpfs,target=/mnt/t echo t > /mnt/t/file && ls /mnt > /listing\n",
        &[],
    );
    assert_no_sentinel(&img);
    assert!(!s.parent().unwrap().join("t").exists());
    assert_eq!(std::fs::read_dir(s.parent().unwrap()).unwrap().count(), 1);
    let _ = img;
}
