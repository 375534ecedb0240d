//! COPY and ADD as build steps: pick the source tree (context, an earlier
//! stage, a named context), expand the arguments, resolve `--chown` names
//! in the stage's /etc/passwd and /etc/group, extract ADD archives, and hand
//! the path rules to [`super::copy`].

use super::copy::{CopyOptions, DestFs, DestKind};
use super::stage::{StageExec, StageResult};
use crate::context::Context;
use crate::dockerfile::history;
use crate::dockerfile::instructions::{Add, Copy, InlineSource};
use crate::plan::stages::Source;
use crate::snapshot::rootfs::Rootfs;
use crate::snapshot::{Content, Entry, EntryKind, ImagePath, Meta, SourceTree};
use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// COPY and ADD, seen through what they have in common.
pub struct CopyStep<'a> {
    keyword: &'static str,
    sources: &'a [String],
    dest: &'a str,
    from: Option<&'a str>,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    parents: bool,
    exclude: &'a [String],
    heredocs: &'a [InlineSource],
}

impl<'a> CopyStep<'a> {
    pub fn from_copy(c: &'a Copy) -> Self {
        CopyStep {
            keyword: "COPY",
            sources: &c.sources,
            dest: &c.dest,
            from: c.from.as_deref(),
            chown: c.chown.as_deref(),
            chmod: c.chmod.as_deref(),
            parents: c.parents,
            exclude: &c.exclude,
            heredocs: &c.heredocs,
        }
    }

    pub fn from_add(a: &'a Add) -> Result<Self> {
        if let Some(sum) = &a.checksum {
            bail!("ADD --checksum={sum} applies to remote sources, which kiln does not fetch");
        }
        if a.keep_git_dir.is_some() {
            bail!("ADD --keep-git-dir applies to git sources, which kiln does not fetch");
        }
        if a.unpack == Some(false) {
            bail!(
                "ADD --unpack=false is not supported yet; use COPY to copy an archive unextracted"
            );
        }
        Ok(CopyStep {
            keyword: "ADD",
            sources: &a.sources,
            dest: &a.dest,
            from: None,
            chown: a.chown.as_deref(),
            chmod: a.chmod.as_deref(),
            parents: false,
            exclude: &a.exclude,
            heredocs: &a.heredocs,
        })
    }

    fn is_add(&self) -> bool {
        self.keyword == "ADD"
    }
}

/// A COPY or ADD's arguments with the stage's variables expanded: what its
/// cache key and its execution both start from.
pub struct Expanded {
    dest: String,
    sources: Vec<String>,
    from: Option<String>,
    chmod_text: Option<String>,
    chown_text: Option<String>,
    exclude: Vec<String>,
    /// Heredoc names and bodies (expanded where the heredoc asks for it).
    heredocs: Vec<(String, String)>,
}

