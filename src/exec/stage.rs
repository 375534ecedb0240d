//! Runs the instructions of one stage, in order, over its image config and
//! root filesystem.

use super::build::BuildEnv;
use super::metadata as meta;
use super::progress::Progress;
use super::sources::{BaseImage, LayerRef};
use crate::dockerfile::history;
use crate::dockerfile::instructions::{Command, Healthcheck, Instruction, Stage};
use crate::oci::config::{self, History, ImageConfig};
use crate::plan::args::{GlobalArgs, StageArgs, StageVars};
use crate::plan::platform::Platform;
use crate::plan::stages::{Source, StageGraph};
use crate::snapshot::rootfs::Rootfs;
use crate::snapshot::{Entry, EntryKind, ImagePath, Meta, SourceTree};
use anyhow::{anyhow, bail, Context as _, Result};
use std::sync::OnceLock;

/// What a finished stage leaves for later stages and for the exporter.
pub struct StageResult {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    /// The stage's tree, unpacked only if something reads it (COPY --from,
    /// type=local), so an image-only build never unpacks its base layers.
    tree: OnceLock<Rootfs>,
}

impl StageResult {
    /// A result no stage built (a named context that replaces the target).
    pub fn new(config: ImageConfig, layers: Vec<LayerRef>) -> StageResult {
        StageResult {
            config,
            layers,
            tree: OnceLock::new(),
        }
    }

    pub fn tree(&self, env: &BuildEnv<'_>) -> Result<&Rootfs> {
        if let Some(tree) = self.tree.get() {
            return Ok(tree);
        }
        let tree = unpack(env, &self.layers)?;
        Ok(self.tree.get_or_init(|| tree))
    }
}

/// A fresh tree in the build's scratch space with `layers` applied in order.
pub(super) fn unpack(env: &BuildEnv<'_>, layers: &[LayerRef]) -> Result<Rootfs> {
    let dir = tempfile::Builder::new()
        .prefix("rootfs-")
        .tempdir_in(env.scratch)?
        .keep();
    let mut fs = Rootfs::new(&dir)?;
    if !layers.is_empty() {
        // A build whose steps all hit the cache never gets here.
        env.progress.info(&format!(
            "unpacking {} layer(s) for a step that runs",
            layers.len()
        ));
    }
    for layer in layers {
        let blob = env.store.open_blob(&layer.digest)?;
        fs.apply_layer(
            std::io::BufReader::new(blob),
            &layer.media_type,
            &layer.digest.to_string(),
        )
        .with_context(|| format!("unpacking layer {}", layer.digest))?;
    }
    Ok(fs)
}

pub struct StageExec<'a> {
    env: &'a BuildEnv<'a>,
    graph: &'a StageGraph,
    globals: &'a GlobalArgs,
    index: usize,
    args: StageArgs<'a>,
    progress: &'a Progress,
    config: ImageConfig,
    layers: Vec<LayerRef>,
    rootfs: Option<Rootfs>,
    /// Whether this stage set CMD itself (a later ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The stage's platform: the target's unless FROM --platform says otherwise.
    platform: Platform,
    /// `--no-cache`, or `--no-cache-filter` names this stage: run every step.
    no_cache: bool,
    /// Steps answered from the step cache so far.
    cached_steps: usize,
    /// Whether the exported image contains this stage's layers (the target
    /// or a stage it is built FROM): what `--cache-to mode=min` exports.
    is_image_stage: bool,
    /// The progress entry of the instruction running now.
    step: Option<super::progress::StepHandle>,
}

impl<'a> StageExec<'a> {
    pub fn new(
        env: &'a BuildEnv<'a>,
        graph: &'a StageGraph,
        globals: &'a GlobalArgs,
        index: usize,
        progress: &'a Progress,
    ) -> Self {
        StageExec {
            env,
            graph,
            globals,
            index,
            args: globals.stage_scope(),
            progress,
            config: ImageConfig::default(),
            layers: Vec::new(),
            rootfs: None,
            cmd_set: false,
            platform: env.platform.clone(),
            no_cache: env.opts.no_cache,
            cached_steps: 0,
            is_image_stage: graph
                .target(env.opts.target.as_deref())
                .is_ok_and(|t| graph.base_chain(t).contains(&index)),
            step: None,
        }
    }

