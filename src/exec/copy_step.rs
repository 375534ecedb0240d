//! COPY and ADD as build steps: pick the source tree (context, an earlier
//! stage, a named context), expand the arguments, resolve `--chown` names
//! in the stage's /etc/passwd and /etc/group, extract ADD archives, and hand
//! the path rules to [`super::copy`].

use super::build::BuildEnv;
use super::stage::StageResult;
use crate::context::Context;
use crate::dockerfile::instructions::CopyArgs;
use crate::plan::stages::Source;
use crate::snapshot::rootfs::Rootfs;
use crate::snapshot::{Content, Entry, EntryKind, ImagePath, Meta, SourceTree};
use anyhow::{anyhow, bail, Context as _, Result};
use std::sync::Arc;

/// What COPY/ADD need from the stage they run in.
pub trait StageView {
    fn env(&self) -> &BuildEnv<'_>;
    fn expand(&self, word: &str) -> Result<String>;
    fn workdir(&self) -> ImagePath;
    fn graph_resolve(&self, reference: &str) -> Source;
    fn rootfs(&mut self) -> Result<&mut Rootfs>;
}

/// The entries of the layer a COPY or ADD writes.
pub fn entries(
    stage: &mut impl StageView,
    copy: &CopyArgs,
    is_add: bool,
    earlier: &[Option<StageResult>],
) -> Result<Vec<Entry>> {
    let sde = stage.env().opts.source_date_epoch;
    let dest = stage.expand(&copy.dest)?;
    let mut sources = Vec::new();
    for s in &copy.sources {
        sources.push(stage.expand(s)?);
    }
    let chmod = match &copy.chmod {
        Some(m) => Some(parse_chmod(&stage.expand(m)?)?),
        None => None,
    };
    let chown = match &copy.chown {
        Some(spec) => {
            let spec = stage.expand(spec)?;
            Some(resolve_chown(&spec, stage.rootfs()?)?)
        }
        None => None,
    };
    if is_add {
        if let Some(url) = sources.iter().find(|s| is_remote(s)) {
            bail!("ADD {url}: remote sources are not supported (kiln builds without network access); download the file into the build context instead");
        }
    }
    let workdir = stage.workdir();
    let mut out: Vec<Entry> = Vec::new();

    // Heredoc sources (`COPY <<EOF /dest`) are inline files.
    for doc in &copy.heredocs {
        let target = heredoc_target(&workdir, &dest, &doc.name);
        let (uid, gid) = chown.unwrap_or((0, 0));
        out.push(Entry {
            path: target,
            kind: EntryKind::File {
                size: doc.content.len() as u64,
                content: Content::Inline(Arc::from(doc.content.as_bytes())),
            },
            meta: Meta {
                mode: chmod.unwrap_or(0o644),
                uid,
                gid,
                mtime: sde,
            },
        });
    }
    let file_sources: Vec<String> = sources
        .into_iter()
        .filter(|s| !copy.heredocs.iter().any(|d| s == &format!("<<{}", d.name) || s == &format!("<<-{}", d.name)))
        .collect();

    if !file_sources.is_empty() {
        let exclude = copy
            .exclude
            .iter()
            .map(|e| stage.expand(e))
            .collect::<Result<Vec<_>>>()?;
        let options = super::copy::CopyOptions {
            chown,
            chmod,
            parents: copy.parents,
            exclude,
        };
        let rootfs: &Rootfs = stage.rootfs()?;
        let dest_view = rootfs;
        let from_tree: Box<dyn SourceTree + '_>;
        let tree: &dyn SourceTree = match &copy.from {
            None => stage_env_context(stage.env()),
            Some(from) => {
                let from = stage.expand(from)?;
                match stage.graph_resolve(&from) {
                    Source::Stage(i) => &earlier[i].as_ref().context("stage not built")?.rootfs,
                    Source::Scratch => bail!("COPY --from=scratch: scratch is empty"),
                    Source::External(name) => {
                        if let Some(dir) = stage.env().external.directory(&name) {
                            from_tree = Box::new(Context::open(dir, None)?);
                        } else {
                            from_tree = Box::new(materialise_external(stage.env(), &name)?);
                        }
                        from_tree.as_ref()
                    }
                }
            }
        };
        let mut copied = Vec::new();
        let mut plain = Vec::new();
        for src in &file_sources {
            if is_add {
                if let Some(entries) = add_archive(stage.env(), tree, &workdir, src, &dest, &options)? {
                    copied.extend(entries);
                    continue;
                }
            }
            plain.push(src.clone());
        }
        if !plain.is_empty() {
            copied.extend(super::copy::plan_copy(tree, &plain, &dest, &workdir, &options, dest_view)?);
        }
        out.extend(copied);
    }
    // Parents of heredoc targets and duplicates from several sources: one
    // entry per path, the last writer wins, parents present.
    Ok(finish_entries(out, stage.rootfs()?, sde))
}

