//! COPY/ADD source and destination rules (Docker/BuildKit semantics) as a
//! pure function from a source tree and a view of the destination stage to
//! the entries of the new layer. Nothing here touches the host directly:
//! file bytes stay `Content::Host` references for the layer writer.

use std::collections::BTreeMap;
use std::io;

use crate::context::dockerignore::{IgnoreError, PatternMatcher};
use crate::context::glob::{self, BadPattern};
use crate::snapshot::{Entry, EntryKind, ImagePath, Meta, SourceTree};

/// More symlinks than this on one lookup is a loop (Linux uses 40).
const MAX_SYMLINKS: usize = 40;

/// What the destination stage has at a path (not following a final symlink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestKind {
    Absent,
    /// An existing directory and its current metadata (kept unchanged when
    /// it becomes a parent of copied entries).
    Dir(Meta),
    /// A regular file or any other non-directory, non-symlink entry.
    File,
    Symlink(String),
}

/// The destination stage's filesystem, as COPY needs to see it.
pub trait DestFs {
    fn lookup(&self, path: &ImagePath) -> io::Result<DestKind>;
}

impl<F: Fn(&ImagePath) -> io::Result<DestKind>> DestFs for F {
    fn lookup(&self, path: &ImagePath) -> io::Result<DestKind> {
        self(path)
    }
}

/// Flags of one COPY/ADD instruction.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// `--chown` already resolved to numeric ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` as octal permission bits.
    pub chmod: Option<u32>,
    /// `--parents`: keep each source's path (below a `/./` pivot) under dest.
    pub parents: bool,
    /// `--exclude` patterns (patternmatcher semantics), matched against
    /// paths relative to each copied directory, and against the
    /// context-relative path of each named source.
    pub exclude: Vec<String>,
    /// Directories COPY creates get this mtime (0 when unset).
    pub source_date_epoch: Option<u64>,
    /// "COPY" or "ADD", for error messages; empty means "COPY".
    pub command: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Which tree lacked it is the caller's to say ([`CopyError::in_source`]).
    #[error("{0:?}: not found")]
    NotFound(String),
    #[error("no source files were specified: no files matched {0}")]
    NoSourceFiles(String),
    #[error("When using {0} with more than one source file, the destination must be a directory and end with a /")]
    DestNotDir(&'static str),
    #[error("cannot copy to {0}: {1} is not a directory")]
    NotADirectory(ImagePath, ImagePath),
    #[error("cannot replace directory {0} with a file")]
    ReplaceDir(ImagePath),
    #[error("cannot copy directory to non-directory {0}")]
    DirOntoFile(ImagePath),
    #[error("too many levels of symbolic links resolving {0}")]
    SymlinkLoop(String),
    #[error("invalid source pattern: {0}")]
    Pattern(#[from] BadPattern),
    #[error("invalid --exclude pattern: {0}")]
    Exclude(IgnoreError),
    #[error("invalid --parents source pattern: {0}")]
    ParentsPattern(IgnoreError),
    #[error("reading {path}: {source}")]
    Io { path: String, source: io::Error },
}

impl CopyError {
    /// The error, naming the tree `what` a missing source was looked for
    /// in (the build context, a stage, a named context, an image).
    pub fn in_source(self, what: &str) -> anyhow::Error {
        match self {
            CopyError::NotFound(path) => anyhow::anyhow!("{path:?}: not found in {what}"),
            other => other.into(),
        }
    }
}

fn io_err(path: impl std::fmt::Display) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.to_string();
    move |source| CopyError::Io { path, source }
}

/// One named source after glob expansion.
struct Source {
    /// Path as named (final symlink not followed), relative to the tree.
    named: ImagePath,
    /// `--parents` pivot: the part of `named` not reproduced under dest.
    pivot: ImagePath,
}