    pub fn run(mut self, stage: &Stage, earlier: &[OnceLock<StageResult>]) -> Result<StageResult> {
        let text = &self.env.dockerfile;
        let filter = &self.env.opts.no_cache_filter;
        let index_name = self.index.to_string();
        if filter.iter().any(|f| {
            stage
                .from
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(f))
                || *f == index_name
        }) {
            self.no_cache = true;
        }
        let at = |line: usize, e: anyhow::Error| anyhow::Error::from(text.error_at(line, e));
        let base_ref = self
            .env
            .lexer
            .process_word(&stage.from.image, &self.globals.from_scope())
            .map_err(|e| at(stage.start_line, e.into()))?;
        let mut stage_name = stage
            .from
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index));
        if self.env.multi_platform {
            stage_name = format!("{} {stage_name}", self.env.platform);
        }
        let steps = stage.commands.len() + 1;
        let from_step = self.progress.step(&stage_name, (1, steps), &stage.original);
        match self.start_stage(stage, &base_ref, earlier) {
            Ok(()) => from_step.done(),
            Err(e) => {
                from_step.failed(&crate::error_text::of(&e));
                return Err(e);
            }
        }
        for (i, ins) in stage.commands.iter().enumerate() {
            self.step = Some(
                self.progress
                    .step(&stage_name, (i + 2, steps), &ins.original),
            );
            let hits = self.cached_steps;
            let result = self.execute(ins, earlier);
            let step = self.step.take().expect("set above");
            match result {
                Err(e) => {
                    step.failed(&crate::error_text::of(&e));
                    return Err(at(ins.start_line, e));
                }
                Ok(()) if self.cached_steps > hits => step.cached(),
                Ok(()) => step.done(),
            }
        }
        let tree = OnceLock::new();
        if let Some(fs) = self.rootfs.take() {
            let _ = tree.set(fs);
        }
        Ok(StageResult {
            config: self.config,
            layers: self.layers,
            tree,
        })
    }

    /// Sets up the base: scratch, an earlier stage, or an external image.
    /// Returns the base's ONBUILD triggers.
    fn start_from(&mut self, base: &str, earlier: &[OnceLock<StageResult>]) -> Result<Vec<String>> {
        let platform = &self.platform;
        let base_image = match self.graph.resolve(base, self.index) {
            Source::Scratch => BaseImage::scratch(platform),
            // The new stage gets its own tree, unpacked from the same layers
            // when first needed; the earlier one stays readable for COPY --from.
            Source::Stage(i) => {
                let r = earlier[i].get().context("stage was not built")?;
                BaseImage {
                    config: r.config.clone(),
                    layers: r.layers.clone(),
                }
            }
            Source::External(name) => self.env.external.image(&name, platform)?,
        };
        let mut config = base_image.config;
        let triggers = config.config.on_build.take().unwrap_or_default();
        config.architecture = platform.architecture.clone();
        config.os = platform.os.clone();
        config.variant = platform.variant.clone();
        if config.config.env.is_none() {
            // Like BuildKit, an image without ENV gets the default PATH.
            meta::set_env(&mut config, "PATH", super::DEFAULT_PATH);
        }
        self.config = config;
        self.layers = base_image.layers;
        self.rootfs = None;
        Ok(triggers)
    }

    /// The stage's root filesystem, materialised on first use.
    pub(super) fn rootfs(&mut self) -> Result<&mut Rootfs> {
        if self.rootfs.is_none() {
            self.rootfs = Some(unpack(self.env, &self.layers)?);
        }
        Ok(self.rootfs.as_mut().expect("just set"))
    }

    fn vars(&self) -> StageVars<'_> {
        StageVars {
            env: meta::env_list(&self.config),
            args: self.args.declared(),
        }
    }

    pub(super) fn expand(&self, word: &str) -> Result<String> {
        Ok(self.env.lexer.process_word(word, &self.vars())?)
    }

    pub(super) fn shell(&self) -> Vec<String> {
        self.config
            .config
            .shell
            .clone()
            .unwrap_or_else(meta::default_shell)
    }

    fn history(&mut self, created_by: String, empty_layer: bool) {
        self.config.history.push(History {
            created: Some(meta::timestamp(self.env.opts.source_date_epoch)),
            created_by: Some(created_by),
            author: None,
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer,
        });
    }

    fn expand_pairs(&self, pairs: &[(String, String)]) -> Result<Vec<(String, String)>> {
        pairs
            .iter()
            .map(|(k, v)| Ok((self.expand(k)?, self.expand(v)?)))
            .collect()
    }

    fn execute(&mut self, ins: &Instruction, earlier: &[OnceLock<StageResult>]) -> Result<()> {
        let created_by = match &ins.command {
            Command::Arg(args) => {
                for (name, default) in args {
                    let default = match default {
                        Some(d) => Some(self.expand(d)?),
                        None => None,
                    };
                    self.args.declare(name, default);
                }
                return Ok(()); // BuildKit records no history for ARG.
            }
            Command::Env(pairs) => {
                // All values expand against the env before this instruction.
                let pairs = self.expand_pairs(pairs)?;
                for (k, v) in &pairs {
                    if k.is_empty() {
                        bail!("ENV names can not be blank");
                    }
                    meta::set_env(&mut self.config, k, v);
                }
                history::key_values("ENV", &pairs)
            }
            Command::Label(pairs) => {
                let pairs = self.expand_pairs(pairs)?;
                for (k, v) in &pairs {
                    if k.is_empty() {
                        bail!("LABEL names can not be blank");
                    }
                    meta::add_label(&mut self.config, k, v);
                }
                history::key_values("LABEL", &pairs)
            }
            Command::Maintainer(who) => {
                let who = self.expand(who)?;
                self.config.author = Some(who.clone());
                format!("MAINTAINER {who}")
            }
            Command::Expose(ports) => {
                let mut words = Vec::new();
                for p in ports {
                    words.extend(self.env.lexer.process_words(p, &self.vars())?);
                }
                for w in &words {
                    meta::expose(&mut self.config, w).map_err(|e| anyhow!(e))?;
                }
                history::plain_list("EXPOSE", &words)
            }
            Command::Volume(paths) => {
                let mut expanded = Vec::new();
                for p in paths {
                    let p = self.expand(p)?;
                    meta::add_volume(&mut self.config, &p).map_err(|e| anyhow!(e))?;
                    expanded.push(p);
                }
                history::plain_list("VOLUME", &expanded)
            }
            Command::User(user) => {
                let user = self.expand(user)?;
                self.config.config.user = Some(user.clone());
                format!("USER {user}")
            }
            Command::Stopsignal(sig) => {
                let sig = self.expand(sig)?;
                self.config.config.stop_signal = Some(sig.clone());
                format!("STOPSIGNAL {sig}")
            }
            Command::Shell(shell) => {
                if shell.is_empty() {
                    bail!("SHELL requires at least one argument");
                }
                self.config.config.shell = Some(shell.clone());
                history::plain_list("SHELL", shell)
            }
            Command::Cmd(line) => {
                let v = line.argv(&self.shell());
                meta::set_cmd(&mut self.config, v.clone());
                self.cmd_set = true;
                history::quoted_list("CMD", &v)
            }
            Command::Entrypoint(line) => {
                let v = line.argv(&self.shell());
                meta::set_entrypoint(&mut self.config, v.clone(), self.cmd_set);
                history::quoted_list("ENTRYPOINT", &v)
            }
            Command::Healthcheck(check) => {
                let hc = healthcheck_config(check);
                let text = ins.history_text().unwrap_or_default();
                meta::set_healthcheck(&mut self.config, hc);
                text
            }
            Command::Onbuild(trigger) => {
                meta::add_onbuild(&mut self.config, trigger);
                return Ok(()); // BuildKit records no history for ONBUILD.
            }
            Command::Workdir(dir) => {
                let dir = self.expand(dir)?;
                let path = ImagePath::resolve(&self.workdir(), &dir);
                self.config.config.working_dir = Some(path.to_absolute());
                let created_by = format!("WORKDIR {}", path.to_absolute());
                let mut key = self.step_key("WORKDIR");
                key.str("path", &path.to_absolute());
                self.cached_step(key.finish(), |stage| {
                    let entries = stage.workdir_entries(&path)?;
                    Ok(StepOutput {
                        created_by,
                        entries,
                        applied: false,
                    })
                })?;
                return Ok(());
            }
            Command::Copy(copy) => {
                let step = super::copy_step::CopyStep::from_copy(copy);
                return self.copy(&step, earlier);
            }
            Command::Add(add) => {
                let step = super::copy_step::CopyStep::from_add(add)?;
                return self.copy(&step, earlier);
            }
            Command::Run(run) => {
                let prepared = super::run::prepare(self, run)?;
                let key = super::run::cache_key(self, &prepared, earlier)?;
                self.cached_step(key, |stage| {
                    let result = super::run::execute(stage, prepared, earlier)?;
                    Ok(StepOutput {
                        created_by: result.created_by,
                        entries: result.entries,
                        applied: true,
                    })
                })?;
                return Ok(());
            }
        };
        self.history(created_by, true);
        Ok(())
    }

    pub(super) fn workdir(&self) -> ImagePath {
        ImagePath::resolve(
            &ImagePath::root(),
            self.config.config.working_dir.as_deref().unwrap_or("/"),
        )
    }

    /// The layer WORKDIR writes: its directory and parents when one is
    /// missing (existing ones as they are), else nothing.
    fn workdir_entries(&mut self, path: &ImagePath) -> Result<Vec<Entry>> {
        if path.is_root() {
            return Ok(Vec::new());
        }
        let sde = self.env.opts.source_date_epoch;
        let rootfs = self.rootfs()?;
        let mut entries = Vec::new();
        let mut missing = false;
        for p in path
            .ancestors()
            .into_iter()
            .chain(std::iter::once(path.clone()))
        {
            match rootfs.lstat(&p)? {
                Some(Entry {
                    kind: EntryKind::Dir,
                    meta,
                    ..
                }) => entries.push(Entry {
                    path: p,
                    kind: EntryKind::Dir,
                    meta,
                }),
                None => {
                    missing = true;
                    entries.push(Entry {
                        path: p,
                        kind: EntryKind::Dir,
                        meta: Meta {
                            mtime: sde,
                            ..Meta::new(0o755)
                        },
                    })
                }
                Some(_) => bail!("cannot create WORKDIR {path}: {p} exists and is not a directory"),
            }
        }
        Ok(if missing { entries } else { Vec::new() })
    }

    /// FROM: the stage's platform, its base, and the base's ONBUILD
    /// triggers (run first, as if written after FROM).
    fn start_stage(
        &mut self,
        stage: &Stage,
        base_ref: &str,
        earlier: &[OnceLock<StageResult>],
    ) -> Result<()> {
        let text = self.env.dockerfile;
        let at = |line: usize, e: anyhow::Error| anyhow::Error::from(text.error_at(line, e));
        if let Some(p) = &stage.from.platform {
            let p = self
                .env
                .lexer
                .process_word(p, &self.globals.from_scope())
                .map_err(|e| at(stage.start_line, e.into()))?;
            // RUN is WebAssembly, so a stage for another platform (say
            // `FROM --platform=$BUILDPLATFORM`) needs no emulation: it only
            // selects that platform's base image and config fields.
            self.platform = p
                .parse()
                .map_err(|e| at(stage.start_line, anyhow!("{e}")))?;
        }
        let triggers = self
            .start_from(base_ref, earlier)
            .map_err(|e| at(stage.start_line, e))?;
        for trigger in triggers {
            let ins = parse_trigger(&trigger).map_err(|e| at(stage.start_line, e))?;
            self.execute(&ins, earlier).map_err(|e| {
                at(
                    stage.start_line,
                    e.context(format!("ONBUILD trigger {trigger:?} of the base image")),
                )
            })?;
        }
        Ok(())
    }

    /// Runs a step that may write a layer through the step cache: on a hit
    /// the recorded layer and history are reused and `run` is not called
    /// (nothing is unpacked); otherwise `run` executes the step, its layer
    /// is written and recorded under `key`.
    fn cached_step(
        &mut self,
        key: crate::digest::Digest,
        run: impl FnOnce(&mut Self) -> Result<StepOutput>,
    ) -> Result<()> {
        let cache = &self.env.steps;
        let shared = self.env.registry_cache;
        if !self.no_cache {
            let hit = cache
                .lookup(&key, self.env.store)
                .or_else(|| shared.lookup(&key, cache, self.env.store, self.env.progress));
            if let Some(record) = hit {
                shared.note_step(&key, &record, self.is_image_stage);
                self.reuse(record)?;
                self.cached_steps += 1;
                return Ok(());
            }
        }
        let StepOutput {
            created_by,
            mut entries,
            applied,
        } = run(self)?;
        // Before the layer and the cache record store the line.
        let secrets = self.env.used_secrets.values(&self.env.opts.secrets);
        super::secret_scan::refuse_in_history(self.config.history.len(), &created_by, &secrets)?;
        let layer = if entries.is_empty() {
            None
        } else {
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            // The tree later steps see must be the one the layer records
            // (mtimes clamped to SOURCE_DATE_EPOCH), or a step would see
            // different mtimes after a cache hit than after a run.
            let sde = self.env.opts.source_date_epoch;
            for e in &mut entries {
                e.meta.mtime = e.meta.mtime.min(sde);
            }
            if applied {
                self.rootfs()?
                    .clamp_mtimes(entries.iter().map(|e| &e.path), sde);
            } else {
                self.rootfs()?.apply_entries(&entries)?;
            }
            self.push_layer(entries)?;
            self.layers.last().map(|l| crate::store::CachedLayer {
                digest: l.digest.to_string(),
                diff_id: l.diff_id.to_string(),
                media_type: l.media_type.clone(),
                size: l.size,
            })
        };
        self.history(created_by.clone(), layer.is_none());
        let record = crate::store::StepRecord::new(created_by, layer);
        shared.note_step(&key, &record, self.is_image_stage);
        if let Err(e) = cache.record(&key, &record) {
            // The build is fine without it; the next one runs the step again.
            self.progress
                .warn(&format!("could not record step in the cache: {e}"));
        }
        Ok(())
    }

    /// Applies a cache hit: the recorded layer joins the image (and the
    /// rootfs, if one is already unpacked), the history entry is the same.
    fn reuse(&mut self, record: crate::store::StepRecord) -> Result<()> {
        if let Some(layer) = &record.layer {
            let layer = LayerRef {
                media_type: layer.media_type.clone(),
                digest: layer.digest.parse()?,
                size: layer.size,
                diff_id: layer.diff_id.parse()?,
            };
            if let Some(rootfs) = self.rootfs.as_mut() {
                let blob = self.env.store.open_blob(&layer.digest)?;
                rootfs
                    .apply_layer(
                        std::io::BufReader::new(blob),
                        &layer.media_type,
                        &layer.digest.to_string(),
                    )
                    .with_context(|| format!("applying cached layer {}", layer.digest))?;
            }
            self.config.rootfs.diff_ids.push(layer.diff_id.clone());
            self.layers.push(layer);
        }
        self.history(record.created_by, record.layer.is_none());
        Ok(())
    }

    /// A key for a step of `kind` over the stage's current layers.
    pub(super) fn step_key(&self, kind: &str) -> super::step_key::StepKey {
        super::step_key::StepKey::new(
            kind,
            &self.diff_ids(),
            &self.platform.to_string(),
            self.env.opts.source_date_epoch,
        )
    }

    /// Writes `entries` as a new layer of the image (the rootfs already
    /// reflects them, as after RUN).
    fn push_layer(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes: u64 = entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::File { size, .. } => *size,
                _ => 0,
            })
            .sum();
        // Compressing and hashing a big layer takes a while: say so.
        let _task = (bytes >= BIG_LAYER).then(|| {
            self.progress.task(&format!(
                "writing a layer of {} entries, {:.1} MiB",
                entries.len(),
                bytes as f64 / (1024.0 * 1024.0)
            ))
        });
        let layer = crate::oci::layer::write_layer(
            self.env.store,
            entries,
            &crate::oci::layer::LayerOptions {
                source_date_epoch: self.env.opts.source_date_epoch,
            },
        )?;
        self.config.rootfs.diff_ids.push(layer.diff_id.clone());
        self.layers.push(LayerRef::from_kiln_layer(&layer));
        Ok(())
    }

    /// Where the running instruction's output goes.
    pub(super) fn step_log(&self) -> super::progress::RunLog {
        match &self.step {
            Some(step) => step.log(),
            None => self.progress.run_output(),
        }
    }

    /// USER as written (not resolved: its meaning is in the layers).
    pub(super) fn user(&self) -> Option<&str> {
        self.config.config.user.as_deref()
    }

    /// The image config's ENV entries (`NAME=value`).
    pub(super) fn config_env(&self) -> &[String] {
        meta::env_list(&self.config)
    }

    pub(super) fn declared_args(&self) -> &crate::plan::args::VarList {
        self.args.declared()
    }

    /// The layers so far, for the step's identity.
    pub(super) fn diff_ids(&self) -> Vec<String> {
        self.config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    /// uid and gid of USER (numeric, or looked up in the stage's
    /// /etc/passwd and /etc/group); root when USER is not set.
    pub(super) fn user_ids(&mut self) -> Result<(u32, u32)> {
        let user = match self.config.config.user.clone() {
            None => return Ok((0, 0)),
            Some(u) if u.is_empty() || u == "root" || u == "0" => return Ok((0, 0)),
            Some(u) => u,
        };
        let (name, group) = match user.split_once(':') {
            Some((n, g)) => (n.to_string(), Some(g.to_string())),
            None => (user.clone(), None),
        };
        if group.is_none() {
            if let Ok(uid) = name.parse::<u32>() {
                // A numeric USER without a passwd entry runs with gid 0.
                return Ok(
                    match super::copy_step::resolve_chown(&name, self.rootfs()?) {
                        Ok(ids) if ids.0 == uid => ids,
                        _ => (uid, 0),
                    },
                );
            }
        }
        super::copy_step::resolve_chown(&user, self.rootfs()?)
            .with_context(|| format!("USER {user}: unable to find the user in the stage"))
    }

    /// Runs a COPY/ADD through the step cache.
    fn copy(
        &mut self,
        step: &super::copy_step::CopyStep<'_>,
        earlier: &[OnceLock<StageResult>],
    ) -> Result<()> {
        let args = super::copy_step::expand(self, step)?;
        let key = super::copy_step::cache_key(self, step, &args, earlier)?;
        self.cached_step(key, |stage| {
            let (entries, created_by) = super::copy_step::run(stage, step, &args, earlier)?;
            Ok(StepOutput {
                created_by,
                entries,
                applied: false,
            })
        })
    }

    pub(super) fn env(&self) -> &'a BuildEnv<'a> {
        self.env
    }

    pub(super) fn resolve_source(&self, reference: &str) -> Source {
        self.graph.resolve(reference, self.index)
    }

    /// What `--from=reference` (the build context when `None`) reads, as
    /// "not found" messages name it.
    pub(super) fn describe_source(&self, reference: Option<&str>) -> String {
        let Some(reference) = reference else {
            return "the build context (or excluded by .dockerignore)".into();
        };
        match self.resolve_source(reference) {
            Source::Stage(i) => format!("stage {:?}", self.graph.display_name(i)),
            Source::Scratch => "scratch".into(),
            Source::External(name) => match self.env.external.directory(&name) {
                Some(dir) => format!("build context {name}={}", dir.display()),
                None => format!("image {name}"),
            },
        }
    }
}

