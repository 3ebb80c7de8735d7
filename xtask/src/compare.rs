//! `cargo xtask compare`: the CI jobs run two ways on this machine, one after the other, from
//! the same commit, toolchain and warm registry caches, and measured side by side:
//!
//! - `per-job`: every workflow job as it would run on its own fresh runner without artifact
//!   sharing — its own empty target directory and venvs, building what it needs itself;
//! - `shared`: the xtask pipeline — the build jobs of shared-build.yaml run once, and every
//!   other job gets their artifacts (copied in, as download-artifact does) and compiles nothing.
//!
//! The jobs are read from the workflows (the Linux jobs of the pull-request workflows), so the
//! comparison follows them. For each job and in total it reports wall and CPU time, rustc
//! invocations that compiled something (from cargo's JSON messages; wheel builds, whose cargo
//! JSON maturin keeps to itself, from cargo's verbose `Running rustc` lines) and wheel builds,
//! and each variant's critical path as GitHub would schedule the jobs. It is a measurement, not
//! a gate: `cargo xtask ci` never runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::artifacts;
use crate::context::Context;
use crate::exec::{CommandRecord, Executor};
use crate::graph::{self, Artifact, Schedule, StageArgs};
use crate::output::{Output, Tone};
use crate::plan::{Cmd, Plan, Step};
use crate::report::format_seconds;
use crate::workflows::{self, JobInstance};

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
    /// `rust-ci-optimized.yaml: test-full (shard=1)`
    pub name: String,
    /// Names of the jobs it needs (shared variant only).
    pub needs: Vec<String>,
    /// Its `cargo xtask` calls, in order (stage names, or docker-down).
    pub calls: Vec<(String, StageArgs)>,
    /// A build job (shared variant): without artifact sharing, whatever else it runs becomes
    /// a job of its own, named after what it runs.
    pub builds: bool,
}

/// What `cargo xtask compare` runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Only jobs whose name or workflow key is listed (and, in `shared`, the builds they need).
    pub jobs: Option<Vec<String>>,
    /// Include the jobs of the scheduled pipeline (upstream).
    pub scheduled: bool,
    pub dry_run: bool,
}

