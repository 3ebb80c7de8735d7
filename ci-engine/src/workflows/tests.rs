//! The small layout of the job model's tests, generated: every file parses, names its table,
//! and its jobs download what they consume from the job that uploads it.

use super::*;
use crate::jobs::tests::LAYOUT;

fn doc(file: &str) -> serde_yaml_ng::Value {
    let text = generate(&LAYOUT)
        .into_iter()
        .find(|(name, _)| name == file)
        .map(|(_, text)| text)
        .unwrap_or_else(|| panic!("no {file}"));
    assert!(
        text.starts_with("# Generated from xtask/src/jobs.rs"),
        "{text}"
    );
    serde_yaml_ng::from_str(&text).unwrap()
}

fn steps<'a>(doc: &'a serde_yaml_ng::Value, job: &str) -> &'a Vec<serde_yaml_ng::Value> {
    doc["jobs"][job]["steps"].as_sequence().unwrap()
}

fn uses<'a>(steps: &'a [serde_yaml_ng::Value], action: &str) -> Vec<&'a serde_yaml_ng::Value> {
    steps
        .iter()
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
        .collect()
}

#[test]
fn a_small_layout_is_generated_with_its_plan_its_artifacts_and_its_conclusion() {
    let ci = doc("ci.yaml");
    let jobs: Vec<&str> = ci["jobs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["plan", "package", "test", "test-macos", "ci-passed"]);
    assert_eq!(ci["jobs"]["test"]["needs"][1].as_str(), Some("package"));
    assert_eq!(
        ci["jobs"]["test"]["if"].as_str(),
        Some("needs.plan.outputs.run-test == 'true'")
    );
    let test = steps(&ci, "test");
    let download = uses(test, actions::DOWNLOAD_ARTIFACT.action);
    assert_eq!(
        download[0]["with"]["name"].as_str(),
        Some("package-linux-x86_64")
    );
    let runs: Vec<&str> = test.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(
        runs.iter()
            .any(|r| r.ends_with("xtask test --python 3.8,3.9,3.10")),
        "{runs:?}"
    );
    // The plan job builds xtask with the project's toolchain; the test job runs its binary.
    assert_eq!(uses(steps(&ci, "plan"), "example/toolchain").len(), 1);
    assert!(uses(test, "example/toolchain").is_empty());
    let build = doc("build.yaml");
    let build_steps = steps(&build, "build");
    assert_eq!(uses(build_steps, actions::UPLOAD_ARTIFACT.action).len(), 1);
    assert_eq!(
        build["jobs"]["build"]["outputs"]["outcome-lint"].as_str(),
        Some("${{ steps.lint.outcome }}")
    );
    let check = ci["jobs"]["ci-passed"]["steps"][0]["run"].as_str().unwrap();
    assert!(check.contains("outcome-"), "{check}");
}

#[test]
fn a_download_runs_when_a_stage_that_uses_it_is_switched_on() {
    let checks = doc("checks.yaml");
    assert_eq!(
        checks["jobs"]["check"]["if"].as_str(),
        Some("inputs.lint || inputs.test")
    );
    let download = uses(steps(&checks, "check"), actions::DOWNLOAD_ARTIFACT.action);
    assert_eq!(download[0]["if"].as_str(), Some("inputs.test"));
}

#[test]
fn a_generated_file_edited_by_hand_is_stale() {
    let scratch = std::env::temp_dir().join(format!("ci-engine-wf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(write(&LAYOUT, &scratch).unwrap().len(), 4, "all missing");
    assert!(stale(&LAYOUT, &scratch).unwrap().is_empty());
    let file = scratch.join(DIR).join("ci.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("timeout-minutes: 10", "timeout-minutes: 11"),
    )
    .unwrap();
    assert_eq!(
        stale(&LAYOUT, &scratch).unwrap(),
        [format!("{DIR}/ci.yaml differs")]
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}
