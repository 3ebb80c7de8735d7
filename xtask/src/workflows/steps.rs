//! Step builders for the generated jobs: an action pinned by SHA, the condition a step of a
//! switched stage runs under, what a job installs, its Rust cache and xtask's binary.

use super::jobs::{Job, Os, Pythons, Trigger, Workflow};
use super::yaml::Node;
use crate::graph::{Artifact, Services, Stage};
use crate::pins::{self, PYTHON_VERSIONS, Pin};
use crate::tools::Tool;

pub const ON_MAIN: &str = "github.ref == 'refs/heads/main'";

/// Where `cargo xtask` leaves xtask's binary (the workflows set no `CARGO_TARGET_DIR`).
pub const XTASK_BIN: &str = "target/debug/xtask";

/// The cache entry of xtask's binary: one per content of what builds it (its sources, the
/// workspace's manifest, lock file and cargo config, the toolchain), made by the plan job.
pub fn xtask_bin_key(os: Os) -> String {
    format!(
        "xtask-bin-{}-{}-${{{{ hashFiles('xtask/**', 'Cargo.toml', 'Cargo.lock', '.cargo/config.toml') }}}}",
        os.platform(),
        pins::TOOLCHAIN
    )
}

/// Whether `job` runs xtask's binary as the plan job made it instead of compiling xtask: a Linux
/// job whose stages compile nothing, in a run that has the plan job (the pipeline, or a workflow
/// that only the pipeline calls). It then needs no Rust cache: `cargo` and `rustc` only answer
/// `cargo metadata`, `rustc -vV` (an artifact's check) and the tests that run cargo.
pub fn uses_plans_xtask(workflow: &Workflow, job: &Job) -> bool {
    let under_plan = match workflow.trigger {
        Trigger::Pipeline => true,
        Trigger::Nightly { .. } => false,
        Trigger::Called { .. } => {
            let callers: Vec<Trigger> = super::jobs::workflows()
                .into_iter()
                .filter(|w| {
                    w.entries.iter().any(
                        |e| matches!(e, super::jobs::Entry::Call { file, .. } if *file == workflow.file),
                    )
                })
                .map(|w| w.trigger)
                .collect();
            !callers.is_empty() && callers.iter().all(|t| matches!(t, Trigger::Pipeline))
        }
    };
    under_plan && job.os == Os::Linux && !job.stages().any(|s| s.inputs.toolchain)
}

/// A step that restores xtask's binary as the plan job made it; a miss fails the job (the plan
/// job saves it before any other job starts).
pub fn xtask_bin_restore(os: Os) -> Node {
    Node::Map(step(
        pins::CACHE_RESTORE,
        vec![
            ("path", Node::str(XTASK_BIN)),
            ("key", Node::str(xtask_bin_key(os))),
            ("fail-on-cache-miss", Node::bool(true)),
        ],
    ))
}

/// When a cache is saved.
pub enum Save {
    /// Every run, after failures too.
    Always,
    /// Runs on main, after failures too (pull requests restore what main saved).
    OnMain,
    /// Runs on main whose restore missed.
    OnMainAfterMiss,
    /// Runs on main whose restore missed, when everything before succeeded (a build's output:
    /// never what a failed build left).
    BuiltOnMain,
}

/// One cache: restored by a step at the start of the job, saved by one at its end.
pub struct Cache {
    /// The restore step's id, when the save step reads its `cache-hit`.
    pub id: Option<&'static str>,
    pub path: String,
    pub key: String,
    pub restore_prefix: Option<String>,
    /// When the job's stages that use it are switched by inputs.
    pub condition: Option<String>,
    pub save: Save,
}

impl Cache {
    pub fn restore(&self) -> Node {
        let mut with = vec![
            ("path", Node::str(&self.path)),
            ("key", Node::str(&self.key)),
        ];
        if let Some(prefix) = &self.restore_prefix {
            with.push(("restore-keys", Node::str(prefix)));
        }
        let mut node = Vec::new();
        if let Some(id) = self.id {
            node.push(("id".to_string(), Node::str(id)));
        }
        node.extend(step(pins::CACHE_RESTORE, with));
        with_if(node, self.condition.clone())
    }

