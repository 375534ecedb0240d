//! Every place kiln looks for a `--secret` value that is about to leave the
//! RUN step it was given to:
//!
//! - the layer of a RUN step that had secrets ([`refuse_secrets`]): entry
//!   names (every path component, whiteouts included), symlink and
//!   hard-link targets, file contents. A match fails the step;
//! - the image config and its history ([`refuse_in_config`],
//!   [`refuse_in_history`]), against every secret a RUN step of the build
//!   was given ([`UsedSecrets`]). A match fails the build;
//! - the cache mounts of a RUN step that had secrets
//!   ([`warn_cache_mount_secrets`]): a warning, since a cache mount stays in
//!   the cache dir and never reaches an image.
//!
//! The search is for the value's bytes, with surrounding whitespace trimmed
//! (`$(cat /run/secrets/ID)` drops a trailing newline). It cannot see a
//! value that was encoded (base64, hex, compression), transformed or split
//! across files, lines or names, nor values shorter than [`MIN_SECRET_LEN`]
//! (see reproducibility/README.md). Messages never print a value: where a
//! path or a name holds one, it is shown as `***`.

use super::mounts::Mount;
use super::secrets::Secret;
use super::stage::StageExec;
use crate::oci::config::ImageConfig;
use crate::snapshot::{Content, Entry, EntryKind, ImagePath};
use anyhow::{bail, Context as _, Result};
use kiln_runtime::Rootfs as StepFs;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Mutex;

/// Shorter secrets match by chance too easily to be checked.
pub(super) const MIN_SECRET_LEN: usize = 4;

/// What is said of a secret found in an image: the layer or image was not
/// written.
const KEEP_IN_MOUNT: &str = "secrets must stay in their mount";

/// One secret value as it is searched for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Needle<'s> {
    id: &'s str,
    bytes: &'s [u8],
}

/// The values worth searching for: trimmed of surrounding whitespace, at
/// least [`MIN_SECRET_LEN`] bytes long.
fn needles(secrets: &[(String, Vec<u8>)]) -> Vec<Needle<'_>> {
    let mut out: Vec<Needle<'_>> = Vec::new();
    for (id, value) in secrets {
        let bytes = value.trim_ascii();
        if bytes.len() >= MIN_SECRET_LEN && !out.iter().any(|n| n.bytes == bytes) {
            out.push(Needle { id, bytes });
        }
    }
    out
}

/// The id of the first secret whose value occurs in `haystack`.
fn find_in<'s>(haystack: &[u8], needles: &[Needle<'s>]) -> Option<&'s str> {
    needles
        .iter()
        .find(|n| contains(haystack, n.bytes))
        .map(|n| n.id)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    let mut from = 0;
    while from <= last_start {
        let Some(p) = haystack[from..=last_start].iter().position(|&b| b == first) else {
            return false;
        };
        let at = from + p;
        if &haystack[at + 1..at + needle.len()] == rest {
            return true;
        }
        from = at + 1;
    }
    false
}

/// `text` with every secret value replaced by `***`, so that a message
/// naming where a secret was found does not show it.
fn mask(text: &str, needles: &[Needle<'_>]) -> String {
    let mut sorted: Vec<&[u8]> = needles.iter().map(|n| n.bytes).collect();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.len()));
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match sorted.iter().find(|n| bytes[i..].starts_with(n)) {
            Some(n) => {
                out.extend_from_slice(b"***");
                i += n.len();
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The id of the first secret whose bytes occur in what `reader` gives,
/// read in chunks (a file can be large) that overlap by the longest secret.
fn find_in_reader<'s>(
    mut reader: impl Read,
    needles: &[Needle<'s>],
) -> std::io::Result<Option<&'s str>> {
    let overlap = needles.iter().map(|n| n.bytes.len()).max().unwrap_or(1) - 1;
    let mut window: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        window.extend_from_slice(&chunk[..n]);
        if let Some(id) = find_in(&window, needles) {
            return Ok(Some(id));
        }
        let keep = window.len().min(overlap);
        window.drain(..window.len() - keep);
    }
}

/// The id of the first secret whose bytes occur in a layer file.
fn find_secret<'s>(content: &Content, needles: &[Needle<'s>]) -> std::io::Result<Option<&'s str>> {
    find_in_reader(content.open()?, needles)
}

