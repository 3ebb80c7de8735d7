//! Affected-only runs in CI, as this repository's workflows render them: the plan job (which
//! entries and stages run is the engine's rule, `ci_engine::jobs::rule`) computes every stage's
//! content key with `cargo xtask keys`, and the conclusion saves a tiny cache entry per job and
//! stage on main when the whole pipeline passed with that key. A record's key is the stage's key hashed with the job's own definition, as
//! generated, and its platform's own inputs ([`record_keys`]): a change to how a job runs a
//! stage (its flags, its setup, its runner) is a new key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use super::caches::{
    XTASK_BIN_STEP, on_runner, rust_cache_for_xtask, xtask_bin, xtask_bin_missing,
    xtask_bin_restore, xtask_bin_step,
};
use super::steps::{Setup, step, with_if};
use crate::pins;
use ci_engine::context::Context;
use ci_engine::jobs::rule::{
    PLAN, entry_keys, entry_stages, expression, gated, platform_inputs, record_id, record_key,
    record_output, records, stage_condition,
};
use ci_engine::jobs::{Entry, Layout, Os, Workflow};
use ci_engine::yaml::Node;

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
fn record_keys_of(
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
                definition.push_str(&ci_engine::files::entry_digest(root, input)?);
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
                ci_engine::files::hex(&hasher.finalize()),
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
    let mut steps = setup_steps(None);
    for (entry, stage) in records(workflow) {
        let mut node = vec![("id".to_string(), Node::str(record_id(entry, stage.name)))];
        node.extend(step(
            pins::CACHE_RESTORE,
            vec![
                ("path", Node::str(on_runner(Context::keys_file))),
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
fn setup_steps(planned: Option<String>) -> Vec<Node> {
    tagged_setup_steps(planned)
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}

/// What the plan job does before it computes the keys, as `compare` prices it.
pub fn plan_setup() -> Vec<Setup> {
    tagged_setup_steps(None)
        .into_iter()
        .filter_map(|(setup, _)| setup)
        .collect()
}

/// [`setup_steps`], each with the setup it stands for (the keys step: xtask's build).
fn tagged_setup_steps(planned: Option<String>) -> Vec<(Option<Setup>, Node)> {
    let mut steps = vec![
        (
            Some(Setup::Checkout),
            Node::Map(step(
                pins::CHECKOUT,
                vec![("persist-credentials", Node::bool(false))],
            )),
        ),
        (
            Some(Setup::Toolchain),
            Node::Map(step(pins::RUST_TOOLCHAIN, vec![])),
        ),
    ];
    match planned {
        None => {
            steps.push((
                Some(Setup::RustCache { workspace: false }),
                Node::Map(rust_cache_for_xtask(Os::Linux, true)),
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
                pins::CACHE_RESTORE,
                Os::Linux,
                vec![("lookup-only", Node::bool(true))],
            ));
            steps.push((None, Node::Map(lookup)));
            steps.push((
                None,
                with_if(
                    xtask_bin_step(pins::CACHE_SAVE, Os::Linux, vec![]),
                    Some(xtask_bin_missing()),
                ),
            ));
        }
        Some(planned) => {
            steps.push((None, xtask_bin_restore(Os::Linux)));
            steps.push((
                None,
                Node::map([
                    ("id", Node::str("keys")),
                    ("env", Node::map([("PLANNED_KEYS", Node::Str(planned))])),
                    (
                        "run",
                        Node::str(format!("{} keys --planned \"$PLANNED_KEYS\"", xtask_bin())),
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
    let mut out: Vec<Node> = setup_steps(Some(planned))
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
                ("path", Node::str(on_runner(Context::keys_file))),
                ("key", Node::str(record_key(entry, stage.name))),
            ],
        ));
        out.push(Node::Map(node));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{LAYOUT, PIPELINE};
    use ci_engine::jobs::CONCLUSION;
    use ci_engine::jobs::rule::{FORCE, Term, entry_if, stage_runs};

    fn ci() -> Workflow {
        LAYOUT
            .workflows()
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

    /// A record's key follows the job: another flag in a job, another checkout rule or another
    /// job running the same stage is another key.
    #[test]
    fn a_pass_record_is_keyed_by_the_stage_and_the_job_that_ran_it() {
        let root = std::env::temp_dir().join(format!("xtask-record-keys-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join(".gitattributes"), "* text=auto\n").unwrap();
        let stage_keys: BTreeMap<String, String> = PIPELINE
            .stages
            .iter()
            .map(|s| (s.name.to_string(), format!("key-of-{}", s.name)))
            .collect();
        let generated: BTreeMap<String, String> =
            super::super::generate(&LAYOUT).into_iter().collect();
        let keys = |generated: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            record_keys_of(&LAYOUT, &root, &stage_keys, generated)
                .unwrap()
                .into_iter()
                .collect()
        };
        let base = keys(&generated);
        // One test-unit stage, three jobs: three records.
        let unit: Vec<&String> = ["test-unit", "windows", "test-unit-macos"]
            .iter()
            .map(|entry| &base[&format!("record-{entry}-test-unit")])
            .collect();
        assert!(unit[0] != unit[1] && unit[1] != unit[2] && unit[0] != unit[2]);
        // python-test run with another flag by its job.
        let mut edited = generated.clone();
        let python = edited.get_mut("python-check-optimized.yaml").unwrap();
        assert!(python.contains("--python 3.11,3.12,3.13"), "{python}");
        *python = python.replace("--python 3.11,3.12,3.13", "--python 3.11");
        let flagged = keys(&edited);
        assert_ne!(
            base["record-python-python-test"],
            flagged["record-python-python-test"]
        );
        assert_eq!(
            base["record-test-unit-test-unit"],
            flagged["record-test-unit-test-unit"]
        );
        // The Windows checkout's line endings.
        std::fs::write(root.join(".gitattributes"), "* text eol=crlf\n").unwrap();
        let crlf = keys(&generated);
        assert_ne!(
            base["record-windows-test-unit"],
            crlf["record-windows-test-unit"]
        );
        assert_eq!(
            base["record-test-unit-test-unit"],
            crlf["record-test-unit-test-unit"]
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_merge_queue_and_main_run_everything_and_the_conclusion_runs_unless_cancelled() {
        let text = crate::workflows::render::render(&ci());
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        for (name, value) in doc["jobs"][PLAN]["outputs"].as_mapping().unwrap() {
            if name.as_str() == Some(PLANNED_KEYS_OUTPUT) {
                continue;
            }
            let value = value.as_str().unwrap();
            for event in ["push", "merge_group", "workflow_dispatch"] {
                assert!(
                    value.contains(&format!("github.event_name == '{event}'")),
                    "{name:?}: {value}"
                );
            }
        }
        assert_eq!(doc["jobs"][CONCLUSION]["if"].as_str(), Some("!cancelled()"));
    }

    /// The conclusion saves records under the keys it computes; they must be the plan's.
    #[test]
    fn the_conclusion_checks_its_keys_against_the_plans() {
        let text = crate::workflows::render::render(&ci());
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let planned = &doc["jobs"][PLAN]["outputs"][PLANNED_KEYS_OUTPUT];
        assert_eq!(
            planned.as_str(),
            Some("${{ steps.keys.outputs.keys }}"),
            "{text}"
        );
        let keys = doc["jobs"][CONCLUSION]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|s| s["id"].as_str() == Some("keys"))
            .expect("the conclusion computes the keys it saves records under");
        assert_eq!(
            keys["env"]["PLANNED_KEYS"].as_str(),
            Some("${{ needs.plan.outputs.keys }}")
        );
        assert_eq!(
            keys["run"].as_str(),
            Some(r#"target/debug/xtask keys --planned "$PLANNED_KEYS""#)
        );
    }

    /// The plan job's outputs, evaluated for a pull request whose records say `passed`.
    fn rendered_runs(
        workflow: &Workflow,
        passed: &dyn Fn(&str, &str) -> bool,
    ) -> BTreeMap<String, bool> {
        let plan = plan_job(workflow);
        let Node::Map(entries) = plan else { panic!() };
        let Some((_, Node::Map(outputs))) = entries.iter().find(|(k, _)| k == "outputs") else {
            panic!("no outputs")
        };
        let lookups: BTreeMap<String, bool> = records(workflow)
            .into_iter()
            .map(|(entry, stage)| {
                let term = Term::Missing {
                    entry: entry.to_string(),
                    stage: stage.name,
                }
                .expression();
                (term, !passed(entry, stage.name))
            })
            .collect();
        outputs
            .iter()
            .filter(|(name, _)| name.starts_with("stage-") || name.starts_with("run-"))
            .map(|(name, value)| {
                let Node::Str(text) = value else {
                    panic!("{name}")
                };
                let inner = text.trim_start_matches("${{ ").trim_end_matches(" }}");
                let on = inner.split(" || ").any(|part| match part {
                    "true" => true,
                    p if FORCE.split(" || ").any(|f| f == p) => false,
                    p => *lookups.get(p).unwrap_or_else(|| panic!("unknown term {p}")),
                });
                (name.clone(), on)
            })
            .collect()
    }

    #[test]
    fn the_rendered_plan_and_the_evaluated_rule_agree() {
        let ci = ci();
        let stages: Vec<&str> = records(&ci).iter().map(|(_, s)| s.name).collect();
        // Nothing passed, everything passed, and each stage alone changed.
        let mut cases: Vec<Vec<&str>> = vec![stages.clone(), vec![]];
        cases.extend(stages.iter().map(|s| vec![*s]));
        for changed in cases {
            let passed = |_: &str, stage: &str| !changed.contains(&stage);
            let rendered = rendered_runs(&ci, &passed);
            for key in entry_keys(&ci) {
                let evaluated: Vec<bool> = entry_stages(&ci, key)
                    .into_iter()
                    .filter_map(|s| {
                        let on = stage_runs(&ci, key, s, &passed);
                        if let Some(&shown) = rendered.get(&format!("stage-{key}-{}", s.name)) {
                            assert_eq!(on, Some(shown), "{key} {} with {changed:?}", s.name);
                        }
                        on
                    })
                    .collect();
                assert_eq!(
                    rendered[&format!("run-{key}")],
                    evaluated.iter().any(|on| *on),
                    "{key} with {changed:?}"
                );
            }
        }
    }

    #[test]
    fn a_build_runs_when_a_job_that_downloads_it_runs() {
        let ci = ci();
        let archive = stage_condition(&ci, "archive", PIPELINE.stage("build-artifacts").unwrap());
        assert_eq!(
            archive,
            [
                "steps.pass-test-unit-test-unit.outputs.cache-hit != 'true'",
                "steps.pass-test-full-test-full.outputs.cache-hit != 'true'"
            ]
        );
        let wheel = stage_condition(&ci, "wheel", PIPELINE.stage("build-wheels").unwrap());
        assert!(
            wheel.iter().all(|c| c.contains("pass-python-")),
            "{wheel:?}"
        );
        assert!(
            stage_condition(&ci, "test-full", PIPELINE.stage("docker-up").unwrap()).is_empty(),
            "docker-up follows the tests of its job"
        );
    }
}