/// Computes the entries COPY/ADD adds to the layer: copied entries plus
/// every parent directory of them below `/`, in depth-first order.
///
/// `sources` are already variable-expanded and may hold Go globs; `dest` is
/// relative to `workdir` unless absolute.
pub fn plan_copy(
    tree: &dyn SourceTree,
    sources: &[String],
    dest: &str,
    workdir: &ImagePath,
    opts: &CopyOptions,
    dest_fs: &dyn DestFs,
) -> Result<Vec<Entry>, CopyError> {
    let command = if opts.command.is_empty() {
        "COPY"
    } else {
        opts.command
    };
    let exclude = if opts.exclude.is_empty() {
        None
    } else {
        Some(PatternMatcher::new(&opts.exclude).map_err(CopyError::Exclude)?)
    };

    let mut matched = Vec::new();
    for src in sources {
        expand_source(tree, src, opts.parents, exclude.as_ref(), &mut matched)?;
    }
    if matched.is_empty() {
        return Err(CopyError::NoSourceFiles(sources.join(" ")));
    }
    if matched.len() > 1 && !dest.ends_with('/') {
        return Err(CopyError::DestNotDir(command));
    }

    let last = dest.rsplit('/').next().unwrap_or("");
    let dest_path = ImagePath::resolve(workdir, dest);
    let dir_intent =
        dest.ends_with('/') || last == "." || last == ".." || dest_path.is_root() || opts.parents;
    let dest_path = resolve_dest(dest_fs, &dest_path)?;

    let mut plan = Plan {
        entries: BTreeMap::new(),
        dest_fs,
        opts,
        exclude: exclude.as_ref(),
    };
    if dest.ends_with('/') {
        plan.ensure_dir(&dest_path)?;
    }
    for source in &matched {
        plan.copy_source(tree, source, &dest_path, dir_intent)?;
    }
    Ok(plan.entries.into_values().collect())
}

/// The paths (final symlink not followed) that `sources` name in `tree`
/// after glob expansion, for the step cache key; the same errors as
/// [`plan_copy`] for sources that match nothing.
pub fn matched_sources(
    tree: &dyn SourceTree,
    sources: &[String],
    parents: bool,
) -> Result<Vec<ImagePath>, CopyError> {
    let mut matched = Vec::new();
    for src in sources {
        expand_source(tree, src, parents, None, &mut matched)?;
    }
    Ok(matched.into_iter().map(|s| s.named).collect())
}

/// Adds the matches of one source string (literal or glob) to `out`.
fn expand_source(
    tree: &dyn SourceTree,
    src: &str,
    parents: bool,
    exclude: Option<&PatternMatcher>,
    out: &mut Vec<Source>,
) -> Result<(), CopyError> {
    let (pivot, full) = match (parents, src.find("/./")) {
        (true, Some(i)) => (
            ImagePath::resolve(&ImagePath::root(), &src[..i]),
            format!("{}/{}", &src[..i], &src[i + 3..]),
        ),
        _ => (ImagePath::root(), src.to_string()),
    };
    let excluded = |p: &ImagePath| exclude.is_some_and(|m| m.matches_or_parent_matches(p.as_str()));
    if parents && full.contains("**") {
        let below_pivot = match src.find("/./") {
            Some(i) => &src[i + 3..],
            None => src,
        };
        let mut matched = Vec::new();
        match_below(tree, &pivot, below_pivot, &mut matched)?;
        for named in matched.into_iter().filter(|p| !excluded(p)) {
            out.push(Source {
                named,
                pivot: pivot.clone(),
            });
        }
        return Ok(());
    }
    let path = ImagePath::resolve(&ImagePath::root(), &full);
    let comps: Vec<&str> = path.components().collect();
    let Some(first_glob) = comps.iter().position(|c| glob::has_wildcards(c)) else {
        if follow(tree, &path)?.is_none() {
            return Err(CopyError::NotFound(src.to_string()));
        }
        if !excluded(&path) {
            out.push(Source { named: path, pivot });
        }
        return Ok(());
    };
    let mut base = ImagePath::root();
    for c in &comps[..first_glob] {
        base = base.join(c);
    }
    match follow(tree, &base)? {
        Some(e) if matches!(e.kind, EntryKind::Dir) => {}
        _ => return Err(CopyError::NotFound(src.to_string())),
    }
    let mut level = vec![base];
    for (i, pat) in comps[first_glob..].iter().enumerate() {
        let last = first_glob + i + 1 == comps.len();
        let mut next = Vec::new();
        for dir in &level {
            for name in tree.read_dir(dir).map_err(io_err(dir))? {
                if !glob::fn_match(pat, &name)? {
                    continue;
                }
                let child = dir.join(&name);
                // Like filepath.Walk, only real directories are descended.
                let is_dir = || -> Result<bool, CopyError> {
                    let e = tree.lstat(&child).map_err(io_err(&child))?;
                    Ok(matches!(e.map(|e| e.kind), Some(EntryKind::Dir)))
                };
                if last || is_dir()? {
                    next.push(child);
                }
            }
        }
        level = next;
    }
    for named in level {
        if !excluded(&named) {
            out.push(Source {
                named,
                pivot: pivot.clone(),
            });
        }
    }
    Ok(())
}

