//! Step builders for the generated jobs: an action pinned by SHA, the condition a step of a
//! switched stage runs under, what a job installs, and where its xtask comes from.

use crate::graph::{Artifact, Services, Stage};
use crate::jobs::{Entry, Job, Layout, Os, Pin, Trigger, Workflow};
use crate::tools::Tool;
use crate::yaml::Node;

pub const ON_MAIN: &str = "github.ref == 'refs/heads/main'";

/// Where a job's xtask comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XtaskSource {
    /// The plan job's binary, restored; a miss fails the job (the plan job saved it before any
    /// other job started). A Linux job whose stages compile nothing, in a run that has the
    /// plan job (the pipeline, or a workflow only the pipeline calls): it needs no Rust cache.
    Plans,
    /// The binary of xtask's content when one was saved (in a pipeline run, the plan job's),
    /// else built: a Linux job that compiles, or one in a run without the plan job.
    RestoredOrBuilt,
    /// Built by its first `cargo xtask` call: the plan's binary is Linux's.
    Built,
}

/// How `job` gets xtask.
pub fn xtask_source(workflow: &Workflow, job: &Job) -> XtaskSource {
    if job.os != Os::Linux {
        XtaskSource::Built
    } else if under_plan(workflow) && !job.compiles(workflow.pipeline()) {
        XtaskSource::Plans
    } else {
        XtaskSource::RestoredOrBuilt
    }
}

/// Whether every run of `workflow` has the plan job.
fn under_plan(workflow: &Workflow) -> bool {
    match workflow.trigger {
        Trigger::Pipeline => true,
        Trigger::Nightly { .. } => false,
        Trigger::Called { .. } => {
            let callers: Vec<Trigger> = workflow
                .layout
                .workflows()
                .into_iter()
                .filter(|w| {
                    w.entries
                        .iter()
                        .any(|e| matches!(e, Entry::Call { file, .. } if *file == workflow.file))
                })
                .map(|w| w.trigger)
                .collect();
            !callers.is_empty() && callers.iter().all(|t| matches!(t, Trigger::Pipeline))
        }
    }
}

/// The condition under which a step that serves `stages` runs: always, or when a switch of the
/// called workflow turns one of them on.
pub fn condition(workflow: &Workflow, stages: &[&Stage]) -> Option<String> {
    let Trigger::Called { switches } = workflow.trigger else {
        return None;
    };
    if stages.iter().any(|s| !switches.contains(&s.name)) || stages.is_empty() {
        return None;
    }
    let names: Vec<String> = stages
        .iter()
        .map(|s| format!("inputs.{}", s.name))
        .collect();
    Some(names.join(" || "))
}

/// The condition of a step of `job` that serves `stages`: none where the job's own `if:` says
/// the same already.
pub fn step_condition(workflow: &Workflow, job: &Job, stages: &[&Stage]) -> Option<String> {
    let all: Vec<&Stage> = job.stages(workflow.pipeline()).collect();
    let on = condition(workflow, stages);
    if on.is_some() && on == condition(workflow, &all) {
        return None;
    }
    on
}

pub fn step(uses: Pin, with: Vec<(&str, Node)>) -> Vec<(String, Node)> {
    let mut node = vec![(
        "uses".to_string(),
        Node::Commented(uses.uses(), uses.release.to_string()),
    )];
    if !with.is_empty() {
        node.push(("with".into(), Node::map(with)));
    }
    node
}

pub fn with_if(mut node: Vec<(String, Node)>, condition: Option<String>) -> Node {
    if let Some(condition) = condition {
        node.insert(0, ("if".into(), Node::Str(condition)));
    }
    Node::Map(node)
}

/// The tools xtask installs for `stage` on a GitHub runner: not those install-action installs,
/// and none for a stage that starts servers where they run in containers there
/// ([`crate::jobs::Generation::servers_in_containers`]).
pub fn runner_tools(layout: &Layout, stage: &Stage) -> Vec<Tool> {
    let generation = &layout.generation;
    if generation.servers_in_containers && stage.services == Services::Starts {
        return Vec::new();
    }
    stage
        .tools
        .iter()
        .filter(|t| !generation.installed_by_action.contains(t))
        .copied()
        .collect()
}

/// The tools xtask installs in this job on a GitHub runner ([`runner_tools`] of its stages,
/// with their installers).
pub fn xtask_tools(workflow: &Workflow, job: &Job) -> Vec<Tool> {
    let mut tools = Vec::new();
    for stage in job.stages(workflow.pipeline()) {
        for tool in runner_tools(workflow.layout, stage) {
            for t in tool.with_installer() {
                if !tools.contains(&t) {
                    tools.push(t);
                }
            }
        }
    }
    tools
}

/// The CPython versions `job` sets up, one per line as setup-python takes them (the last is
/// the default `python`), or none when nothing of the job runs Python.
pub fn python_version(workflow: &Workflow, job: &Job) -> Option<String> {
    let pipeline = workflow.pipeline();
    let python_stage = job.stages(pipeline).any(|s| s.consumes_python());
    if !python_stage && !xtask_tools(workflow, job).iter().any(|t| t.needs_python()) {
        return None;
    }
    let versions = job.python_versions(workflow.layout);
    (!versions.is_empty()).then(|| versions.join("\n"))
}

/// The name of the cache of the tools xtask installs.
pub const TOOLS_CACHE: &str = "tools";

/// One thing a generated job does before its first stage. The renderer writes a job's setup
/// from this list (`render::setup`), and a benchmark prices the same list, so the cost
/// it charges a job is the cost of the steps the job has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setup {
    Checkout,
    Toolchain,
    /// setup-python with this many interpreters.
    Python(usize),
    /// rust-cache's restore: the workspace's build (`workspace`) or xtask's dependencies only.
    RustCache {
        workspace: bool,
    },
    /// The first `cargo xtask` call compiles xtask (its dependencies restored).
    BuildXtask,
    /// xtask's binary as the plan job made it.
    XtaskBinary,
    /// xtask built when no binary of its content was saved (never in a run with the plan job,
    /// which saves it before any other job starts).
    BuildXtaskIfMissing,
    /// install-action's pinned tools ([`crate::jobs::Generation::installed_by_action`]).
    InstallAction,
    /// A cache restored by actions/cache (`tools`, `uv`, what a stage keeps).
    Cache(&'static str),
    /// An artifact of this run, downloaded.
    Download(&'static Artifact),
    /// `cargo xtask keys` before a build that may reuse its artifact by key.
    Keys,
}
