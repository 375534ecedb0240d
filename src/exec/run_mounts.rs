//! RUN `--mount`s, set up in the stage's host directory for the duration of
//! one step and taken down afterwards, so nothing of them reaches the layer:
//! bind (files copied in; writes discarded), cache (a directory of the cache
//! dir moved in and back, so it persists across builds), tmpfs (an empty
//! directory), secret (a file or an environment variable).
//!
//! Whatever was at a target before is moved aside and put back; directories
//! created only to hold a target are removed again. Targets are resolved in
//! kiln's record with chroot semantics, so a symlink in the image never
//! sends a mount outside the rootfs.
//!
//! The step's guest code may rename any directory it can write and leave a
//! symlink to a host path in its place, so taking a mount down never uses a
//! host path: every place is held by an [`Anchor`] (a handle on its parent
//! directory, opened without following symlinks before the step), and the
//! sandbox refuses to move or remove a mount point or any directory above
//! one (EBUSY, [`MountSet::pinned`]).

use super::copy_step::source_tree;
use super::mounts::{Mount, Sharing};
use super::stage::{StageExec, StageResult};
use crate::snapshot::anchor::{self, Anchor, Identity};
use crate::snapshot::{EntryKind, ImagePath, SourceTree};
use crate::store::run_cache::{self, RunCacheLock};
use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Where a heredoc-only RUN with a `#!` line is written for the step.
pub(super) const HEREDOC_PATH: &str = "/.kiln-run-heredoc";

/// One mount in place. Everything after the step goes through the anchors
/// taken before it (see [`Anchor`]): by then the guest may have planted
/// symlinks to host paths anywhere it could write.
struct Mounted {
    target: ImagePath,
    place: Anchor,
    /// What was at the target before, moved into the aside dir under this
    /// name.
    aside: Option<String>,
    /// Directories made to hold the target, outermost first.
    made_parents: Vec<(ImagePath, Anchor)>,
    /// For cache mounts, once the directory is in place.
    cache: Option<MountedCache>,
}

/// A cache directory moved in from the cache dir.
struct MountedCache {
    /// The held cache id, which knows where the directory lives between
    /// builds.
    lock: RunCacheLock,
    /// `<cache>/run-cache`, the directory's home.
    homes: File,
    /// The directory moved in: only this goes back home.
    identity: Identity,
    /// The id the Dockerfile gave (for messages).
    id: String,
}

/// The mounts of one RUN step.
pub(super) struct MountSet {
    mounted: Vec<Mounted>,
    secret_env: Vec<(String, String)>,
    secrets: Vec<(String, Vec<u8>)>,
    /// Targets the step may not change (bind mounts without rw, secrets).
    read_only: Vec<ImagePath>,
    aside_dir: PathBuf,
    aside: File,
    done: bool,
    /// Locks of this step's waiting cache mounts, taken up front in key
    /// order (so two builds never wait on each other crosswise), by key.
    cache_locks: BTreeMap<String, RunCacheLock>,
}

impl MountSet {
    /// Sets up `mounts` (targets relative to `workdir`) in the stage's rootfs.
    pub(super) fn prepare(
        stage: &mut StageExec<'_>,
        mounts: &[Mount],
        workdir: &ImagePath,
        earlier: &[std::sync::OnceLock<StageResult>],
    ) -> Result<MountSet> {
        let aside_dir = tempfile::Builder::new()
            .prefix("mount-aside-")
            .tempdir_in(stage.env().scratch)?
            .keep();
        let aside = anchor::open_dir(&aside_dir)
            .with_context(|| format!("opening {}", aside_dir.display()))?;
        let mut set = MountSet {
            mounted: Vec::new(),
            secret_env: Vec::new(),
            secrets: Vec::new(),
            read_only: Vec::new(),
            aside_dir,
            aside,
            done: false,
            cache_locks: BTreeMap::new(),
        };
        set.lock_caches(stage, mounts)?;
        for m in mounts {
            set.mount_one(stage, m, workdir, earlier)?;
        }
        Ok(set)
    }