/// The jobs of both variants, from the workflow files.
pub fn plan(files: &[(String, String)], opts: &Options) -> Result<BTreeMap<Variant, Vec<Job>>> {
    let instances = workflows::job_instances(files)?;
    let shared = in_needs_order(shared_jobs(&instances, opts)?);
    let per_job = per_job_jobs(&shared);
    Ok([(Variant::PerJob, per_job), (Variant::Shared, shared)].into())
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

fn runs_scheduled_stage(calls: &[(String, StageArgs)]) -> bool {
    calls
        .iter()
        .any(|(c, _)| graph::stage(c).is_ok_and(|s| s.schedule == Schedule::Scheduled))
}

/// The Linux jobs of the pull-request workflows, reusable-workflow calls replaced by the jobs
/// they run.
fn shared_jobs(instances: &[JobInstance], opts: &Options) -> Result<Vec<Job>> {
    let on_linux = |j: &JobInstance| j.runs_on.contains("ubuntu");
    let label = |j: &JobInstance| format!("{}: {}", j.workflow, j.name);
    // What a `needs:` entry stands for: every instance of that job, or the jobs it calls.
    let mut stands_for: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut jobs = Vec::new();
    for caller in instances
        .iter()
        .filter(|j| j.on_pull_request && (on_linux(j) || j.calls_workflow.is_some()))
    {
        let key = (caller.workflow.clone(), caller.job.clone());
        match &caller.calls_workflow {
            Some((called, inputs)) => {
                for job in instances
                    .iter()
                    .filter(|j| &j.workflow == called && on_linux(j))
                {
                    let calls = job.calls(inputs);
                    if !calls.is_empty() {
                        let name = format!("{}: {} / {}", caller.workflow, caller.job, job.name);
                        stands_for
                            .entry(key.clone())
                            .or_default()
                            .push(name.clone());
                        jobs.push((
                            caller.workflow.clone(),
                            Job {
                                name,
                                needs: vec![],
                                builds: calls.iter().any(|(c, _)| builds(c)),
                                calls,
                            },
                            caller.needs.clone(),
                        ));
                    }
                }
            }
            None => {
                stands_for.entry(key).or_default().push(label(caller));
                jobs.push((
                    caller.workflow.clone(),
                    Job {
                        name: label(caller),
                        needs: vec![],
                        calls: caller.calls(&BTreeMap::new()),
                        builds: false,
                    },
                    caller.needs.clone(),
                ));
            }
        }
    }
    let mut resolved: Vec<Job> = jobs
        .into_iter()
        .map(|(workflow, mut job, needs)| {
            job.needs = needs
                .iter()
                .flat_map(|n| {
                    stands_for
                        .get(&(workflow.clone(), n.clone()))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            job
        })
        .filter(|j| opts.scheduled || !runs_scheduled_stage(&j.calls))
        .collect();
    if let Some(wanted) = &opts.jobs {
        resolved = select(resolved, wanted)?;
    }
    // A build nobody needs is not run (the upstream workflow's build, without upstream).
    let needed: BTreeSet<String> = resolved.iter().flat_map(|j| j.needs.clone()).collect();
    resolved.retain(|j| !j.calls.iter().all(|(c, _)| builds(c)) || needed.contains(&j.name));
    Ok(resolved)
}

/// The jobs `--jobs` asks for, with the jobs they need. A job is asked for by its whole name,
/// the part after the file, the called job or the caller's key (`file: caller / job (matrix)`),
/// each with or without its matrix values; or by a stage it runs (lint-rust in the shared
/// build), and then runs only that stage. A job brought in because an asked-for one needs it
/// keeps just the builds of what is consumed.
fn select(jobs: Vec<Job>, wanted: &[String]) -> Result<Vec<Job>> {
    let named = |job: &Job| {
        let short = job.name.split_once(": ").map_or("", |(_, n)| n);
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
    let mut keep: BTreeSet<String> = asked.keys().cloned().collect();
    loop {
        let needed: BTreeSet<String> = jobs
            .iter()
            .filter(|j| keep.contains(&j.name))
            .flat_map(|j| j.needs.clone())
            .filter(|n| !keep.contains(n))
            .collect();
        if needed.is_empty() {
            break;
        }
        keep.extend(needed);
    }
    let consumed: BTreeSet<Artifact> = asked
        .values()
        .flatten()
        .filter_map(|c| graph::stage(c).ok())
        .flat_map(|s| s.consumes.iter().copied())
        .collect();
    Ok(jobs
        .into_iter()
        .filter(|j| keep.contains(&j.name))
        .map(|mut job| {
            let own = asked.get(&job.name);
            job.calls.retain(|(c, _)| {
                own.is_some_and(|own| own.contains(c))
                    || graph::stage(c)
                        .is_ok_and(|s| s.produces.iter().any(|a| consumed.contains(a)))
            });
            job
        })
        .collect())
}

/// Whether a call builds files for other jobs (build-artifacts, build-wheels).
fn builds(command: &str) -> bool {
    graph::stage(command).is_ok_and(|s| s.produces.iter().any(|a| a.is_transferable()))
}

/// The same jobs without a shared build: a job that consumes files builds them first itself,
/// and a build job keeps only what else it runs (the shared build's lint-rust becomes a
/// lint-rust job of its workflow, as in workflows without a shared build).
fn per_job_jobs(shared: &[Job]) -> Vec<Job> {
    shared
        .iter()
        .filter_map(|job| {
            let kept: Vec<(String, StageArgs)> = job
                .calls
                .iter()
                .filter(|(c, _)| !builds(c))
                .cloned()
                .collect();
            if kept.is_empty() {
                return None;
            }
            let name = if !job.builds {
                job.name.clone()
            } else {
                let workflow = job.name.split(": ").next().unwrap_or_default();
                let commands: Vec<&str> = kept.iter().map(|(c, _)| c.as_str()).collect();
                format!("{workflow}: {}", commands.join(", "))
            };
            let mut builds: Vec<Artifact> = Vec::new();
            for (command, _) in &kept {
                if let Ok(stage) = graph::stage(command) {
                    for artifact in stage.consumes.iter().filter(|a| a.is_transferable()) {
                        if !builds.contains(artifact) {
                            builds.push(*artifact);
                        }
                    }
                }
            }
            let calls = builds
                .iter()
                .map(|a| (a.producer().name.to_string(), StageArgs::default()))
                .chain(kept)
                .collect();
            Some(Job {
                name,
                needs: vec![],
                calls,
                builds: false,
            })
        })
        .collect()
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

/// What one job cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobResult {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub cpu_seconds: f64,
    /// CPU of the commands that compiled something.
    pub compile_cpu_seconds: f64,
    /// rustc invocations that compiled something.
    pub rustc_compiles: u32,
    pub wheel_builds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VariantResult {
    pub variant: String,
    pub passed: bool,
    pub jobs: Vec<JobResult>,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub compile_cpu_seconds: f64,
    pub rustc_compiles: u32,
    pub wheel_builds: u32,
    /// The longest chain of jobs through `needs:`, with jobs in parallel as GitHub runs them.
    pub critical_path_seconds: f64,
}

impl VariantResult {
    fn new(
        variant: Variant,
        jobs: Vec<JobResult>,
        needs: &BTreeMap<String, Vec<String>>,
    ) -> VariantResult {
        VariantResult {
            variant: variant.name().to_string(),
            passed: jobs.iter().all(|j| j.passed),
            seconds: jobs.iter().map(|j| j.seconds).sum(),
            cpu_seconds: jobs.iter().map(|j| j.cpu_seconds).sum(),
            compile_cpu_seconds: jobs.iter().map(|j| j.compile_cpu_seconds).sum(),
            rustc_compiles: jobs.iter().map(|j| j.rustc_compiles).sum(),
            wheel_builds: jobs.iter().map(|j| j.wheel_builds).sum(),
            critical_path_seconds: critical_path(&jobs, needs),
            jobs,
        }
    }
}

/// When the last job finishes if every job starts as soon as the jobs it needs are done.
pub fn critical_path(jobs: &[JobResult], needs: &BTreeMap<String, Vec<String>>) -> f64 {
    fn finish(
        name: &str,
        jobs: &[JobResult],
        needs: &BTreeMap<String, Vec<String>>,
        memo: &mut BTreeMap<String, f64>,
    ) -> f64 {
        if let Some(t) = memo.get(name) {
            return *t;
        }
        let own = jobs
            .iter()
            .find(|j| j.name == name)
            .map(|j| j.seconds)
            .unwrap_or(0.0);
        let start = needs
            .get(name)
            .into_iter()
            .flatten()
            .map(|n| finish(n, jobs, needs, memo))
            .fold(0.0, f64::max);
        memo.insert(name.to_string(), start + own);
        start + own
    }
    let mut memo = BTreeMap::new();
    jobs.iter()
        .map(|j| finish(&j.name, jobs, needs, &mut memo))
        .fold(0.0, f64::max)
}

/// rustc invocations that compiled something, from one command's output: cargo's JSON
/// `compiler-artifact` messages that are not fresh, or — when the output has none (maturin
/// keeps cargo's JSON to itself) — cargo's verbose `Running rustc` lines.
pub fn count_compiles(output: &str) -> u32 {
    let mut json = 0;
    let mut verbose = 0;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with('{') {
            if let Ok(message) = serde_json::from_str::<serde_json::Value>(line)
                && message["reason"] == "compiler-artifact"
                && message["fresh"] == false
            {
                json += 1;
            }
        } else if line.starts_with("Running `") && line.contains("--crate-name") {
            verbose += 1;
        }
    }
    if json > 0 { json } else { verbose }
}

/// Ask cargo for JSON messages where the command lets us (the measured build is unchanged).
fn with_json_messages(cmd: &Cmd) -> Cmd {
    let mut cmd = cmd.clone();
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["clippy", ..] => cmd
            .args
            .insert(1, "--message-format=json-render-diagnostics".into()),
        ["nextest", "archive", ..] => {
            cmd.args
                .insert(2, "--cargo-message-format=json-render-diagnostics".into());
        }
        _ => {}
    }
    cmd
}

fn measured(plan: Plan) -> Plan {
    Plan {
        steps: plan
            .steps
            .into_iter()
            .map(|step| match step {
                Step::Run(cmd) => Step::Run(with_json_messages(&cmd)),
                other => other,
            })
            .collect(),
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Run `cargo xtask compare`.
pub fn run(ctx: &Context, out: &Output, opts: &Options) -> Result<bool> {
    let files = workflows::read_all(&ctx.root)?;
    let variants = plan(&files, opts)?;
    let base = ctx.xtask_dir().join("compare");
    if opts.dry_run {
        for (variant, jobs) in &variants {
            println!("== {} ({} jobs)", variant.name(), jobs.len());
            for job in jobs {
                let needs = if job.needs.is_empty() {
                    String::new()
                } else {
                    format!("   (needs: {})", job.needs.join("; "))
                };
                println!("  {}{needs}", job.name);
                let target = base
                    .join(variant.name())
                    .join(slug(&job.name))
                    .join("target");
                println!("    CARGO_TARGET_DIR={}", ctx.rel(&target).display());
                for line in call_lines(job) {
                    println!("    $ {line}");
                }
            }
        }
        return Ok(true);
    }
    if base.exists() {
        std::fs::remove_dir_all(&base)
            .with_context(|| format!("could not clear {}", base.display()))?;
    }
    let mut results = Vec::new();
    for (variant, jobs) in &variants {
        out.say(
            Tone::Bold,
            &format!(
                "==> compare: {} variant, {} jobs",
                variant.name(),
                jobs.len()
            ),
        );
        let mut job_results = Vec::new();
        let mut produced: BTreeMap<String, Vec<(Artifact, PathBuf)>> = BTreeMap::new();
        for job in jobs {
            let dir = base.join(variant.name()).join(slug(&job.name));
            let (result, artifacts) = run_job(ctx, out, job, &dir, &produced)?;
            out.say(
                if result.passed { Tone::Good } else { Tone::Bad },
                &format!(
                    "    {}: {} in {}, {} rustc compiles, {} wheel builds",
                    job.name,
                    if result.passed { "passed" } else { "FAILED" },
                    format_seconds(result.seconds),
                    result.rustc_compiles,
                    result.wheel_builds
                ),
            );
            produced.insert(job.name.clone(), artifacts);
            job_results.push(result);
        }
        let needs = jobs
            .iter()
            .map(|j| (j.name.clone(), j.needs.clone()))
            .collect();
        results.push(VariantResult::new(*variant, job_results, &needs));
    }
    let report = CompareReport::new(ctx, results)?;
    let markdown = report.markdown();
    eprintln!("\n{markdown}");
    std::fs::write(
        ctx.xtask_dir().join("compare.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    std::fs::write(ctx.xtask_dir().join("compare.md"), &markdown)?;
    out.step_summary(&markdown);
    Ok(report.variants.iter().all(|v| v.passed))
}

/// Run one job in its own directory; returns its result and the artifacts it leaves for others.
fn run_job(
    ctx: &Context,
    out: &Output,
    job: &Job,
    dir: &Path,
    produced: &BTreeMap<String, Vec<(Artifact, PathBuf)>>,
) -> Result<(JobResult, Vec<(Artifact, PathBuf)>)> {
    let target = dir.join("target");
    let mut job_ctx = ctx.with_target_dir(target.clone());
    // Like a CI job: an artifact must come from an earlier job, never be built implicitly.
    job_ctx.ci = true;
    let started = Instant::now();
    // download-artifact: copy what the needed jobs built.
    for need in &job.needs {
        for (artifact, from) in produced.get(need).into_iter().flatten() {
            copy_dir(from, &artifacts::dir(&job_ctx, *artifact))?;
        }
    }
    let mut exec = Executor::new(&job_ctx, out.clone(), false);
    exec.env = vec![
        (
            "CARGO_TARGET_DIR".into(),
            target.to_string_lossy().into_owned(),
        ),
        ("CARGO_TERM_VERBOSE".into(), "true".into()),
    ];
    exec.log_dir = Some(dir.join("logs"));
    let mut error = None;
    let mut services_up = false;
    for (command, args) in &job.calls {
        let result = if command == "docker-down" {
            continue; // always run at the end, like `if: always()`
        } else {
            graph::stage(command)
                .and_then(|stage| (stage.plan)(&job_ctx, args))
                .and_then(|plan| exec.run_plan(&measured(plan)))
        };
        services_up |=
            graph::stage(command).is_ok_and(|s| s.produces.contains(&Artifact::Services));
        if let Err(e) = result {
            error = Some(format!("{command}: {e:#}"));
            break;
        }
    }
    if services_up && let Err(e) = crate::stages::services::take_down(&mut exec) {
        error.get_or_insert(format!("docker-down: {e:#}"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut result = JobResult {
        name: job.name.clone(),
        passed: error.is_none(),
        seconds,
        error,
        ..JobResult::default()
    };
    for record in &exec.records {
        account(&mut result, record);
    }
    // Keep what a later job may download; drop the rest of the target directory (disk).
    let mut kept = Vec::new();
    for artifact in Artifact::ALL.into_iter().filter(|a| a.is_transferable()) {
        let built = artifacts::dir(&job_ctx, artifact);
        if built.join(artifacts::MANIFEST).is_file() {
            let keep = dir.join("artifacts").join(artifact.name());
            copy_dir(&built, &keep)?;
            kept.push((artifact, keep));
        }
    }
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("could not remove {}", target.display()))?;
    }
    Ok((result, kept))
}

fn account(result: &mut JobResult, record: &CommandRecord) {
    result.cpu_seconds += record.cpu_seconds;
    let output = record
        .log
        .as_ref()
        .and_then(|l| std::fs::read_to_string(l).ok())
        .unwrap_or_default();
    let compiles = count_compiles(&output);
    if compiles > 0 {
        result.rustc_compiles += compiles;
        result.compile_cpu_seconds += record.cpu_seconds;
    }
    if record.command.contains("maturin build") && record.success {
        result.wheel_builds += 1;
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("could not read {}", from.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareReport {
    pub format: u32,
    pub commit: String,
    pub cores: usize,
    pub variants: Vec<VariantResult>,
}

impl CompareReport {
    fn new(ctx: &Context, variants: Vec<VariantResult>) -> Result<CompareReport> {
        let commit = artifacts::Sources::of(ctx, Artifact::RustTests)
            .map(|s| s.commit)
            .unwrap_or_default();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(CompareReport {
            format: 1,
            commit,
            cores,
            variants,
        })
    }

    pub fn markdown(&self) -> String {
        let mut text = format!(
            "### cargo xtask compare\n\nCommit `{}`, {} cores; jobs run one after the other.\n\n",
            crate::artifacts::short(&self.commit, 10),
            self.cores
        );
        let mut names: Vec<String> = Vec::new();
        for v in &self.variants {
            for j in &v.jobs {
                if !names.contains(&j.name) {
                    names.push(j.name.clone());
                }
            }
        }
        text.push_str("| job |");
        for v in &self.variants {
            text.push_str(&format!(
                " {0} time | {0} CPU | {0} rustc | {0} wheels |",
                v.variant
            ));
        }
        text.push_str("\n|---|");
        text.push_str(&"---:|".repeat(4 * self.variants.len()));
        text.push('\n');
        for name in &names {
            text.push_str(&format!("| {name} |"));
            for v in &self.variants {
                match v.jobs.iter().find(|j| &j.name == name) {
                    Some(j) if j.passed => text.push_str(&format!(
                        " {} | {} | {} | {} |",
                        format_seconds(j.seconds),
                        format_seconds(j.cpu_seconds),
                        j.rustc_compiles,
                        j.wheel_builds
                    )),
                    Some(_) => text.push_str(" FAILED | — | — | — |"),
                    None => text.push_str(" — | — | — | — |"),
                }
            }
            text.push('\n');
        }
        text.push_str("| **total** |");
        for v in &self.variants {
            if v.passed {
                text.push_str(&format!(
                    " {} | {} | {} | {} |",
                    format_seconds(v.seconds),
                    format_seconds(v.cpu_seconds),
                    v.rustc_compiles,
                    v.wheel_builds
                ));
            } else {
                text.push_str(" FAILED | — | — | — |");
            }
        }
        text.push_str("\n\n| | per-job | shared | shared / per-job |\n|---|---:|---:|---:|\n");
        let (Some(per), Some(shared)) = (
            self.variants.iter().find(|v| v.variant == "per-job"),
            self.variants.iter().find(|v| v.variant == "shared"),
        ) else {
            return text;
        };
        if !(per.passed && shared.passed) {
            text.push_str("| a variant failed: no ratios | | | |\n");
            return text;
        }
        let row = |label: &str, p: f64, s: f64, time: bool| {
            let show = |x: f64| {
                if time {
                    format_seconds(x)
                } else {
                    format!("{x:.0}")
                }
            };
            let ratio = if p > 0.0 {
                format!("{:.2}", s / p)
            } else {
                "—".into()
            };
            format!("| {label} | {} | {} | {ratio} |\n", show(p), show(s))
        };
        text.push_str(&row(
            "wall time, all jobs",
            per.seconds,
            shared.seconds,
            true,
        ));
        text.push_str(&row(
            "CPU time, all jobs",
            per.cpu_seconds,
            shared.cpu_seconds,
            true,
        ));
        text.push_str(&row(
            "compile CPU time",
            per.compile_cpu_seconds,
            shared.compile_cpu_seconds,
            true,
        ));
        text.push_str(&row(
            "rustc invocations that compiled",
            per.rustc_compiles.into(),
            shared.rustc_compiles.into(),
            false,
        ));
        text.push_str(&row(
            "wheel builds",
            per.wheel_builds.into(),
            shared.wheel_builds.into(),
            false,
        ));
        text.push_str(&row(
            "critical path (jobs in parallel)",
            per.critical_path_seconds,
            shared.critical_path_seconds,
            true,
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_plan(opts: &Options) -> BTreeMap<Variant, Vec<Job>> {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
        let files = workflows::read_all(Path::new(&manifest).parent().unwrap()).unwrap();
        plan(&files, opts).unwrap()
    }

    fn names(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.name.as_str()).collect()
    }

    #[test]
    fn shared_builds_once_and_test_jobs_reuse_the_artifacts() {
        let variants = repository_plan(&Options::default());
        let shared = &variants[&Variant::Shared];
        // One build job: clippy, the archive and the wheel, in one target directory.
        let builds: Vec<_> = shared
            .iter()
            .filter(|j| j.calls.iter().any(|(c, _)| builds(c)))
            .collect();
        assert_eq!(builds.len(), 1);
        assert_eq!(builds[0].name, "rust-ci-optimized.yaml: build / build");
        assert_eq!(
            call_lines(builds[0]),
            [
                "cargo xtask lint-rust",
                "cargo xtask build-artifacts",
                "cargo xtask build-wheels"
            ]
        );
        let test_unit = shared
            .iter()
            .find(|j| j.name == "rust-ci-optimized.yaml: test-unit")
            .unwrap();
        assert_eq!(call_lines(test_unit), ["cargo xtask test-unit"]);
        assert_eq!(test_unit.needs, ["rust-ci-optimized.yaml: build / build"]);
        let python = shared
            .iter()
            .find(|j| j.name == "rust-ci-optimized.yaml: python / python-test (python=3.12)")
            .unwrap();
        assert_eq!(python.needs, ["rust-ci-optimized.yaml: build / build"]);
        assert_eq!(
            call_lines(python),
            [
                "cargo xtask docker-up",
                "cargo xtask python-test --full --python 3.12",
                "cargo xtask docker-down"
            ]
        );
        assert!(
            shared
                .iter()
                .all(|j| !j.name.contains("macos") && !j.name.contains("windows"))
        );
        assert!(
            shared.iter().all(|j| !j.name.contains("upstream")),
            "upstream is scheduled only"
        );
    }

    #[test]
    fn per_job_builds_in_every_job_that_needs_an_artifact() {
        let variants = repository_plan(&Options::default());
        let per_job = &variants[&Variant::PerJob];
        assert!(per_job.iter().all(|j| j.needs.is_empty()));
        assert!(
            !per_job
                .iter()
                .any(|j| j.name == "rust-ci-optimized.yaml: build / build"),
            "no build job: every job builds for itself"
        );
        let full = per_job
            .iter()
            .find(|j| j.name == "rust-ci-optimized.yaml: test-full (shard=2)")
            .unwrap();
        assert_eq!(
            call_lines(full),
            [
                "cargo xtask build-artifacts",
                "cargo xtask docker-up",
                "cargo xtask test-full --partition hash:2/2",
                "cargo xtask docker-down"
            ]
        );
        let wheel_builds = per_job
            .iter()
            .flat_map(|j| &j.calls)
            .filter(|(c, _)| c == "build-wheels")
            .count();
        assert_eq!(
            wheel_builds, 4,
            "python-lint and three python-test jobs each build the wheel"
        );
        let lint = per_job
            .iter()
            .find(|j| j.name == "rust-ci-optimized.yaml: lint-rust")
            .unwrap();
        assert_eq!(call_lines(lint), ["cargo xtask lint-rust"]);
    }

    #[test]
    fn jobs_can_be_selected_and_bring_their_builds() {
        let opts = Options {
            jobs: Some(vec!["test-unit".into()]),
            ..Options::default()
        };
        let variants = repository_plan(&opts);
        assert_eq!(
            names(&variants[&Variant::Shared]),
            [
                "rust-ci-optimized.yaml: build / build",
                "rust-ci-optimized.yaml: test-unit"
            ]
        );
        assert_eq!(
            names(&variants[&Variant::PerJob]),
            ["rust-ci-optimized.yaml: test-unit"]
        );
        assert_eq!(
            call_lines(&variants[&Variant::Shared][0]),
            ["cargo xtask build-artifacts"],
            "the build brought in for test-unit builds only the archive"
        );
        // A job of a called workflow is selected by its own key too.
        let opts = Options {
            jobs: Some(vec!["python-test".into()]),
            ..Options::default()
        };
        let variants = repository_plan(&opts);
        assert_eq!(
            variants[&Variant::Shared].len(),
            4,
            "the build and three interpreters"
        );
        assert_eq!(
            call_lines(&variants[&Variant::Shared][0]),
            ["cargo xtask build-wheels"]
        );
        let opts = Options {
            jobs: Some(vec!["python / python-test".into()]),
            ..Options::default()
        };
        assert_eq!(repository_plan(&opts)[&Variant::PerJob].len(), 3);
        // A stage inside the shared build job selects it, running just that stage.
        let opts = Options {
            jobs: Some(vec!["lint-rust".into()]),
            ..Options::default()
        };
        let lint = repository_plan(&opts);
        let shared = &lint[&Variant::Shared];
        assert_eq!(names(shared), ["rust-ci-optimized.yaml: build / build"]);
        assert_eq!(call_lines(&shared[0]), ["cargo xtask lint-rust"]);
        assert_eq!(
            names(&lint[&Variant::PerJob]),
            ["rust-ci-optimized.yaml: lint-rust"]
        );
        assert_eq!(
            names(&variants[&Variant::PerJob]),
            [
                "rust-ci-optimized.yaml: python / python-test (python=3.11)",
                "rust-ci-optimized.yaml: python / python-test (python=3.12)",
                "rust-ci-optimized.yaml: python / python-test (python=3.13)"
            ]
        );
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        let files = workflows::read_all(Path::new(&manifest).parent().unwrap()).unwrap();
        let err = plan(
            &files,
            &Options {
                jobs: Some(vec!["nope".into()]),
                ..Options::default()
            },
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("--jobs matched no job")
        );
    }

    #[test]
    fn compiles_are_counted_from_cargo_messages() {
        // Recorded from `cargo nextest archive --cargo-message-format=json-render-diagnostics`.
        let json = concat!(
            r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.228","target":{"kind":["lib"],"name":"serde"},"fresh":false}"#,
            "\n",
            r#"{"reason":"build-script-executed","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.228"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///repo/icechunk#0.1.0","target":{"kind":["lib"],"name":"icechunk"},"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///repo/xtask#0.1.0","target":{"kind":["test"],"name":"services"},"fresh":false}"#,
            "\n",
            "   Compiling serde v1.0.228\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        assert_eq!(
            count_compiles(json),
            2,
            "fresh artifacts and other messages do not count"
        );
        // Recorded from maturin (cargo's verbose lines, CARGO_TERM_VERBOSE=true).
        let verbose = "   Compiling pyo3-build-config v0.30.1\n     Running `/rustc --crate-name build_script_build --edition=2021 build.rs`\n     Running `/target/ci/build/pyo3-build-config/build-script-build`\n     Running `/rustc --crate-name pyo3 --edition=2021 src/lib.rs`\n       Fresh libc v0.2.177\n";
        assert_eq!(count_compiles(verbose), 2, "build script runs do not count");
        assert_eq!(count_compiles("    Finished `ci` profile\n"), 0);
    }

    #[test]
    fn json_messages_are_requested_without_changing_the_build() {
        let archive = Cmd::new("cargo").args(["nextest", "archive", "--workspace"]);
        assert_eq!(
            with_json_messages(&archive).args,
            [
                "nextest",
                "archive",
                "--cargo-message-format=json-render-diagnostics",
                "--workspace"
            ]
        );
        let clippy = Cmd::new("cargo").args(["clippy", "--workspace", "--", "-D", "warnings"]);
        assert_eq!(
            with_json_messages(&clippy).args[1],
            "--message-format=json-render-diagnostics"
        );
        let other = Cmd::new("cargo").args(["fmt", "--check"]);
        assert_eq!(with_json_messages(&other), other);
    }

    #[test]
    fn the_critical_path_follows_needs() {
        let job = |name: &str, seconds| JobResult {
            name: name.into(),
            passed: true,
            seconds,
            ..JobResult::default()
        };
        let jobs = [
            job("build", 100.0),
            job("test-a", 30.0),
            job("test-b", 50.0),
            job("lint", 120.0),
        ];
        let needs: BTreeMap<_, _> = [
            ("test-a".to_string(), vec!["build".to_string()]),
            ("test-b".to_string(), vec!["build".to_string()]),
        ]
        .into();
        assert_eq!(critical_path(&jobs, &needs), 150.0);
        assert_eq!(critical_path(&jobs, &BTreeMap::new()), 120.0);
    }

    #[test]
    fn the_report_gives_ratios_only_when_both_variants_passed() {
        let result = |variant: &str, passed: bool, seconds: f64, compiles: u32| VariantResult {
            variant: variant.to_string(),
            passed,
            jobs: vec![JobResult {
                name: "j".into(),
                passed,
                seconds,
                cpu_seconds: seconds,
                compile_cpu_seconds: seconds,
                rustc_compiles: compiles,
                wheel_builds: 1,
                error: None,
            }],
            seconds,
            cpu_seconds: seconds,
            compile_cpu_seconds: seconds,
            rustc_compiles: compiles,
            wheel_builds: 1,
            critical_path_seconds: seconds,
        };
        let report = CompareReport {
            format: 1,
            commit: "abc".into(),
            cores: 2,
            variants: vec![
                result("per-job", true, 400.0, 800),
                result("shared", true, 100.0, 200),
            ],
        };
        let md = report.markdown();
        assert!(
            md.contains("| compile CPU time | 6m40s | 1m40s | 0.25 |"),
            "{md}"
        );
        assert!(
            md.contains("| rustc invocations that compiled | 800 | 200 | 0.25 |"),
            "{md}"
        );
        let failed = CompareReport {
            variants: vec![
                result("per-job", true, 400.0, 800),
                result("shared", false, 100.0, 200),
            ],
            ..report
        };
        assert!(failed.markdown().contains("a variant failed: no ratios"));
    }
}
