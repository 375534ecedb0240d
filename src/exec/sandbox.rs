//! The build's one WASI runtime and loaded toolbox, created when the first
//! RUN needs them (a build without RUN never starts wasmtime), with compiled
//! modules cached under the cache dir so a large module compiles once per
//! machine.

use anyhow::{anyhow, Result};
use kiln_runtime::toolbox::TOOLBOX_WASM;
use kiln_runtime::{Program, Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub struct Sandbox {
    pub runtime: Arc<Runtime>,
    pub toolbox: Program,
}

pub struct SandboxCell {
    modules_dir: PathBuf,
    cell: OnceLock<Result<Sandbox, String>>,
}

impl SandboxCell {
    /// Compiled modules go to `modules_dir`.
    pub fn new(modules_dir: PathBuf) -> SandboxCell {
        SandboxCell {
            modules_dir,
            cell: OnceLock::new(),
        }
    }

    /// The sandbox; the first call loads the toolbox (compiling it when
    /// this machine has no compiled copy yet: seconds, so it shows).
    pub fn get(&self, progress: &super::progress::Progress) -> Result<&Sandbox> {
        self.cell
            .get_or_init(|| {
                let runtime = Runtime::new(RuntimeConfig {
                    cache_dir: Some(self.modules_dir.clone()),
                })
                .map_err(|e| format!("starting the WebAssembly runtime: {e}"))?;
                let progress = progress.clone();
                runtime.observe_compiles(Box::new(move |name, bytes| {
                    let mb = bytes as f64 / (1024.0 * 1024.0);
                    Box::new(progress.task(&format!(
                        "compiling {name} ({mb:.1} MiB of WebAssembly; once per machine)"
                    )))
                }));
                let toolbox = runtime
                    .load("kiln-toolbox", TOOLBOX_WASM)
                    .map_err(|e| format!("loading kiln's toolbox: {e}"))?;
                Ok(Sandbox {
                    runtime: Arc::new(runtime),
                    toolbox,
                })
            })
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }
}