/// Where in a layer entry a secret was found.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    Name,
    SymlinkTarget,
    HardlinkTarget,
    Contents,
}

/// The name an entry has in the layer tar (no trailing `/`): whiteouts are
/// `DIR/.wh.NAME`, opaque markers `DIR/.wh..wh..opq`.
fn layer_name(e: &Entry) -> String {
    use crate::oci::layer::{OPAQUE_MARKER, WHITEOUT_PREFIX};
    let path = e.path.as_str();
    match &e.kind {
        EntryKind::Whiteout => match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/{WHITEOUT_PREFIX}{name}"),
            None => format!("{WHITEOUT_PREFIX}{path}"),
        },
        EntryKind::Opaque if e.path.is_root() => OPAQUE_MARKER.to_string(),
        EntryKind::Opaque => format!("{path}/{OPAQUE_MARKER}"),
        _ => path.to_string(),
    }
}

/// The first secret in `e`, and where: its name, link target, contents.
fn leak_in_entry<'s>(
    e: &Entry,
    needles: &[Needle<'s>],
) -> std::io::Result<Option<(&'s str, Place)>> {
    if let Some(id) = find_in(layer_name(e).as_bytes(), needles) {
        return Ok(Some((id, Place::Name)));
    }
    Ok(match &e.kind {
        EntryKind::Symlink { target } => {
            find_in(target.as_bytes(), needles).map(|id| (id, Place::SymlinkTarget))
        }
        EntryKind::Hardlink { target } => {
            find_in(target.as_str().as_bytes(), needles).map(|id| (id, Place::HardlinkTarget))
        }
        EntryKind::File { content, .. } => {
            find_secret(content, needles)?.map(|id| (id, Place::Contents))
        }
        _ => None,
    })
}

/// Fails if a secret's value is in the layer of a RUN step that was given
/// `secrets`: in an entry's name (any component, whiteouts included), a
/// symlink or hard-link target, or a file's contents.
pub(super) fn refuse_secrets(entries: &[Entry], secrets: &[(String, Vec<u8>)]) -> Result<()> {
    let needles = needles(secrets);
    if needles.is_empty() {
        return Ok(());
    }
    for e in entries {
        let found = leak_in_entry(e, &needles)
            .with_context(|| format!("reading {} to check it for secrets", e.path))?;
        let Some((id, place)) = found else {
            continue;
        };
        let path = mask(&e.path.to_absolute(), &needles);
        let what = match (place, &e.kind) {
            (Place::Name, EntryKind::Whiteout) => format!(
                "the name of the whiteout entry {} (deleting {path}) contains its value",
                mask(&format!("/{}", layer_name(e)), &needles)
            ),
            (Place::Name, _) => format!("the name {path} contains its value"),
            (Place::SymlinkTarget, _) => {
                format!("the symlink target of {path} contains its value")
            }
            (Place::HardlinkTarget, _) => {
                format!("the hard-link target of {path} contains its value")
            }
            (Place::Contents, _) => format!("the contents of {path} contain its value"),
        };
        bail!(
            "secret {id:?} would be written into the image: {what}; the layer was not written ({KEEP_IN_MOUNT})"
        );
    }
    Ok(())
}

/// The secrets the RUN steps of one build were given, for the checks of
/// what reaches the image config. Steps note the ids they mount (a step
/// answered from the step cache too) and record the values they read.
#[derive(Default)]
pub struct UsedSecrets {
    inner: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    ids: BTreeSet<String>,
    values: BTreeMap<String, Vec<u8>>,
}

