//! The `kiln` command line: flags follow `docker buildx build` wherever
//! buildx has a convention.

mod commands;

use crate::exec::options::Progress;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "kiln",
    version,
    about = "Build OCI images from Dockerfiles: no root, no daemon, no VM, the same bytes on every host"
)]
pub struct Cli {
    /// Where blobs and local image names are kept [default: the user cache dir]
    #[arg(long, global = true, env = "KILN_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image from a Dockerfile and a context directory
    Build(Box<BuildArgs>),
    /// List the images named in the local store (`-t`)
    Images,
    /// Print the manifest and config of a named image
    Inspect {
        /// Image name (NAME[:TAG]) or manifest digest
        name: String,
    },
    /// Push a locally named image (`build -t`) to a registry
    Push(PushArgs),
    /// Check credentials for a registry and store them in the Docker config
    /// ($DOCKER_CONFIG/config.json or ~/.docker/config.json)
    Login(LoginArgs),
    /// Remove the stored credentials for a registry from the Docker config
    Logout {
        /// Registry host (HOST[:PORT]); Docker Hub is docker.io
        registry: String,
    },
    /// Compare two images down to the cause (exit 0 identical, 1 different, 2 unreadable)
    Diff(crate::verify::cli::DiffArgs),
    /// Rebuild and check the result is the expected image (--expect or --against)
    Verify(Box<crate::verify::cli::VerifyArgs>),
    /// Inspect and clean up the cache dir
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Developer tools
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Show what the cache dir holds, by category
    Du {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove step-cache records and the blobs nothing needs any more.
    /// Named images (`build -t`) and every blob they need are always kept.
    /// Without flags, only unreferenced blobs and leftovers of killed builds go.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove every step record, RUN cache mount and compiled wasm module
    /// (named images are still kept)
    #[arg(short = 'a', long, conflicts_with_all = ["keep_duration", "max_used_space"])]
    pub all: bool,
    /// Remove step records not used for longer than this (e.g. 24h, 7d, 90m)
    #[arg(long, value_name = "DURATION")]
    pub keep_duration: Option<String>,
    /// Then remove least recently used step records until blobs and records
    /// take at most this much (e.g. 10g, 512m)
    #[arg(long, visible_alias = "keep-storage", value_name = "SIZE")]
    pub max_used_space: Option<String>,
    /// Also keep this image (NAME[:TAG] or manifest digest); repeatable
    #[arg(long, value_name = "IMAGE")]
    pub keep: Vec<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Local image name (NAME[:TAG], see `kiln images`); also the
    /// destination unless DEST is given
    pub name: String,
    /// Where to push: REGISTRY/REPOSITORY[:TAG] [default: NAME]
    pub dest: Option<String>,
    /// Use plain http (loopback registries always do)
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host (HOST[:PORT]); Docker Hub is docker.io
    pub registry: String,
    /// User name
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Read the password (or token) from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Reach this registry over plain HTTP (loopback registries always may)
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Subcommand, Debug)]
pub enum DebugCommand {
    /// Print a Dockerfile's parsed AST in BuildKit's dump format
    Parse {
        /// The Dockerfile to parse
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// Name of the Dockerfile [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Name the image in kiln's local store (NAME[:TAG]); repeatable
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Build this stage and the ones it needs, not the last stage
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Set a build-time variable (NAME=VALUE, or NAME to take it from the environment)
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Additional build context (NAME=DIR, NAME=oci-layout://PATH[:TAG|@DIGEST] or NAME=docker-image://REF)
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Target platform(s), os/arch[/variant][,...]; several give an image
    /// index [default: linux/amd64 on every host]
    #[arg(long, value_name = "PLATFORM", env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Output destination: type=oci|docker|local,dest=PATH[,tar=false][,name=N], or a directory
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Push the image to every -t name's registry after the build
    /// (= --output type=registry,name=NAME for each -t)
    #[arg(long)]
    pub push: bool,
    /// Load into Docker (no Docker engine is used; use --output type=docker)
    #[arg(long)]
    pub load: bool,
    /// Secret to expose to RUN steps: id=ID,src=FILE or id=ID,env=VAR
    #[arg(long, value_name = "SPEC")]
    pub secret: Vec<String>,
    /// Timestamp for every created time and the upper bound of file mtimes
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<String>,
    /// Do not use the step cache (cache mounts are kept)
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the step cache for these stages (name or index); repeatable or comma-separated
    #[arg(long, value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Read step results from a registry cache: type=registry,ref=REF (or REF)
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Write step results to a registry cache:
    /// type=registry,ref=REF[,mode=min|max][,mounts=true]
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Progress output
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Suppress the build output and print the image id on success (as buildx)
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image's manifest digest to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write build result metadata (buildx keys) to this file
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Stop a RUN step that runs longer than this (e.g. 90s, 10m, 1h; plain numbers are seconds)
    #[arg(long, value_name = "DURATION")]
    pub step_timeout: Option<String>,
    /// Most memory one RUN program may use (e.g. 512m, 2g; plain numbers are bytes) [default: 2g]
    #[arg(long, value_name = "SIZE")]
    pub step_memory: Option<String>,
    /// Allow plain HTTP to this registry (HOST or HOST:PORT); repeatable.
    /// Loopback registries (localhost, 127.0.0.1, [::1]) always may use it
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Maximum parallel steps [default: number of cores]
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", crate::error_text::of(&err));
            ExitCode::FAILURE
        }
    }
}
