//! The job model: which workflow runs which stages on which runner. A project writes its
//! [`Layout`] once (its pipeline and a table of [`Workflow`]s); the workflows' YAML, the plan
//! job's rule and the side-by-side benchmark all derive from it, and the `needs:` between jobs
//! follow from what their stages produce and consume ([`Layout::instances`]).

mod check;
pub mod rule;
#[cfg(test)]
pub(crate) mod tests;

use crate::context::Project;
use crate::flags::{Flag, StageArgs};
use crate::graph::{Artifact, Pipeline, Schedule, Services, Stage};
use crate::tools::Tool;

/// Where a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

impl Os {
    /// The GitHub-hosted runner's label.
    pub fn runner(self) -> &'static str {
        match self {
            Os::Linux => "ubuntu-24.04",
            Os::Macos => "macos-15",
            Os::Windows => "windows-2025",
        }
    }

    /// The part of an artifact's name that says which platform built it.
    pub fn platform(self) -> &'static str {
        match self {
            Os::Linux => "linux-x86_64",
            Os::Macos => "macos-aarch64",
            Os::Windows => "windows-x86_64",
        }
    }
}

/// A project's CI layout: its pipeline, the interpreters its Python stages test, and its
/// workflows (a table written once, given the layout so that each workflow can find the
/// others).
#[derive(Debug)]
pub struct Layout {
    pub pipeline: &'static Pipeline,
    /// The project: the CPython versions it supports (oldest first), its paths on a runner
    /// (its tools directory).
    pub project: &'static Project,
    /// The flag by which a stage tests several interpreters at once (`--python <one>,<other>`),
    /// which a job of [`Pythons::Every`] passes to each stage that has it.
    pub python_flag: Option<&'static Flag>,
    pub workflows: fn(&'static Layout) -> Vec<Workflow>,
    /// What the generated files need beyond the table.
    pub generation: Generation,
}

/// What a project's generated workflows need of it beyond its job table.
#[derive(Debug)]
pub struct Generation {
    /// The file that holds the job table, which each generated file's header names.
    pub table: &'static str,
    /// The action that installs the Rust toolchain every job uses, pinned at the branch named
    /// after that toolchain ([`Generation::toolchain`]).
    pub toolchain_action: Pin,
    /// The pinned tools a job installs with install-action (`<name>@<version>`, a prebuilt
    /// binary) instead of xtask's installer.
    pub installed_by_action: &'static [Tool],
    /// Whether the stage that starts the servers runs them in containers on a runner (it has a
    /// Docker engine): then that stage installs none of its tools there.
    pub servers_in_containers: bool,
    /// What decides the Python stages' downloads: uv's cache is keyed by their digest (none:
    /// no job keeps uv's cache).
    pub python_dependencies: &'static [&'static str],
    /// What builds xtask's binary (its package and the workspace packages it depends on, the
    /// workspace's manifest, lock file and cargo config): the binary the plan job shares is
    /// keyed by their digest.
    pub xtask_sources: &'static [&'static str],
}

/// A GitHub action at a full commit SHA, with the release that SHA is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    pub action: &'static str,
    pub sha: &'static str,
    pub release: &'static str,
}

impl Pin {
    /// `owner/repo[/path]@sha`
    pub fn uses(&self) -> String {
        format!("{}@{}", self.action, self.sha)
    }
}

impl Generation {
    /// The Rust toolchain every job installs: the branch its action is pinned at.
    pub fn toolchain(&self) -> &'static str {
        self.toolchain_action.release
    }
}

/// The timeout of a stage's own job (see [`Layout::workflows`]).
pub const OWN_JOB_MINUTES: u32 = 30;

impl Layout {
    /// The table's workflows, where a stage of every run that no job of the table names has a
    /// job of its own, on Linux and named after it, in the first pipeline workflow (before its
    /// conclusion): adding a stage to a pipeline is its row, and putting it in a job of the
    /// table is only for sharing one.
    pub fn workflows(&'static self) -> Vec<Workflow> {
        let mut all = (self.workflows)(self);
        let named: Vec<&str> = all
            .iter()
            .flat_map(|w| w.jobs())
            .flat_map(|j| j.stages.iter().copied())
            .collect();
        let own = self
            .pipeline
            .stages
            .iter()
            .filter(|s| s.schedule == Schedule::EveryRun && !named.contains(&s.name))
            .map(|s| {
                let stages = std::slice::from_ref(&s.name);
                Entry::Job(Job::new(s.name, Os::Linux, stages, OWN_JOB_MINUTES))
            });
        if let Some(workflow) = all
            .iter_mut()
            .find(|w| matches!(w.trigger, Trigger::Pipeline))
        {
            let at = workflow
                .entries
                .iter()
                .position(|e| matches!(e, Entry::Conclusion))
                .unwrap_or(workflow.entries.len());
            workflow.entries.splice(at..at, own);
        }
        all
    }