/// Expands `step`'s arguments; checks what needs no files (chmod, remote
/// ADD sources).
pub fn expand(stage: &StageExec<'_>, step: &CopyStep<'_>) -> Result<Expanded> {
    let dest = stage.expand(step.dest)?;
    let sources = step
        .sources
        .iter()
        .map(|s| stage.expand(s))
        .collect::<Result<Vec<_>>>()?;
    let chmod_text = step.chmod.map(|m| stage.expand(m)).transpose()?;
    if let Some(text) = &chmod_text {
        parse_chmod(text)?;
    }
    let chown_text = step.chown.map(|c| stage.expand(c)).transpose()?;
    if step.is_add() {
        if let Some(url) = sources.iter().find(|s| is_remote(s)) {
            bail!("ADD {url}: remote sources are not supported (kiln builds without network access); put the file in the build context instead");
        }
    }
    let exclude = step
        .exclude
        .iter()
        .map(|e| stage.expand(e))
        .collect::<Result<Vec<_>>>()?;
    let from = step.from.map(|f| stage.expand(f)).transpose()?;
    let heredocs = step
        .heredocs
        .iter()
        .map(|doc| {
            let body = if doc.expand {
                expand_heredoc(stage, &doc.data)?
            } else {
                doc.data.clone()
            };
            Ok((doc.path.clone(), body))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Expanded {
        dest,
        sources,
        from,
        chmod_text,
        chown_text,
        exclude,
        heredocs,
    })
}

/// The step cache key of a COPY or ADD: its expanded arguments, the
/// working directory, and the identity of the files it copies (their
/// content for the context or a directory, the layers of a stage).
pub fn cache_key(
    stage: &StageExec<'_>,
    step: &CopyStep<'_>,
    args: &Expanded,
    earlier: &[std::sync::OnceLock<StageResult>],
) -> Result<crate::digest::Digest> {
    let mut key = stage.step_key(step.keyword);
    key.str("workdir", &stage.workdir().to_absolute())
        .str("dest", &args.dest)
        .list("sources", &args.sources)
        .opt("chmod", args.chmod_text.as_deref())
        .opt("chown", args.chown_text.as_deref())
        .str("parents", if step.parents { "1" } else { "0" })
        .list("exclude", &args.exclude);
    for (name, body) in &args.heredocs {
        key.str("heredoc", name).str("body", body);
    }
    if !args.sources.is_empty() {
        let identity = super::stage::source_identity(
            stage,
            args.from.as_deref(),
            &args.sources,
            step.parents,
            earlier,
        )?;
        key.str("source", &identity);
    }
    Ok(key.finish())
}

/// The entries of the layer a COPY or ADD writes, and its history text.
pub fn run(
    stage: &mut StageExec<'_>,
    step: &CopyStep<'_>,
    args: &Expanded,
    earlier: &[std::sync::OnceLock<StageResult>],
) -> Result<(Vec<Entry>, String)> {
    let sde = stage.env().opts.source_date_epoch;
    let Expanded {
        dest,
        sources,
        from,
        chmod_text,
        chown_text,
        exclude,
        heredocs,
    } = args;
    let chmod = chmod_text.as_deref().map(parse_chmod).transpose()?;
    let chown = match chown_text {
        Some(spec) => Some(resolve_chown(spec, stage.rootfs()?)?),
        None => None,
    };
    let exclude = exclude.clone();
    let workdir = stage.workdir();
    let options = CopyOptions {
        chown,
        chmod,
        parents: step.parents,
        exclude,
        source_date_epoch: Some(sde),
        command: step.keyword,
    };

    let mut entries = Vec::new();
    if !sources.is_empty() {
        let source = source_tree(stage, from.as_deref(), earlier)?;
        let tree = source.get();
        let mut plain = Vec::new();
        for src in sources {
            if step.is_add() {
                if let Some(extracted) = add_archive(stage, tree, src, &workdir, dest, &options)? {
                    entries.extend(extracted);
                    continue;
                }
            }
            plain.push(src.clone());
        }
        if !plain.is_empty() {
            let rootfs: &Rootfs = stage.rootfs()?;
            let dest_fs = RootfsDest(rootfs);
            entries.extend(
                super::copy::plan_copy(tree, &plain, dest, &workdir, &options, &dest_fs)
                    .map_err(|e| e.in_source(&stage.describe_source(from.as_deref())))?,
            );
        }
    }
    for (name, body) in heredocs {
        entries.push(heredoc_entry(name, body, &workdir, dest, &options));
    }
    let entries = with_parents(entries, stage.rootfs()?, &options);

    let heredoc_names: Vec<String> = step.heredocs.iter().map(|h| h.path.clone()).collect();
    let created_by = history::copy(
        step.keyword,
        step.parents,
        chown_text.as_deref().unwrap_or(""),
        chmod_text.as_deref().unwrap_or(""),
        sources,
        &heredoc_names,
        dest,
    );
    Ok((entries, created_by))
}

/// The destination stage as COPY's path rules see it.
struct RootfsDest<'r>(&'r Rootfs);

impl DestFs for RootfsDest<'_> {
    fn lookup(&self, path: &ImagePath) -> std::io::Result<DestKind> {
        Ok(match self.0.lstat(path)? {
            None => DestKind::Absent,
            Some(Entry {
                kind: EntryKind::Dir,
                meta,
                ..
            }) => DestKind::Dir(meta),
            Some(Entry {
                kind: EntryKind::Symlink { target },
                ..
            }) => DestKind::Symlink(target),
            Some(_) => DestKind::File,
        })
    }
}

fn is_remote(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// `COPY <<EOF /dest/` writes `/dest/EOF`; `COPY <<EOF /dest/file` writes
/// `/dest/file`. Bodies expand variables unless the delimiter was quoted.
fn heredoc_entry(
    name: &str,
    body: &str,
    workdir: &ImagePath,
    dest: &str,
    options: &CopyOptions,
) -> Entry {
    let base = ImagePath::resolve(workdir, dest);
    let path = if dest.ends_with('/') || dest == "." {
        base.join(name)
    } else {
        base
    };
    let (uid, gid) = options.chown.unwrap_or((0, 0));
    Entry {
        path,
        kind: EntryKind::File {
            size: body.len() as u64,
            content: Content::Inline(Arc::from(body.as_bytes())),
        },
        meta: Meta {
            mode: options.chmod.unwrap_or(0o644),
            uid,
            gid,
            mtime: options.source_date_epoch.unwrap_or(0),
        },
    }
}

/// Heredoc bodies expand `$VAR` like a shell here-document: quotes are
/// literal text, so each line is expanded with quotes escaped first.
fn expand_heredoc(stage: &StageExec<'_>, body: &str) -> Result<String> {
    let escape = stage.env().lexer.escape();
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let (text, nl) = match line.strip_suffix('\n') {
            Some(t) => (t, "\n"),
            None => (line, ""),
        };
        let mut protected = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '"' || c == '\'' || (c == escape && escape != '\\') {
                protected.push(escape);
            }
            protected.push(c);
        }
        out.push_str(&stage.expand(&protected)?);
        out.push_str(nl);
    }
    Ok(out)
}

