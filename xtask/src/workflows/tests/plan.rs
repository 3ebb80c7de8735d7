use std::collections::BTreeMap;

use crate::pipeline::{LAYOUT, PIPELINE};
use ci_engine::jobs::CONCLUSION;
use ci_engine::jobs::Workflow;
use ci_engine::jobs::rule::*;
use ci_engine::workflows::plan::*;
use ci_engine::yaml::Node;

fn ci() -> Workflow {
    LAYOUT
        .workflows()
        .into_iter()
        .find(gated)
        .expect("the pipeline is gated")
}

#[test]
fn every_job_of_the_pipeline_is_gated_by_the_plan() {
    let text = ci_engine::workflows::render::render(&ci());
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
    let generated: BTreeMap<String, String> = ci_engine::workflows::generate(&LAYOUT)
        .into_iter()
        .collect();
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
    let text = ci_engine::workflows::render::render(&ci());
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
    let text = ci_engine::workflows::render::render(&ci());
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
    assert!(runs_without_needs(&ci).is_empty());
}