/// Layers with at least this many bytes of file content show progress.
const BIG_LAYER: u64 = 32 << 20;

/// What a layer step produced when it ran.
struct StepOutput {
    created_by: String,
    entries: Vec<Entry>,
    /// Whether the rootfs already shows the entries (RUN changed it in place).
    applied: bool,
}

/// What the files a step takes from `from` (the context when `None`, an
/// earlier stage, a named context or image) are, for its cache key: a
/// content digest of the matched `sources` in a directory, the layers of a
/// stage or image (their diff ids already name their content).
pub(super) fn source_identity(
    stage: &StageExec<'_>,
    from: Option<&str>,
    sources: &[String],
    parents: bool,
    earlier: &[OnceLock<StageResult>],
) -> Result<String> {
    let env = stage.env();
    let sde = env.opts.source_date_epoch;
    let tree_identity = |tree: &dyn crate::snapshot::SourceTree| -> Result<String> {
        let roots = super::copy::matched_sources(tree, sources, parents)
            .map_err(|e| e.in_source(&stage.describe_source(from)))?;
        Ok(super::step_key::tree_digest(tree, &roots, sde)?.to_string())
    };
    let layers_identity = |kind: &str, layers: &[LayerRef]| {
        let ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        format!("{kind} {}", ids.join(" "))
    };
    let Some(from) = from else {
        return tree_identity(env.context);
    };
    match stage.resolve_source(from) {
        Source::Stage(i) => {
            let r = earlier[i].get().context("stage was not built")?;
            if sources.is_empty() {
                return Ok(layers_identity("stage", &r.layers));
            }
            // By content, not by layers: a stage that re-ran and made the
            // same files lets this step hit (early cutoff across stages).
            // The digest is remembered per layer chain, so a stage that
            // hit the cache is not unpacked to compute it again.
            let diff_ids: Vec<String> = r.layers.iter().map(|l| l.diff_id.to_string()).collect();
            let mut memo = super::step_key::StepKey::new(
                "stage files",
                &diff_ids,
                &stage.platform.to_string(),
                sde,
            );
            memo.list("sources", sources)
                .str("parents", if parents { "1" } else { "0" });
            let memo = memo.finish();
            if let Some(known) = env
                .steps
                .recall_digest(&memo)
                .or_else(|| env.registry_cache.recall_digest(&memo))
            {
                env.registry_cache.note_digest(&memo, &known);
                return Ok(format!("files {known}"));
            }
            let tree = r.tree(env)?;
            let roots = super::copy::matched_sources(tree, sources, parents)
                .map_err(|e| e.in_source(&stage.describe_source(Some(from))))?;
            let digest = super::step_key::tree_digest(tree, &roots, sde)?;
            let _ = env.steps.remember_digest(&memo, &digest);
            env.registry_cache.note_digest(&memo, &digest);
            Ok(format!("files {digest}"))
        }
        Source::Scratch => bail!("--from=scratch: scratch has no files"),
        Source::External(name) => match env.external.directory(&name) {
            Some(dir) => {
                let ctx = crate::context::Context::open_named(dir)
                    .with_context(|| format!("opening build context {name}={}", dir.display()))?;
                tree_identity(&ctx)
            }
            None => {
                let image = env.external.image(&name, &env.platform)?;
                Ok(layers_identity("image", &image.layers))
            }
        },
    }
}

