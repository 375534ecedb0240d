//! One build, from Dockerfile to exported image: parse, plan, run the
//! needed stages in order, assemble the image, export it.

use super::error::StepError;
use super::options::BuildOptions;
use super::outputs;
use super::progress::Progress;
use super::sources::ExternalImages;
use super::stage::{StageExec, StageResult};
use crate::context::Context;
use crate::digest::Digest;
use crate::dockerfile::expand::Lexer;
use crate::dockerfile::instructions::{self, Command};
use crate::plan::args::GlobalArgs;
use crate::plan::platform::Platform;
use crate::plan::stages::{StageGraph, StageRefs};
use crate::store::BlobStore;
use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::sync::OnceLock;

/// What a finished build produced.
#[derive(Clone, Debug)]
pub struct BuildResult {
    /// The image manifest, or for several platforms the image index.
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub media_type: &'static str,
    /// The image config (one platform only).
    pub config_digest: Option<Digest>,
}

/// Everything a stage may read while it runs.
pub struct BuildEnv<'a> {
    pub opts: &'a BuildOptions,
    /// The platform this pass builds (one of `opts.platforms`).
    pub platform: Platform,
    /// Whether the build has several platforms (progress names them).
    pub multi_platform: bool,
    /// Threads for this platform's stages (its share of `-j`).
    pub jobs: usize,
    pub store: &'a BlobStore,
    pub context: &'a Context,
    pub lexer: Lexer,
    pub dockerfile: &'a DockerfileText,
    /// Scratch space for materialised root filesystems; removed at the end.
    pub scratch: &'a Path,
    pub external: &'a ExternalImages<'a>,
    /// The WASI runtime for RUN, started on first use.
    pub sandbox: &'a super::sandbox::SandboxCell,
    /// What earlier builds' steps produced, by key.
    pub steps: crate::store::StepCache,
    /// `--cache-from` / `--cache-to` registry caches.
    pub registry_cache: &'a super::registry_cache::RegistryCache,
    pub progress: &'a Progress,
    /// The secrets the build's RUN steps were given (every platform's),
    /// which the image config must not contain.
    pub used_secrets: &'a super::secret_scan::UsedSecrets,
}

/// The Dockerfile's name and lines, for errors that show where they are.
pub struct DockerfileText {
    pub name: String,
    lines: Vec<String>,
}

impl DockerfileText {
    /// An error at `line` that shows that line of the Dockerfile.
    pub fn error_at(&self, line: usize, source: anyhow::Error) -> StepError {
        StepError {
            file: self.name.clone(),
            line,
            text: self
                .lines
                .get(line.wrapping_sub(1))
                .cloned()
                .unwrap_or_default(),
            source,
        }
    }
}