    pub fn workflow(&'static self, file: &str) -> Option<Workflow> {
        self.workflows().into_iter().find(|w| w.file == file)
    }

    /// The jobs of the workflow in `file` as one run of it runs them: a called workflow's jobs
    /// under their caller, with the stages its switches turn on, each waiting for the jobs that
    /// produce what it consumes on its platform.
    pub fn instances(&'static self, file: &str) -> Vec<Instance> {
        let all = self.workflows();
        let Some(workflow) = all.iter().find(|w| w.file == file) else {
            return Vec::new();
        };
        // (entry key, the instances it stands for)
        let mut expanded: Vec<(&str, Vec<Instance>)> = Vec::new();
        for entry in &workflow.entries {
            match entry {
                Entry::Job(job) => expanded.push((
                    job.key,
                    vec![self.expand(workflow.file, job, job.key, job.key, None)],
                )),
                Entry::Call { key, file, stages } => {
                    let called = all.iter().find(|w| w.file == *file);
                    let switches = match called.map(|w| &w.trigger) {
                        Some(Trigger::Called { switches }) => *switches,
                        _ => &[],
                    };
                    let mut list = Vec::new();
                    if let Some(called) = called {
                        for job in called.jobs() {
                            let on = |s: &&str| !switches.contains(s) || stages.contains(s);
                            let name = format!("{key} / {}", job.key);
                            list.push(self.expand(called.file, job, key, &name, Some(&on)));
                        }
                    }
                    expanded.push((key, list));
                }
                Entry::Conclusion => {}
            }
        }
        let producers: Vec<(String, Os, Vec<&'static Artifact>, &str)> = expanded
            .iter()
            .flat_map(|(key, list)| {
                list.iter()
                    .map(|i| (i.name.clone(), i.os, self.produced(i), *key))
            })
            .collect();
        let mut out = Vec::new();
        for (key, list) in expanded {
            for mut instance in list {
                let wanted = self.consumed(&instance);
                instance.needs = producers
                    .iter()
                    .filter(|(_, os, made, from)| {
                        *from != key
                            && *os == instance.os
                            && made.iter().any(|a| wanted.contains(a))
                    })
                    .map(|(name, ..)| name.clone())
                    .collect();
                out.push(instance);
            }
        }
        out
    }

    /// The entries of the workflow in `file` that its entry `key` must wait for (its
    /// `needs:`).
    pub fn entry_needs(&'static self, file: &str, key: &str) -> Vec<String> {
        let list = self.instances(file);
        let entry_of = |name: &String| {
            list.iter()
                .find(|i| &i.name == name)
                .map(|i| i.entry.clone())
        };
        let mut needs: Vec<String> = list
            .iter()
            .filter(|i| i.entry == key)
            .flat_map(|i| i.needs.iter().filter_map(entry_of))
            .collect();
        needs.sort();
        needs.dedup();
        needs
    }

    /// The artifacts `instance`'s stages build.
    pub fn produced(&self, instance: &Instance) -> Vec<&'static Artifact> {
        produced_by(&self.called(instance))
    }

