//! What a build is asked to do, independent of how the command line spelt it.

use crate::plan::platform::Platform;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The build context directory.
    pub context_dir: PathBuf,
    /// The Dockerfile; `None` means `<context>/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    /// The platforms to build (`--platform a,b`); never empty. Several
    /// give an image index.
    pub platforms: Vec<Platform>,
    pub named_contexts: BTreeMap<String, NamedContext>,
    pub source_date_epoch: u64,
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (by name or index) that run every step.
    pub no_cache_filter: Vec<String>,
    pub cache_dir: PathBuf,
    pub outputs: Vec<OutputSpec>,
    pub tags: Vec<String>,
    pub iidfile: Option<PathBuf>,
    pub metadata_file: Option<PathBuf>,
    pub progress: Progress,
    pub jobs: usize,
    /// `--secret`s, for RUN `--mount=type=secret`.
    pub secrets: Vec<super::secrets::Secret>,
    /// Wall-clock limit of one RUN step.
    pub step_timeout: Option<std::time::Duration>,
    /// Most linear memory one RUN program may use, in bytes.
    pub step_memory: u64,
    /// `--insecure-registry`: hosts besides loopback ones that may be
    /// reached over plain HTTP (`HOST` or `HOST:PORT`).
    pub insecure_registries: Vec<String>,
    /// `--cache-from type=registry,ref=REF`: caches to read step results from.
    pub cache_from: Vec<CacheImport>,
    /// `--cache-to type=registry,ref=REF[,mode=max][,mounts=true]`.
    pub cache_to: Vec<CacheExport>,
}

impl BuildOptions {
    /// How to reach the registry of `reference`: the `--insecure-registry`
    /// hosts, plus its own host when `insecure` (`registry.insecure=true`).
    pub fn registry_options(
        &self,
        reference: &str,
        insecure: bool,
    ) -> crate::registry::RegistryOptions {
        let mut insecure_registries = self.insecure_registries.clone();
        if insecure {
            if let Ok(r) = crate::registry::ImageRef::parse(reference) {
                insecure_registries.push(r.registry().to_string());
            }
        }
        crate::registry::RegistryOptions {
            insecure_registries,
            docker_config: None,
        }
    }
}

/// One `--cache-from` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheImport {
    pub reference: String,
    pub insecure: bool,
}

/// One `--cache-to` destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheExport {
    pub reference: String,
    /// `mode=max`: every step of every stage; `min` (the default, as in
    /// buildx): only the steps of the exported image's stage.
    pub max: bool,
    /// `mounts=true`: also snapshot the RUN cache mounts the build used.
    pub mounts: bool,
    pub insecure: bool,
}

/// The `key=value` fields of a `--cache-to` / `--cache-from` value;
/// a bare `REF` means `type=registry,ref=REF`.
fn cache_fields(spec: &str) -> Result<BTreeMap<String, String>, String> {
    if !spec.contains('=') {
        if spec.is_empty() {
            return Err("empty value".into());
        }
        return Ok(BTreeMap::from([
            ("type".to_string(), "registry".to_string()),
            ("ref".to_string(), spec.to_string()),
        ]));
    }
    let mut fields = BTreeMap::new();
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, found {field:?}"))?;
        fields.insert(k.trim().to_string(), v.to_string());
    }
    match fields.get("type").map(String::as_str) {
        None | Some("registry") => {}
        Some(other @ ("local" | "inline" | "gha" | "s3" | "azblob")) => {
            return Err(format!(
                "type={other} caches are not supported; kiln shares its cache through a registry (type=registry,ref=REF)"
            ))
        }
        Some(other) => return Err(format!("unknown cache type {other:?} (expected registry)")),
    }
    if !fields.contains_key("ref") {
        return Err("type=registry needs ref=REF".into());
    }
    crate::registry::ImageRef::parse(&fields["ref"]).map_err(|e| e.to_string())?;
    Ok(fields)
}

fn bool_field(fields: &BTreeMap<String, String>, name: &str) -> Result<bool, String> {
    match fields.get(name) {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| format!("{name}={v}: expected true or false")),
    }
}

impl CacheImport {
    /// Parses buildx's `--cache-from` syntax.
    pub fn parse(spec: &str) -> Result<CacheImport, String> {
        let fields = cache_fields(spec)?;
        for k in fields.keys() {
            if !matches!(k.as_str(), "type" | "ref" | "registry.insecure") {
                return Err(format!("unknown --cache-from option {k:?}"));
            }
        }
        Ok(CacheImport {
            reference: fields["ref"].clone(),
            insecure: bool_field(&fields, "registry.insecure")?,
        })
    }
}