    /// Waits for the lock of every non-private cache mount of the step, in
    /// key order, and reports caches recovered from killed builds.
    fn lock_caches(&mut self, stage: &StageExec<'_>, mounts: &[Mount]) -> Result<()> {
        let mut ids = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for m in mounts {
            if let Mount::Cache {
                target,
                id,
                sharing,
                ..
            } = m
            {
                let id = if id.is_empty() { target } else { id };
                if !seen.insert(run_cache::key(id)) {
                    bail!("cache id {id:?} is mounted twice in one step");
                }
                if *sharing != Sharing::Private {
                    ids.insert(run_cache::key(id), id);
                }
            }
        }
        let cache_dir = &stage.env().opts.cache_dir;
        for (key, id) in ids {
            let (lock, warning) = RunCacheLock::acquire(cache_dir, id, || {
                eprintln!("waiting for cache mount {id:?}, in use by another step or build")
            })
            .with_context(|| format!("locking cache mount {id:?}"))?;
            if let Some(w) = warning {
                stage.env().progress.warn(&w);
            }
            let shared = stage.env().registry_cache;
            shared.note_mount(id);
            if shared
                .seed_mount(&key, &lock.home(), stage.env().store)
                .with_context(|| format!("filling cache mount {id:?} from the registry cache"))?
            {
                stage.env().progress.info(&format!(
                    "cache mount {id:?} filled from the registry cache"
                ));
            }
            self.cache_locks.insert(key, lock);
        }
        Ok(())
    }

    fn mount_one(
        &mut self,
        stage: &mut StageExec<'_>,
        m: &Mount,
        workdir: &ImagePath,
        earlier: &[std::sync::OnceLock<StageResult>],
    ) -> Result<()> {
        match m {
            Mount::Secret {
                id,
                target,
                env,
                required,
                mode,
                ..
            } => {
                let Some(value) = read_secret(stage, id)? else {
                    if *required {
                        bail!("secret {id:?} is required but was not given: pass --secret id={id},src=FILE (or env=VAR)");
                    }
                    return Ok(());
                };
                self.secrets.push((id.clone(), value.clone()));
                if let Some(var) = env {
                    self.secret_env
                        .push((var.clone(), String::from_utf8_lossy(&value).into_owned()));
                }
                if target.is_some() || env.is_none() {
                    let path = target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{id}"));
                    let target = ImagePath::resolve(workdir, &path);
                    self.add_file(stage, &target.to_absolute(), &value, *mode)?;
                    self.mark_read_only();
                }
                Ok(())
            }
            Mount::Tmpfs { target, .. } => {
                let mounted = self.place(stage, &ImagePath::resolve(workdir, target))?;
                mounted
                    .place
                    .create_dir()
                    .with_context(|| format!("creating tmpfs mount {target}"))?;
                Ok(())
            }
            // `sharing=locked` and `shared` both behave like BuildKit's
            // `sharing=locked`: the directory is moved in, so one step at a
            // time holds it and another build's step using the same id waits.
            // `private` does not wait: a busy cache gives an empty directory
            // that is discarded afterwards. A marker names where the
            // directory went, so a build killed meanwhile loses nothing.
            Mount::Cache {
                target,
                id,
                from,
                sharing,
                ..
            } => {
                if from.is_some() {
                    bail!("--mount=type=cache,from=...: seeding a cache from another stage is not supported; drop from=");
                }
                let id = if id.is_empty() { target } else { id };
                let held = match self.cache_locks.remove(&run_cache::key(id)) {
                    Some(lock) => Some((lock, None)),
                    None if *sharing == Sharing::Private => {
                        RunCacheLock::try_acquire(&stage.env().opts.cache_dir, id)
                            .with_context(|| format!("locking cache mount {id:?}"))?
                    }
                    None => bail!("cache mount {id:?} was not locked"),
                };
                let Some((lock, warning)) = held else {
                    let mounted = self.place(stage, &ImagePath::resolve(workdir, target))?;
                    mounted
                        .place
                        .create_dir()
                        .with_context(|| format!("creating private cache mount {target}"))?;
                    return Ok(());
                };
                if let Some(w) = warning {
                    stage.env().progress.warn(&w);
                }
                self.mount_cache(stage, &ImagePath::resolve(workdir, target), id, lock)
            }
            Mount::Bind {
                target,
                source,
                from,
                read_write,
            } => {
                let tree = source_tree(stage, from.as_deref(), earlier)?;
                let src = ImagePath::resolve(&ImagePath::root(), source);
                let tree = tree.get();
                if tree.lstat(&src)?.is_none() {
                    bail!(
                        "--mount=type=bind: source {source:?} not found in {}",
                        from.as_deref().unwrap_or("the build context")
                    );
                }
                let canonical = self
                    .place(stage, &ImagePath::resolve(workdir, target))?
                    .target
                    .clone();
                // Before the step: the anchor walk just found every
                // directory on the way real, and no guest runs yet.
                let host = stage.rootfs()?.host_path(&canonical);
                copy_tree(tree, &src, &host)
                    .with_context(|| format!("binding {source} at {target}"))?;
                if !read_write {
                    self.mark_read_only();
                }
                Ok(())
            }
        }
    }

