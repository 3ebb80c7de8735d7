//! The job table: which workflow runs which stages on which runner. This is the one place the
//! CI layout is written; the YAML, `cargo xtask compare` and the docs all derive from it, and
//! the `needs:` between jobs follow from what their stages produce and consume.

use crate::flags::PYTHON;
use crate::pins::PYTHON_VERSIONS;
use ci_engine::flags::StageArgs;
use ci_engine::graph::{Artifact, Pipeline, Services, Stage};

pub use super::os::Os;

/// One job that runs stages.
#[derive(Clone, Debug)]
pub struct Job {
    /// Its key in the workflow, and the check's name.
    pub key: &'static str,
    pub os: Os,
    /// The stages it runs, in graph order (`cargo xtask <stage>` steps).
    pub stages: &'static [&'static str],
    /// Which CPython versions the job's Python stages test.
    pub pythons: Pythons,
    pub timeout_minutes: u32,
}

impl Job {
    pub fn stages(&self, pipeline: &'static Pipeline) -> impl Iterator<Item = &'static Stage> + '_ {
        self.stages
            .iter()
            .filter_map(move |name| pipeline.stage(name).ok())
    }

    /// Whether its stages compile the workspace (their inputs include the toolchain).
    pub fn compiles(&self, pipeline: &'static Pipeline) -> bool {
        self.stages(pipeline).any(|s| s.inputs.toolchain)
    }

    /// The artifacts it builds and those it takes from other jobs.
    pub fn produces(&self, pipeline: &'static Pipeline) -> Vec<&'static Artifact> {
        self.stages(pipeline)
            .flat_map(|s| s.produces.iter().copied())
            .collect()
    }

    pub fn consumes(&self, pipeline: &'static Pipeline) -> Vec<&'static Artifact> {
        let own = self.produces(pipeline);
        self.stages(pipeline)
            .flat_map(|s| s.consumes.iter().copied())
            .filter(|a| !own.contains(a))
            .collect()
    }

    pub fn starts_services(&self, pipeline: &'static Pipeline) -> bool {
        self.stages(pipeline)
            .any(|s| s.services == Services::Starts)
    }

    /// Whether a failure of `stage` is reported as the job's output `outcome-<stage>` (which
    /// the conclusion checks) instead of failing the job: a stage that builds nothing, followed
    /// in its job by one that builds an artifact other jobs download, must not keep that
    /// artifact from them (lint-rust before the nextest archive).
    pub fn reports_outcome(&self, pipeline: &'static Pipeline, stage: &Stage) -> bool {
        !stage.builds()
            && self
                .stages(pipeline)
                .skip_while(|s| s.name != stage.name)
                .any(|s| s.produces.iter().any(|a| self.shares(pipeline, a)))
    }

    /// Whether a job of another entry downloads `artifact` from this one (then it uploads it).
    pub fn shares(&self, pipeline: &'static Pipeline, artifact: &'static Artifact) -> bool {
        workflows(pipeline)
            .iter()
            .filter(|w| !matches!(w.trigger, Trigger::Called { .. }))
            .flat_map(|w| instances(pipeline, w.file))
            .any(|i| {
                i.os == self.os
                    && i.needs.iter().any(|n| instance_of(n, self))
                    && i.calls.iter().any(|(s, _)| {
                        pipeline
                            .stage(s)
                            .is_ok_and(|s| s.consumes.contains(&artifact))
                    })
            })
    }

    /// The stages whose outcome the job reports as an output.
    pub fn reported_outcomes(&self, pipeline: &'static Pipeline) -> Vec<&'static Stage> {
        self.stages(pipeline)
            .filter(|s| self.reports_outcome(pipeline, s))
            .collect()
    }

    /// The flags each stage runs with: its ci flags, plus the interpreters it tests.
    pub fn args(&self, stage: &Stage) -> StageArgs {
        let args = stage.ci_args().unwrap_or_default();
        if self.pythons == Pythons::Every && stage.flags.iter().any(|f| f.name == PYTHON.name) {
            return args.with(&PYTHON, Some(PYTHON_VERSIONS.join(",")));
        }
        args
    }
}

/// Whether the job instance called `name` (`test-unit`, `archive / build`) runs `job`.
pub fn instance_of(name: &str, job: &Job) -> bool {
    name == job.key || name.ends_with(&format!(" / {}", job.key))
}

/// The name of the job output that reports `stage`'s outcome (`success`, `failure`,
/// `cancelled` or `skipped`), for a stage of [`Job::reports_outcome`].
pub fn outcome_output(stage: &str) -> String {
    format!("{OUTCOME_PREFIX}{stage}")
}

/// What every outcome output's name starts with: the conclusion fails on any that failed.
pub const OUTCOME_PREFIX: &str = "outcome-";

/// The CPython versions a job sets up (and its Python stages test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pythons {
    /// The oldest supported (3.11), enough for its tools.
    Default,
    /// The newest supported: upstream tests the newest pre-releases on it.
    Newest,
    /// Every version, tested at once against one set of servers (`--python 3.11,3.12,3.13`):
    /// one job instead of a matrix, so the services are set up once (docs/ci.md).
    Every,
}

/// A job of a workflow: one that runs stages, a call of a reusable workflow (with the stages
/// of its job that this caller switches on), or the one check to require.
#[derive(Clone, Debug)]
pub enum Entry {
    Job(Job),
    Call {
        key: &'static str,
        file: &'static str,
        /// For a workflow whose stages are switched by inputs: the ones switched on.
        stages: &'static [&'static str],
    },
    Conclusion,
}

/// The name of the aggregate job: the one check branch protection requires.
pub const CONCLUSION: &str = "ci-passed";

/// What starts a workflow.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// Pull requests, the merge queue, pushes to main, by hand.
    Pipeline,
    /// Called by another workflow; `switches` are its stages that inputs turn on.
    Called { switches: &'static [&'static str] },
    /// Nightly, by hand, and on pull requests labelled `label`.
    Nightly {
        cron: &'static str,
        label: &'static str,
    },
}