impl UsedSecrets {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The secret ids a RUN step mounts (known before it runs or hits the
    /// cache).
    pub(super) fn note_mounts(&self, mounts: &[Mount]) {
        let mut l = self.ledger();
        for m in mounts {
            if let Mount::Secret { id, .. } = m {
                l.ids.insert(id.clone());
            }
        }
    }

    /// The values a RUN step was given, as it saw them.
    pub(super) fn record(&self, secrets: &[(String, Vec<u8>)]) {
        let mut l = self.ledger();
        for (id, value) in secrets {
            l.ids.insert(id.clone());
            l.values.insert(id.clone(), value.clone());
        }
    }

    /// Every value of a noted secret: as a step saw it, or read from its
    /// `--secret` source when only cached steps used it (a source that
    /// cannot be read gives no value to check).
    pub(super) fn values(&self, given: &[Secret]) -> Vec<(String, Vec<u8>)> {
        let mut l = self.ledger();
        let missing: Vec<String> = l
            .ids
            .iter()
            .filter(|id| !l.values.contains_key(*id))
            .cloned()
            .collect();
        for id in missing {
            let value = given.iter().find(|s| s.id == id).map(Secret::read);
            if let Some(Ok(value)) = value {
                l.values.insert(id, value);
            }
        }
        l.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Fails if a secret's value reaches a field of the image config or its
/// history (ENV, LABEL, CMD, ENTRYPOINT, WORKDIR, USER, `created_by` lines
/// with RUN commands and build arguments, and whatever the base image
/// carried). Times and layer digests are kiln's own and not searched.
pub(super) fn refuse_in_config(config: &ImageConfig, secrets: &[(String, Vec<u8>)]) -> Result<()> {
    let needles = needles(secrets);
    if needles.is_empty() {
        return Ok(());
    }
    let value = serde_json::to_value(config).context("serialising the image config")?;
    let mut found = Vec::new();
    if let serde_json::Value::Object(fields) = &value {
        for (k, v) in fields {
            match k.as_str() {
                "created" | "rootfs" => {}
                "history" => {
                    for (i, h) in v.as_array().into_iter().flatten().enumerate() {
                        for (hk, hv) in h.as_object().into_iter().flatten() {
                            if hk != "created" {
                                search_json(
                                    &format!("history[{i}].{hk}"),
                                    hv,
                                    &needles,
                                    &mut found,
                                );
                            }
                        }
                    }
                }
                _ => {
                    if let Some(id) = find_in(k.as_bytes(), &needles) {
                        found.push((id, format!("{} (a field name)", mask(k, &needles))));
                    }
                    search_json(k, v, &needles, &mut found);
                }
            }
        }
    }
    // `config` fields first: they are what a container sees.
    found.sort_by_key(|(_, field)| !field.starts_with("config."));
    refuse_found(&found)
}

/// Fails if a secret's value is in the `created_by` line that becomes
/// `history[index]`: checked before the step's layer and cache record are
/// written, so the value is not stored in the cache dir either.
pub(super) fn refuse_in_history(
    index: usize,
    created_by: &str,
    secrets: &[(String, Vec<u8>)],
) -> Result<()> {
    let needles = needles(secrets);
    match find_in(created_by.as_bytes(), &needles) {
        Some(id) => refuse_found(&[(id, format!("history[{index}].created_by"))]),
        None => Ok(()),
    }
}

fn refuse_found(found: &[(&str, String)]) -> Result<()> {
    let Some((id, field)) = found.first() else {
        return Ok(());
    };
    let mut msg =
        format!("secret {id:?} would be written into the image config: {field} contains its value");
    if found.len() > 1 {
        let more: Vec<String> = found[1..]
            .iter()
            .map(|(id, field)| format!("{field} (secret {id:?})"))
            .collect();
        msg.push_str(&format!(", and so do {}", more.join(", ")));
    }
    msg.push_str(&format!(
        "; the image was not written ({KEEP_IN_MOUNT}: do not pass a secret's value as a build argument or in ENV, LABEL, CMD, ENTRYPOINT, WORKDIR or USER)"
    ));
    bail!(msg)
}

/// Every string under `value` (object keys included) that holds a secret,
/// as `(id, field)` with fields named like `config.Env[1]`.
fn search_json<'s>(
    field: &str,
    value: &serde_json::Value,
    needles: &[Needle<'s>],
    found: &mut Vec<(&'s str, String)>,
) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Some(id) = find_in(s.as_bytes(), needles) {
                found.push((id, field.to_string()));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                search_json(&format!("{field}[{i}]"), v, needles, found);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let sub = format!("{field}.{}", mask(k, needles));
                if let Some(id) = find_in(k.as_bytes(), needles) {
                    found.push((id, format!("{sub} (the key)")));
                }
                search_json(&sub, v, needles, found);
            }
        }
        _ => {}
    }
}

/// Warns when a RUN step that was given `secrets` left one of their values
/// in a cache mount: in a file it wrote or created there (contents, name,
/// or symlink target). The cache never reaches an image, so this is a
/// warning (BuildKit does not check at all), but the value stays on disk in
/// the cache dir across builds.
///
/// Called after the step and before the mounts are taken down; reads
/// through the step filesystem with chroot semantics, so links the step
/// planted never lead outside the rootfs.
pub(super) fn warn_cache_mount_secrets(
    stage: &mut StageExec<'_>,
    caches: &[(ImagePath, String)],
    step_fs: &StepFs,
    secrets: &[(String, Vec<u8>)],
) {
    let needles = needles(secrets);
    if needles.is_empty() {
        return;
    }
    if caches.is_empty() {
        return;
    }
    let changes = step_fs.changes();
    let mut seen = BTreeSet::new();
    // (cache index, secret id) -> (first path, how many paths)
    let mut found: BTreeMap<(usize, &str), (String, &str, usize)> = BTreeMap::new();
    for p in changes.written.iter().chain(changes.created.iter()) {
        let path = ImagePath::resolve(&ImagePath::root(), p);
        let Some(ci) = caches
            .iter()
            .position(|(t, _)| path.starts_with(t) && path != *t)
        else {
            continue;
        };
        let created_dir = changes.created.contains(p);
        scan_cache_path(
            step_fs,
            &caches[ci].0,
            &path,
            created_dir,
            &needles,
            &mut seen,
            &mut |id, shown, place| {
                found
                    .entry((ci, id))
                    .and_modify(|e| e.2 += 1)
                    .or_insert((shown, place, 1));
            },
        );
    }
    for ((ci, id), (path, place, count)) in found {
        let (target, cache_id) = &caches[ci];
        let more = match count {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        stage.env().progress.warn(&format!(
            "secret {id:?} was written into cache mount {} (id {:?}): its value is in {place} {}{more}; a cache mount stays in the cache dir across builds (never in an image), so the value is kept there on disk",
            mask(&target.to_absolute(), &needles),
            mask(cache_id, &needles),
            mask(&path, &needles),
        ));
    }
}

/// Checks one changed path below the cache mount at `target`: a regular
/// file's contents, the name below the target, a symlink's target, and the
/// subtree of a directory the step created (moved in by rename, say).
fn scan_cache_path<'s>(
    step_fs: &StepFs,
    target: &ImagePath,
    path: &ImagePath,
    descend: bool,
    needles: &[Needle<'s>],
    seen: &mut BTreeSet<ImagePath>,
    report: &mut dyn FnMut(&'s str, String, &'static str),
) {
    use kiln_runtime::fs::FileKind;
    if !seen.insert(path.clone()) {
        return;
    }
    let abs = path.to_absolute();
    let below: Vec<&str> = path
        .components()
        .skip(target.components().count())
        .collect();
    if let Some(id) = find_in(below.join("/").as_bytes(), needles) {
        report(id, abs.clone(), "the name");
        return;
    }
    let Ok(stat) = step_fs.stat_path(&abs, false) else {
        return;
    };
    match stat.kind {
        FileKind::Regular => {
            if let Ok(f) = step_fs.open_read(&abs) {
                if let Ok(Some(id)) = find_in_reader(f, needles) {
                    report(id, abs, "the contents of");
                }
            }
        }
        FileKind::Symlink => {
            if let Ok(link) = step_fs.read_link(&abs) {
                if let Some(id) = find_in(&link, needles) {
                    report(id, abs, "the symlink target of");
                }
            }
        }
        FileKind::Directory if descend => {
            for name in step_fs.read_dir(&abs).unwrap_or_default() {
                scan_cache_path(
                    step_fs,
                    target,
                    &path.join(&name),
                    true,
                    needles,
                    seen,
                    report,
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::config::History;
    use crate::snapshot::Meta;
    use std::sync::Arc;

    fn secrets(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(id, v)| (id.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: ImagePath::parse(path).unwrap(),
            kind,
            meta: Meta::new(0o644),
        }
    }

    fn file(path: &str, bytes: &[u8]) -> Entry {
        entry(
            path,
            EntryKind::File {
                size: bytes.len() as u64,
                content: Content::Inline(Arc::from(bytes)),
            },
        )
    }

    #[test]
    fn secrets_are_found_across_read_chunks() {
        let mut bytes = vec![b'.'; (1 << 20) - 3];
        bytes.extend_from_slice(b"s3cr3t-tail");
        let content = Content::Inline(Arc::from(&bytes[..]));
        let list = secrets(&[("other", "absent"), ("tok", "s3cr3t")]);
        let all = needles(&list);
        assert_eq!(find_secret(&content, &all).unwrap(), Some("tok"));
        assert_eq!(find_secret(&content, &all[..1]).unwrap(), None);
    }

    #[test]
    fn secret_search_finds_embedded_values() {
        assert!(contains(b"xx-s3cret-yy", b"s3cret"));
        assert!(contains(b"s3cret", b"s3cret"));
        assert!(contains(b"sss3cret", b"s3cret"));
        assert!(!contains(b"xx-s3cre-yy", b"s3cret"));
        assert!(!contains(b"s3c", b"s3cret"));
        assert!(!contains(b"", b"s3cret"));
    }

    #[test]
    fn values_are_trimmed_and_short_ones_skipped() {
        let list = secrets(&[("nl", "token-1\n"), ("short", "abc"), ("pad", "  abc \n")]);
        let n = needles(&list);
        assert_eq!(
            n,
            vec![Needle {
                id: "nl",
                bytes: b"token-1"
            }]
        );
        // `$(cat /run/secrets/nl)` has no newline: still found.
        assert_eq!(find_in(b"/d/token-1", &n), Some("nl"));
    }

    #[test]
    fn masking_hides_every_value() {
        let list = secrets(&[("a", "hunter22"), ("b", "hunter2")]);
        let n = needles(&list);
        assert_eq!(mask("/d/hunter22/x-hunter2", &n), "/d/***/x-***");
        assert_eq!(mask("/plain", &n), "/plain");
    }

    #[test]
    fn layer_names_links_and_contents_are_checked() {
        let list = secrets(&[("tok", "s3cr3t-value\n")]);
        let check = |e: Entry| {
            refuse_secrets(&[file("ok", b"fine"), e], &list)
                .map_err(|e| e.to_string())
                .unwrap_err()
        };
        let err = check(entry(
            "link",
            EntryKind::Symlink {
                target: "/opt/s3cr3t-value".into(),
            },
        ));
        assert!(err.contains("secret \"tok\""), "{err}");
        assert!(err.contains("symlink target of /link"), "{err}");
        assert!(err.contains("the layer was not written"), "{err}");
        let err = check(entry("d/s3cr3t-value/sub", EntryKind::Dir));
        assert!(err.contains("the name /d/***/sub"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let err = check(entry("etc/s3cr3t-value", EntryKind::Whiteout));
        assert!(err.contains("whiteout entry /etc/.wh.***"), "{err}");
        let err = check(entry("s3cr3t-value", EntryKind::Opaque));
        assert!(err.contains("the name /***"), "{err}");
        let err = check(entry(
            "b",
            EntryKind::Hardlink {
                target: ImagePath::parse("s3cr3t-value").unwrap(),
            },
        ));
        assert!(err.contains("hard-link target of /b"), "{err}");
        let err = check(file("leak", b"x s3cr3t-value y"));
        assert!(
            err.contains("the contents of /leak contain its value"),
            "{err}"
        );
        // Nothing found, or nothing long enough to look for.
        refuse_secrets(
            &[file("a", b"s3cr3t"), entry("s3cr3t", EntryKind::Dir)],
            &list,
        )
        .unwrap();
        refuse_secrets(&[file("a", b"abc")], &secrets(&[("t", "abc")])).unwrap();
    }

    #[test]
    fn whiteout_and_opaque_names_are_the_tar_names() {
        assert_eq!(layer_name(&entry("a/b", EntryKind::Whiteout)), "a/.wh.b");
        assert_eq!(layer_name(&entry("b", EntryKind::Whiteout)), ".wh.b");
        assert_eq!(layer_name(&entry("a", EntryKind::Opaque)), "a/.wh..wh..opq");
        assert_eq!(layer_name(&entry("a/b", EntryKind::Dir)), "a/b");
    }

    #[test]
    fn config_fields_and_history_are_checked() {
        let list = secrets(&[("tok", "s3cr3t-value")]);
        let mut config = ImageConfig::default();
        refuse_in_config(&config, &list).unwrap();
        config.config.env = Some(vec!["PATH=/bin".into(), "X=s3cr3t-value".into()]);
        config.history.push(History {
            created_by: Some("ENV X=s3cr3t-value".into()),
            ..Default::default()
        });
        let err = refuse_in_config(&config, &list).unwrap_err().to_string();
        assert!(err.contains("secret \"tok\""), "{err}");
        assert!(err.contains("config.Env[1] contains its value"), "{err}");
        assert!(err.contains("history[0].created_by"), "{err}");
        assert!(err.contains("the image was not written"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");

        let mut config = ImageConfig::default();
        config.config.labels = Some([("s3cr3t-value".to_string(), "v".to_string())].into());
        let err = refuse_in_config(&config, &list).unwrap_err().to_string();
        assert!(err.contains("config.Labels.*** (the key)"), "{err}");
        let setters: [fn(&mut ImageConfig); 4] = [
            |c: &mut ImageConfig| c.config.cmd = Some(vec!["run".into(), "s3cr3t-value".into()]),
            |c: &mut ImageConfig| c.config.user = Some("s3cr3t-value".into()),
            |c: &mut ImageConfig| c.config.working_dir = Some("/s3cr3t-value".into()),
            |c: &mut ImageConfig| c.config.entrypoint = Some(vec!["s3cr3t-value".into()]),
        ];
        for set in setters {
            let mut config = ImageConfig::default();
            set(&mut config);
            assert!(refuse_in_config(&config, &list).is_err(), "{config:?}");
        }
        // kiln's own times and digests are not searched.
        let config = ImageConfig {
            created: Some("s3cr3t-value".into()),
            ..Default::default()
        };
        refuse_in_config(&config, &list).unwrap();

        refuse_in_history(3, "RUN |1 T=x /bin/sh -c true # buildkit", &list).unwrap();
        let err = refuse_in_history(3, "RUN |1 T=s3cr3t-value true", &list)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("history[3].created_by contains its value"),
            "{err}"
        );
    }

    #[test]
    fn used_secrets_fill_in_values_of_cached_steps() {
        let used = UsedSecrets::default();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f");
        std::fs::write(&src, "from-file").unwrap();
        let given = vec![
            Secret {
                id: "f".into(),
                source: crate::exec::secrets::SecretSource::File(src),
            },
            Secret {
                id: "gone".into(),
                source: crate::exec::secrets::SecretSource::File(dir.path().join("missing")),
            },
        ];
        used.note_mounts(&[
            Mount::Secret {
                id: "f".into(),
                target: None,
                env: None,
                required: false,
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
            Mount::Secret {
                id: "gone".into(),
                target: None,
                env: None,
                required: false,
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
        ]);
        used.record(&secrets(&[("ran", "as-seen")]));
        assert_eq!(
            used.values(&given),
            secrets(&[("f", "from-file"), ("ran", "as-seen")])
        );
    }

    #[cfg(unix)]
    #[test]
    fn cache_paths_are_read_inside_the_rootfs_only() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("f"), "s3cr3t-value").unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("cache/sub/deeper")).unwrap();
        std::fs::write(r.join("cache/tok"), "x s3cr3t-value").unwrap();
        std::fs::write(r.join("cache/fine"), "nothing here").unwrap();
        std::fs::write(r.join("cache/sub/deeper/f"), "s3cr3t-value").unwrap();
        symlink("/opt/s3cr3t-value", r.join("cache/link")).unwrap();
        // A planted link out of the rootfs: never followed.
        symlink(outside.path(), r.join("cache/out")).unwrap();
        std::fs::create_dir(r.join("cache/s3cr3t-value")).unwrap();
        let step_fs = StepFs::open(r, kiln_runtime::RootfsOptions::default()).unwrap();
        let list = secrets(&[("tok", "s3cr3t-value")]);
        let n = needles(&list);
        let target = ImagePath::parse("cache").unwrap();
        let mut reports = Vec::new();
        let mut seen = BTreeSet::new();
        for (p, descend) in [
            ("cache/tok", false),
            ("cache/fine", false),
            ("cache/link", false),
            ("cache/out/f", false),
            ("cache/out", true),
            ("cache/sub", true),
            ("cache/s3cr3t-value", false),
        ] {
            scan_cache_path(
                &step_fs,
                &target,
                &ImagePath::parse(p).unwrap(),
                descend,
                &n,
                &mut seen,
                &mut |id, path, place| reports.push(format!("{id} {place} {path}")),
            );
        }
        assert_eq!(
            reports,
            [
                "tok the contents of /cache/tok",
                "tok the symlink target of /cache/link",
                "tok the contents of /cache/sub/deeper/f",
                "tok the name /cache/s3cr3t-value",
            ]
        );
    }
}
