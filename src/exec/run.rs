//! RUN: the step runs as WebAssembly programs over the stage's materialised
//! root filesystem (see kiln-runtime's `step`), and what it changed becomes
//! one layer.
//!
//! Order of work: check flags and mounts (nothing runs if one is bad),
//! materialise files COPY recorded by reference, set up mounts, run, take
//! mounts down, then turn the sandbox's change record into layer entries
//! (only reported paths are looked at again), refuse the layer if a secret's
//! bytes reached it, write it.

use super::mounts::{check_network, check_security, Mount};
use super::run_mounts::{self, MountSet};
use super::secret_scan::{self, refuse_secrets};
use super::stage::{StageExec, StageResult};
use crate::dockerfile::history;
use crate::dockerfile::instructions::{CommandLine, Run};
use crate::snapshot::rootfs::NodeKind;
use crate::snapshot::{Content, Entry, EntryKind, ImagePath, Meta};
use anyhow::{anyhow, bail, Result};
use kiln_runtime::shell::Output;
use kiln_runtime::step::{Step, StepConfig};
use kiln_runtime::{Owner, Rootfs as StepFs, RootfsOptions};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What a RUN produced for the stage.
pub(super) struct RunResult {
    pub created_by: String,
    /// The layer entries (empty: the step changed nothing).
    pub entries: Vec<Entry>,
}

/// A RUN with its flags checked and its words expanded: what its cache
/// key and its execution both start from.
pub(super) struct Prepared {
    mounts: Vec<Mount>,
    argv: Vec<String>,
    heredoc_script: Option<String>,
    created_by: String,
    env: Vec<(String, String)>,
    workdir: ImagePath,
    /// The mount flags as written, for the seed.
    mount_specs: Vec<String>,
}

/// Checks `run`'s flags and mounts (nothing runs if one is bad) and
/// expands what the step will see.
pub(super) fn prepare(stage: &StageExec<'_>, run: &Run) -> Result<Prepared> {
    if let Some(n) = &run.network {
        check_network(&stage.expand(n)?).map_err(|e| anyhow!(e))?;
    }
    if let Some(s) = &run.security {
        check_security(&stage.expand(s)?).map_err(|e| anyhow!(e))?;
    }
    if let Some(d) = run.devices.first() {
        bail!("--device={d} is not supported: kiln's RUN steps have no devices");
    }
    let mounts = run
        .mounts
        .iter()
        .map(|m| Ok(Mount::parse(&stage.expand(m)?)?))
        .collect::<Result<Vec<_>>>()?;
    // The config check knows this step's secrets even if it hits the cache.
    stage.env().used_secrets.note_mounts(&mounts);
    let (argv, heredoc_script) = command_argv(stage, run);
    let build_args = visible_args(stage);
    let created_by = history::run(&argv, &build_args);
    let env = step_env(stage, &build_args);
    Ok(Prepared {
        mounts,
        argv,
        heredoc_script,
        created_by,
        env,
        workdir: stage.workdir(),
        mount_specs: run.mounts.clone(),
    })
}

/// The step cache key of a RUN: the command, its environment, working
/// directory and user, and what its mounts bring in (the content of bind
/// sources; cache mounts and secrets are left out, as in BuildKit: their
/// contents never reach the layer by design).
pub(super) fn cache_key(
    stage: &StageExec<'_>,
    run: &Prepared,
    earlier: &[OnceLock<StageResult>],
) -> Result<crate::digest::Digest> {
    let mut key = stage.step_key("RUN");
    let env: Vec<String> = run.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    key.list("argv", &run.argv)
        .opt("heredoc", run.heredoc_script.as_deref())
        .list("env", &env)
        .str("workdir", &run.workdir.to_absolute())
        .opt("user", stage.user())
        .str("created-by", &run.created_by);
    for mount in &run.mounts {
        key.str("mount", &format!("{mount:?}"));
        if let Mount::Bind { source, from, .. } = mount {
            let identity = super::stage::source_identity(
                stage,
                from.as_deref(),
                std::slice::from_ref(source),
                false,
                earlier,
            )?;
            key.str("mount-source", &identity);
        }
        if let Mount::Cache {
            from: Some(from), ..
        } = mount
        {
            // A cache mount seeded from a stage starts from its files.
            let identity = super::stage::source_identity(stage, Some(from), &[], false, earlier)?;
            key.str("mount-seed", &identity);
        }
    }
    Ok(key.finish())
}

