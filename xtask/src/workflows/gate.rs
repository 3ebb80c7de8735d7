//! Affected-only runs in CI: the pipeline's first job, `plan`, computes every stage's content key
//! (`cargo xtask keys`) and looks up, without downloading, a tiny cache entry per job and stage
//! that main's conclusion saved when the whole pipeline passed with that key. Each other job runs
//! only when one of its stages' keys has not passed on main (a build when a job that consumes it
//! runs); pushes to main and runs by hand run everything and save the records.

use super::jobs::{CONCLUSION, Entry, Os, Trigger, Workflow, entry_needs, instances};
use super::steps::{rust_cache_for_xtask, step};
use super::yaml::Node;
use crate::graph::{self, Services, Stage};
use crate::pins;

pub const PLAN: &str = "plan";
/// When every job runs, whatever the records say (and records are saved afterwards).
const FORCE: &str = "github.event_name == 'push' || github.event_name == 'workflow_dispatch'";
const SAVE: &str = "github.event_name == 'push' && github.ref == 'refs/heads/main'";

/// Whether a workflow gets a plan job.
pub fn gated(workflow: &Workflow) -> bool {
    matches!(workflow.trigger, Trigger::Pipeline)
}

/// The stages entry `key` runs (a call: its called jobs' stages that are switched on).
fn entry_stages(workflow: &Workflow, key: &str) -> Vec<&'static Stage> {
    let mut stages: Vec<&'static Stage> = Vec::new();
    for instance in instances(workflow.file)
        .into_iter()
        .filter(|i| i.entry == key)
    {
        for (name, _) in &instance.calls {
            if let Ok(stage) = graph::stage(name)
                && !stages.iter().any(|s| s.name == stage.name)
            {
                stages.push(stage);
            }
        }
    }
    stages
}

fn entry_keys(workflow: &Workflow) -> Vec<&'static str> {
    workflow
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Job(j) => Some(j.key),
            Entry::Call { key, .. } => Some(*key),
            Entry::Conclusion => None,
        })
        .collect()
}

/// Every pass record of the workflow: (entry, stage) for each cacheable stage of each entry.
fn records(workflow: &Workflow) -> Vec<(&'static str, &'static Stage)> {
    entry_keys(workflow)
        .into_iter()
        .flat_map(|key| {
            entry_stages(workflow, key)
                .into_iter()
                .filter(|s| s.inputs.cacheable)
                .map(move |s| (key, s))
        })
        .collect()
}

fn record_id(entry: &str, stage: &str) -> String {
    format!("pass-{entry}-{stage}")
}

fn record_key(entry: &str, stage: &str) -> String {
    format!("pass-{entry}-{stage}-${{{{ steps.keys.outputs.key-{stage} }}}}",)
}

/// Why a stage of a gated job runs: the plan's one rule, which compare's emulation of the
/// plan follows too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// When its content key has no pass record.
    WhenKeyChanged,
    /// With the stages of its job that need it (docker-up).
    WithItsJob,
    /// Every time (upstream tests nightly builds that change without any change here).
    Always,
    /// When a job that downloads what it builds runs.
    ForConsumers,
}

pub fn runs(stage: &Stage) -> Runs {
    if stage.inputs.cacheable {
        Runs::WhenKeyChanged
    } else if stage.services == Services::Starts {
        Runs::WithItsJob
    } else if !stage.builds() {
        Runs::Always
    } else {
        Runs::ForConsumers
    }
}

/// Whether `stage` of `entry` must run, over the plan job's lookups.
fn stage_condition(workflow: &Workflow, entry: &str, stage: &Stage) -> Vec<String> {
    match runs(stage) {
        Runs::WhenKeyChanged => {
            return vec![format!(
                "steps.{}.outputs.cache-hit != 'true'",
                record_id(entry, stage.name)
            )];
        }
        Runs::WithItsJob => return Vec::new(),
        Runs::Always => return vec!["true".to_string()],
        Runs::ForConsumers => {}
    }
    // A build runs when a job that downloads what it builds runs.
    let mut conditions = Vec::new();
    for other in entry_keys(workflow) {
        if other == entry || !entry_needs(workflow.file, other).iter().any(|n| n == entry) {
            continue;
        }
        for consumer in entry_stages(workflow, other)
            .into_iter()
            .filter(|s| s.consumes.iter().any(|a| stage.produces.contains(a)))
        {
            conditions.extend(stage_condition(workflow, other, consumer));
        }
    }
    conditions
}

