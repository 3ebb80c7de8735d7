//! The stage graph: every CI stage declared once, as data.
//!
//! A stage has a name, a line of help, the artifacts it produces and consumes, whether it
//! starts or requires the services, the pinned tools it uses and the flags it accepts. The
//! stages it needs follow from what it consumes. Everything else — `cargo xtask list`,
//! `cargo xtask <stage> --help`, the order `cargo xtask ci` runs in, the generated workflows
//! and the docs table — is derived from [`STAGES`]. The graph is data only: the stages module
//! turns a stage into a plan.
//!
//! [`model`] has the types, [`table`] this repository's stages, and this module the lookups
//! over them.

mod model;
mod table;

use anyhow::{Result, bail};

pub use model::{Artifact, Kept, Schedule, Services, Stage, StageArgs, StageId};
pub use table::STAGES;

impl Artifact {
    /// The one stage that produces this artifact.
    pub fn producer(self) -> &'static Stage {
        let name = self.producer_name();
        STAGES
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| unreachable!("every artifact has a producer (checked by a test)"))
    }
}

impl Stage {
    /// The stages that start the servers this one requires (none when it requires none).
    pub fn service_starters(&self) -> impl Iterator<Item = &'static Stage> + '_ {
        STAGES
            .iter()
            .filter(|s| self.services == Services::Requires && s.services == Services::Starts)
    }

    /// The stages this one needs, in graph order: the producers of what it consumes, and
    /// docker-up when it requires the services.
    pub fn needs(&self) -> Vec<&'static str> {
        let starters: Vec<&str> = self.service_starters().map(|s| s.name).collect();
        STAGES
            .iter()
            .filter(|s| {
                s.produces.iter().any(|a| self.consumes.contains(a)) || starters.contains(&s.name)
            })
            .map(|s| s.name)
            .collect()
    }
}

/// The stage called `name`, or an error that lists every stage.
pub fn stage(name: &str) -> Result<&'static Stage> {
    STAGES.iter().find(|s| s.name == name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown stage `{name}`; the stages are: {}",
            stage_names().join(", ")
        )
    })
}

pub fn stage_names() -> Vec<&'static str> {
    STAGES.iter().map(|s| s.name).collect()
}

/// Which stages `cargo xtask ci` runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub only: Option<Vec<String>>,
    pub skip: Vec<String>,
    pub scheduled: bool,
}

impl Selection {
    /// The selected stages, in graph order. A stage that only brings services up is left out
    /// when no other selected stage uses them, unless `--only` names it.
    pub fn resolve(&self) -> Result<Vec<&'static Stage>> {
        for name in self.only.iter().flatten().chain(&self.skip) {
            stage(name)?;
        }
        let named = |s: &Stage| self.only.iter().flatten().any(|n| n == s.name);
        let selected: Vec<&'static Stage> = STAGES
            .iter()
            .filter(|s| match &self.only {
                Some(_) => named(s),
                None => self.scheduled || s.schedule == Schedule::EveryRun,
            })
            .filter(|s| !self.skip.iter().any(|n| n == s.name))
            .collect();
        let services_used = selected.iter().any(|s| s.services == Services::Requires);
        let stages: Vec<_> = selected
            .iter()
            .copied()
            .filter(|s| s.services != Services::Starts || services_used || named(s))
            .collect();
        if stages.is_empty() {
            bail!(
                "this selection leaves no stage to run; the stages are: {}",
                stage_names().join(", ")
            );
        }
        Ok(stages)
    }
}

