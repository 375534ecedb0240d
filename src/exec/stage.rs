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
            platform: env.opts.platform.clone(),
        }
    }

    pub fn run(mut self, stage: &Stage, earlier: &[Option<StageResult>]) -> Result<StageResult> {
        let text = &self.env.dockerfile;
        let at = |line: usize, e: anyhow::Error| anyhow::Error::from(text.error_at(line, e));
        let base_ref = self
            .env
            .lexer
            .process_word(&stage.from.image, &self.globals.from_scope())
            .map_err(|e| at(stage.start_line, e.into()))?;
        let stage_name = stage
            .from
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index));
        let steps = stage.commands.len() + 1;
        let from_step = self.progress.step(&stage_name, (1, steps), &stage.original);
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
            .start_from(&base_ref, earlier)
            .map_err(|e| at(stage.start_line, e))?;
        // ONBUILD triggers of the base run first, as if written after FROM.
        for trigger in triggers {
            let ins = parse_trigger(&trigger).map_err(|e| at(stage.start_line, e))?;
            self.execute(&ins, earlier).map_err(|e| {
                at(
                    stage.start_line,
                    e.context(format!("ONBUILD trigger {trigger:?} of the base image")),
                )
            })?;
        }
        from_step.done();
        for (i, ins) in stage.commands.iter().enumerate() {
            let step = self
                .progress
                .step(&stage_name, (i + 2, steps), &ins.original);
            if let Err(e) = self.execute(ins, earlier) {
                step.failed(&format!("{e:#}"));
                return Err(at(ins.start_line, e));
            }
            step.done();
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
    fn start_from(&mut self, base: &str, earlier: &[Option<StageResult>]) -> Result<Vec<String>> {
        let platform = &self.platform;
        let base_image = match self.graph.resolve(base, self.index) {
            Source::Scratch => BaseImage::scratch(platform),
            // The new stage gets its own tree, unpacked from the same layers
            // when first needed; the earlier one stays readable for COPY --from.
            Source::Stage(i) => {
                let r = earlier[i].as_ref().context("stage was not built")?;
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

    fn execute(&mut self, ins: &Instruction, earlier: &[Option<StageResult>]) -> Result<()> {
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
                let created = self.ensure_dir(&path)?;
                self.history(format!("WORKDIR {}", path.to_absolute()), !created);
                return Ok(());
            }
            Command::Copy(copy) => {
                let step = super::copy_step::CopyStep::from_copy(copy);
                let created_by = self.copy(&step, earlier)?;
                self.history(created_by, false);
                return Ok(());
            }
            Command::Add(add) => {
                let step = super::copy_step::CopyStep::from_add(add)?;
                let created_by = self.copy(&step, earlier)?;
                self.history(created_by, false);
                return Ok(());
            }
            Command::Run(run) => {
                let result = super::run::run(self, run, earlier)?;
                let empty = result.entries.is_empty();
                if !empty {
                    self.push_layer(result.entries)?;
                }
                self.history(result.created_by, empty);
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

    /// WORKDIR creates its directory (and parents) when missing, as a layer.
    /// Returns whether it wrote one.
    fn ensure_dir(&mut self, path: &ImagePath) -> Result<bool> {
        if path.is_root() {
            return Ok(false);
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
        if !missing {
            return Ok(false);
        }
        self.commit_layer(entries)?;
        Ok(true)
    }

    /// Writes `entries` as a new layer and applies them to the rootfs.
    pub(super) fn commit_layer(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.push_layer(entries.clone())?;
        self.rootfs()?.apply_entries(&entries)?;
        Ok(())
    }

    /// Writes `entries` as a new layer of the image (the rootfs already
    /// reflects them, as after RUN).
    fn push_layer(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
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

    pub(super) fn progress(&self) -> &'a Progress {
        self.progress
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

    /// Runs a COPY/ADD and returns its history text.
    fn copy(
        &mut self,
        step: &super::copy_step::CopyStep<'_>,
        earlier: &[Option<StageResult>],
    ) -> Result<String> {
        let (entries, created_by) = super::copy_step::run(self, step, earlier)?;
        self.commit_layer(entries)?;
        Ok(created_by)
    }

    pub(super) fn env(&self) -> &'a BuildEnv<'a> {
        self.env
    }

    pub(super) fn resolve_source(&self, reference: &str) -> Source {
        self.graph.resolve(reference, self.index)
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