/// `COPY --parents` sources with `**`: BuildKit hands the part after the
/// pivot to fsutil as an include pattern (moby/patternmatcher syntax, where
/// `**` spans any number of directories, none included) and copies what it
/// selects below the pivot. Adds the topmost matching paths below `pivot`,
/// in walk order; a matched directory is copied whole. Like
/// `filepath.Walk`, only real directories are descended.
fn match_below(
    tree: &dyn SourceTree,
    pivot: &ImagePath,
    pattern: &str,
    out: &mut Vec<ImagePath>,
) -> Result<(), CopyError> {
    let pattern = pattern.trim_start_matches('/');
    let matcher = PatternMatcher::new(&[pattern]).map_err(CopyError::ParentsPattern)?;
    match follow(tree, pivot)? {
        Some(e) if matches!(e.kind, EntryKind::Dir) => {}
        _ => return Ok(()),
    }
    let mut todo = vec![ImagePath::root()];
    while let Some(rel) = todo.pop() {
        let dir = rel.components().fold(pivot.clone(), |p, c| p.join(c));
        let mut names = tree.read_dir(&dir).map_err(io_err(&dir))?;
        names.sort();
        // Reversed onto the stack, so children come off in name order.
        for name in names.into_iter().rev() {
            let rel = rel.join(&name);
            let path = dir.join(&name);
            if matcher.matches_or_parent_matches(rel.as_str()) {
                out.push(path);
            } else if matches!(
                tree.lstat(&path).map_err(io_err(&path))?.map(|e| e.kind),
                Some(EntryKind::Dir)
            ) {
                todo.push(rel);
            }
        }
    }
    out.sort();
    Ok(())
}

/// `tree.lstat` following final symlinks inside the tree (chroot
/// semantics); the returned entry keeps the real path.
pub(super) fn follow(tree: &dyn SourceTree, path: &ImagePath) -> Result<Option<Entry>, CopyError> {
    let mut cur = path.clone();
    for _ in 0..=MAX_SYMLINKS {
        let Some(e) = tree.lstat(&cur).map_err(io_err(&cur))? else {
            return Ok(None);
        };
        match &e.kind {
            EntryKind::Symlink { target } => {
                cur = ImagePath::resolve(&cur.parent().unwrap_or_default(), target);
            }
            _ => return Ok(Some(e)),
        }
    }
    Err(CopyError::SymlinkLoop(path.to_absolute()))
}

