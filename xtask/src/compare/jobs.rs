//! The jobs compare runs, taken from the job table (never from YAML): `shared` is the pull-request
//! pipeline as the generated workflows run it, `per-job` the same jobs each building what it
//! consumes itself.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::{Options, setup};
use crate::flags::PYTHON;
use crate::pipeline::{LAYOUT, PIPELINE};
use ci_engine::flags::StageArgs;
use ci_engine::graph::{Artifact, Schedule};
use ci_engine::jobs::rule;
use ci_engine::jobs::{Instance, Os};
use ci_engine::workflows::Setup;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    PerJob,
    Shared,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::PerJob => "per-job",
            Variant::Shared => "shared",
        }
    }
}

/// One job of a variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// `test-full`, `python / python-test (3.12)` (per job: one per interpreter)
    pub name: String,
    /// Names of the jobs it needs (shared variant only).
    pub needs: Vec<String>,
    /// Its `cargo xtask` calls, in order (docker-down follows at the end when it started
    /// services).
    pub calls: Vec<(String, StageArgs)>,
    /// What it does before its first call.
    pub setup: Vec<Setup>,
    /// Where a shared job comes from; none for the per-job variant.
    pub origin: Option<Origin>,
}

/// A shared job's place in the workflows.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// The pipeline workflow and its entry, whose rule decides whether the job runs.
    pub pipeline: &'static str,
    pub entry: String,
    /// The workflow file that holds the job and its key there, whose steps its setup is.
    pub file: &'static str,
    pub job: &'static str,
}

