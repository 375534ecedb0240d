//! Runs the instructions of one stage, in order, over its image config and
//! root filesystem.

use super::build::{step_error, BuildEnv};
use super::metadata as meta;
use super::progress::Progress;
use super::sources::{BaseImage, LayerRef};
use crate::dockerfile::instructions::{Command, CommandLine, CopyArgs, Instruction, Stage};
use crate::oci::config::{History, ImageConfig};
use crate::plan::args::{GlobalArgs, StageArgs, StageVars};
use crate::plan::stages::{Source, StageGraph};
use crate::snapshot::rootfs::Rootfs;
use crate::snapshot::{Entry, EntryKind, ImagePath, Meta};
use anyhow::{anyhow, bail, Context as _, Result};

/// What a finished stage leaves for later stages and for the exporter.
pub struct StageResult {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    pub rootfs: Rootfs,
}

pub struct StageExec<'a> {
    env: &'a BuildEnv<'a>,
    graph: &'a StageGraph,
    index: usize,
    args: StageArgs<'a>,
    progress: &'a Progress,
    config: ImageConfig,
    layers: Vec<LayerRef>,
    rootfs: Option<Rootfs>,
    /// Whether this stage set CMD itself (ENTRYPOINT then keeps it).
    cmd_set: bool,
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
            index,
            args: globals.stage_scope(),
            progress,
            config: ImageConfig::default(),
            layers: Vec::new(),
            rootfs: None,
            cmd_set: false,
        }
    }

    pub fn run(mut self, stage: &Stage, earlier: &[Option<StageResult>]) -> Result<StageResult> {
        let file = &self.env.dockerfile_name;
        let base_ref = self
            .env
            .lexer
            .process_word(&stage.base, &self.args_globals_scope())
            .map_err(|e| step_error(file, &stage.location, e.into()))?;
        self.progress
            .step(self.index, &stage.location.original, false);
        let onbuild = self
            .start_from(&base_ref, earlier)
            .map_err(|e| step_error(file, &stage.location, e))?;
        // ONBUILD triggers of the base run first, as if written after FROM.
        for trigger in onbuild {
            let ins = crate::dockerfile::instructions::parse_trigger(&trigger)
                .map_err(|e| step_error(file, &stage.location, anyhow!("ONBUILD trigger {trigger:?}: {e}")))?;
            self.execute(&ins, earlier)
                .map_err(|e| step_error(file, &stage.location, e.context(format!("ONBUILD trigger {trigger:?}"))))?;
        }
        for ins in &stage.instructions {
            self.progress.step(self.index, &ins.location.original, false);
            self.execute(ins, earlier)
                .map_err(|e| step_error(file, &ins.location, e))?;
        }
        // Later stages may COPY --from this one: leave its tree materialised.
        self.rootfs()?;
        let rootfs = self.rootfs.take().expect("materialised above");
        Ok(StageResult {
            config: self.config,
            layers: self.layers,
            rootfs,
        })
    }

    fn args_globals_scope(&self) -> StageVars<'_> {
        StageVars {
            env: &[],
            args: self.args.declared(),
        }
    }

    /// Sets up the base: scratch, an earlier stage, or an external image.
    /// Returns the base's ONBUILD triggers.
    fn start_from(&mut self, base: &str, earlier: &[Option<StageResult>]) -> Result<Vec<String>> {
        let platform = &self.env.opts.platform;
        let base_image = match self.graph.resolve(base, self.index) {
            Source::Scratch => BaseImage::scratch(platform),
            Source::Stage(i) => {
                let r = earlier[i].as_ref().context("stage was not built")?;
                // The new stage gets its own tree, unpacked from the same
                // layers when first needed; the earlier one stays readable
                // for COPY --from. Its ONBUILD triggers run here, as in BuildKit.
                BaseImage {
                    config: r.config.clone(),
                    layers: r.layers.clone(),
                }
            }
            Source::External(name) => self.env.external.image(&name)?,
        };
        let mut config = base_image.config;
        // A stage's own metadata starts from the base's; history continues.
        let triggers = config.config.on_build.take().unwrap_or_default();
        config.architecture = platform.architecture.clone();
        config.os = platform.os.clone();
        config.variant = platform.variant.clone();
        if config.config.env.is_none() && config.rootfs.diff_ids.is_empty() {
            // Like BuildKit, scratch gets the default PATH.
            meta::set_env(&mut config, "PATH", super::DEFAULT_PATH);
        }
        self.config = config;
        self.layers = base_image.layers;
        self.rootfs = None;
        Ok(triggers)
    }

    /// The stage's root filesystem, materialised on first use.
    fn rootfs(&mut self) -> Result<&mut Rootfs> {
        if self.rootfs.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("rootfs-")
                .tempdir_in(self.env.scratch)?
                .keep();
            let mut fs = Rootfs::new(&dir)?;
            for layer in &self.layers {
                let blob = self.env.store.open_blob(&layer.digest)?;
                fs.apply_layer(blob, &layer.media_type)
                    .with_context(|| format!("unpacking base layer {}", layer.digest))?;
            }
            self.rootfs = Some(fs);
        }
        Ok(self.rootfs.as_mut().expect("just set"))
    }

    fn vars(&self) -> StageVars<'_> {
        StageVars {
            env: meta::env_list(&self.config),
            args: self.args.declared(),
        }
    }

    fn expand(&self, word: &str) -> Result<String> {
        Ok(self.env.lexer.process_word(word, &self.vars())?)
    }

    fn shell(&self) -> Vec<String> {
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

    fn execute(&mut self, ins: &Instruction, earlier: &[Option<StageResult>]) -> Result<()> {
        let history_text = ins.history_text();
        match &ins.command {
            Command::Arg(args) => {
                for (name, default) in args {
                    let default = match default {
                        Some(d) => Some(self.expand(d)?),
                        None => None,
                    };
                    self.args.declare(name, default);
                }
                // BuildKit records no history for ARG.
                return Ok(());
            }
            Command::Env(pairs) => {
                // All values expand against the env before this instruction.
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((self.expand(k)?, self.expand(v)?));
                }
                for (k, v) in expanded {
                    if k.is_empty() {
                        bail!("ENV names can not be blank");
                    }
                    meta::set_env(&mut self.config, &k, &v);
                }
            }
            Command::Label(pairs) => {
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((self.expand(k)?, self.expand(v)?));
                }
                for (k, v) in expanded {
                    if k.is_empty() {
                        bail!("LABEL names can not be blank");
                    }
                    meta::add_label(&mut self.config, &k, &v);
                }
            }
            Command::Maintainer(who) => self.config.author = Some(who.clone()),
            Command::Expose(ports) => {
                for p in ports {
                    for word in self.env.lexer.process_words(p, &self.vars())? {
                        meta::expose(&mut self.config, &word).map_err(|e| anyhow!(e))?;
                    }
                }
            }
            Command::Volume(paths) => {
                for p in paths {
                    let p = self.expand(p)?;
                    meta::add_volume(&mut self.config, &p).map_err(|e| anyhow!(e))?;
                }
            }
            Command::User(user) => self.config.config.user = Some(self.expand(user)?),
            Command::Stopsignal(sig) => self.config.config.stop_signal = Some(self.expand(sig)?),
            Command::Shell(shell) => {
                if shell.is_empty() {
                    bail!("SHELL requires at least one argument");
                }
                self.config.config.shell = Some(shell.clone());
            }
            Command::Cmd(line) => {
                let v = self.command_vector(line);
                meta::set_cmd(&mut self.config, v);
                self.cmd_set = true;
            }
            Command::Entrypoint(line) => {
                let v = self.command_vector(line);
                meta::set_entrypoint(&mut self.config, v, self.cmd_set);
            }
            Command::Healthcheck(check) => {
                meta::set_healthcheck(&mut self.config, check.to_config());
            }
            Command::Onbuild(trigger) => meta::add_onbuild(&mut self.config, trigger),
            Command::Workdir(dir) => {
                let dir = self.expand(dir)?;
                let current = ImagePath::resolve(
                    &ImagePath::root(),
                    self.config.config.working_dir.as_deref().unwrap_or("/"),
                );
                let path = ImagePath::resolve(&current, &dir);
                self.config.config.working_dir = Some(path.to_absolute());
                let created = self.ensure_dir(&path)?;
                self.history(history_text, !created);
                return Ok(());
            }
            Command::Copy(copy) => {
                self.copy(copy, false, earlier)?;
                self.history(history_text, false);
                return Ok(());
            }
            Command::Add(copy) => {
                self.copy(copy, true, earlier)?;
                self.history(history_text, false);
                return Ok(());
            }
            Command::Run(_) => {
                bail!("{}", kiln_runtime::run_unsupported_message("RUN"));
            }
        }
        self.history(history_text, true);
        Ok(())
    }

    fn command_vector(&self, line: &CommandLine) -> Vec<String> {
        match line {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(text) => meta::command_vector(None, text, &self.shell()),
        }
    }

    fn workdir(&self) -> ImagePath {
        ImagePath::resolve(
            &ImagePath::root(),
            self.config.config.working_dir.as_deref().unwrap_or("/"),
        )
    }

    /// WORKDIR creates its directory (and parents) when missing, as a layer.
    /// Returns whether it wrote one.
    fn ensure_dir(&mut self, path: &ImagePath) -> Result<bool> {
        if path.is_root() {
            return Ok(false);
        }
        let rootfs = self.rootfs()?;
        let mut entries = Vec::new();
        for p in path.ancestors().into_iter().chain(std::iter::once(path.clone())) {
            match rootfs.kind_of(&p) {
                Some(crate::snapshot::rootfs::NodeKind::Dir) => {}
                None => entries.push(Entry {
                    path: p,
                    kind: EntryKind::Dir,
                    meta: Meta {
                        mtime: self.env.opts.source_date_epoch,
                        ..Meta::new(0o755)
                    },
                }),
                Some(_) => bail!("cannot create WORKDIR {path}: {p} exists and is not a directory"),
            }
        }
        if entries.is_empty() {
            return Ok(false);
        }
        // Parents that exist are part of the layer too, unchanged.
        let mut all = Vec::new();
        for p in path.ancestors() {
            if let Some(e) = rootfs.entry(&p) {
                if !entries.iter().any(|x| x.path == p) {
                    all.push(e);
                }
            }
        }
        all.extend(entries);
        self.commit_layer(all)?;
        Ok(true)
    }

    /// Writes `entries` as a new layer and applies them to the rootfs.
    fn commit_layer(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let layer = crate::oci::layer::write_layer(
            self.env.store,
            entries.clone(),
            &crate::oci::layer::LayerOptions {
                source_date_epoch: self.env.opts.source_date_epoch,
            },
        )?;
        self.rootfs()?.apply_entries(&entries)?;
        self.config.rootfs.diff_ids.push(layer.diff_id.clone());
        self.layers.push(LayerRef::from_kiln_layer(&layer));
        Ok(())
    }

    fn copy(&mut self, copy: &CopyArgs, is_add: bool, earlier: &[Option<StageResult>]) -> Result<()> {
        let entries = super::copy_step::entries(self, copy, is_add, earlier)?;
        self.commit_layer(entries)
    }
}

/// What COPY/ADD need from the running stage.
impl super::copy_step::StageView for StageExec<'_> {
    fn env(&self) -> &BuildEnv<'_> {
        self.env
    }
    fn expand(&self, word: &str) -> Result<String> {
        StageExec::expand(self, word)
    }
    fn workdir(&self) -> ImagePath {
        StageExec::workdir(self)
    }
    fn graph_resolve(&self, reference: &str) -> Source {
        self.graph.resolve(reference, self.index)
    }
    fn rootfs(&mut self) -> Result<&mut Rootfs> {
        StageExec::rootfs(self)
    }
}
