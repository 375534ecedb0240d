//! The step cache and the stage scheduler, end to end with the real kiln
//! binary: which steps really run is observed through cache-mount counters
//! (a RUN step bumps a counter in a cache mount, which persists across
//! builds but never reaches a layer or a key), and every claim is checked on
//! the produced images.

mod common;

use common::image::Fixture;
use std::path::Path;

/// A RUN line that bumps counter `id` when (and only when) it runs.
fn bump(id: &str) -> String {
    format!(
        "RUN --mount=type=cache,id={id},target=/c n=$(cat /c/n 2>/dev/null || echo 0); echo $((n+1)) > /c/n"
    )
}

/// How many times steps bumping counter `id` ran in `cache`.
fn count(fx: &Fixture, id: &str) -> u32 {
    let probe = fx.fresh("probe");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(
        probe.join("Dockerfile"),
        format!(
            "FROM scratch\nRUN --mount=type=cache,id={id},target=/c cat /c/n > /count || echo 0 > /count\n"
        ),
    )
    .unwrap();
    let out = fx.fresh("probe-out");
    let img = common::image::build_layout(&fx.cache(), &probe, &out, "probe:1", &["--no-cache"]);
    img.file("count").text().trim().parse().unwrap()
}

fn set_mtime(path: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Builds with `--progress=plain` and returns (stdout digest, stderr).
fn build_plain(fx: &Fixture, extra: &[&str]) -> (String, String) {
    let out = fx.fresh("out");
    let output = format!("type=oci,dest={},tar=false", out.display());
    let ctx = fx.ctx();
    let mut args = vec!["build", "--progress=plain", "--output", &output];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let o = common::kiln(&fx.cache(), &args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "build failed:\n{stderr}");
    (
        String::from_utf8(o.stdout).unwrap().trim().to_string(),
        stderr,
    )
}

/// Stage `lines` turns the input into its line count; the final stage
/// depends only on that count.
fn pipeline() -> String {
    format!(
        "FROM scratch AS lines\nCOPY input.txt /in\n{} && wc -l < /in > /lines\n\
         FROM scratch\nWORKDIR /w\nCOPY --from=lines /lines /w/lines\n{} && cat /w/lines > /w/out\n",
        bump("lines"),
        bump("out")
    )
}

/// Layer steps in [`pipeline`].
const PIPELINE_STEPS: usize = 5;

#[test]
fn a_second_build_hits_every_step_and_unpacks_nothing() {
    let fx = Fixture::new();
    fx.write(&[("input.txt", "a\nb\n")]);
    std::fs::write(fx.ctx().join("Dockerfile"), pipeline()).unwrap();
    let (first, log1) = build_plain(&fx, &[]);
    assert!(!log1.contains("CACHED"), "{log1}");
    let (second, log2) = build_plain(&fx, &[]);
    assert_eq!(first, second);
    assert_eq!(log2.matches("CACHED").count(), PIPELINE_STEPS, "{log2}");
    assert!(
        !log2.contains("unpacking"),
        "a full hit unpacked layers:\n{log2}"
    );
    assert_eq!((count(&fx, "lines"), count(&fx, "out")), (1, 1));
}

#[test]
fn an_mtime_only_change_hits_and_a_real_change_reruns() {
    let fx = Fixture::new();
    fx.write(&[("input.txt", "a\nb\n")]);
    std::fs::write(fx.ctx().join("Dockerfile"), pipeline()).unwrap();
    let (first, _) = build_plain(&fx, &[]);

    set_mtime(&fx.ctx().join("input.txt"), 2_000_000_000);
    let (touched, log) = build_plain(&fx, &[]);
    assert_eq!(touched, first);
    assert_eq!(log.matches("CACHED").count(), PIPELINE_STEPS, "{log}");
    assert_eq!((count(&fx, "lines"), count(&fx, "out")), (1, 1));

    // Early cutoff: new content, same line count. Stage `lines` runs
    // again and makes the same /lines, so the final stage hits throughout.
    fx.write(&[("input.txt", "x\ny\n")]);
    let (cutoff, _) = build_plain(&fx, &[]);
    assert_eq!(cutoff, first, "the final image did not change");
    assert_eq!((count(&fx, "lines"), count(&fx, "out")), (2, 1));
    let img = fx.build(&pipeline(), &[]);
    assert_eq!(img.file("w/out").text().trim(), "2");

    // A real change runs everything after it.
    fx.write(&[("input.txt", "1\n2\n3\n")]);
    let img = fx.build(&pipeline(), &[]);
    assert_eq!(img.file("w/out").text().trim(), "3");
    assert_eq!((count(&fx, "lines"), count(&fx, "out")), (3, 2));
}

#[test]
fn no_cache_reruns_and_gives_the_same_image() {
    let fx = Fixture::new();
    fx.write(&[("input.txt", "a\n")]);
    let df = format!(
        "FROM scratch AS base\n{}\nFROM base AS app\n{}\n",
        bump("base"),
        bump("app")
    );
    std::fs::write(fx.ctx().join("Dockerfile"), &df).unwrap();
    let (first, _) = build_plain(&fx, &[]);
    let (again, _) = build_plain(&fx, &["--no-cache"]);
    assert_eq!(again, first);
    assert_eq!((count(&fx, "base"), count(&fx, "app")), (2, 2));
    // Only the named stage runs again.
    let (filtered, _) = build_plain(&fx, &["--no-cache-filter", "app"]);
    assert_eq!(filtered, first);
    assert_eq!((count(&fx, "base"), count(&fx, "app")), (2, 3));
}

#[test]
fn build_args_and_env_are_part_of_the_key() {
    let fx = Fixture::new();
    let df = format!(
        "FROM scratch\nARG FLAVOR=plain\n{} && echo $FLAVOR > /f\n",
        bump("arg")
    );
    let a = fx.build(&df, &[]);
    assert_eq!(a.file("f").text(), "plain\n");
    let b = fx.build(&df, &["--build-arg", "FLAVOR=spicy"]);
    assert_eq!(b.file("f").text(), "spicy\n");
    fx.build(&df, &[]);
    assert_eq!(
        count(&fx, "arg"),
        2,
        "switching back to the first value hit"
    );
}

#[test]
fn unused_stages_are_not_built_and_a_broken_one_does_not_fail() {
    let fx = Fixture::new();
    let df = format!(
        "FROM scratch AS broken\nRUN exit 3\nFROM scratch AS other\n{}\nFROM scratch\nRUN echo ok > /ok\n",
        bump("unused")
    );
    let img = fx.build(&df, &[]);
    assert_eq!(img.file("ok").text(), "ok\n");
    assert_eq!(count(&fx, "unused"), 0);
    let err = fx.build_err(&df, &["--target", "broken"]);
    assert!(err.contains("exit code: 3"), "{err}");
}

/// Two stages that take a moment each, and a third that copies from both.
const FAN_IN: &str = "FROM scratch AS left\nRUN seq 1 3000 | sort -r > /l\n\
FROM scratch AS right\nRUN seq 1 3000 | sort -n > /r\n\
FROM scratch\nCOPY --from=left /l /l\nCOPY --from=right /r /r\nRUN cat /l /r | wc -l > /n\n";

#[test]
fn output_bytes_do_not_depend_on_jobs() {
    let serial = Fixture::new();
    std::fs::write(serial.ctx().join("Dockerfile"), FAN_IN).unwrap();
    let (one, _) = build_plain(&serial, &["-j", "1"]);
    let parallel = Fixture::new();
    std::fs::write(parallel.ctx().join("Dockerfile"), FAN_IN).unwrap();
    let (four, _) = build_plain(&parallel, &["-j", "4"]);
    assert_eq!(one, four);
    let img = parallel.build(FAN_IN, &[]);
    assert_eq!(img.file("n").text().trim(), "6000");
}

#[test]
fn concurrent_builds_share_one_cache() {
    let fx = Fixture::new();
    fx.write(&[("input.txt", "a\nb\nc\n")]);
    std::fs::write(fx.ctx().join("Dockerfile"), pipeline()).unwrap();
    let ctx = fx.ctx();
    let children: Vec<_> = (0..3)
        .map(|i| {
            let out = fx.tmp.path().join(format!("concurrent-{i}"));
            let output = format!("type=oci,dest={},tar=false", out.display());
            common::kiln_cmd(
                &fx.cache(),
                &[
                    "build",
                    "--progress=quiet",
                    "--output",
                    &output,
                    ctx.to_str().unwrap(),
                ],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let digests: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8(o.stdout).unwrap().trim().to_string()
        })
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    // The shared cache is intact: a later build hits every step and agrees.
    let (after, log) = build_plain(&fx, &[]);
    assert_eq!(after, digests[0]);
    assert_eq!(log.matches("CACHED").count(), PIPELINE_STEPS, "{log}");
    // And a build with a cache of its own agrees too.
    let fresh = Fixture::new();
    fresh.write(&[("input.txt", "a\nb\nc\n")]);
    std::fs::write(fresh.ctx().join("Dockerfile"), pipeline()).unwrap();
    assert_eq!(build_plain(&fresh, &[]).0, after);
}

#[test]
fn a_build_killed_at_any_moment_leaves_a_usable_cache() {
    let reference = {
        let fx = Fixture::new();
        fx.write(&[("input.txt", "a\nb\n")]);
        std::fs::write(fx.ctx().join("Dockerfile"), pipeline()).unwrap();
        build_plain(&fx, &[]).0
    };
    let fx = Fixture::new();
    fx.write(&[("input.txt", "a\nb\n")]);
    std::fs::write(fx.ctx().join("Dockerfile"), pipeline()).unwrap();
    let ctx = fx.ctx();
    // Kill at spread-out moments: before, during and after the steps.
    for delay_ms in [30u64, 150, 400, 900, 1500] {
        let out = fx.fresh("killed");
        let output = format!("type=oci,dest={},tar=false", out.display());
        let mut child = common::kiln_cmd(
            &fx.cache(),
            &[
                "build",
                "--progress=quiet",
                "--no-cache",
                "--output",
                &output,
                ctx.to_str().unwrap(),
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let (digest, _) = build_plain(&fx, &[]);
        assert_eq!(digest, reference, "after a kill at {delay_ms} ms");
    }
}

#[test]
fn rawjson_progress_is_one_json_object_per_line_and_marks_hits() {
    let fx = Fixture::new();
    fx.write(&[("input.txt", "a\n")]);
    std::fs::write(fx.ctx().join("Dockerfile"), pipeline()).unwrap();
    let events = |fx: &Fixture| -> Vec<serde_json::Value> {
        let out = fx.fresh("out");
        let output = format!("type=oci,dest={},tar=false", out.display());
        let ctx = fx.ctx();
        let o = common::kiln(
            &fx.cache(),
            &[
                "build",
                "--progress=rawjson",
                "--output",
                &output,
                ctx.to_str().unwrap(),
            ],
        );
        assert!(o.status.success());
        String::from_utf8(o.stderr)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    };
    let status_of = |events: &[serde_json::Value], status: &str| {
        events
            .iter()
            .filter(|e| e["type"] == "step" && e["status"] == status)
            .count()
    };
    let first = events(&fx);
    assert_eq!(status_of(&first, "cached"), 0);
    assert!(first
        .iter()
        .any(|e| e["type"] == "log" || e["type"] == "step" && e["status"] == "done"));
    let second = events(&fx);
    assert_eq!(status_of(&second, "cached"), PIPELINE_STEPS);
}

/// A RUN step must see the same tree whether the steps before it ran in
/// this build or came from the cache: COPY'd files keep their clamped
/// mtime (the one the layer records), not the context file's, and files an
/// earlier RUN wrote keep the clamped one too.
#[test]
fn a_step_sees_the_same_mtimes_after_a_hit_as_after_a_run() {
    let fx = Fixture::new();
    fx.write(&[("data.txt", "payload\n")]);
    set_mtime(&fx.ctx().join("data.txt"), 1_800_000_000);
    let prefix = "FROM scratch\nWORKDIR /w\nCOPY data.txt .\nRUN echo made > made.txt && sleep 1\n";
    let probe = "RUN stat -c '%n %Y' /w /w/data.txt /w/made.txt > /stat && tar cf /w.tar /w\n";
    // Cache dir 1 runs the prefix with another last step first, so the
    // probe's build hits COPY and the first RUN.
    fx.write(&[("Dockerfile", &format!("{prefix}RUN echo other > /o\n"))]);
    build_plain(&fx, &["--source-date-epoch", "1000"]);
    fx.write(&[("Dockerfile", &format!("{prefix}{probe}"))]);
    let (after_hits, log) = build_plain(&fx, &["--source-date-epoch", "1000"]);
    assert!(log.contains("CACHED"), "the prefix should hit:\n{log}");
    // A fresh cache runs every step.
    let fresh = Fixture::new();
    fresh.write(&[
        ("data.txt", "payload\n"),
        ("Dockerfile", &format!("{prefix}{probe}")),
    ]);
    set_mtime(&fresh.ctx().join("data.txt"), 1_800_000_000);
    let (after_runs, _) = build_plain(&fresh, &["--source-date-epoch", "1000"]);
    assert_eq!(after_hits, after_runs);
    let img = fresh.build(
        &format!("{prefix}{probe}"),
        &["--source-date-epoch", "1000"],
    );
    for line in img.file("stat").text().lines() {
        let secs: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(secs <= 1000, "{line}: mtime above SOURCE_DATE_EPOCH");
    }
}
