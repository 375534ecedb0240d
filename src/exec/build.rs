//! One build, from Dockerfile to exported image: parse, plan, run the
//! needed stages in order, assemble the image, export it.

use super::error::StepError;
use super::options::BuildOptions;
use super::outputs;
use super::sources::ExternalImages;
use super::stage::{StageExec, StageResult};
use crate::context::Context;
use crate::dockerfile::expand::Lexer;
use crate::dockerfile::instructions::{self, Instruction};
use crate::plan::args::GlobalArgs;
use crate::plan::platform::Platform;
use crate::plan::stages::{StageGraph, StageRefs};
use crate::store::blobs::BlobStore;
use crate::digest::Digest;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// What a finished build produced.
#[derive(Clone, Debug)]
pub struct BuildResult {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub config_digest: Digest,
}

/// Everything a stage may read while it runs.
pub struct BuildEnv<'a> {
    pub opts: &'a BuildOptions,
    pub store: &'a BlobStore,
    pub context: &'a Context,
    pub lexer: Lexer,
    pub dockerfile_name: String,
    /// Scratch space for materialised root filesystems; removed at the end.
    pub scratch: &'a Path,
    pub external: &'a ExternalImages<'a>,
}

pub fn run(opts: &BuildOptions) -> Result<BuildResult> {
    let dockerfile_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context_dir.join("Dockerfile"));
    let dockerfile_name = display_name(&dockerfile_path);
    let source = std::fs::read_to_string(&dockerfile_path).with_context(|| {
        format!("cannot read the Dockerfile at {}", dockerfile_path.display())
    })?;
    let ast = crate::dockerfile::parse(&source)
        .map_err(|e| anyhow::anyhow!("{}", e.with_file(&dockerfile_name)))?;
    let parsed = instructions::parse(&ast)
        .map_err(|e| anyhow::anyhow!("{}", e.with_file(&dockerfile_name)))?;
    let lexer = Lexer::new(ast.escape);

    std::fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating cache dir {}", opts.cache_dir.display()))?;
    let store = BlobStore::open(&opts.cache_dir)?;
    let scratch_parent = opts.cache_dir.join("tmp");
    std::fs::create_dir_all(&scratch_parent)?;
    let scratch = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&scratch_parent)
        .context("creating a scratch directory in the cache dir")?;

    let ignore = crate::context::dockerignore::load(&opts.context_dir, Some(&dockerfile_path))?;
    let context = Context::open(&opts.context_dir, ignore)?;

    // Global scope: predefined platform args, then meta args in order.
    let build_platform = Platform::default_target();
    let mut predefined = opts.platform.args("TARGET");
    predefined.extend(build_platform.args("BUILD"));
    let mut globals = GlobalArgs::new(opts.build_args.clone(), predefined);
    for arg in &parsed.meta_args {
        for (name, default) in &arg.args {
            let default = match default {
                Some(d) => Some(
                    lexer
                        .process_word(d, &globals.from_scope())
                        .map_err(|e| step_error(&dockerfile_name, &arg.location, e.into()))?,
                ),
                None => None,
            };
            globals.declare_meta(name, default);
        }
    }

    // The stage graph, with FROM and --from expanded in the global scope.
    let mut refs = Vec::new();
    for stage in &parsed.stages {
        let base = lexer
            .process_word(&stage.base, &globals.from_scope())
            .map_err(|e| step_error(&dockerfile_name, &stage.location, e.into()))?;
        if base.is_empty() {
            return Err(step_error(
                &dockerfile_name,
                &stage.location,
                anyhow::anyhow!("base name ({}) should not be blank", stage.base),
            )
            .into());
        }
        let mut copies_from = Vec::new();
        for ins in &stage.instructions {
            if let Some(from) = ins.command.copy_from() {
                if let Ok(f) = lexer.process_word(from, &globals.from_scope()) {
                    copies_from.push(f);
                }
            }
        }
        refs.push(StageRefs {
            name: stage.name.clone(),
            base,
            copies_from,
        });
    }
    let graph = StageGraph::new(refs)?;
    if graph.is_empty() {
        bail!("{dockerfile_name}: no FROM instruction: nothing to build");
    }
    let target = graph.target(opts.target.as_deref())?;
    let needed = graph.needed(target)?;

    let external = ExternalImages::new(opts, &store, scratch.path());
    let env = BuildEnv {
        opts,
        store: &store,
        context: &context,
        lexer,
        dockerfile_name: dockerfile_name.clone(),
        scratch: scratch.path(),
        external: &external,
    };
    let progress = super::progress::Progress::new(opts.progress, needed.len());
    let mut results: Vec<Option<StageResult>> = (0..graph.len()).map(|_| None).collect();
    for &index in &needed {
        let stage = &parsed.stages[index];
        let result = StageExec::new(&env, &graph, &globals, index, &progress)
            .run(stage, &results)?;
        results[index] = Some(result);
    }
    for unused in globals.build_args.unused() {
        progress.warn(&format!(
            "build argument {unused:?} was not consumed by any ARG instruction"
        ));
    }
    let final_stage = results[target].take().expect("target stage was built");
    outputs::finish(&env, final_stage, &progress)
}

/// The Dockerfile's name as errors show it: relative paths stay relative,
/// so messages do not depend on where the checkout lives.
fn display_name(path: &Path) -> String {
    path.file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

pub fn step_error(file: &str, loc: &instructions::Location, source: anyhow::Error) -> StepError {
    StepError {
        file: file.to_string(),
        line: loc.start_line,
        text: loc.original.clone(),
        source,
    }
}

#[allow(dead_code)]
fn _assert_instruction_is_used(_: &Instruction) {}