/// `--chmod=0755`: octal only (BuildKit's symbolic modes need the labs syntax).
pub fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| anyhow!("invalid --chmod={s}: expected an octal mode such as 0755"))
}

/// `--chown=USER[:GROUP]` with numeric ids or names from the stage's
/// /etc/passwd and /etc/group. Without a group, a numeric user also gets
/// that id as gid and a named user gets its primary group from
/// /etc/passwd, as BuildKit does.
pub fn resolve_chown(spec: &str, rootfs: &Rootfs) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        bail!("invalid --chown={spec}: missing user");
    }
    // The line's id fields (passwd: uid, gid; group: gid) for `name`.
    let lookup = |file: &str, name: &str| -> Result<Vec<u32>> {
        let text = read_file(rootfs, file)?.ok_or_else(|| {
            anyhow!("--chown={spec}: cannot look up {name:?}: the stage has no {file}")
        })?;
        let ids = if file == "/etc/passwd" { 2..4 } else { 2..3 };
        for line in String::from_utf8_lossy(&text).lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= ids.end && fields[0] == name {
                return fields[ids]
                    .iter()
                    .map(|f| {
                        f.trim()
                            .parse()
                            .map_err(|_| anyhow!("{file}: bad id {f:?} for {name:?}"))
                    })
                    .collect();
            }
        }
        bail!("--chown={spec}: no {name:?} in the stage's {file}")
    };
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let ids = lookup("/etc/passwd", user)?;
            (ids[0], ids[1])
        }
    };
    let gid = match group {
        None => primary_gid,
        Some("") => bail!("invalid --chown={spec}: empty group"),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)?[0],
        },
    };
    Ok((uid, gid))
}

/// Reads a small file of the stage, following symlinks inside the rootfs.
fn read_file(rootfs: &Rootfs, path: &str) -> Result<Option<Vec<u8>>> {
    let mut current = ImagePath::resolve(&ImagePath::root(), path);
    for _ in 0..40 {
        match rootfs.lstat(&current)? {
            Some(Entry {
                kind: EntryKind::File { content, .. },
                ..
            }) => {
                let bytes = content
                    .read_all()
                    .with_context(|| format!("reading {path} of the stage"))?;
                return Ok(Some(bytes));
            }
            Some(Entry {
                kind: EntryKind::Symlink { target },
                ..
            }) => {
                let parent = current.parent().unwrap_or_default();
                current = ImagePath::resolve(&parent, &target);
            }
            _ => return Ok(None),
        }
    }
    bail!("{path}: too many levels of symbolic links")
}

/// ADD of a local archive (detected by content): extracted at `dest`.
fn add_archive(
    stage: &StageExec<'_>,
    tree: &dyn SourceTree,
    src: &str,
    workdir: &ImagePath,
    dest: &str,
    options: &CopyOptions,
) -> Result<Option<Vec<Entry>>> {
    if crate::context::glob::has_wildcards(src) {
        return Ok(None);
    }
    let host = match tree.lstat(&ImagePath::resolve(&ImagePath::root(), src))? {
        Some(Entry {
            kind:
                EntryKind::File {
                    content: Content::Host(host),
                    ..
                },
            ..
        }) => host,
        _ => return Ok(None),
    };
    let scratch = tempfile::Builder::new()
        .prefix("add-")
        .tempdir_in(stage.env().scratch)?
        .keep();
    let dest_dir = ImagePath::resolve(workdir, dest);
    let extracted = crate::snapshot::archive::extract(&host, &dest_dir, &scratch)
        .with_context(|| format!("ADD {src}: extracting the archive"))?;
    Ok(extracted.map(|mut entries| {
        if let Some((uid, gid)) = options.chown {
            for e in &mut entries {
                e.meta.uid = uid;
                e.meta.gid = gid;
            }
        }
        entries
    }))
}

