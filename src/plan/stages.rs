//! The stage graph: which stages the target needs and in which order.
//!
//! A stage depends on an earlier stage when it starts FROM it or copies
//! from it (`COPY --from=name|index`, `RUN --mount=from=`). Only the stages
//! the target needs are built, so a broken unused stage never fails a build.
//!
//! A `--build-context NAME=...` whose NAME is a stage's name replaces that
//! stage (BuildKit's rule): every FROM and `--from` naming it reads the
//! named context instead, and the stage itself, its base image and the
//! stages only it reads from are never built.

use std::collections::BTreeSet;

/// What the planner needs to know about one stage.
#[derive(Clone, Debug)]
pub struct StageRefs {
    /// `AS name`, lower-cased as BuildKit does.
    pub name: Option<String>,
    /// The expanded FROM argument.
    pub base: String,
    /// Expanded `--from` values of COPY/ADD/RUN mounts in this stage.
    pub copies_from: Vec<String>,
}

/// Where a FROM or `--from` reference points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `scratch`: the empty image.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// Anything else: a named context or an image reference.
    External(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("target stage {0:?} could not be found (stages: {1})")]
    UnknownTarget(String, String),
    #[error("stage name {0:?} is used by more than one stage")]
    DuplicateName(String),
    #[error("stage {0} refers to stage {1}, which is not defined before it")]
    ForwardReference(usize, String),
    #[error("invalid stage name {0:?}: must start with a letter and contain only letters, digits, '-', '_' and '.'")]
    InvalidName(String),
}

pub struct StageGraph {
    stages: Vec<StageRefs>,
    /// Per stage: the named context that replaces it, if one does.
    replaced: Vec<Option<String>>,
}

impl StageGraph {
    pub fn new(mut stages: Vec<StageRefs>) -> Result<StageGraph, PlanError> {
        let mut seen = BTreeSet::new();
        for s in &mut stages {
            if let Some(name) = &mut s.name {
                *name = name.to_ascii_lowercase();
                let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !valid {
                    return Err(PlanError::InvalidName(name.clone()));
                }
                if !seen.insert(name.clone()) {
                    return Err(PlanError::DuplicateName(name.clone()));
                }
            }
        }
        let replaced = vec![None; stages.len()];
        Ok(StageGraph { stages, replaced })
    }

