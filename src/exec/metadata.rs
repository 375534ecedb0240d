//! Instructions that change only the image config (no layer): how each one
//! edits the config, following BuildKit's dispatchers.

use crate::oci::config::{EmptyObject, Healthcheck, ImageConfig};
use std::collections::BTreeMap;

/// The shell BuildKit uses for shell-form commands when no SHELL was given.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// ENV: replaces an existing `NAME=` entry in place, else appends.
pub fn set_env(config: &mut ImageConfig, name: &str, value: &str) {
    let env = config.config.env.get_or_insert_with(Vec::new);
    let entry = format!("{name}={value}");
    match env
        .iter_mut()
        .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == name)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

pub fn env_list(config: &ImageConfig) -> &[String] {
    config.config.env.as_deref().unwrap_or(&[])
}

pub fn add_label(config: &mut ImageConfig, key: &str, value: &str) {
    config
        .config
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

/// EXPOSE: `80`, `80/tcp`, `53/udp`, and ranges `8000-8010` (expanded like
/// Docker's nat.ParsePortSpecs). Returns an error naming the bad port.
pub fn expose(config: &mut ImageConfig, spec: &str) -> Result<(), String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {proto:?} in EXPOSE {spec}"));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid port {s:?} in EXPOSE {spec}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("invalid port range in EXPOSE {spec}"));
    }
    let map = config
        .config
        .exposed_ports
        .get_or_insert_with(BTreeMap::new);
    for port in lo..=hi {
        map.insert(format!("{port}/{proto}"), EmptyObject {});
    }
    Ok(())
}

pub fn add_volume(config: &mut ImageConfig, path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("VOLUME specified can not be an empty string".into());
    }
    config
        .config
        .volumes
        .get_or_insert_with(BTreeMap::new)
        .insert(path.to_string(), EmptyObject {});
    Ok(())
}

/// A CMD/ENTRYPOINT/HEALTHCHECK command as written: exec form is used as is,
/// shell form is wrapped in the stage's SHELL.
pub fn command_vector(
    exec_form: Option<&[String]>,
    shell_form: &str,
    shell: &[String],
) -> Vec<String> {
    match exec_form {
        Some(args) => args.to_vec(),
        None => {
            let mut v = shell.to_vec();
            v.push(shell_form.to_string());
            v
        }
    }
}

/// CMD. `cmd_set` records that this stage set CMD itself, which decides
/// whether a later ENTRYPOINT clears it.
pub fn set_cmd(config: &mut ImageConfig, cmd: Vec<String>) {
    config.config.cmd = Some(cmd);
}

/// ENTRYPOINT: like Docker, clears a CMD inherited from the base image
/// unless this stage set CMD before.
pub fn set_entrypoint(config: &mut ImageConfig, entrypoint: Vec<String>, cmd_set_in_stage: bool) {
    config.config.entrypoint = Some(entrypoint);
    if !cmd_set_in_stage {
        config.config.cmd = None;
    }
}

pub fn set_healthcheck(config: &mut ImageConfig, check: Healthcheck) {
    config.config.healthcheck = Some(check);
}

pub fn add_onbuild(config: &mut ImageConfig, trigger: &str) {
    config
        .config
        .on_build
        .get_or_insert_with(Vec::new)
        .push(trigger.to_string());
}

/// `created` and history times: SOURCE_DATE_EPOCH as RFC 3339 in UTC.
pub fn timestamp(source_date_epoch: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(source_date_epoch);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_in_place() {
        let mut c = ImageConfig::default();
        set_env(&mut c, "A", "1");
        set_env(&mut c, "B", "2");
        set_env(&mut c, "A", "3");
        assert_eq!(env_list(&c), ["A=3", "B=2"]);
    }

    #[test]
    fn expose_normalises_protocols_and_ranges() {
        let mut c = ImageConfig::default();
        expose(&mut c, "80").unwrap();
        expose(&mut c, "53/UDP").unwrap();
        expose(&mut c, "8000-8002").unwrap();
        let keys: Vec<_> = c.config.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(
            keys,
            ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        let mut c = ImageConfig::default();
        assert!(expose(&mut c, "http").is_err());
        assert!(expose(&mut c, "80/icmp").is_err());
        assert!(expose(&mut c, "90-80").is_err());
    }

    #[test]
    fn entrypoint_clears_inherited_cmd_only() {
        let mut c = ImageConfig::default();
        set_cmd(&mut c, vec!["base".into()]);
        set_entrypoint(&mut c, vec!["/e".into()], false);
        assert_eq!(c.config.cmd, None);
        set_cmd(&mut c, vec!["mine".into()]);
        set_entrypoint(&mut c, vec!["/e2".into()], true);
        assert_eq!(c.config.cmd, Some(vec!["mine".to_string()]));
    }

    #[test]
    fn shell_form_uses_the_stage_shell() {
        let v = command_vector(None, "echo hi", &default_shell());
        assert_eq!(v, ["/bin/sh", "-c", "echo hi"]);
        let exec = vec!["a".to_string()];
        assert_eq!(command_vector(Some(&exec), "", &default_shell()), ["a"]);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
