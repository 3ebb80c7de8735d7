//! The job table: which workflow runs which stages on which runner. This is the one place the
//! CI layout is written; the YAML, `cargo xtask compare` and the docs all derive from it (with
//! the engine's job model, `ci_engine::jobs`), and the `needs:` between jobs follow from what
//! their stages produce and consume.

use ci_engine::jobs::{Entry, Job, Layout, Os, Pythons, Trigger, Workflow};

const fn job(key: &'static str, os: Os, stages: &'static [&'static str], minutes: u32) -> Job {
    Job::new(key, os, stages, minutes)
}

/// The stages of shared-build.yaml, each switched on by its caller: the pipeline calls it once
/// per artifact, so that a job waits only for the artifact it downloads. lint-rust runs with
/// the archive: its build is the archive's (clippy-driver over the same targets), so the
/// archive's build then compiles nothing, and a lint finding is reported without holding the
/// archive back ([`Job::reports_outcome`]).
const SHARED_BUILD_SWITCHES: &[&str] = &["lint-rust", "build-artifacts", "build-wheels"];

/// The stages of codespell.yml, each switched on by the pipeline: a docs change runs the spell
/// check, not the workflow lint.
const CHECKS_SWITCHES: &[&str] = &["codespell", "lint-workflows"];

/// Every workflow of `layout`, with the seed's file names.
pub fn workflows(layout: &'static Layout) -> Vec<Workflow> {
    vec![
        Workflow {
            layout,
            file: "rust-ci-optimized.yaml",
            name: "CI",
            about: "Pull requests, the merge queue and main: the nextest archive and the abi3 wheel \
                    are each built once, in their own job, and every test job downloads the one \
                    it needs and compiles nothing; clippy lints in the archive's build, and a \
                    lint finding fails `ci-passed`, not the archive. `plan` skips the jobs whose \
                    content keys passed on main; `ci-passed` is the one check to require.",
            trigger: Trigger::Pipeline,
            entries: vec![
                Entry::Call {
                    key: "archive",
                    file: "shared-build.yaml",
                    stages: &["lint-rust", "build-artifacts"],
                },
                Entry::Call {
                    key: "wheel",
                    file: "shared-build.yaml",
                    stages: &["build-wheels"],
                },
                Entry::Job(job("test-unit", Os::Linux, &["test-unit"], 20)),
                Entry::Job(job("test-full", Os::Linux, &["docker-up", "test-full"], 30)),
                Entry::Call {
                    key: "python",
                    file: "python-check-optimized.yaml",
                    stages: &[],
                },
                Entry::Call {
                    key: "checks",
                    file: "codespell.yml",
                    stages: CHECKS_SWITCHES,
                },
                Entry::Call {
                    key: "windows",
                    file: "windows-check.yml",
                    stages: &[],
                },
                // An archive serves one platform: macOS builds its own.
                Entry::Job(job(
                    "test-unit-macos",
                    Os::Macos,
                    &["build-artifacts", "test-unit"],
                    45,
                )),
                Entry::Conclusion,
            ],
        },
        Workflow {
            layout,
            file: "shared-build.yaml",
            name: "shared build",
            about: "Build once, share everywhere: the job builds the artifact its caller switches \
                    on, or restores the one main built from the same content key (then nothing \
                    compiles), and uploads it for the jobs of the run; on main it saves what it \
                    built under that key. lint-rust's build is the archive's: after it the archive \
                    compiles nothing, and its outcome is an output the caller's conclusion checks, \
                    so a lint finding never holds the archive back.",
            trigger: Trigger::Called {
                switches: SHARED_BUILD_SWITCHES,
            },
            entries: vec![Entry::Job(job(
                "build",
                Os::Linux,
                SHARED_BUILD_SWITCHES,
                45,
            ))],
        },
        Workflow {
            layout,
            file: "python-check-optimized.yaml",
            name: "Python check",
            about: "The Python checks, called by CI: every job installs the one wheel the shared \
                    build uploaded; nothing here compiles icechunk-python. python-test tests \
                    every CPython version in one job, against one set of servers.",
            trigger: Trigger::Called { switches: &[] },
            entries: vec![
                Entry::Job(job("python-lint", Os::Linux, &["python-lint"], 20)),
                // Every interpreter in one job against one set of servers: docs/ci.md has the
                // measurements behind it.
                Entry::Job(Job {
                    pythons: Pythons::Every,
                    ..job("python-test", Os::Linux, &["docker-up", "python-test"], 30)
                }),
            ],
        },
        Workflow {
            layout,
            file: "python-upstream-optimized.yaml",
            name: "Python upstream",
            about: "The Python tests against the newest pre-releases of zarr, numpy and friends \
                    (the scientific-python nightly wheels): nightly, by hand, or on pull requests \
                    labelled `test-upstream`; reuses the shared build for the wheel alone.",
            trigger: Trigger::Nightly {
                cron: "17 4 * * *",
                label: "test-upstream",
            },
            entries: vec![
                Entry::Call {
                    key: "upstream-build",
                    file: "shared-build.yaml",
                    stages: &["build-wheels"],
                },
                Entry::Job(Job {
                    pythons: Pythons::Newest,
                    ..job("upstream", Os::Linux, &["upstream"], 30)
                }),
            ],
        },
        Workflow {
            layout,
            file: "windows-check.yml",
            name: "Windows check",
            about: "Windows, called by CI: an archive serves one platform, so this job builds its \
                    own and runs the unit tests from it.",
            trigger: Trigger::Called { switches: &[] },
            entries: vec![Entry::Job(job(
                "test-unit-windows",
                Os::Windows,
                &["build-artifacts", "test-unit"],
                60,
            ))],
        },
        Workflow {
            layout,
            file: "codespell.yml",
            name: "checks",
            about: "Repository checks, called by CI: spelling, and the workflows themselves \
                    (generated from xtask, then zizmor and actionlint).",
            trigger: Trigger::Called {
                switches: CHECKS_SWITCHES,
            },
            entries: vec![
                Entry::Job(job("codespell", Os::Linux, &["codespell"], 10)),
                Entry::Job(job("lint-workflows", Os::Linux, &["lint-workflows"], 10)),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{LAYOUT, PIPELINE};
    use ci_engine::jobs::{CONCLUSION, OUTCOME_PREFIX, instance_of, outcome_output};

    #[test]
    fn the_layout_is_well_formed() {
        // Every stage of every run is in a job of the pipeline; every stage of a job exists and
        // runs in the pipeline's order with flags its checks accept; check names are unique;
        // the plan never runs a job without one it needs.
        LAYOUT.check().unwrap();
    }

    #[test]
    fn the_pipeline_runs_no_scheduled_stage() {
        // Every stage of every run is in a job of it: `LAYOUT.check()`.
        let calls: Vec<String> = LAYOUT
            .instances("rust-ci-optimized.yaml")
            .into_iter()
            .flat_map(|i| i.calls.into_iter().map(|(s, _)| s))
            .collect();
        assert!(!calls.iter().any(|c| c == "upstream"));
    }

    #[test]
    fn needs_follow_the_artifacts() {
        let ci = LAYOUT.instances("rust-ci-optimized.yaml");
        let needs = |name: &str| {
            ci.iter()
                .find(|i| i.name == name)
                .map(|i| i.needs.clone())
                .unwrap_or_else(|| panic!("no job {name}"))
        };
        assert_eq!(needs("test-unit"), ["archive / build"]);
        assert_eq!(needs("test-full"), ["archive / build"]);
        assert_eq!(needs("python / python-test"), ["wheel / build"]);
        assert_eq!(needs("python / python-lint"), ["wheel / build"]);
        let archive = ci.iter().find(|i| i.name == "archive / build").unwrap();
        let calls: Vec<&str> = archive.calls.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            calls,
            ["lint-rust", "build-artifacts"],
            "clippy lints in its build"
        );
        assert!(
            needs("test-unit-macos").is_empty(),
            "it builds its own archive"
        );
        assert!(needs("checks / codespell").is_empty());
        assert_eq!(
            LAYOUT.entry_needs("rust-ci-optimized.yaml", "python"),
            ["wheel"]
        );
        assert_eq!(
            LAYOUT.entry_needs("rust-ci-optimized.yaml", "test-full"),
            ["archive"]
        );
        let upstream = LAYOUT.instances("python-upstream-optimized.yaml");
        assert_eq!(
            upstream[0].calls.len(),
            1,
            "the wheel alone: {:?}",
            upstream[0]
        );
        assert_eq!(upstream[1].needs, ["upstream-build / build"]);
    }

    #[test]
    fn no_test_job_waits_for_work_it_does_not_consume() {
        let ci = LAYOUT.instances("rust-ci-optimized.yaml");
        for instance in &ci {
            let wanted = LAYOUT.consumed(instance);
            for need in &instance.needs {
                let Some(producer) = ci.iter().find(|i| &i.name == need) else {
                    panic!("{}: needs unknown {need}", instance.name);
                };
                assert!(
                    LAYOUT.produced(producer).iter().all(|a| wanted.contains(a)),
                    "{} waits for {need}, which also builds what it does not use",
                    instance.name
                );
                // Beside the build, only stages whose failure cannot hold it back (lint-rust,
                // whose build is the archive's).
                let job = LAYOUT
                    .workflows()
                    .into_iter()
                    .flat_map(|w| w.jobs().cloned().collect::<Vec<_>>())
                    .find(|j| instance_of(need, j))
                    .unwrap_or_else(|| panic!("no job for {need}"));
                for (name, _) in &producer.calls {
                    let stage = PIPELINE.stage(name).unwrap();
                    assert!(
                        stage.builds() || job.reports_outcome(&LAYOUT, stage),
                        "{} waits for {need}, whose {name} can fail it",
                        instance.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_check_beside_a_build_reports_its_outcome_and_the_conclusion_checks_it() {
        let build = LAYOUT
            .workflows()
            .into_iter()
            .find(|w| w.file == "shared-build.yaml")
            .unwrap();
        let job = build.jobs().next().unwrap();
        let reported: Vec<&str> = job
            .reported_outcomes(&LAYOUT)
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(reported, ["lint-rust"]);
        let text = ci_engine::workflows::render::render(&build);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let output = outcome_output("lint-rust");
        assert_eq!(
            doc["jobs"]["build"]["outputs"][output.as_str()].as_str(),
            Some("${{ steps.lint-rust.outcome }}")
        );
        assert!(
            doc["on"]["workflow_call"]["outputs"][output.as_str()]["value"]
                .as_str()
                .is_some_and(|v| v.contains("jobs.build.outputs.outcome-lint-rust"))
        );
        let steps = doc["jobs"]["build"]["steps"].as_sequence().unwrap();
        let lint = steps
            .iter()
            .find(|s| {
                s["run"].as_str()
                    == Some(&format!(
                        "{} lint-rust",
                        ci_engine::workflows::caches::xtask_bin(&LAYOUT)
                    ))
            })
            .unwrap();
        assert_eq!(lint["continue-on-error"].as_bool(), Some(true));
        assert_eq!(lint["id"].as_str(), Some("lint-rust"));
        let archive = steps
            .iter()
            .find(|s| {
                s["run"].as_str()
                    == Some(&format!(
                        "{} build-artifacts",
                        ci_engine::workflows::caches::xtask_bin(&LAYOUT)
                    ))
            })
            .unwrap();
        assert!(
            archive.get("continue-on-error").is_none(),
            "a build failure fails the job"
        );
        // The test job that builds and tests (macOS) reports nothing: its tests fail it.
        for workflow in LAYOUT.workflows() {
            for job in workflow.jobs().filter(|j| j.key != "build") {
                assert!(job.reported_outcomes(&LAYOUT).is_empty(), "{}", job.key);
            }
        }
        // A workflow that switches such a stage on has the conclusion that reads its outcome.
        for workflow in LAYOUT.workflows() {
            for entry in &workflow.entries {
                let Entry::Call { stages, .. } = entry else {
                    continue;
                };
                if stages.iter().any(|s| reported.contains(s)) {
                    assert!(
                        workflow
                            .entries
                            .iter()
                            .any(|e| matches!(e, Entry::Conclusion)),
                        "{} switches on a reported stage without a conclusion",
                        workflow.file
                    );
                }
            }
        }
        let ci = LAYOUT
            .workflows()
            .into_iter()
            .find(|w| w.file == "rust-ci-optimized.yaml")
            .unwrap();
        let text = ci_engine::workflows::render::render(&ci);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let check = doc["jobs"][CONCLUSION]["steps"][0]["run"].as_str().unwrap();
        assert!(check.contains(OUTCOME_PREFIX), "{check}");
    }

    #[test]
    fn the_linux_pipeline_sets_up_services_twice() {
        // One job for the Rust full tests, one for every Python interpreter.
        let setups: Vec<String> = LAYOUT
            .instances("rust-ci-optimized.yaml")
            .into_iter()
            .filter(|i| i.os == Os::Linux && i.starts_services)
            .map(|i| i.name)
            .collect();
        assert_eq!(setups, ["test-full", "python / python-test"]);
    }
}
