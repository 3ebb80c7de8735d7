//! The caches of the generated jobs: what each restores at its start and saves at its end (the
//! tools xtask installs, uv's downloads, what stages keep, artifacts by content key), the
//! Rust caches, and xtask's binary, which the plan job makes once per run.

use std::path::PathBuf;

use super::actions;
use super::steps::{
    ON_MAIN, TOOLS_CACHE, runner_tools, step, step_condition, with_if, xtask_tools,
};
use crate::artifacts;
use crate::context::{Context, slashed};
use crate::graph::{Artifact, Kept, Stage};
use crate::jobs::{Job, Layout, Os, Pin, Trigger, Workflow};
use crate::yaml::Node;

/// A path of a runner's checkout ([`Context::on_runner`]) as the workflows write it.
pub fn on_runner(layout: &Layout, path: impl Fn(&Context) -> PathBuf) -> String {
    slashed(&path(&Context::on_runner(layout.project)))
}

/// Where `cargo xtask` leaves xtask's binary on a runner (the workflows set no
/// `CARGO_TARGET_DIR`).
pub fn xtask_bin(layout: &Layout) -> String {
    on_runner(layout, Context::xtask_binary)
}

/// Where an artifact's files are on a runner, as upload and download take it (a directory).
pub fn artifact_path(layout: &Layout, artifact: &'static Artifact) -> String {
    format!(
        "{}/",
        on_runner(layout, |ctx| artifacts::dir(ctx, artifact))
    )
}

/// The cache entry of xtask's binary: one per content of what builds it
/// ([`crate::jobs::Generation::xtask_sources`], the toolchain), made by the plan job.
pub fn xtask_bin_key(layout: &Layout, os: Os) -> String {
    format!(
        "xtask-bin-{}-{}-${{{{ hashFiles({}) }}}}",
        os.platform(),
        layout.generation.toolchain(),
        quoted(layout.generation.xtask_sources)
    )
}

/// Paths as `hashFiles` takes them: single-quoted, comma-separated.
fn quoted(paths: &[&str]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("'{p}'")).collect();
    quoted.join(", ")
}

/// The id of a step that looks xtask's binary up without failing on a miss; the step after it
/// reads its `cache-hit`.
pub const XTASK_BIN_STEP: &str = "xtask-bin";

/// The condition of a step that runs when that lookup missed.
pub fn xtask_bin_missing() -> String {
    format!("steps.{XTASK_BIN_STEP}.outputs.cache-hit != 'true'")
}

/// A step of `action` (actions/cache's restore or save) on xtask's binary of this content,
/// with `more` inputs.
pub fn xtask_bin_step(
    layout: &Layout,
    action: Pin,
    os: Os,
    more: Vec<(&str, Node)>,
) -> Vec<(String, Node)> {
    let mut with = vec![
        ("path", Node::str(xtask_bin(layout))),
        ("key", Node::str(xtask_bin_key(layout, os))),
    ];
    with.extend(more);
    step(action, with)
}

/// A step that restores xtask's binary as the plan job made it; a miss fails the job (the plan
/// job saves it before any other job starts).
pub fn xtask_bin_restore(layout: &Layout, os: Os) -> Node {
    Node::Map(xtask_bin_step(
        layout,
        actions::CACHE_RESTORE,
        os,
        vec![("fail-on-cache-miss", Node::bool(true))],
    ))
}

/// The steps that restore xtask's binary of this content when one was saved, and build it
/// otherwise (a job that compiles, or runs without the plan job).
pub fn xtask_bin_restore_or_build(layout: &Layout, os: Os) -> [Node; 2] {
    let mut restore = vec![("id".to_string(), Node::str(XTASK_BIN_STEP))];
    restore.extend(xtask_bin_step(layout, actions::CACHE_RESTORE, os, vec![]));
    [
        Node::Map(restore),
        Node::map([
            ("if", Node::str(xtask_bin_missing())),
            ("run", Node::str("cargo build --package xtask")),
        ]),
    ]
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
    /// What it holds (`tools`, `uv`, what a stage keeps, an artifact's name).
    pub name: &'static str,
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
        node.extend(step(actions::CACHE_RESTORE, with));
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
        with_if(step(actions::CACHE_SAVE, with), Some(when.join(" && ")))
    }
}

/// A job that compiles the workspace keeps its own Rust cache; every other job only compiles
/// xtask, whose dependencies all such jobs share in one small cache that only the plan job
/// saves.
pub fn rust_cache(workflow: &Workflow, job: &Job) -> Vec<(String, Node)> {
    if !job.compiles(workflow.pipeline()) {
        return rust_cache_for_xtask(workflow.layout, job.os, false);
    }
    let mut key = format!("{}-{}", workflow.layout.generation.toolchain(), job.key);
    if let Trigger::Called { switches } = workflow.trigger {
        // One cache per artifact switched on. A stage whose outcome the job reports compiles
        // what the build after it compiles (a lint whose build is the artifact's), so its switch
        // joins that build's: a run of the lint alone restores the artifact's cache.
        let mut beside: Vec<String> = Vec::new();
        for stage in job
            .stages(workflow.pipeline())
            .filter(|s| switches.contains(&s.name))
        {
            beside.push(format!("inputs.{}", stage.name));
            if stage.builds() {
                key.push_str(&format!("-${{{{ {} }}}}", beside.join(" || ")));
                beside.clear();
            } else if !job.reports_outcome(workflow.layout, stage) {
                beside.clear();
            }
        }
    }
    let with = vec![
        ("key", Node::str(key)),
        ("cache-on-failure", Node::bool(true)),
        ("save-if", Node::str(format!("${{{{ {ON_MAIN} }}}}"))),
    ];
    step(actions::RUST_CACHE, with)
}

