//! Metadata instructions land in the image config as Docker puts them, and
//! the history has one entry per instruction (none for ARG and ONBUILD),
//! `empty_layer` for the metadata-only ones.

mod common;

use common::image::Fixture;
use serde_json::json;

#[test]
fn healthcheck_in_nanoseconds_and_cmd_shell_form() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nHEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --start-interval=2s --retries=4 \
         CMD curl -f http://localhost/ || exit 1\n",
        &[],
    );
    let hc = &img.cfg()["Healthcheck"];
    assert_eq!(
        hc["Test"],
        json!(["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(hc["Interval"], json!(30_000_000_000u64));
    assert_eq!(hc["Timeout"], json!(5_000_000_000u64));
    assert_eq!(hc["StartPeriod"], json!(90_000_000_000u64));
    assert_eq!(hc["StartInterval"], json!(2_000_000_000u64));
    assert_eq!(hc["Retries"], json!(4));
}

#[test]
fn healthcheck_exec_form_and_none() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nHEALTHCHECK CMD [\"/bin/check\", \"-q\"]\n",
        &[],
    );
    assert_eq!(
        img.cfg()["Healthcheck"]["Test"],
        json!(["CMD", "/bin/check", "-q"])
    );
    let img = fx.build(
        "FROM scratch AS a\nHEALTHCHECK CMD [\"/bin/check\"]\nFROM a\nHEALTHCHECK NONE\n",
        &[],
    );
    assert_eq!(img.cfg()["Healthcheck"]["Test"], json!(["NONE"]));
}

#[test]
fn shell_is_used_by_shell_form_cmd_and_entrypoint() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nCMD echo default\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\n\
         ENTRYPOINT exec /app \"$@\"\n",
        &[],
    );
    let c = img.cfg();
    assert_eq!(c["Shell"], json!(["/bin/bash", "-eu", "-c"]));
    assert_eq!(
        c["Entrypoint"],
        json!(["/bin/bash", "-eu", "-c", "exec /app \"$@\""])
    );
    // CMD came before SHELL: default /bin/sh -c; and it survives an
    // ENTRYPOINT of the same stage.
    assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo default"]));

    let img = fx.build(
        "FROM scratch\nSHELL [\"pwsh\", \"-Command\"]\nCMD Write-Host hi\n",
        &[],
    );
    assert_eq!(
        img.cfg()["Cmd"],
        json!(["pwsh", "-Command", "Write-Host hi"])
    );
}

#[test]
fn entrypoint_resets_an_inherited_cmd() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch AS base\nCMD [\"base-cmd\"]\nFROM base\nENTRYPOINT [\"/ep\"]\n",
        &[],
    );
    assert_eq!(img.cfg()["Entrypoint"], json!(["/ep"]));
    assert!(img.cfg()["Cmd"].is_null(), "{}", img.cfg()["Cmd"]);
}

#[test]
fn stopsignal_volume_maintainer_expose_user_label() {
    let fx = Fixture::new();
    let img = fx.build(
        "FROM scratch\nARG PORT=9000\nMAINTAINER Jane Doe <jane@example.com>\nSTOPSIGNAL SIGTERM\n\
         VOLUME [\"/data\", \"/logs\"]\nVOLUME /cache\n\
         EXPOSE 8000-8002 53/udp ${PORT}/tcp\nUSER app:staff\n\
         LABEL a=1 \"b c\"=\"two words\"\nLABEL a=override\n",
        &[],
    );
    let c = img.cfg();
    assert_eq!(img.config["author"], "Jane Doe <jane@example.com>");
    assert_eq!(c["StopSignal"], "SIGTERM");
    let volumes: Vec<&String> = c["Volumes"].as_object().unwrap().keys().collect();
    assert_eq!(volumes, ["/cache", "/data", "/logs"]);
    let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(
        ports,
        ["53/udp", "8000/tcp", "8001/tcp", "8002/tcp", "9000/tcp"]
    );
    assert_eq!(c["User"], "app:staff");
    assert_eq!(c["Labels"], json!({"a": "override", "b c": "two words"}));
}

#[test]
fn history_has_one_entry_per_instruction_with_empty_layer_for_metadata() {
    let fx = Fixture::new();
    fx.write(&[("f.txt", "f\n")]);
    let img = fx.build(
        "FROM scratch\nARG X=1\nENV A=b\nCOPY f.txt /f.txt\nLABEL l=v\nONBUILD COPY f.txt /g\n\
         WORKDIR /w\nADD f.txt /w/\nUSER 1:1\nEXPOSE 80\nVOLUME /v\nSTOPSIGNAL 9\n\
         MAINTAINER me\nSHELL [\"/bin/sh\",\"-c\"]\nCMD [\"c\"]\nENTRYPOINT [\"e\"]\n\
         HEALTHCHECK NONE\n",
        &["--source-date-epoch", "1000"],
    );
    let history = img.history();
    let got: Vec<(String, bool)> = history
        .iter()
        .map(|h| {
            let by = h["created_by"].as_str().unwrap_or("").to_string();
            let word = by.split_whitespace().next().unwrap_or("").to_string();
            (word, h["empty_layer"] == true)
        })
        .collect();
    let want: Vec<(String, bool)> = [
        ("ENV", true),
        ("COPY", false),
        ("LABEL", true),
        ("WORKDIR", false),
        ("ADD", false),
        ("USER", true),
        ("EXPOSE", true),
        ("VOLUME", true),
        ("STOPSIGNAL", true),
        ("MAINTAINER", true),
        ("SHELL", true),
        ("CMD", true),
        ("ENTRYPOINT", true),
        ("HEALTHCHECK", true),
    ]
    .iter()
    .map(|(w, e)| (w.to_string(), *e))
    .collect();
    assert_eq!(got, want, "history: {history:#?}");
    for h in &history {
        assert_eq!(h["created"], "1970-01-01T00:16:40Z", "{h}");
    }
    assert_eq!(img.config["created"], "1970-01-01T00:16:40Z");
    let non_empty = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(img.layer_blobs.len(), non_empty);
    assert_eq!(
        img.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        non_empty
    );
    assert_eq!(img.cfg()["OnBuild"], json!(["COPY f.txt /g"]));
}

#[test]
fn history_is_inherited_from_an_earlier_stage() {
    let fx = Fixture::new();
    fx.write(&[("f.txt", "f\n")]);
    let img = fx.build("FROM scratch AS a\nCOPY f.txt /\nFROM a\nLABEL x=1\n", &[]);
    let by: Vec<String> = img
        .history()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(by.len(), 2, "{by:?}");
    assert!(by[0].starts_with("COPY"), "{by:?}");
    assert!(by[1].starts_with("LABEL"), "{by:?}");
}