#[derive(Clone, Debug)]
pub struct Workflow {
    /// The pipeline whose stages its jobs run.
    pub pipeline: &'static Pipeline,
    pub file: &'static str,
    pub name: &'static str,
    /// A few lines for the header.
    pub about: &'static str,
    pub trigger: Trigger,
    pub entries: Vec<Entry>,
}

impl Workflow {
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Job(j) => Some(j),
            _ => None,
        })
    }
}

const fn job(key: &'static str, os: Os, stages: &'static [&'static str], minutes: u32) -> Job {
    Job {
        key,
        os,
        stages,
        pythons: Pythons::Default,
        timeout_minutes: minutes,
    }
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

/// Every workflow of `pipeline`, with the seed's file names.
pub fn workflows(pipeline: &'static Pipeline) -> Vec<Workflow> {
    vec![
        Workflow {
            pipeline,
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
            pipeline,
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
            pipeline,
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
            pipeline,
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
            pipeline,
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
            pipeline,
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

/// One job as GitHub runs it in a pipeline (a called workflow's job under its caller), with the
/// stages it runs and the jobs it waits for.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The check's name: `test-unit`, `archive / build`.
    pub name: String,
    /// The key of the workflow entry it stands for (`shared-build`, `python`).
    pub entry: String,
    /// The workflow file that holds the job, and the job's key there.
    pub file: &'static str,
    pub job: &'static str,
    pub os: Os,
    pub needs: Vec<String>,
    pub calls: Vec<(String, StageArgs)>,
    pub starts_services: bool,
}

/// The jobs of the workflow in `file` as one run of it runs them.
pub fn instances(pipeline: &'static Pipeline, file: &str) -> Vec<Instance> {
    let all = workflows(pipeline);
    let Some(workflow) = all.iter().find(|w| w.file == file) else {
        return Vec::new();
    };
    // (entry key, the instances it stands for)
    let mut expanded: Vec<(&str, Vec<Instance>)> = Vec::new();
    for entry in &workflow.entries {
        match entry {
            Entry::Job(job) => expanded.push((
                job.key,
                vec![expand(pipeline, workflow.file, job, job.key, job.key, None)],
            )),
            Entry::Call { key, file, stages } => {
                let called = all.iter().find(|w| w.file == *file);
                let switches = match called.map(|w| &w.trigger) {
                    Some(Trigger::Called { switches }) => *switches,
                    _ => &[],
                };
                let mut list = Vec::new();
                if let Some(called) = called {
                    for job in called.jobs() {
                        let on = |s: &&str| !switches.contains(s) || stages.contains(s);
                        let name = format!("{key} / {}", job.key);
                        list.push(expand(pipeline, called.file, job, key, &name, Some(&on)));
                    }
                }
                expanded.push((key, list));
            }
            Entry::Conclusion => {}
        }
    }
    // A job needs the instances that produce what it consumes, on its platform.
    let producers: Vec<(String, Os, Vec<&'static Artifact>, &str)> = expanded
        .iter()
        .flat_map(|(key, list)| {
            list.iter()
                .map(|i| (i.name.clone(), i.os, produced(pipeline, i), *key))
        })
        .collect();
    let mut out = Vec::new();
    for (key, list) in expanded {
        for mut instance in list {
            let wanted = consumed(pipeline, &instance);
            instance.needs = producers
                .iter()
                .filter(|(_, os, made, from)| {
                    *from != key && *os == instance.os && made.iter().any(|a| wanted.contains(a))
                })
                .map(|(name, ..)| name.clone())
                .collect();
            out.push(instance);
        }
    }
    out
}

/// The entries of a workflow that entry `key` must wait for (its `needs:`).
pub fn entry_needs(pipeline: &'static Pipeline, file: &str, key: &str) -> Vec<String> {
    let list = instances(pipeline, file);
    let entry_of = |name: &String| {
        list.iter()
            .find(|i| &i.name == name)
            .map(|i| i.entry.clone())
    };
    let mut needs: Vec<String> = list
        .iter()
        .filter(|i| i.entry == key)
        .flat_map(|i| i.needs.iter().filter_map(entry_of))
        .collect();
    needs.sort();
    needs.dedup();
    needs
}

fn produced(pipeline: &'static Pipeline, instance: &Instance) -> Vec<&'static Artifact> {
    instance
        .calls
        .iter()
        .filter_map(|(s, _)| pipeline.stage(s).ok())
        .flat_map(|s| s.produces.iter().copied())
        .collect()
}

fn consumed(pipeline: &'static Pipeline, instance: &Instance) -> Vec<&'static Artifact> {
    let own = produced(pipeline, instance);
    instance
        .calls
        .iter()
        .filter_map(|(s, _)| pipeline.stage(s).ok())
        .flat_map(|s| s.consumes.iter().copied())
        .filter(|a| !own.contains(a))
        .collect()
}

fn expand(
    pipeline: &'static Pipeline,
    file: &'static str,
    job: &Job,
    entry: &str,
    name: &str,
    on: Option<&dyn Fn(&&str) -> bool>,
) -> Instance {
    let calls: Vec<(String, StageArgs)> = job
        .stages(pipeline)
        .filter(|s| on.is_none_or(|on| on(&s.name)))
        .map(|s| (s.name.to_string(), job.args(s)))
        .collect();
    Instance {
        name: name.to_string(),
        entry: entry.to_string(),
        file,
        job: job.key,
        os: job.os,
        needs: Vec::new(),
        starts_services: calls.iter().any(|(s, _)| {
            pipeline
                .stage(s)
                .is_ok_and(|s| s.services == Services::Starts)
        }),
        calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PIPELINE;

    #[test]
    fn every_stage_of_a_job_exists_and_runs_in_graph_order() {
        for workflow in workflows(&PIPELINE) {
            for job in workflow.jobs() {
                let positions: Vec<usize> = job
                    .stages
                    .iter()
                    .map(|name| {
                        PIPELINE
                            .stages
                            .iter()
                            .position(|s| s.name == *name)
                            .unwrap_or_else(|| panic!("{}: unknown stage {name}", job.key))
                    })
                    .collect();
                assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", job.key);
            }
        }
    }

    #[test]
    fn the_pipeline_runs_every_pull_request_stage() {
        let calls: Vec<String> = instances(&PIPELINE, "rust-ci-optimized.yaml")
            .into_iter()
            .flat_map(|i| i.calls.into_iter().map(|(s, _)| s))
            .collect();
        for stage in PIPELINE
            .stages
            .iter()
            .filter(|s| s.schedule == ci_engine::graph::Schedule::EveryRun)
        {
            assert!(calls.iter().any(|c| c == stage.name), "{}", stage.name);
        }
        assert!(!calls.iter().any(|c| c == "upstream"));
    }

    #[test]
    fn needs_follow_the_artifacts() {
        let ci = instances(&PIPELINE, "rust-ci-optimized.yaml");
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
            entry_needs(&PIPELINE, "rust-ci-optimized.yaml", "python"),
            ["wheel"]
        );
        assert_eq!(
            entry_needs(&PIPELINE, "rust-ci-optimized.yaml", "test-full"),
            ["archive"]
        );
        let upstream = instances(&PIPELINE, "python-upstream-optimized.yaml");
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
        let ci = instances(&PIPELINE, "rust-ci-optimized.yaml");
        for instance in &ci {
            let wanted = consumed(&PIPELINE, instance);
            for need in &instance.needs {
                let Some(producer) = ci.iter().find(|i| &i.name == need) else {
                    panic!("{}: needs unknown {need}", instance.name);
                };
                assert!(
                    produced(&PIPELINE, producer)
                        .iter()
                        .all(|a| wanted.contains(a)),
                    "{} waits for {need}, which also builds what it does not use",
                    instance.name
                );
                // Beside the build, only stages whose failure cannot hold it back (lint-rust,
                // whose build is the archive's).
                let job = workflows(&PIPELINE)
                    .into_iter()
                    .flat_map(|w| w.jobs().cloned().collect::<Vec<_>>())
                    .find(|j| instance_of(need, j))
                    .unwrap_or_else(|| panic!("no job for {need}"));
                for (name, _) in &producer.calls {
                    let stage = PIPELINE.stage(name).unwrap();
                    assert!(
                        stage.builds() || job.reports_outcome(&PIPELINE, stage),
                        "{} waits for {need}, whose {name} can fail it",
                        instance.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_check_beside_a_build_reports_its_outcome_and_the_conclusion_checks_it() {
        let build = workflows(&PIPELINE)
            .into_iter()
            .find(|w| w.file == "shared-build.yaml")
            .unwrap();
        let job = build.jobs().next().unwrap();
        let reported: Vec<&str> = job
            .reported_outcomes(&PIPELINE)
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(reported, ["lint-rust"]);
        let text = crate::workflows::render::render(&build);
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
                        crate::workflows::caches::xtask_bin()
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
                        crate::workflows::caches::xtask_bin()
                    ))
            })
            .unwrap();
        assert!(
            archive.get("continue-on-error").is_none(),
            "a build failure fails the job"
        );
        // The test job that builds and tests (macOS) reports nothing: its tests fail it.
        for workflow in workflows(&PIPELINE) {
            for job in workflow.jobs().filter(|j| j.key != "build") {
                assert!(job.reported_outcomes(&PIPELINE).is_empty(), "{}", job.key);
            }
        }
        // A workflow that switches such a stage on has the conclusion that reads its outcome.
        for workflow in workflows(&PIPELINE) {
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
        let ci = workflows(&PIPELINE)
            .into_iter()
            .find(|w| w.file == "rust-ci-optimized.yaml")
            .unwrap();
        let text = crate::workflows::render::render(&ci);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let check = doc["jobs"][CONCLUSION]["steps"][0]["run"].as_str().unwrap();
        assert!(check.contains(OUTCOME_PREFIX), "{check}");
    }

    #[test]
    fn the_linux_pipeline_sets_up_services_twice() {
        // One job for the Rust full tests, one for every Python interpreter.
        let setups: Vec<String> = instances(&PIPELINE, "rust-ci-optimized.yaml")
            .into_iter()
            .filter(|i| i.os == Os::Linux && i.starts_services)
            .map(|i| i.name)
            .collect();
        assert_eq!(setups, ["test-full", "python / python-test"]);
    }

    #[test]
    fn check_names_are_unique_across_workflows() {
        let mut names: Vec<String> = workflows(&PIPELINE)
            .iter()
            .filter(|w| !matches!(w.trigger, Trigger::Called { .. }))
            .flat_map(|w| instances(&PIPELINE, w.file))
            .map(|i| i.name)
            .collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "{names:?}");
    }
}