/// An oci-layout named context used with COPY --from: unpack its layers.
/// A tree COPY --from or RUN --mount=from takes files from.
pub(super) enum TreeRef<'t> {
    Shared(&'t dyn SourceTree),
    Owned(Box<dyn SourceTree>),
}

impl TreeRef<'_> {
    pub(super) fn get(&self) -> &dyn SourceTree {
        match self {
            TreeRef::Shared(t) => *t,
            TreeRef::Owned(t) => t.as_ref(),
        }
    }
}

/// The context (`from` = None), an earlier stage's tree, or a named
/// context / external image.
pub(super) fn source_tree<'t>(
    stage: &StageExec<'t>,
    from: Option<&str>,
    earlier: &'t [std::sync::OnceLock<StageResult>],
) -> Result<TreeRef<'t>> {
    let Some(from) = from else {
        return Ok(TreeRef::Shared(stage.env().context));
    };
    Ok(match stage.resolve_source(from) {
        Source::Stage(i) => TreeRef::Shared(
            earlier[i]
                .get()
                .context("stage was not built")?
                .tree(stage.env())?,
        ),
        Source::Scratch => bail!("--from=scratch: scratch has no files"),
        Source::External(name) => match stage.env().external.directory(&name) {
            Some(dir) => {
                TreeRef::Owned(Box::new(Context::open_named(dir).with_context(|| {
                    format!("opening build context {name}={}", dir.display())
                })?))
            }
            None => TreeRef::Owned(Box::new(materialise_external(stage, &name)?)),
        },
    })
}

fn materialise_external(stage: &StageExec<'_>, name: &str) -> Result<Rootfs> {
    let env = stage.env();
    let image = env.external.image(name, &env.platform)?;
    super::stage::unpack(env, &image.layers)
}

/// One entry per path (the last writer wins) with every parent directory
/// present: existing ones as they are in the stage, new ones 0755 and owned
/// by the `--chown` user, as BuildKit creates them.
fn with_parents(entries: Vec<Entry>, rootfs: &Rootfs, options: &CopyOptions) -> Vec<Entry> {
    let mut by_path: BTreeMap<ImagePath, Entry> = BTreeMap::new();
    for e in entries {
        by_path.insert(e.path.clone(), e);
    }
    let (uid, gid) = options.chown.unwrap_or((0, 0));
    let paths: Vec<ImagePath> = by_path.keys().cloned().collect();
    for p in paths {
        for parent in p.ancestors() {
            if by_path.contains_key(&parent) {
                continue;
            }
            let existing = match rootfs.lstat(&parent) {
                Ok(Some(e)) if matches!(e.kind, EntryKind::Dir) => Some(e),
                _ => None,
            };
            let e = existing.unwrap_or(Entry {
                path: parent.clone(),
                kind: EntryKind::Dir,
                meta: Meta {
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: options.source_date_epoch.unwrap_or(0),
                },
            });
            by_path.insert(parent, e);
        }
    }
    by_path.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_is_octal_and_bounded() {
        assert_eq!(parse_chmod("0755").unwrap(), 0o755);
        assert_eq!(parse_chmod("4755").unwrap(), 0o4755);
        assert!(parse_chmod("u+x").is_err());
        assert!(parse_chmod("99").is_err());
        assert!(parse_chmod("77777").is_err());
    }

    #[test]
    fn chown_names_come_from_the_stage() {
        let tmp = tempfile::tempdir().unwrap();
        let mut fs = Rootfs::new(tmp.path()).unwrap();
        let file = |path: &str, text: &str| Entry {
            path: ImagePath::parse(path).unwrap(),
            kind: EntryKind::File {
                size: text.len() as u64,
                content: Content::Inline(Arc::from(text.as_bytes())),
            },
            meta: Meta::new(0o644),
        };
        let dir = Entry {
            path: ImagePath::parse("etc").unwrap(),
            kind: EntryKind::Dir,
            meta: Meta::new(0o755),
        };
        fs.apply_entries(&[
            dir,
            file("etc/group", "root:x:0:\nstaff:x:50:\n"),
            file(
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
            ),
        ])
        .unwrap();
        // A named user without a group gets its primary group.
        assert_eq!(resolve_chown("app", &fs).unwrap(), (1000, 1001));
        assert_eq!(resolve_chown("app:staff", &fs).unwrap(), (1000, 50));
        assert_eq!(resolve_chown("7:8", &fs).unwrap(), (7, 8));
        assert_eq!(resolve_chown("9", &fs).unwrap(), (9, 9));
        let err = resolve_chown("nobody", &fs).unwrap_err().to_string();
        assert!(
            err.contains("nobody") && err.contains("/etc/passwd"),
            "{err}"
        );
        assert!(resolve_chown(":5", &fs).is_err());
    }
}