impl CacheExport {
    /// Parses buildx's `--cache-to` syntax.
    pub fn parse(spec: &str) -> Result<CacheExport, String> {
        let fields = cache_fields(spec)?;
        let max = match fields.get("mode").map(String::as_str) {
            None | Some("min") => false,
            Some("max") => true,
            Some(other) => return Err(format!("mode={other}: expected min or max")),
        };
        for k in fields.keys() {
            match k.as_str() {
                "type" | "ref" | "mode" | "mounts" | "registry.insecure" => {}
                // Accepted for buildx compatibility; kiln's cache layers are
                // the image layers themselves.
                "compression" | "compression-level" | "force-compression" | "oci-mediatypes"
                | "image-manifest" | "ignore-error" => {}
                other => return Err(format!("unknown --cache-to option {other:?}")),
            }
        }
        Ok(CacheExport {
            reference: fields["ref"].clone(),
            max,
            mounts: bool_field(&fields, "mounts")?,
            insecure: bool_field(&fields, "registry.insecure")?,
        })
    }
}

/// A `--build-context NAME=VALUE` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory: a file tree for `COPY --from=NAME` and
    /// `RUN --mount=from=NAME`, and for `FROM NAME` an image with an empty
    /// config whose root filesystem is the directory (as in BuildKit).
    Dir(PathBuf),
    /// `oci-layout://PATH[:TAG|@DIGEST]`, usable with `FROM NAME` and `COPY --from=NAME`.
    OciLayout(String),
    /// `docker-image://REF`: an image pulled from a registry, usable like
    /// `OciLayout`.
    DockerImage(String),
}

/// As given on the command line (the value part of NAME=VALUE).
impl std::fmt::Display for NamedContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamedContext::Dir(d) => write!(f, "{}", d.display()),
            NamedContext::OciLayout(r) => write!(f, "oci-layout://{r}"),
            NamedContext::DockerImage(r) => write!(f, "docker-image://{r}"),
        }
    }
}

impl NamedContext {
    /// Parses the value part of `--build-context NAME=VALUE` like buildx.
    pub fn parse(value: &str) -> Result<NamedContext, String> {
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            if rest.is_empty() {
                return Err("oci-layout:// needs a path".into());
            }
            return Ok(NamedContext::OciLayout(rest.to_string()));
        }
        if let Some(rest) = value.strip_prefix("docker-image://") {
            crate::registry::ImageRef::parse(rest).map_err(|e| e.to_string())?;
            return Ok(NamedContext::DockerImage(rest.to_string()));
        }
        for scheme in ["target:", "http://", "https://", "git@"] {
            if value.starts_with(scheme) {
                return Err(format!(
                    "{scheme} build contexts are not supported yet; use a directory, oci-layout://PATH or docker-image://REF"
                ));
            }
        }
        if value.is_empty() {
            return Err("empty value".into());
        }
        Ok(NamedContext::Dir(PathBuf::from(value)))
    }
}

/// One `--output` destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// OCI image layout: a tar archive, or a directory when `tar=false`.
    Oci {
        dest: PathBuf,
        tar: bool,
        name: Option<String>,
    },
    /// A `docker load`-able archive (`tar` is always true).
    Docker {
        dest: PathBuf,
        tar: bool,
        name: Option<String>,
    },
    /// The final stage's root filesystem as a directory.
    Local { dest: PathBuf },
    /// `type=image,name=REF[,push=true]` names the image locally (like
    /// `-t`) and, with push, pushes it; `type=registry` is push=true.
    /// `registry.insecure=true` pushes over plain http.
    Image {
        name: String,
        push: bool,
        insecure: bool,
    },
}