    /// The artifacts `instance`'s stages take from other jobs.
    pub fn consumed(&self, instance: &Instance) -> Vec<&'static Artifact> {
        consumed_by(&self.called(instance))
    }

    fn called(&self, instance: &Instance) -> Vec<&'static Stage> {
        instance
            .calls
            .iter()
            .filter_map(|(s, _)| self.pipeline.stage(s).ok())
            .collect()
    }

    fn expand(
        &'static self,
        file: &'static str,
        job: &Job,
        entry: &str,
        name: &str,
        on: Option<&dyn Fn(&&str) -> bool>,
    ) -> Instance {
        let calls: Vec<(String, StageArgs)> = job
            .stages(self.pipeline)
            .filter(|s| on.is_none_or(|on| on(&s.name)))
            .map(|s| (s.name.to_string(), job.args(self, s)))
            .collect();
        Instance {
            name: name.to_string(),
            entry: entry.to_string(),
            file,
            job: job.key,
            os: job.os,
            needs: Vec::new(),
            starts_services: calls.iter().any(|(s, _)| {
                self.pipeline
                    .stage(s)
                    .is_ok_and(|s| s.services == Services::Starts)
            }),
            calls,
        }
    }
}

/// One job that runs stages.
#[derive(Clone, Debug)]
pub struct Job {
    /// Its key in the workflow, and the check's name.
    pub key: &'static str,
    pub os: Os,
    /// The stages it runs, in graph order (`cargo xtask <stage>` steps).
    pub stages: &'static [&'static str],
    /// Which CPython versions the job's Python stages test.
    pub pythons: Pythons,
    pub timeout_minutes: u32,
}

impl Job {
    /// A job on `os` that runs `stages` with the default interpreter, within `minutes`.
    pub const fn new(
        key: &'static str,
        os: Os,
        stages: &'static [&'static str],
        minutes: u32,
    ) -> Job {
        Job {
            key,
            os,
            stages,
            pythons: Pythons::Default,
            timeout_minutes: minutes,
        }
    }

    pub fn stages(&self, pipeline: &'static Pipeline) -> impl Iterator<Item = &'static Stage> + '_ {
        self.stages
            .iter()
            .filter_map(move |name| pipeline.stage(name).ok())
    }

    /// Whether its stages compile the workspace (their inputs include the toolchain).
    pub fn compiles(&self, pipeline: &'static Pipeline) -> bool {
        self.stages(pipeline).any(|s| s.compiles())
    }

    /// The artifacts it takes from other jobs.
    pub fn consumes(&self, pipeline: &'static Pipeline) -> Vec<&'static Artifact> {
        consumed_by(&self.stages(pipeline).collect::<Vec<_>>())
    }

    pub fn starts_services(&self, pipeline: &'static Pipeline) -> bool {
        self.stages(pipeline)
            .any(|s| s.services == Services::Starts)
    }

    /// Whether a failure of `stage` is reported as the job's output `outcome-<stage>` (which
    /// the conclusion checks) instead of failing the job: a stage that builds nothing, followed
    /// in its job by one that builds an artifact other jobs download, must not keep that
    /// artifact from them (a lint before the build whose compilation it shares).
    pub fn reports_outcome(&self, layout: &'static Layout, stage: &Stage) -> bool {
        !stage.builds()
            && self
                .stages(layout.pipeline)
                .skip_while(|s| s.name != stage.name)
                .any(|s| s.produces.iter().any(|a| self.shares(layout, a)))
    }

    /// Whether a job of another entry downloads `artifact` from this one (then it uploads it).
    pub fn shares(&self, layout: &'static Layout, artifact: &'static Artifact) -> bool {
        layout
            .workflows()
            .iter()
            .filter(|w| !matches!(w.trigger, Trigger::Called { .. }))
            .flat_map(|w| layout.instances(w.file))
            .any(|i| {
                i.os == self.os
                    && i.needs.iter().any(|n| instance_of(n, self))
                    && i.calls.iter().any(|(s, _)| {
                        layout
                            .pipeline
                            .stage(s)
                            .is_ok_and(|s| s.consumes.contains(&artifact))
                    })
            })
    }

    /// The stages whose outcome the job reports as an output.
    pub fn reported_outcomes(&self, layout: &'static Layout) -> Vec<&'static Stage> {
        self.stages(layout.pipeline)
            .filter(|s| self.reports_outcome(layout, s))
            .collect()
    }

    /// The flags each stage runs with: its ci flags, plus the interpreters it tests.
    pub fn args(&self, layout: &Layout, stage: &Stage) -> StageArgs {
        let args = stage.ci_args().unwrap_or_default();
        match layout.python_flag {
            Some(flag)
                if self.pythons == Pythons::Every
                    && stage.flags.iter().any(|f| f.name == flag.name) =>
            {
                args.with(flag, Some(layout.project.pythons.join(",")))
            }
            _ => args,
        }
    }

    /// The CPython versions the job sets up, oldest first.
    pub fn python_versions(&self, layout: &Layout) -> &'static [&'static str] {
        let all = layout.project.pythons;
        match self.pythons {
            Pythons::Every => all,
            Pythons::Newest => &all[all.len().saturating_sub(1)..],
            Pythons::Default => &all[..all.len().min(1)],
        }
    }
}

