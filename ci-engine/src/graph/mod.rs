//! The stage graph: a pipeline's stages, as data, and every lookup over them.
//!
//! A stage has a name, a line of help, the artifacts it produces and consumes, whether it
//! starts or requires the services, the pinned tools it uses, the flags it accepts and its
//! plan. The stages it needs follow from what it consumes. Everything else — the list of
//! stages, `<stage> --help`, the order `ci` runs in, the generated workflows — is derived from
//! a [`Pipeline`].
//!
//! `model` has the types, this module the lookups, and [`help`] the list of the stages and
//! each one's `--help`.

pub mod help;
mod model;

use anyhow::{Result, bail};

pub use model::{
    Artifact, Copies, Inputs, Kept, Pipeline, PlanFn, Schedule, Servers, Services, Stage,
};

use crate::context::Context;
use crate::flags::StageArgs;
use crate::plan::Plan;
use crate::tools::Tool;

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

    /// Every artifact its stages produce, in stage order.
    pub fn artifacts(&self) -> Vec<&'static Artifact> {
        let mut artifacts: Vec<&'static Artifact> = Vec::new();
        for artifact in self.stages.iter().flat_map(|s| s.produces) {
            if !artifacts.contains(artifact) {
                artifacts.push(artifact);
            }
        }
        artifacts
    }

    /// Every tool its stages use, with the tools that install them, each once, in stage order.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = Vec::new();
        for tool in self.stages.iter().flat_map(|s| s.pinned_tools()) {
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }
        tools
    }

    /// The one stage that produces `artifact`.
    pub fn producer(&self, artifact: &Artifact) -> &'static Stage {
        self.stages
            .iter()
            .find(|s| s.name == artifact.producer)
            .unwrap_or_else(|| unreachable!("every artifact has a producer (Pipeline::check)"))
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

    /// The stages `stage` needs, in graph order: the producers of what it consumes, and the
    /// stage that starts the servers when it requires them.
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
    pub fn plan(&'static self, stage: &Stage, ctx: &Context, args: &StageArgs) -> Result<Plan> {
        (stage.plan)(self, ctx, args)
    }

    /// What is wrong with the pipeline's shape, if anything: a duplicate stage name, a need
    /// declared after the stage that needs it (declaration order is the run order, which also
    /// proves the graph acyclic), an artifact without exactly the one producer it names, two
    /// artifacts in one directory, a build that may be skipped on a key, more than one stage
    /// starting the servers or servers the pipeline does not describe, `ci` flags that do not
    /// parse or are not spelled as they parse.
    pub fn check(&self) -> Result<()> {
        for (i, stage) in self.stages.iter().enumerate() {
            if self.stages[..i].iter().any(|s| s.name == stage.name) {
                bail!("two stages are called `{}`", stage.name);
            }
            for need in self.needs(stage) {
                let pos = self.stages.iter().position(|s| s.name == need);
                if pos.is_none_or(|p| p >= i) {
                    bail!("`{}` needs `{need}`, which is declared later", stage.name);
                }
            }
            if let Some(a) = stage
                .consumes
                .iter()
                .find(|a| !self.artifacts().contains(a))
            {
                bail!(
                    "`{}` consumes {}, which no stage produces",
                    stage.name,
                    a.name
                );
            }
            let parsed = stage.ci_args()?;
            if parsed.to_args() != stage.ci_args {
                bail!(
                    "the ci flags of `{}` are not spelled as they parse",
                    stage.name
                );
            }
        }
        for artifact in self.artifacts() {
            let producers: Vec<&str> = self
                .stages
                .iter()
                .filter(|s| s.produces.contains(&artifact))
                .map(|s| s.name)
                .collect();
            if producers != [artifact.producer] {
                bail!(
                    "{} names `{}` as its producer; it is produced by {producers:?}",
                    artifact.name,
                    artifact.producer
                );
            }
        }
        let starters = self
            .stages
            .iter()
            .filter(|s| s.services == Services::Starts);
        if starters.count() > 1 {
            bail!("more than one stage starts the services");
        }
        for (i, artifact) in self.artifacts().iter().enumerate() {
            if self.artifacts()[..i].iter().any(|a| a.dir == artifact.dir) {
                bail!("two artifacts are kept in `{}`", artifact.dir);
            }
        }
        if let Some(build) = self
            .stages
            .iter()
            .find(|s| s.builds() && s.inputs.cacheable)
        {
            bail!(
                "`{}` builds an artifact, so it must not be cacheable: its manifest decides \
                 whether it is current, and a skipped build would leave its consumers nothing",
                build.name
            );
        }
        let unserved = self.stages.iter().find(|s| s.services != Services::None);
        if let (None, Some(stage)) = (&self.servers, unserved) {
            bail!(
                "`{}` starts or requires servers, but the pipeline does not describe them \
                 (`servers`)",
                stage.name
            );
        }
        Ok(())
    }
}

/// Which stages `ci` runs.
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

/// The names of `artifacts`, comma-separated.
pub fn artifact_names(artifacts: &[&Artifact]) -> String {
    artifacts
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;

/// Rows for the engine's own tests of small pipelines.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Artifact, Inputs, Stage};
    use crate::cmd::Cmd;
    use crate::plan::Plan;

    /// A stage `name` that reads `src` and runs nothing.
    pub(crate) const fn stage(name: &'static str) -> Stage {
        Stage::new(name, "", reads(&["src"]), |_, _, _| Ok(Plan::new()))
    }

    /// An artifact `name` that `producer` builds from `sources` with `make`.
    pub(crate) const fn artifact(
        name: &'static str,
        producer: &'static str,
        sources: &'static [&'static str],
    ) -> Artifact {
        Artifact {
            name,
            producer,
            dir: name,
            sources,
            copies: None,
            build: |_, _| vec![Cmd::new("make")],
            tools: &[],
            prepare: Plan::new,
            python: false,
            compressed: false,
        }
    }

    /// What a stage reads: `paths`, without the toolchain, reusable.
    pub(crate) const fn reads(paths: &'static [&'static str]) -> Inputs {
        Inputs {
            packages: &[],
            paths,
            toolchain: false,
            cacheable: true,
        }
    }
}
