//! RUN end to end: the real kiln binary builds Dockerfiles whose RUN steps
//! run in the WebAssembly sandbox, and the resulting layers are read back
//! with the tar crate: added, changed and deleted files, symlinks, hard
//! links, the environment, heredocs, mounts, secrets, failures.

mod common;

use common::image::{Fixture, TarEntry};
use std::collections::BTreeMap;

fn layer(img: &common::image::Image, i: usize) -> BTreeMap<String, TarEntry> {
    img.layers()[i]
        .iter()
        .map(|e| (e.path.clone(), e.clone()))
        .collect()
}

fn top(img: &common::image::Image) -> BTreeMap<String, TarEntry> {
    img.top_layer()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

#[test]
fn run_layers_hold_exactly_what_the_step_changed() {
    let fx = Fixture::new();
    fx.write(&[
        ("keep.txt", "keep\n"),
        ("gone.txt", "gone\n"),
        ("edit.txt", "v1\n"),
    ]);
    let img = fx.build(
        "FROM scratch\nCOPY keep.txt gone.txt edit.txt /data/\n\
         RUN rm /data/gone.txt && echo v2 >> /data/edit.txt && mkdir -p /opt/tool/bin && \
         echo made > /opt/tool/bin/run && ln -s /opt/tool/bin/run /usr-run && ln /data/keep.txt /data/keep2\n",
        &[],
    );
    let run = top(&img);
    assert_eq!(run["data/edit.txt"].text(), "v1\nv2\n");
    assert_eq!(run["data/.wh.gone.txt"].entry_type, tar::EntryType::Regular);
    assert!(!run.contains_key("data/keep.txt") || run["data/keep.txt"].text() == "keep\n");
    assert_eq!(run["opt/tool/bin/run"].text(), "made\n");
    assert!(run["opt/tool/bin"].is_dir());
    assert_eq!(run["usr-run"].entry_type, tar::EntryType::Symlink);
    assert_eq!(run["usr-run"].link.as_deref(), Some("/opt/tool/bin/run"));
    // The new hard link: either a link to a file in the same layer or a
    // full copy of the unchanged original.
    let k2 = &run["data/keep2"];
    assert!(
        k2.text() == "keep\n" || k2.entry_type == tar::EntryType::Link,
        "{k2:?}"
    );
    // Untouched files are not in the layer.
    assert!(!run.keys().any(|k| k == "data/gone.txt"));
    // Files a step creates get fixed modes and the build's times.
    assert_eq!(run["opt/tool/bin/run"].mode & 0o7777, 0o644);
    assert_eq!(run["opt/tool/bin"].mode & 0o7777, 0o755);
    assert_eq!(run["opt/tool/bin/run"].uid, 0);
    let hist = img.history();
    let last = hist.last().unwrap();
    assert!(last["created_by"]
        .as_str()
        .unwrap()
        .starts_with("RUN /bin/sh -c rm /data/gone.txt"));
    assert_ne!(last["empty_layer"], serde_json::json!(true));
}

#[test]
fn hard_links_made_in_one_step_are_one_file_and_a_link() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nRUN mkdir /d && echo payload > /d/a && ln /d/a /d/b\n",
        &[],
    );
    let run = top(&img);
    let (a, b) = (&run["d/a"], &run["d/b"]);
    let (file, link) = if a.entry_type == tar::EntryType::Link {
        (b, a)
    } else {
        (a, b)
    };
    assert_eq!(file.text(), "payload\n");
    assert_eq!(link.entry_type, tar::EntryType::Link, "{run:?}");
}

#[test]
fn replaced_directories_and_deleted_trees_become_whiteouts() {
    let fx = Fixture::new();
    fx.write(&[("tree/a/1", "1"), ("tree/a/2", "2"), ("tree/b", "b")]);
    let img = fx.build(
        "FROM scratch\nCOPY tree /tree\nRUN rm -r /tree/a && rm /tree/b && mkdir /tree/b\n",
        &[],
    );
    let run = top(&img);
    assert!(run.contains_key("tree/.wh.a"), "{:?}", run.keys());
    assert!(
        !run.keys().any(|k| k.starts_with("tree/a/")),
        "{:?}",
        run.keys()
    );
    assert!(run["tree/b"].is_dir(), "{:?}", run.keys());
}

