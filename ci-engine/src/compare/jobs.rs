//! The jobs compare runs, taken from the job table (never from YAML): `shared` is the pull-request
//! pipeline as the generated workflows run it, `per-job` the same jobs each building what it
//! consumes itself.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::{Benchmark, Options, setup};
use crate::flags::StageArgs;
use crate::graph::{Artifact, Pipeline, Schedule};
use crate::jobs::rule;
use crate::jobs::{Instance, Layout, Os, Trigger, consumed_by};
use crate::workflows::Setup;

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
    /// `unit`, `py / py-test (3.99)` (per job: one per interpreter)
    pub name: String,
    /// Names of the jobs it needs (shared variant only).
    pub needs: Vec<String>,
    /// Its `cargo xtask` calls, in order (the servers' stop command follows at the end when it
    /// started them).
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

/// The workflows whose jobs compare runs, in the table's order: the pull-request pipeline's,
/// and with `scheduled` the nightly ones.
fn pipelines(layout: &'static Layout, scheduled: bool) -> Vec<&'static str> {
    layout
        .workflows()
        .into_iter()
        .filter(|w| match w.trigger {
            Trigger::Pipeline => true,
            Trigger::Nightly { .. } => scheduled,
            Trigger::Called { .. } => false,
        })
        .map(|w| w.file)
        .collect()
}

/// The jobs of both variants (after [`Layout::check`]: a malformed table is named, not
/// measured).
pub fn plan(opts: &Options) -> Result<Vec<(Variant, Vec<Job>)>> {
    opts.benchmark.layout.check()?;
    let shared = in_needs_order(shared_jobs(opts)?);
    let per_job = per_job_jobs(opts.benchmark, &shared);
    Ok(vec![(Variant::PerJob, per_job), (Variant::Shared, shared)])
}

fn runs_scheduled_stage(pipeline: &Pipeline, calls: &[(String, StageArgs)]) -> bool {
    calls.iter().any(|(c, _)| {
        pipeline
            .stage(c)
            .is_ok_and(|s| s.schedule == Schedule::Scheduled)
    })
}

/// The Linux jobs of the pipelines, as the generated workflows run them.
fn shared_jobs(opts: &Options) -> Result<Vec<Job>> {
    let layout = opts.benchmark.layout;
    let mut jobs: Vec<Job> = pipelines(layout, opts.scheduled)
        .into_iter()
        .flat_map(|file| layout.instances(file).into_iter().map(move |i| (file, i)))
        .filter(|(_, i): &(&str, Instance)| i.os == Os::Linux && !i.calls.is_empty())
        .map(|(file, i)| Job {
            setup: crate::workflows::setup(layout, i.file, i.job, &i.calls),
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
        .filter(|j| opts.scheduled || !runs_scheduled_stage(layout.pipeline, &j.calls))
        .collect();
    if let Some(wanted) = &opts.jobs {
        jobs = select(layout.pipeline, jobs, wanted)?;
    }
    Ok(jobs)
}

/// The jobs `--jobs` asks for, with the jobs they need. A job is asked for by its whole name
/// or the called job's key (`caller / job (matrix)`),
/// each with or without its matrix values; or by a stage it runs (a lint in a shared
/// build job), and then runs only that stage. A job brought in because an asked-for one needs it
/// keeps just the builds of what is consumed.
fn select(pipeline: &'static Pipeline, jobs: Vec<Job>, wanted: &[String]) -> Result<Vec<Job>> {
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
        .filter_map(|c| pipeline.stage(c).ok())
        .flat_map(|s| s.consumes.iter().copied())
        .collect();
    Ok(jobs
        .into_iter()
        .filter(|j| keep.contains(&j.name))
        .map(|mut job| {
            let own = asked.get(&job.name);
            job.calls.retain(|(c, _)| {
                own.is_some_and(|own| own.contains(c))
                    || pipeline
                        .stage(c)
                        .is_ok_and(|s| s.produces.iter().any(|a| consumed.contains(a)))
            });
            job
        })
        .collect())
}

/// Whether a call builds an artifact.
fn builds(pipeline: &Pipeline, command: &str) -> bool {
    pipeline.stage(command).is_ok_and(|s| s.builds())
}

/// The same jobs without a shared build, as CI without artifact sharing runs them: the builds
/// leave the build jobs (a stage beside a build, a lint beside the archive, keeps a job of its
/// own, named after it), a job that consumes files builds them first itself, and a job that
/// tests several interpreters becomes one job per interpreter (each then builds its own wheel,
/// which is why such workflows run a matrix).
fn per_job_jobs(bench: &'static Benchmark, shared: &[Job]) -> Vec<Job> {
    let pipeline = bench.layout.pipeline;
    let flag = bench.layout.python_flag;
    // The build jobs: those another job of the table needs (also when `--jobs` kept only the
    // lint of a build job).
    let build_jobs: BTreeSet<String> = pipelines(bench.layout, true)
        .into_iter()
        .flat_map(|file| bench.layout.instances(file))
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
            .filter(|(c, _)| !builds(pipeline, c))
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
        let stages: Vec<_> = job
            .calls
            .iter()
            .filter_map(|(c, _)| pipeline.stage(c).ok())
            .collect();
        let build_calls = consumed_by(&stages)
            .into_iter()
            .map(|a| (pipeline.producer(a).name.to_string(), StageArgs::default()));
        let calls: Vec<(String, StageArgs)> = build_calls.chain(job.calls.clone()).collect();
        let pythons: Vec<String> = calls
            .iter()
            .flat_map(|(_, args)| flag.map(|f| args.list(f)).unwrap_or_default())
            .collect();
        if pythons.len() < 2 {
            out.push(Job {
                setup: setup::per_job(bench.layout, &job.setup, &calls, None),
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
                    let args = match flag.filter(|f| args.has(f)) {
                        Some(f) => args.clone().with(f, Some(python.clone())),
                        None => args.clone(),
                    };
                    (c.clone(), args)
                })
                .collect();
            out.push(Job {
                name: format!("{} ({python})", job.name),
                needs: vec![],
                setup: setup::per_job(bench.layout, &job.setup, &calls, Some(1)),
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
pub fn affected(bench: &Benchmark, jobs: &[Job], changed: &BTreeSet<String>) -> Vec<Job> {
    let layout = bench.layout;
    let all = layout.workflows();
    let passed = |_entry: &str, stage: &str| !changed.contains(stage);
    let runs = |job: &Job, call: &str| -> bool {
        let (Some(origin), Ok(stage)) = (&job.origin, layout.pipeline.stage(call)) else {
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
                Some(origin) => crate::workflows::setup(layout, origin.file, origin.job, &calls),
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
        let next = jobs
            .iter()
            .position(|j| j.needs.iter().all(|n| ordered.iter().any(|o| &o.name == n)))
            .unwrap_or(0);
        ordered.push(jobs.remove(next));
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
