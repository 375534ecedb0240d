//! `RUN --mount=...` specifications, parsed and checked before anything
//! runs, with BuildKit's syntax: comma-separated `key=value` fields, `type`
//! defaulting to `bind`, and its aliases (`src`, `dst`/`destination`,
//! `ro`/`readonly`, `rw`/`readwrite`).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mount {
    /// Files from the context, a stage or a named context; writes are
    /// discarded, and only allowed with `rw`.
    Bind {
        target: String,
        source: String,
        from: Option<String>,
        read_write: bool,
    },
    /// A directory kept in the cache dir across builds, never in a layer
    /// or a cache key.
    Cache {
        target: String,
        id: String,
        sharing: Sharing,
        from: Option<String>,
        source: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An empty scratch directory for this step only.
    Tmpfs { target: String, size: Option<u64> },
    /// A `--secret`, as a file (default `/run/secrets/ID`) or an env var.
    Secret {
        id: String,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

#[derive(Debug, PartialEq, Eq)]
pub struct MountError {
    pub spec: String,
    pub reason: String,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid --mount={}: {}", self.spec, self.reason)
    }
}

impl std::error::Error for MountError {}

impl Mount {
    /// Where the mount appears inside the step (secrets as env have none).
    pub fn target(&self) -> Option<&str> {
        match self {
            Mount::Bind { target, .. }
            | Mount::Cache { target, .. }
            | Mount::Tmpfs { target, .. } => Some(target),
            Mount::Secret { target, .. } => target.as_deref(),
        }
    }

    /// Parses one `--mount` value (already variable-expanded).
    pub fn parse(spec: &str) -> Result<Mount, MountError> {
        let err = |reason: String| MountError {
            spec: spec.to_string(),
            reason,
        };
        let mut kind = "bind".to_string();
        let mut fields: Vec<(String, Option<String>)> = Vec::new();
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
                None => (field.trim().to_ascii_lowercase(), None),
            };
            if k == "type" {
                kind = v.ok_or_else(|| err("type needs a value".into()))?;
            } else {
                fields.push((k, v));
            }
        }
        let mut target = None;
        let mut source = None;
        let mut from = None;
        let mut read_write = false;
        let mut id = None;
        let mut sharing = Sharing::Shared;
        let mut mode = None;
        let mut uid = 0;
        let mut gid = 0;
        let mut size = None;
        let mut env = None;
        let mut required = false;
        for (k, v) in fields {
            let value = || v.clone().ok_or_else(|| err(format!("{k} needs a value")));
            let flag = |v: &Option<String>| match v.as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(other) => Err(err(format!("{k}={other}: expected true or false"))),
            };
            match k.as_str() {
                "target" | "dst" | "destination" => target = Some(value()?),
                "source" | "src" => source = Some(value()?),
                "from" => from = Some(value()?),
                "rw" | "readwrite" => read_write = flag(&v)?,
                "ro" | "readonly" => read_write = !flag(&v)?,
                "id" => id = Some(value()?),
                "sharing" => {
                    sharing = match value()?.as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        other => {
                            return Err(err(format!(
                                "sharing={other}: expected shared, private or locked"
                            )))
                        }
                    }
                }
                "mode" => {
                    let m = value()?;
                    mode = Some(
                        u32::from_str_radix(&m, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| err(format!("mode={m}: expected an octal mode")))?,
                    )
                }
                "uid" | "gid" => {
                    let n = value()?;
                    let n = n
                        .parse::<u32>()
                        .map_err(|_| err(format!("{k}={n}: expected a number")))?;
                    if k == "uid" {
                        uid = n
                    } else {
                        gid = n
                    }
                }
                "size" => {
                    let s = value()?;
                    size = Some(
                        parse_size(&s)
                            .ok_or_else(|| err(format!("size={s}: expected bytes such as 64m")))?,
                    )
                }
                "env" => env = Some(value()?),
                "required" => required = flag(&v)?,
                other => return Err(err(format!("unknown option {other:?} for type={kind}"))),
            }
        }
        let need_target = |t: Option<String>| t.ok_or_else(|| err("target= is required".into()));
        let only = |allowed: &[&str], present: &[(&str, bool)]| -> Result<(), MountError> {
            for (name, set) in present {
                if *set && !allowed.contains(name) {
                    return Err(err(format!("{name}= is not valid for type={kind}")));
                }
            }
            Ok(())
        };
        let present = [
            ("source", source.is_some()),
            ("from", from.is_some()),
            ("id", id.is_some()),
            ("size", size.is_some()),
            ("env", env.is_some()),
            ("mode", mode.is_some()),
        ];
        match kind.as_str() {
            "bind" => {
                only(&["source", "from"], &present)?;
                Ok(Mount::Bind {
                    target: need_target(target)?,
                    source: source.unwrap_or_else(|| "/".into()),
                    from,
                    read_write,
                })
            }
            "cache" => {
                only(&["source", "from", "id", "mode"], &present)?;
                let target = need_target(target)?;
                Ok(Mount::Cache {
                    id: id.unwrap_or_else(|| target.clone()),
                    target,
                    sharing,
                    from,
                    source: source.unwrap_or_else(|| "/".into()),
                    mode: mode.unwrap_or(0o755),
                    uid,
                    gid,
                })
            }
            "tmpfs" => {
                only(&["size"], &present)?;
                Ok(Mount::Tmpfs {
                    target: need_target(target)?,
                    size,
                })
            }
            "secret" => {
                only(&["id", "env", "mode"], &present)?;
                let id = match (id, &target) {
                    (Some(id), _) => id,
                    // BuildKit: without id, the target's base name is the id.
                    (None, Some(t)) => t.rsplit('/').next().unwrap_or(t).to_string(),
                    (None, None) => return Err(err("secret mounts need id= or target=".into())),
                };
                let target = match (&target, &env) {
                    (None, None) => Some(format!("/run/secrets/{id}")),
                    _ => target,
                };
                Ok(Mount::Secret {
                    id,
                    target,
                    env,
                    required,
                    mode: mode.unwrap_or(0o400),
                    uid,
                    gid,
                })
            }
            "ssh" => Err(err(
                "type=ssh is not supported: kiln's RUN steps have no network and no SSH agent"
                    .into(),
            )),
            other => Err(err(format!(
                "unknown mount type {other:?} (expected bind, cache, tmpfs or secret)"
            ))),
        }
    }
}