#[test]
fn the_environment_is_env_plus_visible_args_plus_path() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nARG UNUSED_GLOBAL=x\nFROM scratch\nARG VERSION=1.2\nARG EMPTY\nENV APP=demo\n\
         RUN printenv > /env.txt\n",
        &["--build-arg", "VERSION=2.0"],
    );
    let env = top(&img)["env.txt"].text();
    let mut lines: Vec<&str> = env.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "APP=demo",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "VERSION=2.0"
        ]
    );
    let hist = img.history();
    let created_by = hist.last().unwrap()["created_by"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        created_by,
        "RUN |1 VERSION=2.0 /bin/sh -c printenv > /env.txt # buildkit"
    );
    // The arg is not in the image config.
    assert_eq!(img.env("VERSION"), None);
}

#[test]
fn workdir_and_exec_form_and_shell_instruction() {
    let fx = Fixture::new();
    fx.write(&[("src/main.txt", "source\n")]);
    let img = fx.build(
        "FROM scratch\nCOPY src /app/src\nWORKDIR /app\nRUN [\"cp\", \"src/main.txt\", \"copied.txt\"]\n\
         SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN cat src/main.txt | tr a-z A-Z > upper.txt\n",
        &[],
    );
    assert_eq!(layer(&img, 1)["app/copied.txt"].text(), "source\n");
    assert_eq!(top(&img)["app/upper.txt"].text(), "SOURCE\n");
}

#[test]
fn heredoc_runs_are_scripts() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nRUN <<EOT\nset -e\nfor i in 1 2 3; do echo \"line $i\"; done > /lines\nEOT\n\
         RUN cat > /conf <<EOF\nname=kiln\nEOF\n",
        &[],
    );
    assert_eq!(layer(&img, 0)["lines"].text(), "line 1\nline 2\nline 3\n");
    assert_eq!(top(&img)["conf"].text(), "name=kiln\n");
}

#[test]
fn a_failing_step_names_the_instruction_line_and_exit_code() {
    let fx = Fixture::new();
    let err = fx.build_err("FROM scratch\n\nRUN echo start && exit 3\n", &[]);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("RUN echo start && exit 3"), "{err}");
}

#[test]
fn native_programs_fail_with_a_clear_message() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.ctx().join("bin")).unwrap();
    std::fs::write(fx.ctx().join("bin/python3"), b"\x7fELF\x02\x01\x01\0rest").unwrap();
    let err = fx.build_err(
        "FROM scratch\nCOPY bin /usr/bin/\nRUN python3 -c 'print(1)'\n",
        &[],
    );
    assert!(err.contains("/usr/bin/python3"), "{err}");
    assert!(err.contains("WebAssembly programs only"), "{err}");
    let err = fx.build_err("FROM scratch\nRUN [\"/usr/bin/python3\"]\n", &[]);
    assert!(
        err.contains("not found") || err.contains("exit code: 127"),
        "{err}"
    );
}

#[test]
fn unsupported_run_flags_are_refused_before_anything_runs() {
    let fx = Fixture::new();
    let err = fx.build_err("FROM scratch\nRUN --network=host touch /x\n", &[]);
    assert!(err.contains("--network=host is not supported"), "{err}");
    let err = fx.build_err("FROM scratch\nRUN --mount=type=ssh touch /x\n", &[]);
    assert!(err.contains("type=ssh is not supported"), "{err}");
    let err = fx.build_err(
        "FROM scratch\nRUN --mount=type=secret,id=tok,required touch /x\n",
        &[],
    );
    assert!(err.contains("secret \"tok\" is required"), "{err}");
}