    /// Puts a file with `bytes` at image path `target` for the step.
    pub(super) fn add_file(
        &mut self,
        stage: &mut StageExec<'_>,
        target: &str,
        bytes: &[u8],
        _mode: u32,
    ) -> Result<()> {
        let target_path = ImagePath::resolve(&ImagePath::root(), target);
        let mounted = self.place(stage, &target_path)?;
        mounted
            .place
            .create_file()
            .and_then(|mut f| f.write_all(bytes))
            .with_context(|| format!("writing {target} for the step"))?;
        Ok(())
    }

    /// Moves the directory of a held cache id in at `target`.
    fn mount_cache(
        &mut self,
        stage: &mut StageExec<'_>,
        target: &ImagePath,
        id: &str,
        lock: RunCacheLock,
    ) -> Result<()> {
        let home = lock.home();
        fs::create_dir_all(&home)
            .with_context(|| format!("creating cache mount directory {}", home.display()))?;
        match fs::symlink_metadata(&home) {
            Ok(m) if m.is_dir() => {}
            _ => bail!(
                "cache mount {id:?}: {} is not a directory (the cache dir is damaged); remove it or run `kiln cache prune --all`",
                home.display()
            ),
        }
        let homes_dir = run_cache::run_cache_dir(&stage.env().opts.cache_dir);
        let homes = anchor::open_dir(&homes_dir)
            .with_context(|| format!("opening {}", homes_dir.display()))?;
        let canonical = self.place(stage, target)?.target.clone();
        let host = stage.rootfs()?.host_path(&canonical);
        lock.mark_mounted(&host)
            .with_context(|| format!("marking cache mount {id:?} in use"))?;
        let mounted = self.mounted.last_mut().expect("placed just now");
        if let Err(e) = mounted.place.move_in(&homes, lock.key()) {
            let _ = lock.clear_mark();
            return Err(e).with_context(|| {
                format!("moving cache {} into the step at {target}", home.display())
            });
        }
        let identity = mounted
            .place
            .lstat()
            .ok()
            .flatten()
            .map(|m| Identity::of(&m));
        let Some(identity) = identity else {
            bail!("cache mount {id:?}: moved into the step at {target}, then not found there");
        };
        mounted.cache = Some(MountedCache {
            lock,
            homes,
            identity,
            id: id.to_string(),
        });
        Ok(())
    }

    /// Makes room for a mount at `target`: resolves it in the record,
    /// creates missing parents, moves an existing entry aside. Returns the
    /// new [`Mounted`], whose anchor the mount is then made through.
    fn place(&mut self, stage: &mut StageExec<'_>, target: &ImagePath) -> Result<&Mounted> {
        if target.is_root() {
            bail!("cannot mount over /");
        }
        let rootfs = stage.rootfs()?;
        let canonical = rootfs
            .canonical(target)
            .map_err(|e| anyhow!("mount target {e}"))?;
        if self
            .mounted
            .iter()
            .any(|m| canonical.starts_with(&m.target))
        {
            bail!("mount target {target} is inside another mount of this step");
        }
        let anchor_at = |dir: &ImagePath| {
            rootfs
                .anchor(dir)
                .with_context(|| format!("mount target {target}: opening {dir}"))
        };
        let mut made_parents = Vec::new();
        for dir in canonical.ancestors() {
            let place = anchor_at(&dir)?;
            match place.lstat() {
                Ok(Some(m)) if m.is_dir() => {}
                Ok(Some(_)) => bail!("mount target {target}: {dir} is not a directory"),
                Ok(None) => {
                    place
                        .create_dir()
                        .with_context(|| format!("creating {dir} for a mount"))?;
                    made_parents.push((dir.clone(), place));
                }
                Err(e) => return Err(e).with_context(|| format!("examining {dir}")),
            }
        }
        let place = anchor_at(&canonical)?;
        let present = place
            .lstat()
            .with_context(|| format!("examining {canonical}"))?;
        let aside = match present {
            Some(_) => {
                let name = self.mounted.len().to_string();
                place
                    .move_out(&self.aside, &name)
                    .with_context(|| format!("moving {canonical} aside for a mount"))?;
                Some(name)
            }
            None => None,
        };
        self.mounted.push(Mounted {
            target: canonical,
            place,
            aside,
            made_parents,
            cache: None,
        });
        Ok(self.mounted.last().expect("pushed just now"))
    }

    /// The last mount placed may not be changed by the step.
    fn mark_read_only(&mut self) {
        if let Some(m) = self.mounted.last() {
            self.read_only.push(m.target.clone());
        }
    }

    /// Canonical image paths the step may not change.
    pub(super) fn read_only(&self) -> Vec<String> {
        self.read_only.iter().map(|p| p.to_absolute()).collect()
    }

    /// Canonical mount points, which the step may not move or remove (nor
    /// any directory above them): the anchors must still hold them after.
    pub(super) fn pinned(&self) -> Vec<String> {
        self.mounted
            .iter()
            .map(|m| m.target.to_absolute())
            .collect()
    }