/// Runs a prepared RUN of `stage`.
pub(super) fn execute(
    stage: &mut StageExec<'_>,
    run: Prepared,
    earlier: &[OnceLock<StageResult>],
) -> Result<RunResult> {
    let Prepared {
        mounts,
        argv,
        heredoc_script,
        created_by,
        env,
        workdir,
        mount_specs,
    } = run;
    let (uid, gid) = stage.user_ids()?;
    let sandbox = stage.env().sandbox.get(stage.env().progress)?;
    let seed = step_seed(stage, &argv, &env, &workdir, &mount_specs);
    let opts = stage.env().opts;
    let sde = opts.source_date_epoch;

    stage.rootfs()?.materialize()?;
    let mut mount_set = MountSet::prepare(stage, &mounts, &workdir, earlier)?;
    if let Some(script) = &heredoc_script {
        mount_set.add_file(stage, run_mounts::HEREDOC_PATH, script.as_bytes(), 0o755)?;
    }
    let mut env = env;
    env.extend(mount_set.secret_env().iter().cloned());

    let rootfs = stage.rootfs()?;
    let record = Arc::new(
        rootfs
            .record()
            .iter()
            .map(|(k, v)| (k.to_absolute(), v.meta))
            .collect::<HashMap<String, Meta>>(),
    );
    let recorded = record.clone();
    let recorded_owner = record.clone();
    let step_fs = StepFs::open(
        rootfs.dir(),
        RootfsOptions {
            source_date_epoch: sde,
            recorded_mtime: Some(Arc::new(move |p: &str| {
                recorded.get(p).map(|m| Duration::from_secs(m.mtime))
            })),
            recorded_owner: Some(Arc::new(move |p: &str| {
                recorded_owner.get(p).map(|m| Owner {
                    mode: m.mode,
                    uid: m.uid,
                    gid: m.gid,
                })
            })),
            creator: (uid, gid),
            read_only: mount_set.read_only(),
            pinned: mount_set.pinned(),
        },
    )?;
    let step = Step::new(
        sandbox.runtime.clone(),
        sandbox.toolbox.clone(),
        step_fs.clone(),
        StepConfig {
            source_date_epoch: sde,
            seed,
            memory_limit: opts.step_memory,
            timeout: opts.step_timeout,
            user: (uid, gid),
        },
    );
    let log = stage.step_log();
    let out = Output::from_writer(log.clone());
    let status = step.run_argv(&argv, &env, &workdir.to_absolute(), out.clone(), out);
    log.flush_partial();
    let fatal = step.fatal();
    let secrets = mount_set.secret_values();
    stage.env().used_secrets.record(&secrets);
    secret_scan::warn_cache_mount_secrets(stage, &mount_set.cache_targets(), &step_fs, &secrets);
    let excluded = mount_set.teardown()?;

    if status != 0 {
        let shown = argv.join(" ");
        let mut msg =
            format!("process \"{shown}\" did not complete successfully: exit code: {status}");
        if let Some(why) = fatal {
            msg.push_str(&format!(" ({why})"));
        }
        let tail = log.tail();
        if !tail.is_empty() {
            msg.push_str("\nlast output of the step:");
            for line in tail {
                msg.push_str("\n  ");
                msg.push_str(&line);
            }
        }
        bail!(msg);
    }

    let changes = step_fs.changes();
    let rootfs = stage.rootfs()?;
    let keep = |p: &String| -> Option<ImagePath> {
        let path = ImagePath::resolve(&ImagePath::root(), p);
        (!excluded.iter().any(|x| path.starts_with(x))).then_some(path)
    };
    let touched: BTreeSet<ImagePath> = changes.touched().iter().filter_map(keep).collect();
    let subtrees: BTreeSet<ImagePath> = changes.created.iter().filter_map(keep).collect();
    let written: BTreeSet<ImagePath> = changes
        .written
        .iter()
        .chain(changes.created.iter())
        .filter_map(keep)
        .collect();
    let times = |p: &ImagePath| -> Option<u64> {
        step_fs
            .stat_path(&p.to_absolute(), false)
            .ok()
            .map(|s| s.times.mtime.as_secs())
    };
    let meta_of = |path: &ImagePath, kind: &NodeKind, previous: Option<&Meta>| -> Meta {
        let mut base = match previous {
            Some(m) => *m,
            None => Meta {
                uid,
                gid,
                ..Meta::new(default_mode(kind))
            },
        };
        // The sandbox's record of modes and owners (chmod, chown, defaults
        // of created entries) is the truth for every path it saw.
        if let Ok(o) = step_fs.owner(&path.to_absolute(), false) {
            base.mode = o.mode;
            base.uid = o.uid;
            base.gid = o.gid;
        }
        Meta {
            mtime: if touched.contains(path) || matches!(kind, NodeKind::Dir) {
                times(path).unwrap_or(base.mtime)
            } else {
                base.mtime
            },
            ..base
        }
    };
    let after = rootfs.rescan(&touched, &subtrees, &meta_of)?;
    let entries = crate::snapshot::diff::diff(rootfs.record(), &after, &written, |p| {
        Content::Host(rootfs.host_path(p))
    });
    let replaced: BTreeSet<ImagePath> = changes
        .removed
        .intersection(&changes.created)
        .filter_map(keep)
        .collect();
    let entries =
        crate::snapshot::diff::opaque_replaced(entries, rootfs.record(), &after, &replaced, |p| {
            Content::Host(rootfs.host_path(p))
        });
    let entries = link_groups(entries);
    refuse_secrets(&entries, &secrets)?;
    rootfs.replace_record(after);
    Ok(RunResult {
        created_by,
        entries,
    })
}

