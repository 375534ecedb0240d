//! Turns parsed command lines into calls on the library.

use super::{BuildArgs, CacheCommand, Cli, Command, DebugCommand, LoginArgs, PruneArgs, PushArgs};
use crate::exec::options::{BuildOptions, NamedContext, OutputSpec, Progress};
use crate::plan::platform::Platform;
use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let cache_dir = resolve_cache_dir(cli.cache_dir)?;
    match cli.command {
        Command::Build(args) => {
            let opts = build_options(*args, cache_dir)?;
            let result = crate::exec::build(&opts)?;
            if !matches!(opts.progress, Progress::Quiet | Progress::Rawjson) {
                eprintln!("manifest {}", result.manifest_digest);
            }
            println!("{}", result.manifest_digest);
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff(args) => crate::verify::cli::diff(&cache_dir, &args),
        Command::Verify(args) => {
            let crate::verify::cli::VerifyArgs { check, build } = *args;
            crate::verify::cli::expected(&check)?;
            let cache = crate::verify::rebuild::BuildCache::new(check.use_cache, &cache_dir)?;
            let opts = build_options(build, cache.dir().to_path_buf())?;
            crate::verify::cli::verify(&opts, &check, &cache_dir)
        }
        Command::Login(args) => login(args),
        Command::Logout { registry } => {
            let host = crate::registry::login::registry_host(&registry)?;
            let opts = crate::registry::RegistryOptions::default();
            if crate::registry::login::logout(&host, &opts)? {
                eprintln!("Removed login credentials for {host}");
            } else {
                eprintln!("Not logged in to {host}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Images => {
            let names = crate::store::images::ImageNames::open(&cache_dir);
            for (name, digest) in names.list()? {
                println!("{name}\t{digest}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { name } => {
            println!("{}", crate::exec::inspect(&cache_dir, &name)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Push(args) => {
            let report = push(&cache_dir, &args)?;
            eprintln!("{}", report.summary());
            if let Some(d) = &report.manifest_digest {
                println!("{d}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cache(CacheCommand::Du { json }) => {
            let usage = crate::store::usage::disk_usage(&cache_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&usage)?);
            } else {
                println!("cache dir {}", cache_dir.display());
                print!("{}", usage.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cache(CacheCommand::Prune(args)) => {
            let json = args.json;
            let opts = prune_options(args)?;
            let report = crate::store::prune::prune(&cache_dir, &opts)?;
            for w in &report.warnings {
                eprintln!("WARNING: {w}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", prune_summary(&report, opts.all));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Debug(DebugCommand::Parse { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let ast = crate::dockerfile::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", crate::dockerfile::dump(&ast));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `kiln push NAME [DEST]`: the named image's manifest and blobs, from the
/// local store to DEST (or NAME). When DEST is another repository on the
/// same registry, blobs are mounted from NAME's repository where it has them.
fn push(cache_dir: &std::path::Path, args: &PushArgs) -> Result<crate::registry::push::PushReport> {
    use crate::registry::push::{push_image, PushOptions};
    let name = crate::store::images::normalize(&args.name)?;
    let digest = crate::store::images::ImageNames::open(cache_dir)
        .get(&name)?
        .with_context(|| format!("no image named {name} (see `kiln images`)"))?;
    let store = crate::store::BlobStore::open(cache_dir)?;
    let dest = args.dest.clone().unwrap_or_else(|| name.clone());
    let mut opts = PushOptions::default();
    if args.insecure {
        let host = crate::registry::push::parse_reference(&dest)?;
        opts.registry
            .insecure_registries
            .push(host.registry().to_string());
    }
    if dest != name {
        opts.mount_from.push(name.clone());
    }
    push_image(&store, &digest, &dest, &opts).with_context(|| {
        if dest == name {
            format!("pushing {name}")
        } else {
            format!("pushing {name} to {dest}")
        }
    })
}

fn login(args: LoginArgs) -> Result<ExitCode> {
    let host = crate::registry::login::registry_host(&args.registry)?;
    let username = match args.username.filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => bail!("kiln login needs --username (kiln does not prompt)"),
    };
    if !args.password_stdin {
        bail!("kiln login reads the password from standard input: pass --password-stdin (passwords on the command line leak into shell history)");
    }
    let mut password = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    let opts = crate::registry::RegistryOptions {
        insecure_registries: if args.insecure {
            vec![host.clone()]
        } else {
            Vec::new()
        },
        docker_config: None,
    };
    let path = crate::registry::login::login(&host, &username, password, &opts)?;
    eprintln!(
        "Login Succeeded (credentials for {host} stored in {})",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--platform a,b,...`: each platform once, in the order given (the
/// order of the index).
fn parse_platforms(list: &str) -> Result<Vec<Platform>> {
    let mut platforms: Vec<Platform> = Vec::new();
    for item in list.split(',') {
        let p: Platform = item
            .parse()
            .with_context(|| format!("invalid --platform {list:?}"))?;
        if !platforms.contains(&p) {
            platforms.push(p);
        }
    }
    Ok(platforms)
}

fn prune_options(args: PruneArgs) -> Result<crate::store::prune::PruneOptions> {
    let keep_duration = match &args.keep_duration {
        None => None,
        Some(d) => Some(
            parse_duration(d).map_err(|e| anyhow::anyhow!("invalid --keep-duration {d:?}: {e}"))?,
        ),
    };
    let max_used_space = match &args.max_used_space {
        None => None,
        Some(s) => Some(
            parse_size_bytes(s)
                .map_err(|e| anyhow::anyhow!("invalid --max-used-space {s:?}: {e}"))?,
        ),
    };
    Ok(crate::store::prune::PruneOptions {
        all: args.all,
        keep_duration,
        max_used_space,
        keep: args.keep,
    })
}

/// What `kiln cache prune` prints: one line per kind of thing freed.
fn prune_summary(r: &crate::store::prune::PruneReport, all: bool) -> String {
    use crate::store::usage::human_size;
    let mut out = String::new();
    let mut line = |what: &str, f: &crate::store::prune::Freed| {
        out += &format!(
            "removed {:>6} {what:<36} {:>12}\n",
            f.count,
            human_size(f.bytes)
        );
    };
    line("step-cache records", &r.step_records);
    line("blobs", &r.blobs);
    if all {
        line("RUN cache mounts", &r.run_cache);
        line("compiled wasm modules", &r.wasm_modules);
    }
    line("leftovers of interrupted builds", &r.temporary);
    out += &format!("total freed: {}\n", human_size(r.total_bytes()));
    if !all {
        out += "(RUN cache mounts and compiled wasm modules are removed only with --all)\n";
    } else if let Some(shared) = std::env::var_os("KILN_WASM_CACHE") {
        out += &format!(
            "(compiled modules in KILN_WASM_CACHE={} are shared and not touched)\n",
            std::path::Path::new(&shared).display()
        );
    }
    out
}

fn resolve_cache_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    match flag {
        Some(dir) => Ok(dir),
        None => dirs::cache_dir().map(|d| d.join("kiln")).context(
            "no user cache directory on this host: pass --cache-dir or set KILN_CACHE_DIR",
        ),
    }
}

fn build_options(args: BuildArgs, cache_dir: PathBuf) -> Result<BuildOptions> {
    if args.load {
        bail!("--load needs a Docker engine; kiln uses none. Write an archive with --output type=docker,dest=FILE and load it with `docker load` or `podman load`");
    }
    let mut build_args = BTreeMap::new();
    for raw in &args.build_args {
        let (k, v) = match raw.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            // buildx: `--build-arg NAME` takes the value from the environment.
            None => match std::env::var(raw) {
                Ok(v) => (raw.clone(), v),
                Err(_) => continue,
            },
        };
        if k.is_empty() {
            bail!("invalid --build-arg {raw:?}: expected NAME=VALUE");
        }
        build_args.insert(k, v);
    }
    let mut named_contexts = BTreeMap::new();
    for raw in &args.build_contexts {
        let (name, value) = raw
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .with_context(|| format!("invalid --build-context {raw:?}: expected NAME=VALUE"))?;
        // buildx parses NAME as an image name, which must be lower-case;
        // stage names are lower-cased, so `AS Builder` matches `builder`.
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            bail!(
                "invalid --build-context {raw:?}: context names must be lower-case, as in buildx ({}=... also replaces a stage written `AS {name}`)",
                name.to_ascii_lowercase()
            );
        }
        let ctx = NamedContext::parse(value)
            .map_err(|e| anyhow::anyhow!("invalid --build-context {raw:?}: {e}"))?;
        named_contexts.insert(name.to_string(), ctx);
    }
    let platforms = match &args.platform {
        None => vec![Platform::default_target()],
        Some(list) => parse_platforms(list)?,
    };
    let source_date_epoch = match args.source_date_epoch.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(s) => s.parse::<u64>().with_context(|| {
            format!("invalid SOURCE_DATE_EPOCH {s:?}: expected whole seconds since 1970")
        })?,
    };
    let mut outputs = args
        .outputs
        .iter()
        .map(|o| OutputSpec::parse(o).map_err(|e| anyhow::anyhow!("invalid --output {o:?}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    if args.push {
        add_push_outputs(&mut outputs, &args.tags)?;
    }
    let secrets = args
        .secret
        .iter()
        .map(|s| {
            let secret = crate::exec::secrets::parse_secret(s)
                .map_err(|e| anyhow::anyhow!("invalid --secret {s:?}: {e}"))?;
            // Like buildx: a missing secret file fails before the build.
            if let crate::exec::secrets::SecretSource::File(path) = &secret.source {
                if !path.is_file() {
                    bail!(
                        "invalid --secret {s:?}: {} is not a readable file",
                        path.display()
                    );
                }
            }
            Ok(secret)
        })
        .collect::<Result<Vec<_>>>()?;
    let step_timeout = match &args.step_timeout {
        None => None,
        Some(t) => Some(
            parse_duration(t).map_err(|e| anyhow::anyhow!("invalid --step-timeout {t:?}: {e}"))?,
        ),
    };
    let step_memory = match &args.step_memory {
        None => kiln_runtime::DEFAULT_MEMORY_LIMIT,
        Some(m) => {
            parse_size(m).map_err(|e| anyhow::anyhow!("invalid --step-memory {m:?}: {e}"))?
        }
    };
    let cache_from = args
        .cache_from
        .iter()
        .map(|c| {
            crate::exec::options::CacheImport::parse(c)
                .map_err(|e| anyhow::anyhow!("invalid --cache-from {c:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let cache_to = args
        .cache_to
        .iter()
        .map(|c| {
            crate::exec::options::CacheExport::parse(c)
                .map_err(|e| anyhow::anyhow!("invalid --cache-to {c:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if !args.context.is_dir() {
        bail!(
            "build context {} is not a directory",
            args.context.display()
        );
    }
    // buildx: `-q` is `--progress=quiet`, and refuses any other mode.
    let progress = match (args.quiet, args.progress) {
        (false, p) => p,
        (true, Progress::Auto | Progress::Quiet) => Progress::Quiet,
        (true, p) => bail!(
            "--progress={} and --quiet cannot be used together",
            format!("{p:?}").to_lowercase()
        ),
    };
    Ok(BuildOptions {
        context_dir: args.context,
        dockerfile: args.file,
        target: args.target,
        build_args,
        platforms,
        named_contexts,
        cache_from,
        cache_to,
        source_date_epoch,
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter,
        cache_dir,
        outputs,
        tags: args.tags,
        iidfile: args.iidfile,
        metadata_file: args.metadata_file,
        progress,
        jobs,
        secrets,
        step_timeout,
        step_memory,
        insecure_registries: args.insecure_registries,
    })
}

/// `--push` like buildx: every -t name and every `type=image` output is
/// pushed.
fn add_push_outputs(outputs: &mut Vec<OutputSpec>, tags: &[String]) -> Result<()> {
    let mut any = false;
    for o in outputs.iter_mut() {
        if let OutputSpec::Image { push, .. } = o {
            *push = true;
            any = true;
        }
    }
    for tag in tags {
        let already = outputs
            .iter()
            .any(|o| matches!(o, OutputSpec::Image { name, .. } if name == tag));
        if !already {
            outputs.push(OutputSpec::Image {
                name: tag.clone(),
                push: true,
                insecure: false,
            });
            any = true;
        }
    }
    if !any {
        bail!("--push needs an image name: give -t REGISTRY/REPOSITORY[:TAG]");
    }
    Ok(())
}

/// `90`, `90s`, `10m`, `1h`, `7d`, `500ms`.
fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        "expected a whole number with an optional unit (ms, s, m, h, d)".to_string()
    })?;
    let d = match unit {
        "" | "s" => std::time::Duration::from_secs(n),
        "ms" => std::time::Duration::from_millis(n),
        "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "h" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "d" => std::time::Duration::from_secs(n.saturating_mul(86400)),
        other => return Err(format!("unknown unit {other:?} (use ms, s, m, h or d)")),
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// `1048576`, `512k`, `512m`, `2g` (binary units, case-insensitive), at
/// least 1m.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let bytes = parse_size_bytes(s)?;
    if bytes < (1 << 20) {
        return Err("must be at least 1m".into());
    }
    Ok(bytes)
}

/// Any size: `0`, `512k`, `10gb`, `10GiB`, `1t` (binary units).
fn parse_size_bytes(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let s = s
        .strip_suffix("ib")
        .or_else(|| s.strip_suffix('b'))
        .unwrap_or(&s);
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a whole number with an optional unit (k, m, g, t)".to_string())?;
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        other => return Err(format!("unknown unit {other:?} (use k, m, g or t)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_string())
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_with_units_and_reject_garbage() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert!(parse_size("12").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86400);
        assert_eq!(parse_size_bytes("0").unwrap(), 0);
        assert_eq!(parse_size_bytes("10GB").unwrap(), 10 << 30);
        assert_eq!(parse_size_bytes("3GiB").unwrap(), 3 << 30);
        assert_eq!(parse_size_bytes("12").unwrap(), 12);
        assert!(parse_size_bytes("1.5g").is_err());
        assert!(parse_size_bytes("5q").is_err());
    }
}