    /// Marks every stage whose name is one of the named contexts `names`
    /// (the `--build-context` keys) as replaced by it. Stage names are
    /// lower-case, and so are context keys (buildx refuses others), so the
    /// match is exact; like BuildKit, `scratch` and `context` never name a
    /// context.
    pub fn with_named_contexts<'n>(mut self, names: impl IntoIterator<Item = &'n str>) -> Self {
        let names: BTreeSet<&str> = names.into_iter().collect();
        for (stage, replaced) in self.stages.iter().zip(&mut self.replaced) {
            *replaced = stage
                .name
                .as_deref()
                .filter(|n| !matches!(*n, "scratch" | "context") && names.contains(n))
                .map(str::to_string);
        }
        self
    }

    /// The named context that replaces stage `i`, if one does.
    pub fn replaced_by(&self, i: usize) -> Option<&str> {
        self.replaced.get(i)?.as_deref()
    }

    /// The stage's name, or `stage-N` as progress shows it.
    pub fn display_name(&self, i: usize) -> String {
        self.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    }

    pub fn len(&self) -> usize {
        self.stages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Resolves a FROM or `--from` reference as seen from stage `from_stage`
    /// (names and indexes of earlier stages only; BuildKit resolves names
    /// case-insensitively).
    ///
    /// A reference to a stage replaced by a named context is that context
    /// (`External(key)`), from any stage: BuildKit resolves a replaced
    /// stage's name even ahead of its definition, since it is not built.
    pub fn resolve(&self, reference: &str, from_stage: usize) -> Source {
        let lower = reference.to_ascii_lowercase();
        if lower == "scratch" {
            return Source::Scratch;
        }
        if let Some(key) = self
            .stages
            .iter()
            .zip(&self.replaced)
            .find_map(|(s, r)| r.as_ref().filter(|_| s.name.as_deref() == Some(&lower)))
        {
            return Source::External(key.clone());
        }
        if let Some(i) = self.stages[..from_stage]
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
        {
            return Source::Stage(i);
        }
        if let Ok(i) = reference.parse::<usize>() {
            if let Some(key) = self.replaced_by(i) {
                return Source::External(key.to_string());
            }
            if i < from_stage {
                return Source::Stage(i);
            }
        }
        Source::External(reference.to_string())
    }

    /// The index of `--target`, or the last stage.
    pub fn target(&self, target: Option<&str>) -> Result<usize, PlanError> {
        match target {
            None => Ok(self.stages.len().saturating_sub(1)),
            Some(t) => {
                let lower = t.to_ascii_lowercase();
                self.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(&lower))
                    .ok_or_else(|| {
                        let names: Vec<_> =
                            self.stages.iter().filter_map(|s| s.name.clone()).collect();
                        PlanError::UnknownTarget(t.to_string(), names.join(", "))
                    })
            }
        }
    }

    /// Stages `target` needs (itself included), in build order: ascending
    /// index, which is a topological order since references only go back.
    /// Empty when a named context replaces the target: nothing is built.
    pub fn needed(&self, target: usize) -> Result<Vec<usize>, PlanError> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        if self.replaced_by(target).is_some() {
            todo.clear();
        }
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            let s = &self.stages[i];
            for r in std::iter::once(&s.base).chain(&s.copies_from) {
                if let Source::Stage(dep) = self.resolve(r, i) {
                    todo.push(dep);
                } else if self.is_later_stage(r, i) {
                    return Err(PlanError::ForwardReference(i, r.clone()));
                }
            }
        }
        Ok(needed.into_iter().collect())
    }

    /// `target` and the stages it is built FROM, transitively: the stages
    /// whose layers the exported image contains.
    pub fn base_chain(&self, target: usize) -> Vec<usize> {
        let mut chain = vec![target];
        if self.replaced_by(target).is_some() {
            return chain;
        }
        let mut i = target;
        while let Source::Stage(base) = self.resolve(&self.stages[i].base, i) {
            chain.push(base);
            i = base;
        }
        chain
    }

    /// The stages stage `i` reads from (its base, COPY --from, RUN
    /// --mount from), each once, ascending.
    pub fn deps(&self, i: usize) -> Vec<usize> {
        let s = &self.stages[i];
        let deps: BTreeSet<usize> = std::iter::once(&s.base)
            .chain(&s.copies_from)
            .filter_map(|r| match self.resolve(r, i) {
                Source::Stage(dep) => Some(dep),
                _ => None,
            })
            .collect();
        deps.into_iter().collect()
    }

    /// The stages replaced by named contexts that building `target` reads
    /// (the target itself when it is replaced), each once, ascending.
    pub fn provided(&self, target: usize) -> Result<Vec<usize>, PlanError> {
        if self.replaced_by(target).is_some() {
            return Ok(vec![target]);
        }
        let mut provided = BTreeSet::new();
        for i in self.needed(target)? {
            let s = &self.stages[i];
            for r in std::iter::once(&s.base).chain(&s.copies_from) {
                if let Some(j) = self.replaced_stage(r) {
                    provided.insert(j);
                }
            }
        }
        Ok(provided.into_iter().collect())
    }

    /// The replaced stage `reference` names (by name or index), if any.
    fn replaced_stage(&self, reference: &str) -> Option<usize> {
        let lower = reference.to_ascii_lowercase();
        if lower == "scratch" {
            return None;
        }
        let i = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
            .or_else(|| reference.parse::<usize>().ok())?;
        self.replaced_by(i).map(|_| i)
    }

    fn is_later_stage(&self, reference: &str, from_stage: usize) -> bool {
        let lower = reference.to_ascii_lowercase();
        self.stages[from_stage..]
            .iter()
            .zip(&self.replaced[from_stage..])
            .any(|(s, r)| r.is_none() && s.name.as_deref() == Some(&lower))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base_chain_follows_from_only() {
        let g = StageGraph::new(vec![
            stage(Some("tools"), "scratch", &[]),
            stage(Some("build"), "scratch", &[]),
            stage(Some("mid"), "build", &["tools"]),
            stage(None, "mid", &[]),
        ])
        .unwrap();
        assert_eq!(g.base_chain(3), vec![3, 2, 1]);
        assert_eq!(g.base_chain(0), vec![0]);
    }

    use super::*;

    fn stage(name: Option<&str>, base: &str, froms: &[&str]) -> StageRefs {
        StageRefs {
            name: name.map(str::to_string),
            base: base.to_string(),
            copies_from: froms.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn only_needed_stages_are_built() {
        let g = StageGraph::new(vec![
            stage(Some("base"), "scratch", &[]),
            stage(Some("unused"), "base", &[]),
            stage(Some("assets"), "scratch", &[]),
            stage(None, "base", &["assets", "0"]),
        ])
        .unwrap();
        let t = g.target(None).unwrap();
        assert_eq!(g.needed(t).unwrap(), vec![0, 2, 3]);
        assert_eq!(
            g.needed(g.target(Some("UNUSED")).unwrap()).unwrap(),
            vec![0, 1]
        );
    }

    #[test]
    fn references_resolve_to_earlier_stages_or_outside() {
        let g = StageGraph::new(vec![
            stage(Some("a"), "scratch", &[]),
            stage(None, "A", &["busybox"]),
        ])
        .unwrap();
        assert_eq!(g.resolve("A", 1), Source::Stage(0));
        assert_eq!(g.resolve("0", 1), Source::Stage(0));
        assert_eq!(g.resolve("1", 1), Source::External("1".into()));
        assert_eq!(g.resolve("busybox", 1), Source::External("busybox".into()));
        assert_eq!(g.resolve("scratch", 1), Source::Scratch);
    }

    /// The CI-compiles-natively case: `builder` comes from a named context.
    fn go_build() -> Vec<StageRefs> {
        vec![
            stage(Some("tools"), "alpine", &[]),
            stage(Some("Builder"), "golang:1.22", &["tools"]),
            stage(None, "scratch", &["builder"]),
            stage(Some("run"), "BUILDER", &[]),
            stage(Some("mounts"), "scratch", &["1"]),
        ]
    }

    #[test]
    fn a_named_context_replaces_the_stage_of_that_name() {
        let g = StageGraph::new(go_build())
            .unwrap()
            .with_named_contexts(["builder", "unrelated"]);
        assert_eq!(g.replaced_by(1), Some("builder"));
        assert_eq!(g.replaced_by(0), None);
        // By name in any case, and by index, in FROM and --from alike.
        for reference in ["builder", "Builder", "BUILDER", "1"] {
            assert_eq!(
                g.resolve(reference, 2),
                Source::External("builder".into()),
                "{reference}"
            );
        }
        // Neither the stage, nor its base, nor the stage only it reads
        // from is built; nothing depends on it.
        assert_eq!(g.needed(2).unwrap(), vec![2]);
        assert_eq!(g.needed(3).unwrap(), vec![3]);
        assert_eq!(g.needed(4).unwrap(), vec![4]);
        assert!(g.deps(2).is_empty() && g.deps(3).is_empty());
        assert_eq!(g.base_chain(3), vec![3]);
        // What the build says is provided.
        assert_eq!(g.provided(2).unwrap(), vec![1]);
        assert_eq!(g.provided(4).unwrap(), vec![1]);
        assert_eq!(g.provided(0).unwrap(), Vec::<usize>::new());
        assert_eq!(g.display_name(1), "builder");
        // --target of the replaced stage builds nothing: the context is
        // the image (BuildKit exports the named context).
        let t = g.target(Some("builder")).unwrap();
        assert_eq!(t, 1);
        assert!(g.needed(t).unwrap().is_empty());
        assert_eq!(g.provided(t).unwrap(), vec![1]);
        assert_eq!(g.base_chain(t), vec![1]);
    }

    #[test]
    fn without_a_matching_context_the_stage_is_built() {
        // Context keys are matched exactly against the lower-cased stage
        // names (buildx refuses keys that are not lower-case).
        let g = StageGraph::new(go_build())
            .unwrap()
            .with_named_contexts(["Builder", "golang", "tools2"]);
        assert_eq!(g.replaced_by(1), None);
        assert_eq!(g.resolve("builder", 2), Source::Stage(1));
        assert_eq!(g.needed(2).unwrap(), vec![0, 1, 2]);
        assert!(g.provided(2).unwrap().is_empty());
    }

    #[test]
    fn a_replaced_stage_may_be_named_before_its_definition() {
        // BuildKit resolves a replaced stage anywhere (it is not built);
        // a later stage that is built is still a forward reference.
        let g = StageGraph::new(vec![
            stage(None, "scratch", &["later"]),
            stage(Some("later"), "golang", &[]),
        ])
        .unwrap();
        assert!(matches!(g.needed(0), Err(PlanError::ForwardReference(..))));
        let g = g.with_named_contexts(["later"]);
        assert_eq!(g.resolve("later", 0), Source::External("later".into()));
        assert_eq!(g.needed(0).unwrap(), vec![0]);
        assert_eq!(g.provided(0).unwrap(), vec![1]);
    }

    #[test]
    fn scratch_and_context_are_never_replaced() {
        let g = StageGraph::new(vec![
            stage(Some("context"), "alpine", &[]),
            stage(None, "scratch", &["context"]),
        ])
        .unwrap()
        .with_named_contexts(["context", "scratch"]);
        assert_eq!(g.replaced_by(0), None);
        assert_eq!(g.resolve("context", 1), Source::Stage(0));
        assert_eq!(g.resolve("scratch", 1), Source::Scratch);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            StageGraph::new(vec![
                stage(Some("x"), "scratch", &[]),
                stage(Some("X"), "scratch", &[])
            ]),
            Err(PlanError::DuplicateName(_))
        ));
        assert!(matches!(
            StageGraph::new(vec![stage(Some("1bad"), "scratch", &[])]),
            Err(PlanError::InvalidName(_))
        ));
        let g = StageGraph::new(vec![
            stage(None, "scratch", &["later"]),
            stage(Some("later"), "scratch", &[]),
        ])
        .unwrap();
        assert!(g.needed(1).is_ok());
        assert!(matches!(g.needed(0), Err(PlanError::ForwardReference(..))));
        assert!(matches!(
            g.target(Some("nope")),
            Err(PlanError::UnknownTarget(..))
        ));
    }
}