    /// Where each cache directory of the cache dir was mounted, with its id
    /// (not the throw-away directory of a busy `sharing=private` mount).
    pub(super) fn cache_targets(&self) -> Vec<(ImagePath, String)> {
        self.mounted
            .iter()
            .filter_map(|m| Some((m.target.clone(), m.cache.as_ref()?.id.clone())))
            .collect()
    }

    /// Environment variables from `env=` secrets.
    pub(super) fn secret_env(&self) -> &[(String, String)] {
        &self.secret_env
    }

    /// Every secret given to the step, by id.
    pub(super) fn secret_values(&self) -> Vec<(String, Vec<u8>)> {
        self.secrets.clone()
    }

    /// Takes every mount down, puts back what was there, and returns the
    /// image paths whose changes must not reach the layer.
    pub(super) fn teardown(mut self) -> Result<Vec<ImagePath>> {
        self.done = true;
        let mut excluded = Vec::new();
        let mut first_err = None;
        for m in self.mounted.drain(..).rev() {
            if let Err(e) = undo(&m, &self.aside) {
                first_err.get_or_insert(e);
            }
            excluded.push(m.target.clone());
            for (dir, place) in m.made_parents.iter().rev() {
                // A parent the step also wrote into stays (and is not excluded).
                if place.remove_empty_dir() {
                    excluded.push(dir.clone());
                }
            }
        }
        let _ = fs::remove_dir_all(&self.aside_dir);
        match first_err {
            Some(e) => Err(e),
            None => Ok(excluded),
        }
    }
}

impl Drop for MountSet {
    /// A step that failed before teardown still gives back its caches and
    /// leaves no secret behind.
    fn drop(&mut self) {
        if !self.done {
            for m in self.mounted.drain(..).rev() {
                let _ = undo(&m, &self.aside);
            }
            let _ = fs::remove_dir_all(&self.aside_dir);
        }
    }
}

/// Takes one mount down through its anchor and puts back what was there.
fn undo(m: &Mounted, aside: &File) -> Result<()> {
    match &m.cache {
        Some(cache) => {
            // Only the directory that was moved in goes home: anything else
            // at the place (the step cannot replace a mount point, but
            // should it happen) is removed with the step's other files.
            let found = m.place.lstat().ok().flatten();
            let same = found
                .as_ref()
                .is_some_and(|meta| meta.is_dir() && Identity::of(meta) == cache.identity);
            if same {
                m.place
                    .move_out(&cache.homes, cache.lock.key())
                    .with_context(|| format!("moving cache mount {} back", m.target))?;
            } else {
                m.place
                    .remove_all()
                    .with_context(|| format!("removing mount {}", m.target))?;
            }
            // Only once it is home; otherwise the next holder recovers it.
            cache
                .lock
                .clear_mark()
                .with_context(|| format!("unmarking cache mount {}", m.target))?;
            if !same {
                bail!(
                    "cache mount {}: the directory at the mount point is not the one mounted; it was not put back in the cache",
                    m.target
                );
            }
        }
        None => m
            .place
            .remove_all()
            .with_context(|| format!("removing mount {}", m.target))?,
    }
    if let Some(name) = &m.aside {
        m.place
            .move_in(aside, name)
            .with_context(|| format!("restoring {}", m.target))?;
    }
    Ok(())
}

/// The bytes of `--secret id=ID`, or `None` if the build was given none.
fn read_secret(stage: &StageExec<'_>, id: &str) -> Result<Option<Vec<u8>>> {
    match stage.env().opts.secrets.iter().find(|s| s.id == id) {
        Some(secret) => secret.read().map(Some).map_err(|e| anyhow!(e)),
        None => Ok(None),
    }
}

/// Copies `src` of `tree` (a directory's contents, or one file) to the new
/// host path `dest`.
fn copy_tree(tree: &dyn SourceTree, src: &ImagePath, dest: &Path) -> Result<()> {
    let Some(entry) = tree.lstat(src)? else {
        bail!("{src} not found");
    };
    match entry.kind {
        EntryKind::Dir => {
            fs::create_dir(dest)?;
            for name in tree.read_dir(src)? {
                copy_tree(tree, &src.join(&name), &dest.join(&name))?;
            }
        }
        EntryKind::File { content, .. } => {
            let mut r = content.open()?;
            let mut w = fs::File::create_new(dest)?;
            io::copy(&mut r, &mut w)?;
        }
        EntryKind::Symlink { target } => {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&target, dest)?;
            #[cfg(not(unix))]
            let _ = target;
        }
        // Devices and fifos cannot be made unprivileged; a bind mount of
        // one shows nothing.
        _ => {}
    }
    Ok(())
}