/// Permission bits of an entry a step created (WASI has no modes; kiln's
/// host API sets others explicitly). Never the host umask.
fn default_mode(kind: &NodeKind) -> u32 {
    match kind {
        NodeKind::Dir => 0o755,
        NodeKind::Symlink { .. } => 0o777,
        _ => 0o644,
    }
}

/// The argv to run, and the script of a heredoc-only RUN with a `#!` line
/// (written to a file and executed, as BuildKit does).
fn command_argv(stage: &StageExec<'_>, run: &Run) -> (Vec<String>, Option<String>) {
    let shell = stage.shell();
    match &run.cmd {
        CommandLine::Exec(argv) => (argv.clone(), None),
        CommandLine::Shell(cmd) if run.heredocs.is_empty() => {
            let mut v = shell;
            v.push(cmd.clone());
            (v, None)
        }
        CommandLine::Shell(cmd) => {
            if let [doc] = run.heredocs.as_slice() {
                if is_heredoc_only(cmd) {
                    let body = if doc.chomp {
                        doc.chomped_content()
                    } else {
                        doc.content.clone()
                    };
                    if body.starts_with("#!") {
                        return (vec![run_mounts::HEREDOC_PATH.to_string()], Some(body));
                    }
                    let mut v = shell;
                    v.push(body);
                    return (v, None);
                }
            }
            // The shell reads the here-documents itself.
            let mut script = cmd.clone();
            for doc in &run.heredocs {
                script.push('\n');
                script.push_str(&doc.content);
                script.push_str(&doc.name);
            }
            let mut v = shell;
            v.push(script);
            (v, None)
        }
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"` and nothing else.
fn is_heredoc_only(cmd: &str) -> bool {
    let Some(rest) = cmd.trim().strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    !rest.is_empty() && !rest.contains(char::is_whitespace)
}

/// The stage's declared ARGs that have a value and that ENV does not
/// override: they are in the step's environment and in its history text.
fn visible_args(stage: &StageExec<'_>) -> Vec<(String, String)> {
    let env = stage.config_env();
    let in_env = |k: &str| {
        env.iter()
            .any(|kv| kv.split_once('=').map_or(kv.as_str(), |(n, _)| n) == k)
    };
    let mut args: Vec<(String, String)> = stage
        .declared_args()
        .pairs()
        .filter(|(k, _)| !in_env(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    args.sort();
    args
}

/// ENV, then the visible ARGs, then PATH if neither set it.
fn step_env(stage: &StageExec<'_>, args: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = stage
        .config_env()
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    env.extend(args.iter().cloned());
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), super::DEFAULT_PATH.into()));
    }
    env
}

/// The step's identity: everything that decides what it does.
fn step_seed(
    stage: &StageExec<'_>,
    argv: &[String],
    env: &[(String, String)],
    workdir: &ImagePath,
    mounts: &[String],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiln RUN seed v1\0");
    for d in stage.diff_ids() {
        h.update(d.as_bytes());
        h.update([0]);
    }
    for a in argv {
        h.update(a.as_bytes());
        h.update([0]);
    }
    h.update([1]);
    for (k, v) in env {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.update(workdir.to_absolute().as_bytes());
    for m in mounts {
        h.update([2]);
        h.update(m.as_bytes());
    }
    h.finalize().into()
}

/// Files of the layer that are hard links to each other on the host (a
/// step ran `ln`) become one file and hard-link entries to it.
fn link_groups(entries: Vec<Entry>) -> Vec<Entry> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mut first: BTreeMap<(u64, u64), ImagePath> = BTreeMap::new();
        entries
            .into_iter()
            .map(|e| {
                let EntryKind::File {
                    content: Content::Host(host),
                    ..
                } = &e.kind
                else {
                    return e;
                };
                let Ok(m) = std::fs::symlink_metadata(host) else {
                    return e;
                };
                if m.nlink() < 2 {
                    return e;
                }
                match first.get(&(m.dev(), m.ino())) {
                    Some(target) => Entry {
                        kind: EntryKind::Hardlink {
                            target: target.clone(),
                        },
                        ..e
                    },
                    None => {
                        first.insert((m.dev(), m.ino()), e.path.clone());
                        e
                    }
                }
            })
            .collect()
    }
    #[cfg(not(unix))]
    {
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_only_commands_are_recognised() {
        assert!(is_heredoc_only("<<EOF"));
        assert!(is_heredoc_only(" <<-EOT "));
        assert!(!is_heredoc_only("python3 <<EOF"));
        assert!(!is_heredoc_only("<<EOF cat"));
        assert!(!is_heredoc_only("echo hi"));
    }
}