#[test]
fn bind_tmpfs_and_cache_mounts_stay_out_of_the_layer() {
    let fx = Fixture::new();
    fx.write(&[("data/in.txt", "from context\n")]);
    let dockerfile = "FROM scratch\n\
        RUN --mount=type=bind,source=data,target=/mnt/data \
            --mount=type=tmpfs,target=/scratch \
            --mount=type=cache,target=/cache,id=c1 \
            cat /mnt/data/in.txt > /out.txt && echo tmp > /scratch/t && \
            echo run >> /cache/count && wc -l < /cache/count > /count.txt\n";
    let img = fx.build(dockerfile, &[]);
    let run = top(&img);
    assert_eq!(run["out.txt"].text(), "from context\n");
    assert_eq!(run["count.txt"].text().trim(), "1");
    for k in run.keys() {
        assert!(
            !(k.starts_with("mnt") || k.starts_with("scratch") || k.starts_with("cache")),
            "mount path {k} leaked into the layer"
        );
    }
    // A bind mount is read-only unless `rw`; with rw, writes are discarded.
    let err = fx.build_err(
        "FROM scratch\nRUN --mount=type=bind,source=data,target=/mnt/data touch /mnt/data/new\n",
        &[],
    );
    assert!(
        err.contains("Read-only file system") || err.contains("exit code: 1"),
        "{err}"
    );
    let img = fx.build(
        "FROM scratch\nRUN --mount=type=bind,source=data,target=/mnt/data,rw \
         echo scribble >> /mnt/data/in.txt && cat /mnt/data/in.txt > /seen\n",
        &[],
    );
    let run = top(&img);
    assert_eq!(run["seen"].text(), "from context\nscribble\n");
    assert!(
        !run.keys().any(|k| k.starts_with("mnt")),
        "{:?}",
        run.keys()
    );
    assert_eq!(
        std::fs::read_to_string(fx.ctx().join("data/in.txt")).unwrap(),
        "from context\n"
    );
    // The cache persists in the cache dir: a second build (new context
    // content, so the step really runs again) sees the first build's line.
    fx.write(&[("data/in.txt", "changed\n")]);
    let img = fx.build(dockerfile, &[]);
    assert_eq!(top(&img)["count.txt"].text().trim(), "2");
}

#[test]
fn secrets_reach_the_step_but_never_the_layer() {
    let fx = Fixture::new();
    let secret = fx.tmp.path().join("token");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let spec = format!("id=tok,src={}", secret.display());
    let img = fx.build(
        "FROM scratch\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && \
         test -f /run/secrets/tok\n\
         RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo ${#TOKEN}' > /envlen\n",
        &["--secret", &spec],
    );
    assert_eq!(layer(&img, 0)["len"].text().trim(), "12");
    assert_eq!(top(&img)["envlen"].text().trim(), "12");
    for l in img.layers() {
        for e in l {
            assert!(!e.path.starts_with("run"), "{}", e.path);
            assert!(!e.text().contains("s3cr3t"), "{}", e.path);
        }
    }
    for h in img.history() {
        assert!(!h.to_string().contains("s3cr3t"));
    }
    // Copying the secret into the image fails the build, naming the secret.
    let err = fx.build_err(
        "FROM scratch\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /leak\n",
        &["--secret", &spec],
    );
    assert!(
        err.contains("secret \"tok\" would be written into the image"),
        "{err}"
    );
    assert!(err.contains("/leak"), "{err}");
    // ... and leaves no copy anywhere in the cache dir (blobs, scratch).
    fn scan(dir: &std::path::Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                scan(&e.path());
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                assert!(
                    !bytes.windows(6).any(|w| w == b"s3cr3t"),
                    "secret found in {}",
                    e.path().display()
                );
            }
        }
    }
    scan(&fx.cache());
}

#[test]
fn the_same_steps_give_the_same_digest_with_a_fresh_cache() {
    let fx = Fixture::new();
    fx.write(&[("in.txt", "3\n1\n2\n")]);
    let dockerfile = "FROM scratch\nCOPY in.txt /\nRUN sort /in.txt > /sorted && date > /date && \
        mktemp -u > /tmpname && touch /stamp && ls -l / > /listing && \
        head -c 16 /dev/urandom | od -An -tx1 > /random\n";
    std::fs::write(fx.ctx().join("Dockerfile"), dockerfile).unwrap();
    let digest = |cache: &std::path::Path| {
        let out = common::kiln_ok(
            cache,
            &[
                "build",
                "--progress=quiet",
                "-o",
                "type=oci,dest=/dev/null",
                fx.ctx().to_str().unwrap(),
            ],
        );
        out.trim().lines().last().unwrap().to_string()
    };
    let null_was_device = is_char_device("/dev/null");
    let a = digest(&fx.tmp.path().join("cache-a"));
    let b = digest(&fx.tmp.path().join("cache-b"));
    assert_eq!(a, b);
    assert!(a.starts_with("sha256:"), "{a}");
    // The export wrote into the device; it did not rename a file over it.
    if null_was_device {
        assert!(is_char_device("/dev/null"), "/dev/null was replaced");
    }
}

