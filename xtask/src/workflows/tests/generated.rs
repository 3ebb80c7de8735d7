use crate::pipeline::LAYOUT;
use ci_engine::plan::Action;
use ci_engine::workflows::*;

/// As rust-analyzer's codegen test: a stale file is rewritten, then the test fails, so a
/// developer's `cargo test` repairs the files and CI (which has nothing to commit) fails.
#[test]
fn the_workflows_are_generated() {
    let root = crate::testing::checkout();
    let stale = stale(&LAYOUT, &root).unwrap();
    if !stale.is_empty() {
        write(&LAYOUT, &root).unwrap();
        panic!(
            "{} were stale and have been regenerated ({REGENERATE}); commit them:\n  {}",
            DIR,
            stale.join("\n  ")
        );
    }
}

#[test]
fn a_hand_edit_fails_the_check_with_the_command_that_fixes_it() {
    let scratch = std::env::temp_dir().join(format!("xtask-wf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    write(&LAYOUT, &scratch).unwrap();
    assert!(stale(&LAYOUT, &scratch).unwrap().is_empty());
    let file = scratch.join(DIR).join("rust-ci-optimized.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("timeout-minutes: 20", "timeout-minutes: 21"),
    )
    .unwrap();
    std::fs::write(scratch.join(DIR).join("extra.yml"), "name: x\n").unwrap();
    let ctx = crate::testing::context_at(scratch.clone());
    let mut runner = ci_engine::plan::testing::Recorder::new(&ctx);
    let err = CheckGenerated(&LAYOUT)
        .perform(&mut runner)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rust-ci-optimized.yaml differs"), "{err}");
    assert!(err.contains("extra.yml is not generated"), "{err}");
    assert!(err.contains("Run `cargo xtask workflows`"), "{err}");
    write(&LAYOUT, &scratch).unwrap();
    assert!(stale(&LAYOUT, &scratch).unwrap().is_empty());
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn every_file_says_it_is_generated_and_pins_actions_by_sha() {
    for (name, text) in generate(&LAYOUT) {
        assert!(
            text.starts_with("# Generated from xtask/src/workflows/"),
            "{name}"
        );
        assert!(
            text.contains("# Rebuild with `cargo xtask workflows`."),
            "{name}"
        );
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert!(doc.get("jobs").is_some(), "{name}");
        for line in text
            .lines()
            .filter(|l| l.contains("uses: ") && !l.contains("./.github"))
        {
            let pinned = crate::pins::actions()
                .iter()
                .any(|p| line.ends_with(&format!("uses: {} # {}", p.uses(), p.release)));
            assert!(pinned, "{name}: {line}");
        }
    }
}

/// Adding some other label to a pull request neither restarts a running upstream run (its
/// run has a group of its own) nor starts one (its jobs are skipped).
#[test]
fn only_its_own_label_starts_or_restarts_the_upstream_run() {
    let files = generate(&LAYOUT);
    let (_, text) = files
        .iter()
        .find(|(n, _)| n == "python-upstream-optimized.yaml")
        .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
    let other = "github.event.action == 'labeled' && github.event.label.name != 'test-upstream'";
    let group = doc["concurrency"]["group"].as_str().unwrap();
    assert!(
        group.contains(&format!("{other} && github.run_id ||")),
        "{group}"
    );
    let first = doc["jobs"]["upstream-build"]["if"].as_str().unwrap();
    assert!(
        first.contains(&format!(
            "&& !(github.event_name == 'pull_request' && {other})"
        )),
        "{first}"
    );
}

/// A called job whose stages its caller switches does not start when they are all off, and
/// a single-stage job's steps carry no condition of their own.
#[test]
fn a_switched_called_job_starts_only_when_one_of_its_stages_is_on() {
    let files = generate(&LAYOUT);
    let (_, text) = files.iter().find(|(n, _)| n == "codespell.yml").unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
    for stage in ["codespell", "lint-workflows"] {
        let job = &doc["jobs"][stage];
        assert_eq!(job["if"].as_str(), Some(format!("inputs.{stage}").as_str()));
        for step in job["steps"].as_sequence().unwrap() {
            let on = step["if"].as_str().unwrap_or("");
            assert!(!on.contains("inputs."), "{stage}: {on}");
        }
    }
}

/// xtask compiles once per content, in the plan job: every Linux job under the plan that
/// compiles nothing restores that binary and runs it, with no Rust cache of its own; every
/// other Linux job restores it too and builds it only when none was saved; macOS and
/// Windows build their own.
#[test]
fn jobs_that_compile_nothing_run_the_plans_xtask() {
    let mut runners = 0;
    let mut restored_or_built = 0;
    for (name, text) in generate(&LAYOUT) {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        for (job, body) in doc["jobs"].as_mapping().unwrap() {
            let job = job.as_str().unwrap();
            let Some(steps) = body["steps"].as_sequence() else {
                continue;
            };
            let uses = |action: &str| {
                steps
                    .iter()
                    .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
                    .collect::<Vec<_>>()
            };
            let bin = |s: &serde_yaml_ng::Value| {
                s["with"]["path"].as_str() == Some(caches::xtask_bin(&LAYOUT).as_str())
            };
            let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
            if job == ci_engine::jobs::rule::PLAN {
                assert!(runs.contains(&"cargo xtask keys"), "{name}: {job}");
                let save = uses(ci_engine::workflows::actions::CACHE_SAVE.action);
                let save = save.iter().find(|s| bin(s)).expect("the plan saves xtask");
                assert_eq!(
                    save["if"].as_str(),
                    Some("steps.xtask-bin.outputs.cache-hit != 'true'")
                );
                continue;
            }
            let restore = uses(ci_engine::workflows::actions::CACHE_RESTORE.action)
                .into_iter()
                .find(|s| bin(s));
            let cargo_xtask = runs.iter().any(|r| r.starts_with("cargo xtask"));
            let Some(restore) = restore else {
                assert!(
                    cargo_xtask,
                    "{name}: {job} neither restores nor builds xtask"
                );
                continue;
            };
            assert!(
                !cargo_xtask,
                "{name}: {job} restores xtask and builds it anyway"
            );
            assert!(
                runs.iter()
                    .any(|r| r.starts_with(&caches::xtask_bin(&LAYOUT))),
                "{name}: {job}: {runs:?}"
            );
            if restore["with"]["fail-on-cache-miss"].as_bool() == Some(true) {
                runners += 1;
                assert!(
                    uses(ci_engine::workflows::actions::RUST_CACHE.action).is_empty(),
                    "{name}: {job}"
                );
            } else {
                let id = restore["id"].as_str().expect("the restore has an id");
                let on_miss = format!("steps.{id}.outputs.cache-hit != 'true'");
                assert!(
                    steps
                        .iter()
                        .any(|s| s["if"].as_str() == Some(on_miss.as_str())
                            && s["run"].as_str() == Some("cargo build --package xtask")),
                    "{name}: {job} builds xtask on a miss"
                );
                restored_or_built += 1;
            }
        }
    }
    // test-unit, test-full, python-lint, python-test, codespell, lint-workflows, ci-passed.
    assert_eq!(runners, 7);
    // The shared build and the nightly upstream job.
    assert_eq!(restored_or_built, 2);
}

/// On main each Rust cache key is saved by one job: others restore it and upload nothing.
#[test]
fn each_rust_cache_key_is_saved_by_one_job() {
    let mut savers: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, text) in generate(&LAYOUT) {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        for (job, body) in doc["jobs"].as_mapping().unwrap() {
            let Some(steps) = body["steps"].as_sequence() else {
                continue;
            };
            for step in steps.iter().filter(|s| {
                s["uses"].as_str().is_some_and(|u| {
                    u.starts_with(ci_engine::workflows::actions::RUST_CACHE.action)
                })
            }) {
                if step["with"]["save-if"].as_bool() == Some(false) {
                    continue;
                }
                let with = &step["with"];
                let key = with["shared-key"]
                    .as_str()
                    .or(with["key"].as_str())
                    .unwrap();
                savers
                    .entry(key.to_string())
                    .or_default()
                    .push(format!("{name}: {}", job.as_str().unwrap()));
            }
        }
    }
    let xtask = savers
        .iter()
        .find(|(k, _)| k.starts_with("xtask-"))
        .expect("someone saves xtask's cache");
    assert_eq!(xtask.1.len(), 1, "{xtask:?}");
    for (key, jobs) in &savers {
        assert_eq!(jobs.len(), 1, "{key} is saved by {jobs:?}");
    }
}

#[test]
fn a_build_restores_mains_artifact_by_key_and_saves_only_what_it_built_on_main() {
    let files = generate(&LAYOUT);
    let text = &files
        .iter()
        .find(|(name, _)| name == "shared-build.yaml")
        .unwrap()
        .1;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
    let steps = doc["jobs"]["build"]["steps"].as_sequence().unwrap();
    let position = |find: &dyn Fn(&serde_yaml_ng::Value) -> bool| {
        steps
            .iter()
            .position(find)
            .unwrap_or_else(|| panic!("step missing in\n{text}"))
    };
    let xtask = caches::xtask_bin(&LAYOUT);
    let keys = position(&|s| s["run"].as_str() == Some(&format!("{xtask} keys")));
    for (artifact, stage) in [
        ("rust-artifacts", "build-artifacts"),
        ("python-wheels", "build-wheels"),
    ] {
        let key =
            format!("artifact-{artifact}-linux-x86_64-${{{{ steps.keys.outputs.key-{stage} }}}}");
        let restore = position(&|s| {
            s["id"].as_str() == Some(artifact) && s["with"]["key"].as_str() == Some(&key)
        });
        let build = position(&|s| s["run"].as_str() == Some(&format!("{xtask} {stage}")));
        let save = position(&|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache/save"))
                && s["with"]["key"].as_str() == Some(&key)
        });
        assert!(keys < restore && restore < build && build < save, "{stage}");
        let when = steps[save]["if"].as_str().unwrap();
        assert!(
            when.contains("refs/heads/main")
                && when.contains(&format!("steps.{artifact}.outputs.cache-hit != 'true'"))
                && !when.contains("always()"),
            "saved on main, after a miss, only when the build succeeded: {when}"
        );
    }
}