impl PartialOrd for Variant {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Variant {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

/// The workflows whose jobs compare runs: the pull-request pipeline, and with `--scheduled`
/// the nightly one.
const PIPELINES: [&str; 2] = ["rust-ci-optimized.yaml", "python-upstream-optimized.yaml"];

/// The jobs of both variants.
pub fn plan(opts: &Options) -> Result<Vec<(Variant, Vec<Job>)>> {
    let shared = in_needs_order(shared_jobs(opts)?);
    let per_job = per_job_jobs(&shared);
    Ok(vec![(Variant::PerJob, per_job), (Variant::Shared, shared)])
}

fn runs_scheduled_stage(calls: &[(String, StageArgs)]) -> bool {
    calls.iter().any(|(c, _)| {
        PIPELINE
            .stage(c)
            .is_ok_and(|s| s.schedule == Schedule::Scheduled)
    })
}

/// The Linux jobs of the pipelines, as the generated workflows run them.
fn shared_jobs(opts: &Options) -> Result<Vec<Job>> {
    let workflows = if opts.scheduled {
        &PIPELINES[..]
    } else {
        &PIPELINES[..1]
    };
    let mut jobs: Vec<Job> = workflows
        .iter()
        .flat_map(|file| LAYOUT.instances(file).into_iter().map(move |i| (*file, i)))
        .filter(|(_, i): &(&str, Instance)| i.os == Os::Linux && !i.calls.is_empty())
        .map(|(file, i)| Job {
            setup: ci_engine::workflows::setup(&LAYOUT, i.file, i.job, &i.calls),
            origin: Some(Origin {
                pipeline: file,
                entry: i.entry,
                file: i.file,
                job: i.job,
            }),
            name: i.name,
            needs: i.needs,
            calls: i.calls,
        })
        .filter(|j| opts.scheduled || !runs_scheduled_stage(&j.calls))
        .collect();
    if let Some(wanted) = &opts.jobs {
        jobs = select(jobs, wanted)?;
    }
    Ok(jobs)
}

/// The jobs `--jobs` asks for, with the jobs they need. A job is asked for by its whole name
/// or the called job's key (`caller / job (matrix)`),
/// each with or without its matrix values; or by a stage it runs (lint-rust in the shared
/// build), and then runs only that stage. A job brought in because an asked-for one needs it
/// keeps just the builds of what is consumed.
fn select(jobs: Vec<Job>, wanted: &[String]) -> Result<Vec<Job>> {
    let named = |job: &Job| {
        let short = job.name.as_str();
        let parts = [short, short.rsplit(" / ").next().unwrap_or(short)];
        wanted.iter().any(|w| {
            job.name == *w
                || parts.iter().any(|n| {
                    n == w
                        || n.split(" (").next() == Some(w.as_str())
                        || n.split(' ').next() == Some(w.as_str())
                })
        })
    };
    // The calls each asked-for job runs of its own accord.
    let asked: BTreeMap<String, Vec<String>> = jobs
        .iter()
        .filter_map(|job| {
            let calls: Vec<String> = job
                .calls
                .iter()
                .map(|(c, _)| c.clone())
                .filter(|c| named(job) || wanted.contains(c))
                .collect();
            (!calls.is_empty()).then(|| (job.name.clone(), calls))
        })
        .collect();
    if asked.is_empty() {
        let names: Vec<_> = jobs.iter().map(|j| j.name.clone()).collect();
        bail!(
            "--jobs matched no job; the jobs are:\n  {}",
            names.join("\n  ")
        );
    }
    let keep = with_needs(&jobs, asked.keys().cloned().collect());
    let consumed: BTreeSet<&'static Artifact> = asked
        .values()
        .flatten()
        .filter_map(|c| PIPELINE.stage(c).ok())
        .flat_map(|s| s.consumes.iter().copied())
        .collect();
    Ok(jobs
        .into_iter()
        .filter(|j| keep.contains(&j.name))
        .map(|mut job| {
            let own = asked.get(&job.name);
            job.calls.retain(|(c, _)| {
                own.is_some_and(|own| own.contains(c))
                    || PIPELINE
                        .stage(c)
                        .is_ok_and(|s| s.produces.iter().any(|a| consumed.contains(a)))
            });
            job
        })
        .collect())
}

/// Whether a call builds an artifact (build-artifacts, build-wheels).
fn builds(command: &str) -> bool {
    PIPELINE.stage(command).is_ok_and(|s| s.builds())
}

/// The same jobs without a shared build, as CI without artifact sharing runs them: the builds
/// leave the build jobs (a stage beside a build, lint-rust beside the archive, keeps a job of
/// its own, named after it), a job that consumes files builds them first itself, and a job that
/// tests several interpreters becomes one job per interpreter (each then builds its own wheel,
/// which is why such workflows run a matrix).
fn per_job_jobs(shared: &[Job]) -> Vec<Job> {
    // The build jobs: those another job of the table needs (also when `--jobs` kept only the
    // lint-rust of `archive / build`).
    let build_jobs: BTreeSet<String> = PIPELINES
        .iter()
        .flat_map(|file| LAYOUT.instances(file))
        .flat_map(|i| i.needs)
        .collect();
    let mut out = Vec::new();
    let without_builds = shared.iter().filter_map(|job| {
        if !build_jobs.contains(&job.name) {
            return Some(job.clone());
        }
        let calls: Vec<(String, StageArgs)> = job
            .calls
            .iter()
            .filter(|(c, _)| !builds(c))
            .cloned()
            .collect();
        let name = calls
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        (!calls.is_empty()).then(|| Job {
            name,
            needs: vec![],
            calls,
            setup: job.setup.clone(),
            origin: None,
        })
    });
    for job in without_builds {
        let mut builds: Vec<&'static Artifact> = Vec::new();
        for stage in job.calls.iter().filter_map(|(c, _)| PIPELINE.stage(c).ok()) {
            for artifact in stage.consumes {
                if !builds.contains(artifact) {
                    builds.push(*artifact);
                }
            }
        }
        let build_calls = builds
            .iter()
            .map(|a| (PIPELINE.producer(a).name.to_string(), StageArgs::default()));
        let calls: Vec<(String, StageArgs)> = build_calls.chain(job.calls.clone()).collect();
        let pythons: Vec<String> = calls
            .iter()
            .flat_map(|(_, args)| args.list(&PYTHON))
            .collect();
        if pythons.len() < 2 {
            out.push(Job {
                setup: setup::per_job(&job.setup, &calls, None),
                origin: None,
                name: job.name,
                needs: vec![],
                calls,
            });
            continue;
        }
        for python in pythons {
            let calls: Vec<(String, StageArgs)> = calls
                .iter()
                .map(|(c, args)| {
                    let args = match args.has(&PYTHON) {
                        true => args.clone().with(&PYTHON, Some(python.clone())),
                        false => args.clone(),
                    };
                    (c.clone(), args)
                })
                .collect();
            out.push(Job {
                name: format!("{} ({python})", job.name),
                needs: vec![],
                setup: setup::per_job(&job.setup, &calls, Some(1)),
                calls,
                origin: None,
            });
        }
    }
    out
}

/// The shared jobs that run after an edit changed the keys of `changed` stages (every other
/// record passed on main), each with the calls that run: the plan job's rule
/// ([`rule::step_runs`], the one the workflows render) for each call; a job of a workflow
/// without a plan job runs whole.
pub fn affected(jobs: &[Job], changed: &BTreeSet<String>) -> Vec<Job> {
    let all = LAYOUT.workflows();
    let passed = |_entry: &str, stage: &str| !changed.contains(stage);
    let runs = |job: &Job, call: &str| -> bool {
        let (Some(origin), Ok(stage)) = (&job.origin, PIPELINE.stage(call)) else {
            return true;
        };
        match all
            .iter()
            .find(|w| w.file == origin.pipeline)
            .filter(|w| rule::gated(w))
        {
            Some(workflow) => rule::step_runs(workflow, &origin.entry, stage, &passed),
            None => true,
        }
    };
    jobs.iter()
        .filter_map(|job| {
            let calls: Vec<(String, StageArgs)> = job
                .calls
                .iter()
                .filter(|call| runs(job, &call.0))
                .cloned()
                .collect();
            if calls.is_empty() {
                return None;
            }
            // The steps the plan switches off are not paid for.
            let setup = match &job.origin {
                Some(origin) => {
                    ci_engine::workflows::setup(&LAYOUT, origin.file, origin.job, &calls)
                }
                None => job.setup.clone(),
            };
            Some(Job {
                calls,
                setup,
                ..job.clone()
            })
        })
        .collect()
}

/// `names` and every job they need, directly or through others.
fn with_needs(jobs: &[Job], mut names: BTreeSet<String>) -> BTreeSet<String> {
    loop {
        let needed: BTreeSet<String> = jobs
            .iter()
            .filter(|j| names.contains(&j.name))
            .flat_map(|j| j.needs.clone())
            .filter(|n| !names.contains(n))
            .collect();
        if needed.is_empty() {
            return names;
        }
        names.extend(needed);
    }
}

/// Jobs in an order where every job comes after the jobs it needs.
fn in_needs_order(mut jobs: Vec<Job>) -> Vec<Job> {
    let mut ordered: Vec<Job> = Vec::new();
    while !jobs.is_empty() {
        let ready = jobs
            .iter()
            .position(|j| j.needs.iter().all(|n| ordered.iter().any(|o| &o.name == n)))
            .unwrap_or(0);
        ordered.push(jobs.remove(ready));
    }
    ordered
}

/// A job's calls as `cargo xtask` lines.
pub fn call_lines(job: &Job) -> Vec<String> {
    job.calls
        .iter()
        .map(|(command, args)| {
            std::iter::once(format!("cargo xtask {command}"))
                .chain(args.to_args())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variants(jobs: Option<&[&str]>) -> Vec<(Variant, Vec<Job>)> {
        let opts = Options {
            jobs: jobs.map(|j| j.iter().map(|s| s.to_string()).collect()),
            ..Options::default()
        };
        plan(&opts).unwrap()
    }

    fn names(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.name.as_str()).collect()
    }

    #[test]
    fn shared_builds_each_artifact_once_and_test_jobs_reuse_it() {
        let all = variants(None);
        let shared = &all[1].1;
        let building: Vec<&Job> = shared
            .iter()
            .filter(|j| j.calls.iter().any(|(c, _)| builds(c)))
            .collect();
        let lines: Vec<Vec<String>> = building.iter().map(|j| call_lines(j)).collect();
        assert_eq!(
            lines,
            [
                vec![
                    "cargo xtask lint-rust".to_string(),
                    "cargo xtask build-artifacts".to_string()
                ],
                vec!["cargo xtask build-wheels".to_string()]
            ]
        );
        let python = shared
            .iter()
            .find(|j| j.name == "python / python-test")
            .unwrap();
        assert_eq!(python.needs, ["wheel / build"]);
        assert_eq!(
            call_lines(python),
            [
                "cargo xtask docker-up",
                "cargo xtask python-test --full --python 3.11,3.12,3.13"
            ]
        );
        let full = shared.iter().find(|j| j.name == "test-full").unwrap();
        assert_eq!(full.needs, ["archive / build"]);
        assert!(
            shared
                .iter()
                .all(|j| !j.name.contains("macos") && !j.name.contains("windows"))
        );
        assert!(
            shared.iter().all(|j| !j.name.contains("upstream")),
            "scheduled only"
        );
        let scheduled = plan(&Options {
            scheduled: true,
            ..Options::default()
        })
        .unwrap();
        assert!(names(&scheduled[1].1).contains(&"upstream"));
    }

    #[test]
    fn each_job_is_charged_the_setup_its_workflow_renders() {
        let all = variants(None);
        let find = |variant: usize, name: &str| {
            all[variant]
                .1
                .iter()
                .find(|j| j.name == name)
                .unwrap()
                .setup
                .clone()
        };
        // Shared: test-unit downloads the archive and restores the plan's xtask.
        let shared = find(1, "test-unit");
        assert!(shared.contains(&Setup::Download(&crate::pipeline::RUST_TESTS)));
        assert!(shared.contains(&Setup::XtaskBinary));
        assert!(!shared.contains(&Setup::BuildXtask));
        // Per job: it builds the archive itself, so it restores the workspace's Rust cache
        // and compiles xtask, and downloads nothing.
        let own = find(0, "test-unit");
        assert!(own.contains(&Setup::RustCache { workspace: true }));
        assert!(own.contains(&Setup::BuildXtask));
        assert!(!own.iter().any(|s| matches!(s, Setup::Download(_))));
        // One interpreter per per-job Python job, three in the shared one.
        assert!(find(1, "python / python-test").contains(&Setup::Python(3)));
        assert!(find(0, "python / python-test (3.12)").contains(&Setup::Python(1)));
    }

    #[test]
    fn per_job_builds_in_every_job_that_needs_an_artifact() {
        let all = variants(None);
        let per_job = &all[0].1;
        assert!(per_job.iter().all(|j| j.needs.is_empty()));
        let full = per_job.iter().find(|j| j.name == "test-full").unwrap();
        assert_eq!(
            call_lines(full),
            [
                "cargo xtask build-artifacts",
                "cargo xtask docker-up",
                "cargo xtask test-full"
            ]
        );
        let wheel_builds = per_job
            .iter()
            .flat_map(|j| &j.calls)
            .filter(|(c, _)| c == "build-wheels")
            .count();
        assert_eq!(
            wheel_builds, 4,
            "python-lint and one python-test job per interpreter"
        );
        let python = per_job
            .iter()
            .find(|j| j.name == "python / python-test (3.12)")
            .unwrap();
        assert_eq!(
            call_lines(python),
            [
                "cargo xtask build-wheels",
                "cargo xtask docker-up",
                "cargo xtask python-test --full --python 3.12"
            ]
        );
        let lint = per_job.iter().find(|j| j.name == "lint-rust").unwrap();
        assert_eq!(call_lines(lint), ["cargo xtask lint-rust"]);
    }

    #[test]
    fn an_edit_runs_the_jobs_whose_keys_it_changed_and_their_builds() {
        let shared = &variants(None)[1].1;
        let changed = |stages: &[&str]| -> BTreeSet<String> {
            stages.iter().map(|s| s.to_string()).collect()
        };
        let python = affected(
            shared,
            &changed(&["build-wheels", "python-lint", "python-test", "codespell"]),
        );
        assert_eq!(
            names(&python),
            [
                "wheel / build",
                "python / python-lint",
                "python / python-test",
                "checks / codespell"
            ]
        );
        let docs = affected(shared, &changed(&["codespell"]));
        assert_eq!(names(&docs), ["checks / codespell"]);
        assert!(affected(shared, &BTreeSet::new()).is_empty());
        // In the archive's job each step follows its own key: the bindings' Rust changes what
        // clippy reads, not the archive, and no Rust test runs.
        let bindings = affected(shared, &changed(&["lint-rust", "build-wheels"]));
        let archive = bindings
            .iter()
            .find(|j| j.name == "archive / build")
            .unwrap();
        assert_eq!(call_lines(archive), ["cargo xtask lint-rust"]);
        assert!(!names(&bindings).contains(&"test-unit"));
        // A test's input alone: the archive is built for the tests, clippy is not rerun.
        let nextest_config = affected(shared, &changed(&["test-unit", "test-full"]));
        let archive = nextest_config
            .iter()
            .find(|j| j.name == "archive / build")
            .unwrap();
        assert_eq!(call_lines(archive), ["cargo xtask build-artifacts"]);
        let full = nextest_config
            .iter()
            .find(|j| j.name == "test-full")
            .unwrap();
        assert_eq!(
            call_lines(full),
            ["cargo xtask docker-up", "cargo xtask test-full"],
            "services follow their job"
        );
    }

    #[test]
    fn jobs_can_be_selected_and_bring_their_builds() {
        let picked = variants(Some(&["test-unit"]));
        assert_eq!(names(&picked[1].1), ["archive / build", "test-unit"]);
        assert_eq!(names(&picked[0].1), ["test-unit"]);
        assert_eq!(call_lines(&picked[1].1[0]), ["cargo xtask build-artifacts"]);
        let python = variants(Some(&["python-test"]));
        assert_eq!(
            names(&python[1].1),
            ["wheel / build", "python / python-test"]
        );
        assert_eq!(python[0].1.len(), 3, "one job per interpreter");
        let lint = variants(Some(&["lint-rust"]));
        assert_eq!(names(&lint[1].1), ["archive / build"]);
        assert_eq!(call_lines(&lint[1].1[0]), ["cargo xtask lint-rust"]);
        assert_eq!(names(&lint[0].1), ["lint-rust"]);
        let err = plan(&Options {
            jobs: Some(vec!["nope".into()]),
            ..Options::default()
        });
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("--jobs matched no job")
        );
    }
}