/// The artifacts `stages` build, each once.
fn produced_by(stages: &[&'static Stage]) -> Vec<&'static Artifact> {
    once_each(stages.iter().flat_map(|s| s.produces.iter().copied()))
}

/// The artifacts `stages` take from elsewhere, each once: those they consume and none of them
/// builds (two stages of a job that use one artifact download it once).
pub(crate) fn consumed_by(stages: &[&'static Stage]) -> Vec<&'static Artifact> {
    let own = produced_by(stages);
    once_each(
        stages
            .iter()
            .flat_map(|s| s.consumes.iter().copied())
            .filter(|a| !own.contains(a)),
    )
}

fn once_each(artifacts: impl Iterator<Item = &'static Artifact>) -> Vec<&'static Artifact> {
    let mut out: Vec<&'static Artifact> = Vec::new();
    for artifact in artifacts {
        if !out.contains(&artifact) {
            out.push(artifact);
        }
    }
    out
}

/// Whether the job instance called `name` (`test`, `build / build`) runs `job`.
pub fn instance_of(name: &str, job: &Job) -> bool {
    name == job.key || name.ends_with(&format!(" / {}", job.key))
}

/// The name of the job output that reports `stage`'s outcome (`success`, `failure`,
/// `cancelled` or `skipped`), for a stage of [`Job::reports_outcome`].
pub fn outcome_output(stage: &str) -> String {
    format!("{OUTCOME_PREFIX}{stage}")
}

/// What every outcome output's name starts with: the conclusion fails on any that failed.
pub const OUTCOME_PREFIX: &str = "outcome-";

/// The CPython versions a job sets up (and its Python stages test), of the layout's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pythons {
    /// The oldest supported, enough for its tools.
    Default,
    /// The newest supported.
    Newest,
    /// Every version, tested at once (the layout's python flag): one job instead of a matrix,
    /// so that its servers are set up once.
    Every,
}

/// A job of a workflow: one that runs stages, a call of a reusable workflow (with the stages
/// of its job that this caller switches on), or the one check to require.
#[derive(Clone, Debug)]
pub enum Entry {
    Job(Job),
    Call {
        key: &'static str,
        file: &'static str,
        /// For a workflow whose stages are switched by inputs: the ones switched on.
        stages: &'static [&'static str],
    },
    Conclusion,
}

/// The name of the aggregate job: the one check branch protection requires.
pub const CONCLUSION: &str = "ci-passed";

/// What starts a workflow.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// Pull requests, the merge queue, pushes to main, by hand.
    Pipeline,
    /// Called by another workflow; `switches` are its stages that inputs turn on.
    Called { switches: &'static [&'static str] },
    /// Nightly, by hand, and on pull requests labelled `label`.
    Nightly {
        cron: &'static str,
        label: &'static str,
    },
}

#[derive(Clone, Debug)]
pub struct Workflow {
    /// The layout it belongs to: its pipeline and the other workflows.
    pub layout: &'static Layout,
    pub file: &'static str,
    pub name: &'static str,
    /// A few lines for the header.
    pub about: &'static str,
    pub trigger: Trigger,
    pub entries: Vec<Entry>,
}

impl Workflow {
    pub fn pipeline(&self) -> &'static Pipeline {
        self.layout.pipeline
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Job(j) => Some(j),
            _ => None,
        })
    }
}

/// One job as GitHub runs it in a pipeline (a called workflow's job under its caller), with the
/// stages it runs and the jobs it waits for.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The check's name: `test`, `build / build`.
    pub name: String,
    /// The key of the workflow entry it stands for.
    pub entry: String,
    /// The workflow file that holds the job, and the job's key there.
    pub file: &'static str,
    pub job: &'static str,
    pub os: Os,
    pub needs: Vec<String>,
    pub calls: Vec<(String, StageArgs)>,
    pub starts_services: bool,
}