/// Resolves every symlink of `path` in the destination, the last one
/// included (BuildKit's `RootPath`): a COPY to a symlink writes through it.
fn resolve_dest(fs: &dyn DestFs, path: &ImagePath) -> Result<ImagePath, CopyError> {
    let mut todo: Vec<String> = path.components().map(str::to_string).collect();
    todo.reverse();
    let mut cur = ImagePath::root();
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        match comp.as_str() {
            "" | "." => continue,
            ".." => {
                cur = cur.parent().unwrap_or_default();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&comp);
        match fs.lookup(&next).map_err(io_err(&next))? {
            DestKind::Symlink(target) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(CopyError::SymlinkLoop(path.to_absolute()));
                }
                if target.starts_with('/') {
                    cur = ImagePath::root();
                }
                todo.extend(target.split('/').rev().map(str::to_string));
            }
            DestKind::Absent => {
                // Nothing below exists: the rest is lexical.
                let rest: Vec<String> = todo.into_iter().rev().collect();
                return Ok(ImagePath::resolve(&next, &rest.join("/")));
            }
            DestKind::File if !todo.is_empty() => {
                return Err(CopyError::NotADirectory(path.clone(), next));
            }
            DestKind::File | DestKind::Dir(_) => cur = next,
        }
    }
    Ok(cur)
}

struct Plan<'a> {
    entries: BTreeMap<ImagePath, Entry>,
    dest_fs: &'a dyn DestFs,
    opts: &'a CopyOptions,
    exclude: Option<&'a PatternMatcher>,
}