/// The one small cache of xtask's dependencies that every job which compiles only xtask shares.
/// One job saves it on main (`saves`: the plan job, which runs first on every push); the others
/// only restore it, so no two jobs upload one key and no other job walks its target dir to
/// prune it (rust-cache does that only where it saves).
pub fn rust_cache_for_xtask(layout: &Layout, os: Os, saves: bool) -> Vec<(String, Node)> {
    let save_if = if saves {
        Node::str(format!("${{{{ {ON_MAIN} }}}}"))
    } else {
        Node::bool(false)
    };
    let with = vec![
        (
            "shared-key",
            Node::str(format!(
                "xtask-{}-{}",
                layout.generation.toolchain(),
                os.platform()
            )),
        ),
        ("save-if", save_if),
    ];
    step(actions::RUST_CACHE, with)
}

/// The caches a job restores at its start and saves at its end: the tools xtask installs, uv's
/// downloads for the Python stages, what a stage keeps between runs ([`crate::graph::Kept`]).
pub fn caches(workflow: &Workflow, job: &Job, stages: &[&Stage], python: bool) -> Vec<Cache> {
    let os = job.os.platform();
    let mut caches = Vec::new();
    let layout = workflow.layout;
    let tools = xtask_tools(workflow, job);
    if python && !tools.is_empty() {
        let names: Vec<&str> = tools.iter().map(|t| t.name).collect();
        let users: Vec<&Stage> = stages
            .iter()
            .copied()
            .filter(|s| !runner_tools(layout, s).is_empty())
            .collect();
        caches.push(Cache {
            name: TOOLS_CACHE,
            id: Some(TOOLS_CACHE),
            path: on_runner(layout, |ctx| ctx.tools_dir.clone()),
            key: format!(
                "xtask-tools-{os}-{}-py${{{{ steps.python.outputs.python-version }}}}-${{{{ hashFiles({}) }}}}",
                names.join("-"),
                quoted(workflow.pipeline().pin_files)
            ),
            restore_prefix: None,
            condition: step_condition(workflow, job, &users),
            save: Save::OnMainAfterMiss,
        });
    }
    if uses_uv_cache(workflow.layout, stages) {
        let prefix = format!(
            "uv-{os}-{}-py${{{{ steps.python.outputs.python-version }}}}-",
            job.key
        );
        caches.push(Cache {
            name: "uv",
            id: None,
            path: "~/.cache/uv".to_string(),
            key: format!(
                "{prefix}${{{{ hashFiles({}) }}}}",
                quoted(layout.generation.python_dependencies)
            ),
            restore_prefix: Some(prefix),
            condition: None,
            save: Save::OnMain,
        });
    }
    let mut kept: Vec<&Kept> = Vec::new();
    for k in stages.iter().flat_map(|s| s.keeps) {
        if !kept.contains(&k) {
            kept.push(k);
        }
    }
    for k in kept {
        let prefix = format!("{}-{os}-{}-", k.name, job.key);
        caches.push(Cache {
            name: k.name,
            id: None,
            path: k.path.to_string(),
            key: format!("{prefix}${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"),
            restore_prefix: Some(prefix),
            condition: None,
            // Saved after failures too: what a failed run found is what it keeps.
            save: Save::Always,
        });
    }
    caches
}

/// Whether a job of `stages` keeps uv's cache: one of them runs Python on an artifact, and the
/// project names what decides its downloads ([`crate::jobs::Generation::python_dependencies`]).
pub fn uses_uv_cache(layout: &Layout, stages: &[&Stage]) -> bool {
    !layout.generation.python_dependencies.is_empty() && stages.iter().any(|s| s.consumes_python())
}

/// An artifact kept across runs by its content key: restored before its build (which then finds
/// its manifest current and compiles nothing), saved on main when the restore missed, so pull
/// requests reuse what main built for every key they did not change. An artifact that copies
/// some sources also restores main's newest one on a miss: its build repacks it when only
/// those sources changed (its manifest says), and builds anew otherwise.
pub fn artifact_cache(
    workflow: &Workflow,
    job: &Job,
    stage: &Stage,
    artifact: &'static Artifact,
) -> Cache {
    let prefix = format!("artifact-{}-{}-", artifact.name, job.os.platform());
    Cache {
        name: artifact.name,
        id: Some(artifact.name),
        path: artifact_path(workflow.layout, artifact),
        key: format!("{prefix}${{{{ steps.keys.outputs.key-{} }}}}", stage.name),
        restore_prefix: artifact.copies.as_ref().map(|_| prefix.clone()),
        condition: step_condition(workflow, job, &[stage]),
        save: Save::BuiltOnMain,
    }
}
