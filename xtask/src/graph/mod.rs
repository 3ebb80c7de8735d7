//! The stage graph: a pipeline's stages, as data, and every lookup over them.
//!
//! A stage has a name, a line of help, the artifacts it produces and consumes, whether it
//! starts or requires the services, the pinned tools it uses, the flags it accepts and its
//! plan. The stages it needs follow from what it consumes. Everything else — `cargo xtask
//! list`, `cargo xtask <stage> --help`, the order `cargo xtask ci` runs in, the generated
//! workflows and the docs table — is derived from a [`Pipeline`] (this repository's is
//! `pipeline::PIPELINE`).
//!
//! [`model`] has the types, and this module the lookups.

mod model;

use anyhow::{Result, bail};

pub use model::{
    Artifact, Inputs, Kept, PYTHON_PACKAGE_SOURCES, Pipeline, Schedule, Services, Stage, StageArgs,
};

impl Pipeline {
    /// The stage called `name`, or an error that lists every stage.
    pub fn stage(&self, name: &str) -> Result<&'static Stage> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown stage `{name}`; the stages are: {}",
                self.stage_names().join(", ")
            )
        })
    }

    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name).collect()
    }

    /// The one stage that produces `artifact`.
    pub fn producer(&self, artifact: Artifact) -> &'static Stage {
        let name = artifact.producer_name();
        self.stages
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| unreachable!("every artifact has a producer (checked by a test)"))
    }

    /// The stages that start the servers `stage` requires (none when it requires none).
    pub fn service_starters<'a>(
        &'a self,
        stage: &'a Stage,
    ) -> impl Iterator<Item = &'static Stage> + 'a {
        self.stages
            .iter()
            .filter(|s| stage.services == Services::Requires && s.services == Services::Starts)
    }

    /// The stages `stage` needs, in graph order: the producers of what it consumes, and
    /// docker-up when it requires the services.
    pub fn needs(&self, stage: &Stage) -> Vec<&'static str> {
        let starters: Vec<&str> = self.service_starters(stage).map(|s| s.name).collect();
        self.stages
            .iter()
            .filter(|s| {
                s.produces.iter().any(|a| stage.consumes.contains(a)) || starters.contains(&s.name)
            })
            .map(|s| s.name)
            .collect()
    }

    /// The plan of `stage` with its flags.
    pub fn plan(
        &'static self,
        stage: &Stage,
        ctx: &ci_engine::context::Context,
        args: &StageArgs,
    ) -> Result<ci_engine::plan::Plan> {
        (stage.plan)(self, ctx, args)
    }
}

/// Which stages `cargo xtask ci` runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub only: Option<Vec<String>>,
    pub skip: Vec<String>,
    pub scheduled: bool,
}

impl Selection {
    /// The selected stages of `pipeline`, in graph order. A stage that only brings services up
    /// is left out when no other selected stage uses them, unless `--only` names it.
    pub fn resolve(&self, pipeline: &Pipeline) -> Result<Vec<&'static Stage>> {
        for name in self.only.iter().flatten().chain(&self.skip) {
            pipeline.stage(name)?;
        }
        let named = |s: &Stage| self.only.iter().flatten().any(|n| n == s.name);
        let selected: Vec<&'static Stage> = pipeline
            .stages
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
                pipeline.stage_names().join(", ")
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
    use crate::pipeline::PIPELINE;

    static STAGES: &[Stage] = PIPELINE.stages;

    fn stage(name: &str) -> Result<&'static Stage> {
        PIPELINE.stage(name)
    }

    fn stage_names() -> Vec<&'static str> {
        PIPELINE.stage_names()
    }

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
            for need in PIPELINE.needs(s) {
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
        let needs = |name: &str| PIPELINE.needs(stage(name).unwrap());
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
        .resolve(&PIPELINE)
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
        let err = empty.resolve(&PIPELINE).unwrap_err().to_string();
        assert!(err.contains("no stage to run"), "{err}");
        let bad = Selection {
            skip: vec!["nope".into()],
            ..Selection::default()
        };
        assert!(
            bad.resolve(&PIPELINE)
                .unwrap_err()
                .to_string()
                .contains("lint-rust")
        );
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