impl OutputSpec {
    /// Parses buildx's `--output` syntax: `type=oci,dest=out.tar[,tar=false][,name=N]`,
    /// `type=docker,dest=F`, `type=local,dest=DIR`, `type=image,name=REF[,push=true]`,
    /// `type=registry,name=REF`, or a bare path (= local).
    pub fn parse(spec: &str) -> Result<OutputSpec, String> {
        if !spec.contains('=') {
            if spec.is_empty() || spec == "-" {
                return Err("writing an output to stdout is not supported; give dest=PATH".into());
            }
            return Ok(OutputSpec::Local { dest: spec.into() });
        }
        let mut kind = None;
        let mut dest = None;
        let mut tar = true;
        let mut name = None;
        let mut push = None;
        let mut insecure = false;
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, found {field:?}"))?;
            match k.trim() {
                "type" => kind = Some(v.to_string()),
                "dest" => dest = Some(PathBuf::from(v)),
                "tar" => {
                    tar = parse_bool(v).ok_or_else(|| format!("tar={v}: expected true or false"))?
                }
                "name" => name = Some(v.to_string()),
                "registry.insecure" => {
                    insecure = parse_bool(v)
                        .ok_or_else(|| format!("registry.insecure={v}: expected true or false"))?
                }
                "push" => {
                    push = Some(
                        parse_bool(v).ok_or_else(|| format!("push={v}: expected true or false"))?,
                    )
                }
                // Accepted for buildx compatibility; kiln's outputs are always
                // reproducible and never compressed differently.
                "compression" | "compression-level" | "force-compression" | "oci-mediatypes"
                | "rewrite-timestamp" | "platform-split" | "unpack" | "store" => {}
                other => return Err(format!("unknown output option {other:?}")),
            }
        }
        let kind = kind.ok_or("missing type= (oci, docker, local, image or registry)")?;
        if push.is_some() && kind != "image" {
            return Err(format!("push= applies to type=image, not type={kind}"));
        }
        let need_dest = |d: Option<PathBuf>| d.ok_or(format!("type={kind} needs dest=PATH"));
        match kind.as_str() {
            "oci" => Ok(OutputSpec::Oci {
                dest: need_dest(dest)?,
                tar,
                name,
            }),
            "docker" if !tar => Err(
                "type=docker is always a tar archive; use type=oci,tar=false for a directory"
                    .into(),
            ),
            "docker" => Ok(OutputSpec::Docker {
                dest: need_dest(dest)?,
                tar,
                name,
            }),
            "local" => Ok(OutputSpec::Local {
                dest: need_dest(dest)?,
            }),
            "image" | "registry" => {
                let name = name.ok_or(format!("type={kind} needs name=REF"))?;
                if dest.is_some() {
                    return Err(format!("type={kind} takes name=REF, not dest="));
                }
                Ok(OutputSpec::Image {
                    name,
                    push: kind == "registry" || push.unwrap_or(false),
                    insecure,
                })
            }
            "tar" => Err("type=tar is not supported yet; use type=local or type=oci".into()),
            other => Err(format!(
                "unknown output type {other:?} (expected oci, docker, local, image or registry)"
            )),
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    Auto,
    Plain,
    Tty,
    Quiet,
    Rawjson,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_specs_parse_like_buildx() {
        let e = CacheExport::parse("type=registry,ref=r:5000/c:1,mode=max,mounts=true").unwrap();
        assert_eq!(
            e,
            CacheExport {
                reference: "r:5000/c:1".into(),
                max: true,
                mounts: true,
                insecure: false
            }
        );
        assert!(!CacheExport::parse("type=registry,ref=r/c").unwrap().max);
        assert_eq!(CacheImport::parse("r/c:1").unwrap().reference, "r/c:1");
        assert!(CacheExport::parse("type=registry,ref=x,mode=most").is_err());
        assert!(CacheExport::parse("type=registry")
            .unwrap_err()
            .contains("ref="));
        assert!(CacheImport::parse("type=local,src=/tmp/c")
            .unwrap_err()
            .contains("not supported"));
        assert!(CacheImport::parse("type=registry,ref=UP/per").is_err());
        assert!(CacheImport::parse("type=registry,ref=x,mode=max")
            .unwrap_err()
            .contains("mode"));
    }

    #[test]
    fn output_specs_parse_like_buildx() {
        assert_eq!(
            OutputSpec::parse("type=oci,dest=o.tar").unwrap(),
            OutputSpec::Oci {
                dest: "o.tar".into(),
                tar: true,
                name: None
            }
        );
        assert_eq!(
            OutputSpec::parse("type=oci,dest=d,tar=false,name=x:1").unwrap(),
            OutputSpec::Oci {
                dest: "d".into(),
                tar: false,
                name: Some("x:1".into())
            }
        );
        assert_eq!(
            OutputSpec::parse("out").unwrap(),
            OutputSpec::Local { dest: "out".into() }
        );
        assert!(OutputSpec::parse("type=oci").unwrap_err().contains("dest"));
        assert!(OutputSpec::parse("type=bogus,dest=x").is_err());
        assert!(OutputSpec::parse("type=oci,dest=x,tar=maybe").is_err());
        assert_eq!(
            OutputSpec::parse("type=registry,name=r:5000/x:1").unwrap(),
            OutputSpec::Image {
                name: "r:5000/x:1".into(),
                push: true,
                insecure: false
            }
        );
        assert_eq!(
            OutputSpec::parse("type=image,name=x").unwrap(),
            OutputSpec::Image {
                name: "x".into(),
                push: false,
                insecure: false
            }
        );
        assert_eq!(
            OutputSpec::parse("type=image,name=x,push=true,registry.insecure=true").unwrap(),
            OutputSpec::Image {
                name: "x".into(),
                push: true,
                insecure: true
            }
        );
        assert!(OutputSpec::parse("type=registry")
            .unwrap_err()
            .contains("name"));
        assert!(OutputSpec::parse("type=oci,dest=x,push=true").is_err());
        assert!(OutputSpec::parse("type=image,name=x,push=perhaps").is_err());
    }

    #[test]
    fn named_contexts_parse_like_buildx() {
        assert_eq!(
            NamedContext::parse("oci-layout:///x/y:tag").unwrap(),
            NamedContext::OciLayout("/x/y:tag".into())
        );
        assert_eq!(
            NamedContext::parse("../dir").unwrap(),
            NamedContext::Dir("../dir".into())
        );
        assert_eq!(
            NamedContext::parse("docker-image://alpine:3.20").unwrap(),
            NamedContext::DockerImage("alpine:3.20".into())
        );
        let err = NamedContext::parse("docker-image://Bad Ref").unwrap_err();
        assert!(err.contains("invalid image reference"), "{err}");
        assert!(NamedContext::parse("target:base").is_err());
    }
}