fn expression(conditions: Vec<String>) -> String {
    let mut parts = vec![FORCE.to_string()];
    for c in conditions {
        if !parts.contains(&c) {
            parts.push(c);
        }
    }
    format!("${{{{ {} }}}}", parts.join(" || "))
}

/// The `if:` of a gated entry.
pub fn entry_if(key: &str) -> String {
    format!("needs.{PLAN}.outputs.run-{key} == 'true'")
}

/// The value of a called workflow's stage switch.
pub fn switch(key: &str, stage: &str) -> Node {
    Node::Str(format!(
        "${{{{ needs.{PLAN}.outputs.stage-{key}-{stage} == 'true' }}}}"
    ))
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
    let mut steps = setup_steps();
    for (entry, stage) in records(workflow) {
        let mut node = vec![("id".to_string(), Node::str(record_id(entry, stage.name)))];
        node.extend(step(
            pins::CACHE_RESTORE,
            vec![
                ("path", Node::str("target/xtask/keys.json")),
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

/// Checkout, toolchain, xtask's cache and the keys (step id `keys`).
fn setup_steps() -> Vec<Node> {
    vec![
        Node::Map(step(
            pins::CHECKOUT,
            vec![("persist-credentials", Node::bool(false))],
        )),
        Node::Map(step(pins::RUST_TOOLCHAIN, vec![])),
        Node::Map(rust_cache_for_xtask(Os::Linux)),
        Node::map([
            ("id", Node::str("keys")),
            ("run", Node::str("cargo xtask keys")),
        ]),
    ]
}

/// The conclusion's steps after its check: on main, when everything passed, save a record per
/// job and stage with the keys of this commit.
pub fn save_steps(workflow: &Workflow) -> Vec<Node> {
    let mut out: Vec<Node> = setup_steps()
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
            pins::CACHE_SAVE,
            vec![
                ("path", Node::str("target/xtask/keys.json")),
                ("key", Node::str(record_key(entry, stage.name))),
            ],
        ));
        out.push(Node::Map(node));
    }
    out
}

/// The conclusion's name and needs include the plan job.
pub fn conclusion_needs(workflow: &Workflow) -> Vec<String> {
    let mut needs = vec![PLAN.to_string()];
    needs.extend(entry_keys(workflow).into_iter().map(str::to_string));
    needs.retain(|n| n != CONCLUSION);
    needs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::jobs::workflows;

    fn ci() -> Workflow {
        workflows()
            .into_iter()
            .find(gated)
            .expect("the pipeline is gated")
    }

    #[test]
    fn every_job_of_the_pipeline_is_gated_by_the_plan() {
        let text = crate::workflows::render::render(&ci());
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let jobs = doc["jobs"].as_mapping().unwrap();
        for (name, job) in jobs {
            let name = name.as_str().unwrap();
            if name == PLAN || name == CONCLUSION {
                continue;
            }
            assert_eq!(job["if"].as_str(), Some(entry_if(name).as_str()), "{name}");
            let needs: Vec<&str> = job["needs"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|n| n.as_str())
                .collect();
            assert_eq!(needs[0], PLAN, "{name}");
            let output = &doc["jobs"][PLAN]["outputs"][format!("run-{name}").as_str()];
            assert!(output.as_str().is_some_and(|o| o.contains(FORCE)), "{name}");
        }
        let check = doc["jobs"][CONCLUSION]["steps"][0]["run"].as_str().unwrap();
        assert!(check.contains(r#"("success", "skipped")"#), "{check}");
    }

    #[test]
    fn a_build_runs_when_a_job_that_downloads_it_runs() {
        let ci = ci();
        let archive = stage_condition(&ci, "archive", graph::stage("build-artifacts").unwrap());
        assert_eq!(
            archive,
            [
                "steps.pass-test-unit-test-unit.outputs.cache-hit != 'true'",
                "steps.pass-test-full-test-full.outputs.cache-hit != 'true'"
            ]
        );
        let wheel = stage_condition(&ci, "wheel", graph::stage("build-wheels").unwrap());
        assert!(
            wheel.iter().all(|c| c.contains("pass-python-")),
            "{wheel:?}"
        );
        assert!(
            stage_condition(&ci, "test-full", graph::stage("docker-up").unwrap()).is_empty(),
            "docker-up follows the tests of its job"
        );
    }
}