    pub fn save(&self) -> Node {
        let mut when = Vec::new();
        if !matches!(self.save, Save::BuiltOnMain) {
            when.push("always()".to_string());
        }
        when.extend(self.condition.as_ref().map(|c| format!("({c})")));
        match (&self.save, self.id) {
            (Save::Always, _) => {}
            (Save::OnMain, _) | (Save::OnMainAfterMiss | Save::BuiltOnMain, None) => {
                when.push(ON_MAIN.to_string())
            }
            (Save::OnMainAfterMiss | Save::BuiltOnMain, Some(id)) => {
                when.push(ON_MAIN.to_string());
                when.push(format!("steps.{id}.outputs.cache-hit != 'true'"));
            }
        }
        let with = vec![
            ("path", Node::str(&self.path)),
            ("key", Node::str(&self.key)),
        ];
        with_if(step(pins::CACHE_SAVE, with), Some(when.join(" && ")))
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
    let all: Vec<&Stage> = job.stages().collect();
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

/// The tools xtask installs in this job on a GitHub runner (nextest comes from
/// install-action; the servers run under Docker there, so docker-up installs nothing).
pub fn xtask_tools(job: &Job) -> Vec<Tool> {
    let mut tools = Vec::new();
    for stage in job.stages().filter(|s| s.services != Services::Starts) {
        for tool in stage.tools.iter().filter(|t| **t != Tool::Nextest) {
            for t in tool.with_installer() {
                if !tools.contains(&t) {
                    tools.push(t);
                }
            }
        }
    }
    tools
}

pub fn python_version(job: &Job) -> Option<String> {
    let python_stage = job.stages().any(|s| s.consumes.contains(&Artifact::Wheels));
    if !python_stage && !xtask_tools(job).iter().any(|t| t.needs_python()) {
        return None;
    }
    Some(if job.pythons == Pythons::Every {
        // setup-python installs each line; the last is the default `python`.
        PYTHON_VERSIONS.join("\n")
    } else if job.stages.contains(&"upstream") {
        PYTHON_VERSIONS[PYTHON_VERSIONS.len() - 1].to_string()
    } else {
        PYTHON_VERSIONS[0].to_string()
    })
}

/// A job that compiles the workspace keeps its own Rust cache; every other job only compiles
/// xtask, whose dependencies all such jobs share in one small cache that only the plan job
/// saves.
pub fn rust_cache(workflow: &Workflow, job: &Job) -> Vec<(String, Node)> {
    // The stages that compile are those whose inputs include the toolchain.
    let compiles = job.stages().any(|s| s.inputs.toolchain);
    if !compiles {
        return rust_cache_for_xtask(job.os, false);
    }
    let mut key = format!("{}-{}", pins::TOOLCHAIN, job.key);
    if let Trigger::Called { switches } = workflow.trigger {
        // One cache per artifact switched on. A stage whose outcome the job reports compiles
        // what the build after it compiles (lint-rust's build is the archive's), so its switch
        // joins that build's: a run of lint-rust alone restores the archive's cache.
        let mut beside: Vec<String> = Vec::new();
        for stage in job.stages().filter(|s| switches.contains(&s.name)) {
            beside.push(format!("inputs.{}", stage.name));
            if stage.builds() {
                key.push_str(&format!("-${{{{ {} }}}}", beside.join(" || ")));
                beside.clear();
            } else if !job.reports_outcome(stage) {
                beside.clear();
            }
        }
    }
    let with = vec![
        ("key", Node::str(key)),
        ("cache-on-failure", Node::bool(true)),
        ("save-if", Node::str(format!("${{{{ {ON_MAIN} }}}}"))),
    ];
    step(pins::RUST_CACHE, with)
}

/// The one small cache of xtask's dependencies that every job which compiles only xtask shares.
/// One job saves it on main (`saves`: the plan job, which runs first on every push); the others
/// only restore it, so no two jobs upload one key and no other job walks its target dir to
/// prune it (rust-cache does that only where it saves).
pub fn rust_cache_for_xtask(os: Os, saves: bool) -> Vec<(String, Node)> {
    let save_if = if saves {
        Node::str(format!("${{{{ {ON_MAIN} }}}}"))
    } else {
        Node::bool(false)
    };
    let with = vec![
        (
            "shared-key",
            Node::str(format!("xtask-{}-{}", pins::TOOLCHAIN, os.platform())),
        ),
        ("save-if", save_if),
    ];
    step(pins::RUST_CACHE, with)
}