#[test]
fn dev_files_are_there_and_stay_out_of_the_layer() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nRUN mkdir /out && head -c 16 /dev/urandom > /out/random && \
         cp /dev/null /out/empty && dd if=/dev/zero of=/out/zeros bs=4 count=2 2>/dev/null && \
         echo logged | tee /dev/stderr > /dev/stdout && ln -s /dev/stdout /out/log\n",
        &[],
    );
    let run = top(&img);
    assert_eq!(run["out/random"].data.len(), 16);
    assert_ne!(run["out/random"].data, vec![0u8; 16]);
    assert_eq!(run["out/empty"].data.len(), 0);
    assert_eq!(run["out/zeros"].data, vec![0u8; 8]);
    assert_eq!(run["out/log"].link.as_deref(), Some("/dev/stdout"));
    assert!(
        !run.keys().any(|k| k == "dev" || k.starts_with("dev/")),
        "{:?}",
        run.keys().collect::<Vec<_>>()
    );
}

fn is_char_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn step_timeout_stops_a_runaway_program() {
    let fx = Fixture::new();
    let err = fx.build_err(
        "FROM scratch\nRUN yes > /dev/null\n",
        &["--step-timeout", "2s"],
    );
    // The applet and the configured limit are named, not the toolbox
    // module or what was left of the limit.
    assert!(err.contains("yes: timed out after 2s"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
    // A program that needs more memory than the step may use.
    let err = fx.build_err(
        "FROM scratch\nRUN echo ok\nRUN awk 'BEGIN { while (1) a[i++] = i }'\n",
        &["--step-memory", "64m"],
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(
        err.contains("awk: out of memory") && err.contains("memory limit of 64 MiB"),
        "{err}"
    );
    // A loop of shell builtins is stopped too.
    let err = fx.build_err(
        "FROM scratch\nRUN while :; do i=$((i+1)); done\n",
        &["--step-timeout", "1s"],
    );
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn bind_mounts_take_files_from_an_earlier_stage() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch AS builder\nRUN mkdir /out && echo built > /out/artifact\n\
         FROM scratch\nRUN --mount=type=bind,from=builder,source=/out,target=/in \
         cp /in/artifact /artifact\n",
        &[],
    );
    let files = img.files();
    assert_eq!(files["artifact"].text(), "built\n");
    assert!(!files.contains_key("in"), "{:?}", files.keys());
    assert!(!files.contains_key("out"), "{:?}", files.keys());
}

#[test]
fn chmod_chown_and_user_shape_the_layer() {
    let fx = Fixture::new();
    fx.write(&[
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:App:/home/app:/bin/sh\n",
        ),
        ("group", "root:x:0:\napp:x:2345:\n"),
    ]);
    let img = fx.build(
        "FROM scratch\nCOPY passwd group /etc/\n\
         RUN mkdir -p /srv/bin && echo '#!/bin/sh' > /srv/bin/tool && chmod 0755 /srv/bin/tool && \
         chown -R app:app /srv && chmod u+s /srv/bin/tool\n\
         USER app\nRUN echo mine > /tmp-owned && id -u > /uid\n",
        &[],
    );
    let l1 = layer(&img, 1);
    assert_eq!(l1["srv/bin/tool"].mode & 0o7777, 0o4755);
    assert_eq!(
        (l1["srv/bin/tool"].uid, l1["srv/bin/tool"].gid),
        (1234, 2345)
    );
    assert_eq!((l1["srv"].uid, l1["srv"].gid), (1234, 2345));
    let l2 = top(&img);
    assert_eq!((l2["tmp-owned"].uid, l2["tmp-owned"].gid), (1234, 2345));
    assert_eq!(l2["tmp-owned"].mode & 0o7777, 0o644);
    assert_eq!(l2["uid"].text(), "1234\n");
}

#[test]
fn a_replaced_directory_is_an_opaque_whiteout() {
    let fx = Fixture::new();
    fx.write(&[("cfg/a.conf", "a"), ("cfg/b.conf", "b")]);
    let img = fx.build(
        "FROM scratch\nCOPY cfg /etc/app\nRUN rm -rf /etc/app && mkdir /etc/app && echo c > /etc/app/c.conf\n",
        &[],
    );
    let run = top(&img);
    assert!(run.contains_key("etc/app/.wh..wh..opq"), "{:?}", run.keys());
    assert_eq!(run["etc/app/c.conf"].text(), "c\n");
    assert!(
        !run.keys().any(|k| k.contains(".wh.a.conf")),
        "{:?}",
        run.keys()
    );
}