fn stage_env_context<'e>(env: &'e BuildEnv<'_>) -> &'e dyn SourceTree {
    env.context
}

fn is_remote(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// `COPY <<EOF /dest/` writes `/dest/EOF`; `COPY <<EOF /dest/file` writes
/// `/dest/file`.
fn heredoc_target(workdir: &ImagePath, dest: &str, name: &str) -> ImagePath {
    let base = ImagePath::resolve(workdir, dest);
    if dest.ends_with('/') {
        base.join(name)
    } else {
        base
    }
}

/// `--chmod=0755`: octal only (BuildKit's symbolic modes need the labs syntax).
pub fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| anyhow!("invalid --chmod={s}: expected an octal mode such as 0755"))
}

/// `--chown=USER[:GROUP]` with numeric ids or names from the stage's
/// /etc/passwd and /etc/group. A user without a group uses the user's
/// numeric id as gid, as Docker documents.
pub fn resolve_chown(spec: &str, rootfs: &Rootfs) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        bail!("invalid --chown={spec}: missing user");
    }
    let lookup = |file: &str, name: &str| -> Result<u32> {
        let text = rootfs.read_file(&ImagePath::resolve(&ImagePath::root(), file))?;
        let text = text.ok_or_else(|| {
            anyhow!("--chown={spec}: cannot look up {name:?}: the stage has no {file}")
        })?;
        for line in String::from_utf8_lossy(&text).lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 3 && fields[0] == name {
                return fields[2]
                    .parse()
                    .map_err(|_| anyhow!("{file}: bad id for {name:?}"));
            }
        }
        bail!("--chown={spec}: no {name:?} in the stage's {file}")
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup("/etc/passwd", user)?,
    };
    let gid = match group {
        None => uid,
        Some(g) if g.is_empty() => bail!("invalid --chown={spec}: empty group"),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)?,
        },
    };
    Ok((uid, gid))
}

/// ADD of a local archive: extracted at `dest` (a directory).
fn add_archive(
    env: &BuildEnv<'_>,
    tree: &dyn SourceTree,
    workdir: &ImagePath,
    src: &str,
    dest: &str,
    options: &super::copy::CopyOptions,
) -> Result<Option<Vec<Entry>>> {
    if crate::context::glob::has_wildcards(src) {
        return Ok(None);
    }
    let path = ImagePath::resolve(&ImagePath::root(), src);
    let host = match tree.lstat(&path)? {
        Some(Entry {
            kind: EntryKind::File { content: Content::Host(host), .. },
            ..
        }) => host,
        _ => return Ok(None),
    };
    let dest_dir = ImagePath::resolve(workdir, dest);
    let scratch = tempfile::Builder::new()
        .prefix("add-")
        .tempdir_in(env.scratch)?
        .keep();
    let file = std::fs::File::open(&host).with_context(|| format!("opening {src}"))?;
    let entries = crate::snapshot::archive::extract(file, &dest_dir, &scratch)
        .with_context(|| format!("ADD {src}: extracting the archive"))?;
    Ok(entries.map(|mut es| {
        for e in &mut es {
            if let Some((u, g)) = options.chown {
                e.meta.uid = u;
                e.meta.gid = g;
            }
        }
        es
    }))
}

/// An oci-layout named context used with COPY --from: unpack its layers.
fn materialise_external(env: &BuildEnv<'_>, name: &str) -> Result<Rootfs> {
    let image = env.external.image(name)?;
    let dir = tempfile::Builder::new()
        .prefix("ctx-")
        .tempdir_in(env.scratch)?
        .keep();
    let mut fs = Rootfs::new(&dir)?;
    for layer in &image.layers {
        let blob = env.store.open_blob(&layer.digest)?;
        fs.apply_layer(blob, &layer.media_type)?;
    }
    Ok(fs)
}

/// De-duplicates by path (last wins) and adds missing parent directories:
/// existing ones as they are in the stage, new ones 0755 root-owned.
fn finish_entries(entries: Vec<Entry>, rootfs: &Rootfs, sde: u64) -> Vec<Entry> {
    let mut by_path: std::collections::BTreeMap<ImagePath, Entry> = Default::default();
    for e in entries {
        by_path.insert(e.path.clone(), e);
    }
    let paths: Vec<ImagePath> = by_path.keys().cloned().collect();
    for p in paths {
        for parent in p.ancestors() {
            if by_path.contains_key(&parent) {
                continue;
            }
            let e = rootfs.entry(&parent).unwrap_or(Entry {
                path: parent.clone(),
                kind: EntryKind::Dir,
                meta: Meta {
                    mtime: sde,
                    ..Meta::new(0o755)
                },
            });
            by_path.insert(parent, e);
        }
    }
    by_path.into_values().collect()
}