pub fn artifact_names(artifacts: &[Artifact]) -> String {
    artifacts
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = stage_names();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate stage names");
    }

    #[test]
    fn every_need_exists_and_comes_earlier() {
        // Declaration order is the run order, so it must be a topological order; that also
        // proves the graph acyclic.
        for (i, s) in STAGES.iter().enumerate() {
            for need in s.needs() {
                let pos = STAGES.iter().position(|t| t.name == need);
                let pos = pos.unwrap_or_else(|| panic!("{} needs unknown stage {need}", s.name));
                assert!(pos < i, "{} needs {need}, which is declared later", s.name);
            }
        }
    }

    #[test]
    fn every_artifact_has_exactly_one_producer_which_it_names() {
        for artifact in Artifact::ALL {
            let producers: Vec<&str> = STAGES
                .iter()
                .filter(|s| s.produces.contains(&artifact))
                .map(|s| s.name)
                .collect();
            assert_eq!(producers, [artifact.producer_name()], "{}", artifact.name());
        }
        let starters = STAGES.iter().filter(|s| s.services == Services::Starts);
        assert_eq!(starters.count(), 1, "one stage starts the services");
    }

    #[test]
    fn needs_follow_from_what_a_stage_consumes_and_requires() {
        let needs = |name: &str| stage(name).unwrap().needs();
        assert_eq!(needs("test-unit"), ["build-artifacts"]);
        assert_eq!(needs("test-full"), ["build-artifacts", "docker-up"]);
        assert_eq!(needs("python-test"), ["docker-up", "build-wheels"]);
        assert!(needs("lint-rust").is_empty());
    }

    #[test]
    fn ci_args_parse_against_the_stage_flags() {
        for s in STAGES {
            let args: Vec<String> = s.ci_args.iter().map(|a| a.to_string()).collect();
            let parsed = s.parse_args(&args).unwrap();
            assert_eq!(
                parsed.to_args(),
                args,
                "{} ci args do not round-trip",
                s.name
            );
        }
    }

    /// The stages a `ci` selection runs: `--only`, `--skip`, `--scheduled`.
    fn selected(only: Option<&[&str]>, skip: &[&str], scheduled: bool) -> Vec<&'static str> {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection {
            only: only.map(names),
            skip: names(skip),
            scheduled,
        }
        .resolve()
        .unwrap()
        .iter()
        .map(|s| s.name)
        .collect()
    }

    #[test]
    fn selection_filters_and_keeps_graph_order() {
        let all = selected(None, &[], false);
        assert!(!all.contains(&"upstream"), "upstream is scheduled only");
        assert!(selected(None, &[], true).contains(&"upstream"));

        let only = selected(Some(&["test-unit", "build-artifacts"]), &[], false);
        assert_eq!(only, ["build-artifacts", "test-unit"]);

        let no_service_users = selected(None, &["test-full", "python-test"], false);
        assert!(
            !no_service_users.contains(&"docker-up"),
            "{no_service_users:?}"
        );
        assert_eq!(selected(Some(&["docker-up"]), &[], false), ["docker-up"]);
        assert_eq!(
            selected(Some(&["docker-up", "test-full"]), &[], false),
            ["docker-up", "test-full"]
        );
        assert!(all.contains(&"docker-up"));

        assert!(!selected(None, &["lint-rust"], false).contains(&"lint-rust"));
    }

    #[test]
    fn unknown_stage_lists_the_valid_ones() {
        let err = stage("test-everything").unwrap_err().to_string();
        assert!(err.contains("unknown stage `test-everything`"), "{err}");
        for name in stage_names() {
            assert!(err.contains(name), "{err} should list {name}");
        }
        let empty = Selection {
            only: Some(Vec::new()),
            ..Selection::default()
        };
        let err = empty.resolve().unwrap_err().to_string();
        assert!(err.contains("no stage to run"), "{err}");
        let bad = Selection {
            skip: vec!["nope".into()],
            ..Selection::default()
        };
        assert!(bad.resolve().unwrap_err().to_string().contains("lint-rust"));
    }

    #[test]
    fn stage_flags_are_checked() {
        let test_unit = stage("test-unit").unwrap();
        let ok = test_unit
            .parse_args(&["--partition".into(), "hash:1/3".into()])
            .unwrap();
        assert_eq!(ok.partition.as_deref(), Some("hash:1/3"));
        let inline = test_unit
            .parse_args(&["--partition=hash:2/3".into()])
            .unwrap();
        assert_eq!(inline.partition.as_deref(), Some("hash:2/3"));
        let err = test_unit
            .parse_args(&["--full".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--partition hash:M/N"), "{err}");
        let err = test_unit.parse_args(&["--partition".into(), "hash:4/3".into()]);
        assert!(err.unwrap_err().to_string().contains("invalid partition"));
        let err = test_unit
            .parse_args(&["--partition".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a value"), "{err}");
    }
}