impl Plan<'_> {
    /// What is at `p` once the entries planned so far are applied.
    fn lookup(&self, p: &ImagePath) -> Result<DestKind, CopyError> {
        if let Some(e) = self.entries.get(p) {
            return Ok(match &e.kind {
                EntryKind::Dir => DestKind::Dir(e.meta),
                EntryKind::Symlink { target } => DestKind::Symlink(target.clone()),
                _ => DestKind::File,
            });
        }
        self.dest_fs.lookup(p).map_err(io_err(p))
    }

    /// Copied metadata with --chown/--chmod applied (chmod never applies to
    /// symlinks, whose mode is fixed).
    fn adjust(&self, mut meta: Meta, kind: &EntryKind) -> Meta {
        if let Some((u, g)) = self.opts.chown {
            meta.uid = u;
            meta.gid = g;
        }
        if let Some(m) = self.opts.chmod {
            if !matches!(kind, EntryKind::Symlink { .. }) {
                meta.mode = m;
            }
        }
        meta
    }

    /// Makes `dir` and its parents directories: existing ones are included
    /// unchanged, missing ones are created 0755, owned by --chown.
    fn ensure_dir(&mut self, dir: &ImagePath) -> Result<(), CopyError> {
        let mut all = dir.ancestors();
        if !dir.is_root() {
            all.push(dir.clone());
        }
        for p in all {
            if self.entries.contains_key(&p) {
                if !matches!(self.entries[&p].kind, EntryKind::Dir) {
                    return Err(CopyError::NotADirectory(dir.clone(), p));
                }
                continue;
            }
            let meta = match self.lookup(&p)? {
                DestKind::Dir(meta) => meta,
                DestKind::Absent => {
                    let (uid, gid) = self.opts.chown.unwrap_or((0, 0));
                    Meta {
                        mode: 0o755,
                        uid,
                        gid,
                        mtime: self.opts.source_date_epoch.unwrap_or(0),
                    }
                }
                DestKind::File | DestKind::Symlink(_) => {
                    return Err(CopyError::NotADirectory(dir.clone(), p))
                }
            };
            self.entries.insert(
                p.clone(),
                Entry {
                    path: p,
                    kind: EntryKind::Dir,
                    meta,
                },
            );
        }
        Ok(())
    }

    /// Puts a copied directory entry at `target` (BuildKit overwrites an
    /// existing directory's metadata with the source's).
    fn put_dir(&mut self, target: &ImagePath, src: &Entry) -> Result<(), CopyError> {
        match self.lookup(target)? {
            DestKind::Absent | DestKind::Dir(_) => {}
            _ => return Err(CopyError::DirOntoFile(target.clone())),
        }
        let meta = self.adjust(src.meta, &src.kind);
        self.entries.insert(
            target.clone(),
            Entry {
                path: target.clone(),
                kind: EntryKind::Dir,
                meta,
            },
        );
        Ok(())
    }

    fn put_leaf(&mut self, target: &ImagePath, src: &Entry) -> Result<(), CopyError> {
        if let DestKind::Dir(_) = self.lookup(target)? {
            return Err(CopyError::ReplaceDir(target.clone()));
        }
        let meta = self.adjust(src.meta, &src.kind);
        self.entries.insert(
            target.clone(),
            Entry {
                path: target.clone(),
                kind: src.kind.clone(),
                meta,
            },
        );
        Ok(())
    }

    fn copy_source(
        &mut self,
        tree: &dyn SourceTree,
        source: &Source,
        dest: &ImagePath,
        dir_intent: bool,
    ) -> Result<(), CopyError> {
        let followed = follow(tree, &source.named)?
            .ok_or_else(|| CopyError::NotFound(source.named.to_absolute()))?;
        let target = if self.opts.parents {
            // Recreate the source's parents (below the pivot) under dest,
            // with the source directories' metadata.
            self.ensure_dir(dest)?;
            let rel: Vec<&str> = source
                .named
                .components()
                .skip(source.pivot.components().count())
                .collect();
            let (mut t, mut s) = (dest.clone(), source.pivot.clone());
            for (i, c) in rel.iter().enumerate() {
                t = t.join(c);
                s = s.join(c);
                if i + 1 < rel.len() {
                    let sd =
                        follow(tree, &s)?.ok_or_else(|| CopyError::NotFound(s.to_absolute()))?;
                    self.put_dir(&t, &sd)?;
                }
            }
            t
        } else if matches!(followed.kind, EntryKind::Dir) {
            dest.clone()
        } else {
            let into = dir_intent || matches!(self.lookup(dest)?, DestKind::Dir(_));
            match source.named.file_name() {
                Some(name) if into => dest.join(name),
                _ => dest.clone(),
            }
        };
        if let EntryKind::Dir = followed.kind {
            if self.opts.parents && !target.is_root() && target != *dest {
                if let Some(parent) = target.parent() {
                    self.ensure_dir(&parent)?;
                }
                self.put_dir(&target, &followed)?;
            } else {
                if let DestKind::File | DestKind::Symlink(_) = self.lookup(&target)? {
                    return Err(CopyError::DirOntoFile(target));
                }
                self.ensure_dir(&target)?;
            }
            self.copy_children(tree, &followed.path, &ImagePath::root(), &target)
        } else {
            if let Some(parent) = target.parent() {
                self.ensure_dir(&parent)?;
            }
            self.put_leaf(&target, &followed)
        }
    }

    /// Copies the contents of source directory `dir` into `target`;
    /// `rel` is `dir` relative to the named source (for --exclude).
    fn copy_children(
        &mut self,
        tree: &dyn SourceTree,
        dir: &ImagePath,
        rel: &ImagePath,
        target: &ImagePath,
    ) -> Result<(), CopyError> {
        for name in tree.read_dir(dir).map_err(io_err(dir))? {
            let (s, r, t) = (dir.join(&name), rel.join(&name), target.join(&name));
            let Some(e) = tree.lstat(&s).map_err(io_err(&s))? else {
                continue;
            };
            let excluded = self
                .exclude
                .is_some_and(|m| m.matches_or_parent_matches(r.as_str()));
            if let EntryKind::Dir = e.kind {
                if !excluded {
                    self.put_dir(&t, &e)?;
                    self.copy_children(tree, &s, &r, &t)?;
                } else if self.exclude.is_some_and(|m| m.has_exclusions()) {
                    // An `!` pattern may re-include something below: keep
                    // the directory only if it does.
                    let before = self.entries.len();
                    self.copy_children(tree, &s, &r, &t)?;
                    if self.entries.len() != before {
                        self.put_dir(&t, &e)?;
                    }
                }
            } else if !excluded {
                self.put_leaf(&t, &e)?;
            }
        }
        Ok(())
    }
}
