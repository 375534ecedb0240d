//! Secrets that would leave a RUN step by a way other than a file's
//! contents: a symlink target, a directory or file name, a config field or
//! history line (the same value given as a build argument), and a cache
//! mount (a warning: the cache never reaches an image).

mod common;

use common::image::Fixture;

const SECRET: &str = "kiln-test-s3cr3t";

/// A fixture with the secret in a file (with a trailing newline, as
/// `echo value > file` writes it) and the `--secret` flag for it.
fn with_secret() -> (Fixture, String) {
    let fx = Fixture::new();
    let path = fx.tmp.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let spec = format!("id=s,src={}", path.display());
    (fx, spec)
}

fn refused(fx: &Fixture, dockerfile: &str, extra: &[&str]) -> String {
    let err = fx.build_err(dockerfile, extra);
    assert!(
        err.contains("secret \"s\" would be written into the image"),
        "{err}"
    );
    assert!(
        !err.contains(SECRET),
        "the message shows the secret:\n{err}"
    );
    err
}

#[test]
fn a_secret_in_a_symlink_target_is_refused() {
    let (fx, spec) = with_secret();
    let err = refused(
        &fx,
        "FROM scratch\nRUN --mount=type=secret,id=s ln -s \"$(cat /run/secrets/s)\" /link\n",
        &["--secret", &spec],
    );
    assert!(err.contains("the symlink target of /link"), "{err}");
    assert!(err.contains("the layer was not written"), "{err}");
}

#[test]
fn a_secret_in_a_directory_name_is_refused() {
    let (fx, spec) = with_secret();
    let err = refused(
        &fx,
        "FROM scratch\nRUN --mount=type=secret,id=s mkdir -p \"/d/$(cat /run/secrets/s)\"\n",
        &["--secret", &spec],
    );
    assert!(err.contains("the name /d/***"), "{err}");
    assert!(err.contains("the layer was not written"), "{err}");
}

#[test]
fn a_secret_in_a_file_name_is_refused() {
    let (fx, spec) = with_secret();
    let err = refused(
        &fx,
        "FROM scratch\nRUN --mount=type=secret,id=s touch \"/f-$(cat /run/secrets/s).txt\"\n",
        &["--secret", &spec],
    );
    assert!(err.contains("the name /f-***.txt"), "{err}");
}

#[test]
fn a_secret_in_a_config_field_or_history_is_refused() {
    let (fx, spec) = with_secret();
    let arg = format!("T={SECRET}");
    let flags = ["--secret", spec.as_str(), "--build-arg", arg.as_str()];
    // ENV from a build argument with the secret's value (after the RUN
    // step, so its history line does not show the argument).
    let dockerfile = "FROM scratch\nRUN --mount=type=secret,id=s test -s /run/secrets/s\n\
        ARG T\nENV X=$T\n";
    let err = refused(&fx, dockerfile, &flags);
    assert!(
        err.contains("image config: config.Env[1] contains"),
        "{err}"
    );
    assert!(err.contains("history[1].created_by"), "{err}");
    assert!(err.contains("the image was not written"), "{err}");
    // The RUN step now comes from the step cache: still refused.
    let err = refused(&fx, dockerfile, &flags);
    assert!(err.contains("config.Env["), "{err}");
    // A visible ARG is in the RUN step's history line.
    let err = refused(
        &fx,
        "FROM scratch\nARG T\nRUN --mount=type=secret,id=s test -s /run/secrets/s\n",
        &flags,
    );
    assert!(err.contains("history[0].created_by contains"), "{err}");
    // ... and the line is not kept in the cache dir.
    let mut stack = vec![fx.cache()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                    "secret found in {}",
                    e.path().display()
                );
            }
        }
    }
    // Without the secret in any RUN step, the same value is just a value.
    let img = fx.build(
        "FROM scratch\nARG T\nENV X=$T\n",
        &["--build-arg", arg.as_str()],
    );
    assert_eq!(img.env("X").as_deref(), Some(SECRET));
}

#[test]
fn a_secret_written_into_a_cache_mount_is_a_warning() {
    let (fx, spec) = with_secret();
    std::fs::write(
        fx.ctx().join("Dockerfile"),
        "FROM scratch\n\
         RUN --mount=type=secret,id=s --mount=type=secret,id=e,env=TOK \
             --mount=type=cache,target=/cache,id=c1 \
             cp /run/secrets/s /cache/tok && echo \"$TOK\" > /cache/from-env && echo ok > /done\n",
    )
    .unwrap();
    let out = fx.fresh("out");
    let output = format!("type=oci,dest={},tar=false", out.display());
    let ctx = fx.ctx();
    let o = common::kiln_cmd(
        &fx.cache(),
        &[
            "build",
            "--progress=plain",
            "--output",
            &output,
            "--secret",
            &spec,
            "--secret",
            "id=e,env=KILN_TEST_ENV_SECRET",
            ctx.to_str().unwrap(),
        ],
    )
    .env("KILN_TEST_ENV_SECRET", "kiln-env-s3cr3t")
    .output()
    .unwrap();
    common::assert_ok(&o, "a build writing a secret into a cache mount");
    let err = common::stderr(&o);
    assert!(
        err.contains("WARNING: secret \"s\" was written into cache mount /cache (id \"c1\"): its value is in the contents of /cache/tok"),
        "{err}"
    );
    assert!(
        err.contains("WARNING: secret \"e\" was written into cache mount /cache (id \"c1\"): its value is in the contents of /cache/from-env"),
        "{err}"
    );
    assert!(
        !err.contains(SECRET) && !err.contains("kiln-env-s3cr3t"),
        "{err}"
    );
    let img = common::image::Image::open(&out);
    let top = img.top_layer();
    assert!(top.iter().any(|e| e.path == "done"), "{top:?}");
    assert!(!top.iter().any(|e| e.path.starts_with("cache")), "{top:?}");
}