/// HEALTHCHECK into the config's form: shell-form tests already carry
/// `CMD-SHELL` from the parser.
fn healthcheck_config(check: &Healthcheck) -> config::Healthcheck {
    match check {
        Healthcheck::None => config::Healthcheck {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        },
        Healthcheck::Cmd {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => config::Healthcheck {
            test: Some(test.clone()),
            interval: interval.as_nanos() as i64,
            timeout: timeout.as_nanos() as i64,
            start_period: start_period.as_nanos() as i64,
            start_interval: start_interval.as_nanos() as i64,
            retries: i64::from(*retries),
        },
    }
}

/// Parses one ONBUILD trigger expression as an instruction.
fn parse_trigger(trigger: &str) -> Result<Instruction> {
    let source = format!("FROM scratch\n{trigger}\n");
    let ast = crate::dockerfile::parse(&source)
        .map_err(|e| anyhow!("invalid ONBUILD trigger {trigger:?}: {e}"))?;
    let parsed = crate::dockerfile::instructions::parse_instructions(&ast)
        .map_err(|e| anyhow!("invalid ONBUILD trigger {trigger:?}: {e}"))?;
    let ins = parsed
        .stages
        .into_iter()
        .next()
        .and_then(|s| s.commands.into_iter().next())
        .ok_or_else(|| anyhow!("empty ONBUILD trigger"))?;
    match ins.command {
        Command::Onbuild(_) => bail!("ONBUILD ONBUILD is not allowed"),
        _ => Ok(ins),
    }
}
