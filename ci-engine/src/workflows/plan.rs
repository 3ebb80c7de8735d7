//! Affected-only runs in CI, as the workflows render them: the plan job (which entries and
//! stages run is [`crate::jobs::rule`]) computes every stage's content key with `cargo xtask
//! keys`, and the conclusion saves a tiny cache entry per job and stage on main when the whole
//! pipeline passed with that key. A record's key is the stage's key hashed with the job's own
//! definition, as generated, and its platform's own inputs ([`record_keys`]): a change to how a
//! job runs a stage (its flags, its setup, its runner) is a new key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use super::actions;
use super::caches::{
    XTASK_BIN_STEP, on_runner, rust_cache_for_xtask, xtask_bin, xtask_bin_missing,
    xtask_bin_restore, xtask_bin_step,
};
use super::steps::{Setup, step, with_if};
use crate::context::Context;
use crate::jobs::rule::{
    PLAN, entry_keys, entry_stages, expression, gated, platform_inputs, record_id, record_key,
    record_output, records, stage_condition,
};
use crate::jobs::{Entry, Layout, Os, Workflow};
use crate::yaml::Node;

const SAVE: &str = "github.event_name == 'push' && github.ref == 'refs/heads/main'";

/// The key of every CI pass record, as `(step output, key)`: the stage's key (from
/// `stage_keys`), the entry's job as generated (a called workflow whole, with what the caller
/// passes it) and the checkout inputs of the platforms it runs on, hashed together.
pub fn record_keys(
    layout: &'static Layout,
    root: &Path,
    stage_keys: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>> {
    let generated: BTreeMap<String, String> = super::generate(layout).into_iter().collect();
    record_keys_of(layout, root, stage_keys, &generated)
}

/// [`record_keys`] over the generated files `generated` (name → text).
pub fn record_keys_of(
    layout: &'static Layout,
    root: &Path,
    stage_keys: &BTreeMap<String, String>,
    generated: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for workflow in layout.workflows().into_iter().filter(gated) {
        let text = generated.get(workflow.file).map_or("", String::as_str);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .with_context(|| format!("the generated {} does not parse", workflow.file))?;
        for (entry, stage) in records(&workflow) {
            let mut definition = serde_yaml_ng::to_string(&doc["jobs"][entry])?;
            if let Some(Entry::Call { file, .. }) = workflow
                .entries
                .iter()
                .find(|e| matches!(e, Entry::Call { key, .. } if *key == entry))
            {
                definition.push_str(generated.get(*file).map_or("", String::as_str));
            }
            let mut oses: Vec<Os> = workflow
                .layout
                .instances(workflow.file)
                .into_iter()
                .filter(|i| i.entry == entry)
                .map(|i| i.os)
                .collect();
            oses.sort();
            oses.dedup();
            for input in oses.into_iter().flat_map(platform_inputs) {
                definition.push_str(input);
                definition.push_str(&crate::files::entry_digest(root, input)?);
            }
            let stage_key = stage_keys
                .get(stage.name)
                .with_context(|| format!("no key for {}", stage.name))?;
            let mut hasher = Sha256::new();
            for part in [stage_key.as_str(), entry, definition.as_str()] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
            out.push((
                record_output(entry, stage.name),
                crate::files::hex(&hasher.finalize()),
            ));
        }
    }
    Ok(out)
}

/// The plan job.
pub fn plan_job(workflow: &Workflow) -> Node {
    let mut outputs = Vec::new();
    for key in entry_keys(workflow) {
        let stages = entry_stages(workflow, key);
        let all: Vec<String> = stages
            .iter()
            .flat_map(|s| stage_condition(workflow, key, s))
            .collect();
        outputs.push((format!("run-{key}"), Node::Str(expression(all))));
        if let Some(Entry::Call { stages: on, .. }) = workflow
            .entries
            .iter()
            .find(|e| matches!(e, Entry::Call { key: k, .. } if *k == key))
        {
            for stage in stages.iter().filter(|s| on.contains(&s.name)) {
                outputs.push((
                    format!("stage-{key}-{}", stage.name),
                    Node::Str(expression(stage_condition(workflow, key, stage))),
                ));
            }
        }
    }
    // Every stage's key as the plan saw it: the conclusion, which saves the records, checks
    // that it computes the same ones.
    outputs.push((
        PLANNED_KEYS_OUTPUT.to_string(),
        Node::Str(format!(
            "${{{{ steps.keys.outputs.{PLANNED_KEYS_OUTPUT} }}}}"
        )),
    ));
    let layout = workflow.layout;
    let mut steps = setup_steps(layout, None);
    for (entry, stage) in records(workflow) {
        let mut node = vec![("id".to_string(), Node::str(record_id(entry, stage.name)))];
        node.extend(step(
            actions::CACHE_RESTORE,
            vec![
                ("path", Node::str(on_runner(layout, Context::keys_file))),
                ("key", Node::str(record_key(entry, stage.name))),
                ("lookup-only", Node::bool(true)),
            ],
        ));
        steps.push(Node::Map(node));
    }
    Node::map([
        ("runs-on", Node::str(Os::Linux.runner())),
        ("timeout-minutes", Node::int(10)),
        ("outputs", Node::Map(outputs)),
        ("steps", Node::Seq(steps)),
    ])
}

/// The plan job's output (and `cargo xtask keys`' step output) with every stage's key as JSON.
pub const PLANNED_KEYS_OUTPUT: &str = "keys";

/// Checkout, toolchain, xtask and the keys (step id `keys`). Without `planned` this is the
/// plan job: it compiles xtask (with xtask's Rust cache, which it alone saves) and saves the
/// binary for the run's other jobs ([`xtask_bin_key`]) unless an entry of the same content
/// exists. With `planned`, an expression for the plan's keys, the binary is the plan's and
/// `keys --planned` checks its keys against the plan's.
fn setup_steps(layout: &Layout, planned: Option<String>) -> Vec<Node> {
    tagged_setup_steps(layout, planned)
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}

/// What the plan job does before it computes the keys, as a benchmark prices it.
pub fn plan_setup(layout: &Layout) -> Vec<Setup> {
    tagged_setup_steps(layout, None)
        .into_iter()
        .filter_map(|(setup, _)| setup)
        .collect()
}

/// [`setup_steps`], each with the setup it stands for (the keys step: xtask's build).
fn tagged_setup_steps(layout: &Layout, planned: Option<String>) -> Vec<(Option<Setup>, Node)> {
    let mut steps = vec![
        (
            Some(Setup::Checkout),
            Node::Map(step(
                actions::CHECKOUT,
                vec![("persist-credentials", Node::bool(false))],
            )),
        ),
        (
            Some(Setup::Toolchain),
            Node::Map(step(layout.generation.toolchain_action, vec![])),
        ),
    ];
    match planned {
        None => {
            steps.push((
                Some(Setup::RustCache { workspace: false }),
                Node::Map(rust_cache_for_xtask(layout, Os::Linux, true)),
            ));
            steps.push((
                Some(Setup::BuildXtask),
                Node::map([
                    ("id", Node::str("keys")),
                    ("run", Node::str("cargo xtask keys")),
                ]),
            ));
            let mut lookup = vec![("id".to_string(), Node::str(XTASK_BIN_STEP))];
            lookup.extend(xtask_bin_step(
                layout,
                actions::CACHE_RESTORE,
                Os::Linux,
                vec![("lookup-only", Node::bool(true))],
            ));
            steps.push((None, Node::Map(lookup)));
            steps.push((
                None,
                with_if(
                    xtask_bin_step(layout, actions::CACHE_SAVE, Os::Linux, vec![]),
                    Some(xtask_bin_missing()),
                ),
            ));
        }
        Some(planned) => {
            steps.push((None, xtask_bin_restore(layout, Os::Linux)));
            steps.push((
                None,
                Node::map([
                    ("id", Node::str("keys")),
                    ("env", Node::map([("PLANNED_KEYS", Node::Str(planned))])),
                    (
                        "run",
                        Node::str(format!(
                            "{} keys --planned \"$PLANNED_KEYS\"",
                            xtask_bin(layout)
                        )),
                    ),
                ]),
            ));
        }
    }
    steps
}

/// The conclusion's steps after its check: on main, when everything passed, save a record per
/// job and stage with the keys of this commit.
pub fn save_steps(workflow: &Workflow) -> Vec<Node> {
    let planned = format!("${{{{ needs.{PLAN}.outputs.{PLANNED_KEYS_OUTPUT} }}}}");
    let layout = workflow.layout;
    let mut out: Vec<Node> = setup_steps(layout, Some(planned))
        .into_iter()
        .map(|s| match s {
            Node::Map(mut m) => {
                m.insert(0, ("if".to_string(), Node::str(SAVE)));
                Node::Map(m)
            }
            other => other,
        })
        .collect();
    for (entry, stage) in records(workflow) {
        let mut node = vec![("if".to_string(), Node::str(SAVE))];
        node.extend(step(
            actions::CACHE_SAVE,
            vec![
                ("path", Node::str(on_runner(layout, Context::keys_file))),
                ("key", Node::str(record_key(entry, stage.name))),
            ],
        ));
        out.push(Node::Map(node));
    }
    out
}
