//! The `kiln diff` and `kiln verify` command lines.

use super::report;
use super::source::{open, OpenOptions};
use crate::cli::BuildArgs;
use crate::digest::Digest;
use crate::exec::options::BuildOptions;
use crate::registry::RegistryOptions;
use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// First image: oci-layout://PATH[:TAG|@DIGEST], a layout dir, an OCI or
    /// docker archive, docker://REF or REGISTRY/REPO[:TAG], or a local name
    pub a: String,
    /// Second image (same forms)
    pub b: String,
    /// Report format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Allow plain HTTP to this registry (HOST or HOST:PORT); repeatable
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VerifyCheck {
    /// The manifest digest the build must produce
    #[arg(
        long,
        value_name = "sha256:DIGEST",
        required_unless_present = "against"
    )]
    pub expect: Option<String>,
    /// The image the build must reproduce (same forms as `kiln diff`)
    #[arg(long, value_name = "REF")]
    pub against: Option<String>,
    /// Build with the usual cache dir instead of a fresh, empty one
    #[arg(long)]
    pub use_cache: bool,
    /// Report format of the diff on a mismatch
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub check: VerifyCheck,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `kiln diff A B`: 0 identical, 1 different, 2 when an image cannot be read.
pub fn diff(cache_dir: &Path, args: &DiffArgs) -> Result<ExitCode> {
    let opts = OpenOptions {
        cache_dir: Some(cache_dir.to_path_buf()),
        registry: RegistryOptions {
            insecure_registries: args.insecure_registries.clone(),
            docker_config: None,
        },
    };
    let compared = open(&args.a, &opts)
        .and_then(|a| open(&args.b, &opts).map(|b| (a, b)))
        .and_then(|(a, b)| super::diff::diff(&a, &b));
    let r = match compared {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    match args.format {
        Format::Text => print!("{}", report::text(&r)),
        Format::Json => println!("{}", report::json(&r)),
    }
    Ok(if r.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Parses `--expect` before anything is built.
pub fn expected(check: &VerifyCheck) -> Result<Option<Digest>> {
    check
        .expect
        .as_deref()
        .map(|s| {
            s.parse::<Digest>().map_err(|_| {
                anyhow::anyhow!("invalid --expect {s:?}: expected sha256:<64 hex digits>")
            })
        })
        .transpose()
}

/// `kiln verify`: 0 only when the rebuild matches every expectation.
/// `opts.cache_dir` is the build's (see [`super::rebuild::BuildCache`]);
/// `user_cache` holds the local names `--against` may use.
pub fn verify(opts: &BuildOptions, check: &VerifyCheck, user_cache: &Path) -> Result<ExitCode> {
    let expect = expected(check)?;
    let open_opts = OpenOptions {
        cache_dir: Some(user_cache.to_path_buf()),
        registry: RegistryOptions {
            insecure_registries: opts.insecure_registries.clone(),
            docker_config: None,
        },
    };
    let out = super::rebuild::verify(opts, expect.as_ref(), check.against.as_deref(), &open_opts)?;
    for m in &out.messages {
        eprintln!("{m}");
    }
    if let Some(r) = &out.report {
        match check.format {
            Format::Text => print!("{}", report::text(r)),
            Format::Json => println!("{}", report::json(r)),
        }
    } else if check.format == Format::Text {
        println!("{}", out.produced);
    }
    Ok(if out.matches {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
