//! The stage graph: which stages the target needs and in which order.
//!
//! A stage depends on an earlier stage when it starts FROM it or copies
//! from it (`COPY --from=name|index`, `RUN --mount=from=`). Only the stages
//! the target needs are built, so a broken unused stage never fails a build.

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
        Ok(StageGraph { stages })
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
    pub fn resolve(&self, reference: &str, from_stage: usize) -> Source {
        let lower = reference.to_ascii_lowercase();
        if lower == "scratch" {
            return Source::Scratch;
        }
        if let Some(i) = self.stages[..from_stage]
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
        {
            return Source::Stage(i);
        }
        if let Ok(i) = reference.parse::<usize>() {
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
    pub fn needed(&self, target: usize) -> Result<Vec<usize>, PlanError> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
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

    fn is_later_stage(&self, reference: &str, from_stage: usize) -> bool {
        let lower = reference.to_ascii_lowercase();
        self.stages[from_stage..]
            .iter()
            .any(|s| s.name.as_deref() == Some(&lower))
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