pub fn run(opts: &BuildOptions) -> Result<BuildResult> {
    if opts.platforms.len() > 1 {
        if let Some(super::options::OutputSpec::Docker { .. }) = opts
            .outputs
            .iter()
            .find(|o| matches!(o, super::options::OutputSpec::Docker { .. }))
        {
            // Like buildx, before any work is done.
            bail!(
                "--output type=docker holds one image, but {} platforms were asked for: use type=oci (an image index) or push",
                opts.platforms.len()
            );
        }
    }
    let dockerfile_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context_dir.join("Dockerfile"));
    // `-f -` reads the Dockerfile from stdin, like buildx.
    let from_stdin = dockerfile_path.as_os_str() == "-";
    let source = if from_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the Dockerfile from stdin")?;
        text
    } else {
        std::fs::read_to_string(&dockerfile_path).with_context(|| {
            format!(
                "cannot read the Dockerfile at {}",
                dockerfile_path.display()
            )
        })?
    };
    let text = DockerfileText {
        // Only the file name: messages must not depend on where the checkout lives.
        name: dockerfile_path
            .file_name()
            .map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().into_owned()),
        lines: source.lines().map(str::to_string).collect(),
    };
    let ast = crate::dockerfile::parse(&source).map_err(|e| anyhow::anyhow!("{e}"))?;
    let parsed = instructions::parse_instructions(&ast).map_err(|e| {
        let shown = text.error_at(
            e.start_line,
            anyhow::anyhow!("{}: {}", e.instruction, e.message),
        );
        anyhow::anyhow!("{shown}")
    })?;
    let lexer = Lexer::new(ast.escape);

    let store = BlobStore::open(&opts.cache_dir)
        .with_context(|| format!("opening the cache dir {}", opts.cache_dir.display()))?;
    // Held shared for the whole build: `kiln cache prune` waits for it.
    let _cache_lock = crate::store::CacheLock::shared(&opts.cache_dir)?;
    let swept = crate::store::sweep_stale_scratch(&opts.cache_dir)
        .context("cleaning up after interrupted builds")?;
    for warning in &swept.warnings {
        eprintln!("WARNING: {warning}");
    }
    let scratch = crate::store::ScratchDir::create(&opts.cache_dir)
        .context("creating a scratch directory in the cache dir")?;

    let dockerfile_for_ignore = (!from_stdin).then_some(dockerfile_path.as_path());
    let ignore = crate::context::dockerignore::load(&opts.context_dir, dockerfile_for_ignore)
        .context("reading .dockerignore")?;
    let context = Context::open(&opts.context_dir, ignore)
        .with_context(|| format!("opening the build context {}", opts.context_dir.display()))?;

    let progress = Progress::new(opts.progress);
    let external = ExternalImages::new(opts, &store, progress.clone());
    // KILN_WASM_CACHE shares compiled modules between cache dirs (they
    // depend only on the module and the wasmtime build).
    let sandbox = super::sandbox::SandboxCell::new(
        std::env::var_os("KILN_WASM_CACHE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| opts.cache_dir.join("wasm-modules")),
    );
    let steps = crate::store::StepCache::open(&store)
        .with_context(|| format!("opening the step cache in {}", opts.cache_dir.display()))?;
    let registry_cache = super::registry_cache::RegistryCache::open(opts, &store, &progress);
    let used_secrets = super::secret_scan::UsedSecrets::default();
    // Platforms are independent: with several, each gets its share of
    // `-j` and they build at once. RUN is WebAssembly, so a foreign
    // platform runs at native speed.
    let platforms = opts.platforms.len();
    let concurrent = platforms > 1 && opts.jobs > 1;
    let jobs = if concurrent {
        (opts.jobs / platforms).max(1)
    } else {
        opts.jobs
    };
    let build_one = |platform: &Platform| {
        let env = BuildEnv {
            opts,
            platform: platform.clone(),
            multi_platform: platforms > 1,
            jobs,
            store: &store,
            context: &context,
            lexer,
            dockerfile: &text,
            scratch: scratch.path(),
            external: &external,
            sandbox: &sandbox,
            steps: steps.clone(),
            registry_cache: &registry_cache,
            progress: &progress,
            used_secrets: &used_secrets,
        };
        build_platform(&env, &parsed).and_then(|stage| outputs::image_for_platform(&env, stage))
    };
    let built: Vec<Result<outputs::PlatformImage>> = if concurrent {
        std::thread::scope(|s| {
            let handles: Vec<_> = opts
                .platforms
                .iter()
                .map(|p| s.spawn(|| build_one(p)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a platform's build panicked")))
                })
                .collect()
        })
    } else {
        // One at a time: a failure stops the rest.
        let mut built = Vec::new();
        for p in &opts.platforms {
            let result = build_one(p);
            let failed = result.is_err();
            built.push(result);
            if failed {
                break;
            }
        }
        built
    };
    // The first failure in --platform order is the build's error.
    let mut images = Vec::new();
    let mut failed = None;
    for result in built {
        match result {
            Ok(image) => images.push(image),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let result = match failed {
        Some(e) => Err(e),
        None => outputs::finish(opts, &store, images, &progress)
            .and_then(|r| registry_cache.export(opts, &store, &progress).map(|()| r)),
    };
    progress.finish();
    let result = result?;
    scratch
        .close()
        .context("removing the build's scratch directory")?;
    Ok(result)
}

/// Runs the stages the target needs for `env.platform`; returns the
/// target stage's result.
fn build_platform(env: &BuildEnv<'_>, parsed: &instructions::Dockerfile) -> Result<StageResult> {
    let opts = env.opts;
    let lexer = &env.lexer;
    let text = env.dockerfile;
    let progress = env.progress;
    // Global scope: predefined platform args, then meta args in order.
    let mut predefined = env.platform.args("TARGET");
    predefined.extend(Platform::default_target().args("BUILD"));
    let mut globals = GlobalArgs::new(opts.build_args.clone(), predefined);
    for ins in &parsed.meta_args {
        if let Command::Arg(args) = &ins.command {
            for (name, default) in args {
                let default = match default {
                    Some(d) => Some(
                        lexer
                            .process_word(d, &globals.from_scope())
                            .map_err(|e| text.error_at(ins.start_line, e.into()))?,
                    ),
                    None => None,
                };
                globals.declare_meta(name, default);
            }
        }
    }

    // The stage graph, with FROM and --from expanded in the global scope.
    let mut refs = Vec::new();
    for stage in &parsed.stages {
        let base = lexer
            .process_word(&stage.from.image, &globals.from_scope())
            .map_err(|e| text.error_at(stage.start_line, e.into()))?;
        if base.is_empty() {
            return Err(text
                .error_at(
                    stage.start_line,
                    anyhow::anyhow!("base name ({}) should not be blank", stage.from.image),
                )
                .into());
        }
        let mut copies_from = Vec::new();
        for ins in &stage.commands {
            match &ins.command {
                Command::Copy(c) => {
                    if let Some(from) = &c.from {
                        if let Ok(f) = lexer.process_word(from, &globals.from_scope()) {
                            copies_from.push(f);
                        }
                    }
                }
                // RUN --mount=...,from=STAGE needs that stage built first.
                Command::Run(r) => {
                    for m in &r.mounts {
                        let spec = lexer
                            .process_word(m, &globals.from_scope())
                            .unwrap_or_else(|_| m.clone());
                        if let Ok(
                            super::mounts::Mount::Bind { from: Some(f), .. }
                            | super::mounts::Mount::Cache { from: Some(f), .. },
                        ) = super::mounts::Mount::parse(&spec)
                        {
                            copies_from.push(f);
                        }
                    }
                }
                _ => {}
            }
        }
        refs.push(StageRefs {
            name: stage.from.name.clone(),
            base,
            copies_from,
        });
    }
    if refs.is_empty() {
        bail!("{}: no FROM instruction: nothing to build", text.name);
    }
    // A named context replaces the stage of the same name (BuildKit's
    // rule): that stage, its base and what only it reads are not built.
    let graph =
        StageGraph::new(refs)?.with_named_contexts(opts.named_contexts.keys().map(String::as_str));
    let target = graph.target(opts.target.as_deref())?;
    let needed = graph.needed(target)?;
    // Said once, not once per platform.
    let first_platform = opts.platforms.first() == Some(&env.platform);
    for i in graph
        .provided(target)?
        .into_iter()
        .filter(|_| first_platform)
    {
        let key = graph.replaced_by(i).expect("provided stages are replaced");
        let context = &opts.named_contexts[key];
        progress.info(&format!(
            "stage {:?} is not built: --build-context {key}={context} provides it",
            graph.display_name(i)
        ));
    }

    let results: Vec<OnceLock<StageResult>> = (0..graph.len()).map(|_| OnceLock::new()).collect();
    super::schedule::run_dag(
        &needed,
        |i| graph.deps(i),
        env.jobs,
        |index| {
            let stage = &parsed.stages[index];
            let result =
                StageExec::new(env, &graph, &globals, index, progress).run(stage, &results)?;
            let _ = results[index].set(result);
            Ok(())
        },
    )?;
    // Warned once, not once per platform.
    for unused in globals
        .build_args
        .unused()
        .into_iter()
        .filter(|_| first_platform)
    {
        progress.warn(&format!(
            "build argument {unused:?} was not consumed by any ARG instruction"
        ));
    }
    // `--target` of a replaced stage: the named context is the image, as
    // in BuildKit (a directory becomes an image whose root is the dir).
    if let Some(key) = graph.replaced_by(target) {
        let image = env.external.image(key, &env.platform)?;
        let mut config = image.config;
        config.architecture = env.platform.architecture.clone();
        config.os = env.platform.os.clone();
        config.variant = env.platform.variant.clone();
        return Ok(StageResult::new(config, image.layers));
    }
    let mut results = results;
    results[target].take().context("target stage was not built")
}
