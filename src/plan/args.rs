//! ARG scoping with BuildKit's rules.
//!
//! - ARGs before the first FROM ("meta args") are visible to FROM lines only;
//!   a stage sees one after re-declaring it (`ARG NAME` takes the global value).
//! - `--build-arg` overrides any declared default, global or in a stage.
//! - The predefined platform args (TARGETPLATFORM, BUILDARCH, ...) are visible
//!   to FROM lines, and inside a stage once declared.
//! - In a stage, ENV wins over ARG of the same name when words are expanded.

use crate::dockerfile::expand::VarLookup;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The `--build-arg` values, remembering which ones some ARG consumed so
/// that unused ones can be reported like buildx does.
#[derive(Debug, Default)]
pub struct BuildArgValues {
    values: BTreeMap<String, String>,
    used: Mutex<BTreeSet<String>>,
}

impl BuildArgValues {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        BuildArgValues {
            values,
            used: Mutex::default(),
        }
    }

    fn take(&self, name: &str) -> Option<String> {
        let v = self.values.get(name)?;
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        Some(v.clone())
    }

    /// Build args no ARG instruction declared, in name order.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        self.values
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    }
}

/// A list of variables in declaration order; a later declaration of the same
/// name replaces the earlier one. `None` is "declared without a value".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VarList(Vec<(String, Option<String>)>);

impl VarList {
    pub fn set(&mut self, name: &str, value: Option<String>) {
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value;
        } else {
            self.0.push((name.to_string(), value));
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// `NAME=value` pairs of the variables that have a value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter_map(|(n, v)| v.as_deref().map(|v| (n.as_str(), v)))
    }
}

impl VarLookup for VarList {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// The global scope: meta args and the predefined platform args.
#[derive(Debug)]
pub struct GlobalArgs {
    pub build_args: BuildArgValues,
    /// Predefined args (TARGETPLATFORM, BUILDOS, ...), never declared.
    predefined: VarList,
    /// Meta args, with their resolved values.
    meta: VarList,
}

impl GlobalArgs {
    pub fn new(build_args: BTreeMap<String, String>, predefined: Vec<(String, String)>) -> Self {
        let mut pre = VarList::default();
        for (k, v) in predefined {
            pre.set(&k, Some(v));
        }
        GlobalArgs {
            build_args: BuildArgValues::new(build_args),
            predefined: pre,
            meta: VarList::default(),
        }
    }

    /// Declares a meta arg; `default` must already be expanded against
    /// [`GlobalArgs::from_scope`].
    pub fn declare_meta(&mut self, name: &str, default: Option<String>) {
        let value = self.build_args.take(name).or(default);
        self.meta.set(name, value);
    }

    /// Variables FROM lines and meta-arg defaults expand with.
    pub fn from_scope(&self) -> FromScope<'_> {
        FromScope { globals: self }
    }

    /// Starts the ARG scope of a new stage.
    pub fn stage_scope(&self) -> StageArgs<'_> {
        StageArgs {
            globals: self,
            declared: VarList::default(),
        }
    }
}

/// Meta args first, then predefined platform args.
pub struct FromScope<'a> {
    globals: &'a GlobalArgs,
}

impl VarLookup for FromScope<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        if self.globals.meta.contains(name) {
            return self.globals.meta.get(name);
        }
        self.globals.predefined.get(name)
    }
}

/// The ARGs one stage has declared so far.
#[derive(Debug, Clone)]
pub struct StageArgs<'a> {
    globals: &'a GlobalArgs,
    declared: VarList,
}

impl StageArgs<'_> {
    /// Declares `ARG name[=default]` in the stage; `default` is already
    /// expanded. Returns the value the arg now has.
    pub fn declare(&mut self, name: &str, default: Option<String>) -> Option<String> {
        let value = self
            .globals
            .build_args
            .take(name)
            .or(default)
            .or_else(|| self.globals.meta.get(name).map(str::to_string))
            .or_else(|| self.globals.predefined.get(name).map(str::to_string));
        self.declared.set(name, value.clone());
        value
    }

    pub fn declared(&self) -> &VarList {
        &self.declared
    }
}

/// The variables an instruction's words expand with: the stage's ENV
/// (`NAME=value` strings, as in the image config) over its declared ARGs.
pub struct StageVars<'a> {
    pub env: &'a [String],
    pub args: &'a VarList,
}

impl VarLookup for StageVars<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        for kv in self.env.iter().rev() {
            match kv.split_once('=') {
                Some((k, v)) if k == name => return Some(v),
                None if kv == name => return Some(""),
                _ => {}
            }
        }
        self.args.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals(build: &[(&str, &str)]) -> GlobalArgs {
        GlobalArgs::new(
            build
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            vec![("TARGETARCH".into(), "amd64".into())],
        )
    }

    #[test]
    fn meta_args_reach_stages_only_when_redeclared() {
        let mut g = globals(&[]);
        g.declare_meta("VERSION", Some("1.0".into()));
        assert_eq!(g.from_scope().lookup("VERSION"), Some("1.0"));
        let mut stage = g.stage_scope();
        assert_eq!(stage.declared().get("VERSION"), None);
        assert_eq!(stage.declare("VERSION", None).as_deref(), Some("1.0"));
        assert_eq!(stage.declared().get("VERSION"), Some("1.0"));
    }

    #[test]
    fn build_args_override_defaults_and_unused_ones_are_reported() {
        let mut g = globals(&[("A", "cli"), ("UNUSED", "x")]);
        g.declare_meta("A", Some("default".into()));
        assert_eq!(g.from_scope().lookup("A"), Some("cli"));
        let mut stage = g.stage_scope();
        assert_eq!(
            stage.declare("A", Some("stage".into())).as_deref(),
            Some("cli")
        );
        assert_eq!(g.build_args.unused(), vec!["UNUSED".to_string()]);
    }

    #[test]
    fn predefined_platform_args_need_declaration_in_a_stage() {
        let g = globals(&[]);
        assert_eq!(g.from_scope().lookup("TARGETARCH"), Some("amd64"));
        let mut stage = g.stage_scope();
        assert_eq!(stage.declared().get("TARGETARCH"), None);
        stage.declare("TARGETARCH", None);
        assert_eq!(stage.declared().get("TARGETARCH"), Some("amd64"));
    }

    #[test]
    fn env_wins_over_arg() {
        let mut args = VarList::default();
        args.set("X", Some("arg".into()));
        args.set("Y", Some("arg".into()));
        let env = vec!["X=env".to_string()];
        let vars = StageVars {
            env: &env,
            args: &args,
        };
        assert_eq!(vars.lookup("X"), Some("env"));
        assert_eq!(vars.lookup("Y"), Some("arg"));
        assert_eq!(vars.lookup("Z"), None);
    }
}