/// `RUN --network=`: only `default` and `none` (kiln steps never have a network).
pub fn check_network(value: &str) -> Result<(), String> {
    match value {
        "default" | "none" => Ok(()),
        other => Err(format!(
            "--network={other} is not supported: kiln runs RUN steps without network access (use default or none)"
        )),
    }
}

/// `RUN --security=`: `sandbox` (the default) only.
pub fn check_security(value: &str) -> Result<(), String> {
    match value {
        "sandbox" => Ok(()),
        other => Err(format!(
            "--security={other} is not supported: every kiln RUN step runs in its WebAssembly sandbox"
        )),
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (digits, mult) = match lower.trim_end_matches('b').chars().last()? {
        'k' => (&lower[..lower.find('k')?], 1u64 << 10),
        'm' => (&lower[..lower.find('m')?], 1 << 20),
        'g' => (&lower[..lower.find('g')?], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_defaults_and_aliases() {
        assert_eq!(
            Mount::parse("target=/src").unwrap(),
            Mount::Bind {
                target: "/src".into(),
                source: "/".into(),
                from: None,
                read_write: false
            }
        );
        assert_eq!(
            Mount::parse("type=bind,src=app,dst=/app,from=build,rw").unwrap(),
            Mount::Bind {
                target: "/app".into(),
                source: "app".into(),
                from: Some("build".into()),
                read_write: true
            }
        );
    }

    #[test]
    fn cache_mounts() {
        let m = Mount::parse("type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000")
            .unwrap();
        assert_eq!(
            m,
            Mount::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into(),
                sharing: Sharing::Locked,
                from: None,
                source: "/".into(),
                mode: 0o700,
                uid: 1000,
                gid: 0
            }
        );
        assert!(Mount::parse("type=cache,target=/x,sharing=sometimes").is_err());
        assert!(Mount::parse("type=cache")
            .unwrap_err()
            .reason
            .contains("target"));
    }

    #[test]
    fn secrets_default_to_run_secrets() {
        let m = Mount::parse("type=secret,id=npm").unwrap();
        assert_eq!(m.target(), Some("/run/secrets/npm"));
        let m = Mount::parse("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert_eq!(m.target(), None);
        assert!(matches!(m, Mount::Secret { required: true, .. }));
        let m = Mount::parse("type=secret,target=/etc/key").unwrap();
        assert!(matches!(&m, Mount::Secret { id, .. } if id == "key"));
    }

    #[test]
    fn errors_name_the_problem() {
        for (spec, needle) in [
            ("type=ssh", "not supported"),
            ("type=nfs,target=/x", "unknown mount type"),
            ("type=tmpfs,target=/t,from=x", "from= is not valid"),
            ("type=bind,target=/x,bogus=1", "bogus"),
            ("type=tmpfs,target=/t,size=lots", "size=lots"),
            ("type=cache,target=/c,mode=999", "mode=999"),
            ("type=bind,target=/x,rw=maybe", "rw=maybe"),
        ] {
            let e = Mount::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
    }

    #[test]
    fn network_and_security() {
        assert!(check_network("none").is_ok());
        assert!(check_network("host").unwrap_err().contains("network"));
        assert!(check_security("insecure").is_err());
    }
}
