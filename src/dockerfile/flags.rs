//! Instruction flags (`--name=value`) checked against what each instruction
//! accepts, with BuildKit's BFlags rules: unknown, repeated (except list
//! flags) and value-less string flags are errors; booleans take `=true`,
//! `=false` or no value.

use std::collections::HashMap;

/// What a flag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    String,
    /// May repeat; values collected in order.
    Strings,
}

/// Flag values after parsing; only flags actually given are present.
#[derive(Debug, Default)]
pub struct Flags {
    bools: HashMap<&'static str, bool>,
    strings: HashMap<&'static str, String>,
    lists: HashMap<&'static str, Vec<String>>,
}

impl Flags {
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }
    pub fn string(&self, name: &str) -> Option<String> {
        self.strings.get(name).cloned()
    }
    pub fn list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

/// Parses `given` (as written in the Dockerfile) against `spec`.
pub fn parse(given: &[String], spec: &[(&'static str, Kind)]) -> Result<Flags, String> {
    let mut out = Flags::default();
    let mut used: Vec<&str> = Vec::new();
    for arg in given {
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {arg}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flag: {flag_name}"));
        };
        if used.contains(&key) && kind != Kind::Strings {
            return Err(format!("duplicate flag specified: {flag_name}"));
        }
        used.push(key);
        match kind {
            Kind::Bool => {
                if value == Some("") {
                    return Err(format!("missing a value on flag: {flag_name}"));
                }
                let b = match value.map(str::to_lowercase).as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err(format!(
                            "expecting boolean value for flag {flag_name}, not: {}",
                            value.unwrap_or_default()
                        ))
                    }
                };
                out.bools.insert(key, b);
            }
            Kind::String => {
                let Some(v) = value else {
                    return Err(format!("missing a value on flag: {flag_name}"));
                };
                out.strings.insert(key, v.to_string());
            }
            Kind::Strings => {
                let Some(v) = value else {
                    return Err(format!("missing a value on flag: {flag_name}"));
                };
                out.lists.entry(key).or_default().push(v.to_string());
            }
        }
    }
    Ok(out)
}
