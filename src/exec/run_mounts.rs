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

use super::copy_step::source_tree;
use super::mounts::{Mount, Sharing};
use super::secrets::SecretSource;
use super::stage::{StageExec, StageResult};
use crate::snapshot::{EntryKind, ImagePath, SourceTree};
use crate::store::run_cache::{self, RunCacheLock};
use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where a heredoc-only RUN with a `#!` line is written for the step.
pub(super) const HEREDOC_PATH: &str = "/.kiln-run-heredoc";

/// One mount in place.
struct Mounted {
    target: ImagePath,
    host: PathBuf,
    /// What was at the target before, moved here.
    aside: Option<PathBuf>,
    /// Directories made to hold the target, outermost first.
    made_parents: Vec<(ImagePath, PathBuf)>,
    /// For cache mounts: the held cache id, which knows where the
    /// directory lives between builds.
    cache: Option<RunCacheLock>,
}

/// The mounts of one RUN step.
pub(super) struct MountSet {
    mounted: Vec<Mounted>,
    secret_env: Vec<(String, String)>,
    secrets: Vec<(String, Vec<u8>)>,
    /// Targets the step may not change (bind mounts without rw, secrets).
    read_only: Vec<ImagePath>,
    aside_dir: PathBuf,
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
        let mut set = MountSet {
            mounted: Vec::new(),
            secret_env: Vec::new(),
            secrets: Vec::new(),
            read_only: Vec::new(),
            aside_dir,
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
                let host = self.place(stage, &ImagePath::resolve(workdir, target), None)?;
                fs::create_dir(&host).with_context(|| format!("creating tmpfs mount {target}"))?;
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
                    let host = self.place(stage, &ImagePath::resolve(workdir, target), None)?;
                    fs::create_dir(&host)
                        .with_context(|| format!("creating private cache mount {target}"))?;
                    return Ok(());
                };
                if let Some(w) = warning {
                    stage.env().progress.warn(&w);
                }
                let home = lock.home();
                fs::create_dir_all(&home).with_context(|| {
                    format!("creating cache mount directory {}", home.display())
                })?;
                let host = self.place(stage, &ImagePath::resolve(workdir, target), Some(lock))?;
                if let Some(lock) = self.mounted.last().and_then(|m| m.cache.as_ref()) {
                    lock.mark_mounted(&host)
                        .with_context(|| format!("marking cache mount {id:?} in use"))?;
                }
                fs::rename(&home, &host).with_context(|| {
                    format!("moving cache {} into the step at {target}", home.display())
                })?;
                Ok(())
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
                let host = self.place(stage, &ImagePath::resolve(workdir, target), None)?;
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
        let host = self.place(stage, &target_path, None)?;
        fs::write(&host, bytes).with_context(|| format!("writing {target} for the step"))?;
        Ok(())
    }

    /// Makes room for a mount at `target`: resolves it in the record,
    /// creates missing parents, moves an existing entry aside. Returns the
    /// host path to create the mount at.
    fn place(
        &mut self,
        stage: &mut StageExec<'_>,
        target: &ImagePath,
        cache: Option<RunCacheLock>,
    ) -> Result<PathBuf> {
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
        let mut made_parents = Vec::new();
        for dir in canonical.ancestors() {
            let host = rootfs.host_path(&dir);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!("mount target {target}: {dir} is not a directory"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&host).with_context(|| format!("creating {dir} for a mount"))?;
                    made_parents.push((dir.clone(), host));
                }
                Err(e) => return Err(e).with_context(|| format!("examining {dir}")),
            }
        }
        let host = rootfs.host_path(&canonical);
        let aside = match fs::symlink_metadata(&host) {
            Ok(_) => {
                let to = self.aside_dir.join(self.mounted.len().to_string());
                fs::rename(&host, &to)
                    .with_context(|| format!("moving {canonical} aside for a mount"))?;
                Some(to)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("examining {canonical}")),
        };
        self.mounted.push(Mounted {
            target: canonical,
            host: host.clone(),
            aside,
            made_parents,
            cache,
        });
        Ok(host)
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
            if let Err(e) = undo(&m) {
                first_err.get_or_insert(e);
            }
            excluded.push(m.target.clone());
            for (dir, host) in m.made_parents.iter().rev() {
                // A parent the step also wrote into stays (and is not excluded).
                if fs::remove_dir(host).is_ok() {
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
                let _ = undo(&m);
            }
            let _ = fs::remove_dir_all(&self.aside_dir);
        }
    }
}

fn undo(m: &Mounted) -> Result<()> {
    match &m.cache {
        Some(cache) => {
            let home = cache.home();
            // Not moved in yet (setup failed half-way): nothing to move back.
            if fs::symlink_metadata(&m.host).is_ok() || fs::symlink_metadata(&home).is_err() {
                fs::rename(&m.host, &home)
                    .with_context(|| format!("moving cache mount {} back", m.target))?;
            }
            // Only once it is home; otherwise the next holder recovers it.
            cache
                .clear_mark()
                .with_context(|| format!("unmarking cache mount {}", m.target))?;
        }
        None => remove_any(&m.host).with_context(|| format!("removing mount {}", m.target))?,
    }
    if let Some(aside) = &m.aside {
        fs::rename(aside, &m.host).with_context(|| format!("restoring {}", m.target))?;
    }
    Ok(())
}

fn remove_any(host: &Path) -> io::Result<()> {
    match fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(host),
        Ok(_) => fs::remove_file(host),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The bytes of `--secret id=ID`, or `None` if the build was given none.
fn read_secret(stage: &StageExec<'_>, id: &str) -> Result<Option<Vec<u8>>> {
    let Some(secret) = stage.env().opts.secrets.iter().find(|s| s.id == id) else {
        return Ok(None);
    };
    match &secret.source {
        SecretSource::File(path) => fs::read(path)
            .map(Some)
            .with_context(|| format!("reading secret {id:?} from {}", path.display())),
        SecretSource::Env(var) => match std::env::var_os(var) {
            Some(v) => Ok(Some(v.to_string_lossy().into_owned().into_bytes())),
            None => bail!("secret {id:?}: environment variable {var} is not set"),
        },
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
