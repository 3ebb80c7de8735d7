//! `cargo xtask compare`: the CI jobs run two ways on this machine, one after the other, from
//! the same commit, toolchain and warm registry caches, and measured side by side:
//!
//! - `per-job`: every workflow job as it would run on its own runner without artifact sharing
//!   or content keys — it builds what it needs itself, one job per Python interpreter, and a
//!   change reruns every job;
//! - `shared`: the generated pipeline — `plan` computes the keys, the archive and the wheel are
//!   built once by their own jobs, every other job gets their artifacts (copied in, as
//!   download-artifact does) and compiles nothing, and after an edit only the jobs whose keys
//!   changed run.
//!
//! Each [`Scenario`] starts the jobs cold or from restored dependency caches ([`caches`]), the
//! change scenarios after one edit. The jobs come from the job table the workflows are
//! generated from ([`jobs`]); every stage runs through `ci_engine::run::run_stage` ([`measure`]);
//! [`report`] holds the results: per job and in total wall and CPU time, rustc invocations that
//! compiled something and wheel builds, and each variant's critical path as GitHub would
//! schedule the jobs, with each job's setup priced step by step ([`setup`]). It is a measurement, not a gate: `cargo xtask
//! ci` never runs it.

mod caches;
mod jobs;
mod measure;
mod report;
mod scenario;
mod setup;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};

pub use self::scenario::Scenario;

use self::caches::DependencyCaches;
use self::jobs::{Job, Variant, call_lines};
use self::measure::run_job;
use self::report::{CompareReport, JobResult, ScenarioResult, VariantResult};
use self::scenario::AppliedEdit;
use crate::pipeline::{LAYOUT, PIPELINE};
use ci_engine::context::Context;
use ci_engine::graph::Artifact;
use ci_engine::keys;
use ci_engine::output::{Output, Tone};
use ci_engine::report::format_seconds;
use ci_engine::workflows::plan;

/// The name of the shared variant's first job, which computes the content keys.
const PLAN_JOB: &str = "plan";

/// What `cargo xtask compare` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Only jobs whose name or workflow key is listed (and, in `shared`, the builds they need).
    pub jobs: Option<Vec<String>>,
    /// Include the jobs of the scheduled pipeline (upstream).
    pub scheduled: bool,
    pub dry_run: bool,
    /// The situations measured, in order.
    pub scenarios: Vec<Scenario>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: None,
            scheduled: false,
            dry_run: false,
            scenarios: vec![Scenario::Cold],
        }
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
    let variants = jobs::plan(opts)?;
    let base = ctx.xtask_dir().join("compare");
    if opts.dry_run {
        print_plan(ctx, opts, &variants, &base)?;
        return Ok(true);
    }
    if base.exists() {
        std::fs::remove_dir_all(&base)
            .with_context(|| format!("could not clear {}", base.display()))?;
    }
    let caches = DependencyCaches::new(base.join("dependencies"));
    let mut scenarios = Vec::new();
    // Without content keys a change reruns every job, from the same restored caches: per job,
    // one warm measurement serves every warm scenario.
    let mut per_job_warm: Option<VariantResult> = None;
    for scenario in &opts.scenarios {
        out.say(
            Tone::Bold,
            &format!(
                "==> compare --scenario {}: {}",
                scenario.name(),
                scenario.about()
            ),
        );
        let (_edit, changed, plan_seconds) = edit_and_compare_keys(ctx, *scenario)?;
        let mut results = Vec::new();
        for (variant, jobs) in &variants {
            if *variant == Variant::PerJob
                && scenario.warm()
                && let Some(measured) = &per_job_warm
            {
                results.push(measured.clone());
                continue;
            }
            let running = match variant {
                Variant::Shared if scenario.edit().is_some() => jobs::affected(jobs, &changed),
                _ => jobs.clone(),
            };
            let run = VariantRun {
                variant: *variant,
                scenario: *scenario,
                dir: base.join(scenario.name()).join(variant.name()),
                caches: &caches,
            };
            let mut result = run.jobs(ctx, out, jobs, &running)?;
            if *variant == Variant::Shared {
                result.add_plan_job(
                    PLAN_JOB,
                    plan_seconds,
                    setup::seconds(&plan::plan_setup(&LAYOUT)),
                );
            }
            if *variant == Variant::PerJob && scenario.warm() {
                per_job_warm = Some(result.clone());
            }
            results.push(result);
        }
        scenarios.push(ScenarioResult::new(*scenario, &changed, results));
        // Written after every scenario, so a long run that stops keeps what it measured.
        write_report(ctx, &CompareReport::new(ctx, scenarios.clone())?)?;
    }
    let report = CompareReport::new(ctx, scenarios)?;
    let markdown = report.markdown();
    eprintln!("\n{markdown}");
    out.step_summary(&markdown);
    Ok(report.passed())
}

/// target/xtask/compare.json and compare.md.
fn write_report(ctx: &Context, report: &CompareReport) -> Result<()> {
    std::fs::write(
        ctx.xtask_dir().join("compare.json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    std::fs::write(ctx.xtask_dir().join("compare.md"), report.markdown())?;
    Ok(())
}

/// Make the scenario's edit (kept until the returned guard drops) and compare the keys before
/// and after: the stages whose key it changed, and how long computing the keys took (the plan
/// job's work).
fn edit_and_compare_keys(
    ctx: &Context,
    scenario: Scenario,
) -> Result<(Option<AppliedEdit>, BTreeSet<String>, f64)> {
    let before = keys::all(ctx, &PIPELINE)?;
    let edit = match scenario.edit() {
        Some((file, line)) => Some(AppliedEdit::apply(&ctx.root, file, line)?),
        None => None,
    };
    let started = Instant::now();
    let after = keys::all(ctx, &PIPELINE)?;
    let seconds = started.elapsed().as_secs_f64();
    let changed = after
        .iter()
        .filter(|k| !before.iter().any(|b| b.stage == k.stage && b.key == k.key))
        .map(|k| k.stage.clone())
        .collect();
    Ok((edit, changed, seconds))
}

/// `--dry-run`: what each variant runs, and per change scenario what the shared pipeline skips.
fn print_plan(
    ctx: &Context,
    opts: &Options,
    variants: &[(Variant, Vec<Job>)],
    base: &Path,
) -> Result<()> {
    for (variant, jobs) in variants {
        println!("== {} ({} jobs)", variant.name(), jobs.len());
        if *variant == Variant::Shared {
            println!("  {PLAN_JOB}");
            println!("    {}", setup::describe(&plan::plan_setup(&LAYOUT)));
            println!("    $ cargo xtask keys");
        }
        for job in jobs {
            let needs = if job.needs.is_empty() {
                String::new()
            } else {
                format!("   (needs: {})", job.needs.join("; "))
            };
            println!("  {}{needs}", job.name);
            let target = base
                .join("<scenario>")
                .join(variant.name())
                .join(slug(&job.name))
                .join("target");
            println!("    {}", setup::describe(&job.setup));
            println!("    CARGO_TARGET_DIR={}", ctx.rel(&target).display());
            for line in call_lines(job) {
                println!("    $ {line}");
            }
        }
    }
    let Some((_, shared)) = variants.iter().find(|(v, _)| *v == Variant::Shared) else {
        return Ok(());
    };
    for scenario in &opts.scenarios {
        let Some((file, _)) = scenario.edit() else {
            println!(
                "== {}: {}; every job runs",
                scenario.name(),
                scenario.about()
            );
            continue;
        };
        // The keys with the edit made (and undone at once): what the plan job would see.
        let (_, changed, _) = edit_and_compare_keys(ctx, *scenario)?;
        let running = jobs::affected(shared, &changed);
        let skipped: Vec<&str> = shared
            .iter()
            .filter(|j| !running.iter().any(|r| r.name == j.name))
            .map(|j| j.name.as_str())
            .collect();
        println!(
            "== {}: edits {file}; shared runs {} jobs, skips: {}",
            scenario.name(),
            running.len(),
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        );
        for job in &running {
            println!("  {}: {}", job.name, call_lines(job).join("; "));
        }
    }
    Ok(())
}

/// One variant's jobs in one scenario.
struct VariantRun<'a> {
    variant: Variant,
    scenario: Scenario,
    dir: PathBuf,
    caches: &'a DependencyCaches,
}

impl VariantRun<'_> {
    fn jobs(
        &self,
        ctx: &Context,
        out: &Output,
        jobs: &[Job],
        running: &[Job],
    ) -> Result<VariantResult> {
        out.say(
            Tone::Bold,
            &format!(
                "==> {} / {}: {} of {} jobs",
                self.scenario.name(),
                self.variant.name(),
                running.len(),
                jobs.len()
            ),
        );
        let mut results = Vec::new();
        let mut produced: BTreeMap<String, Vec<(&'static Artifact, PathBuf)>> = BTreeMap::new();
        for job in jobs {
            // The calls the plan runs; the job's caches follow all its builds, as on GitHub.
            let Some(planned) = running.iter().find(|r| r.name == job.name) else {
                out.say(
                    Tone::Dim,
                    &format!("    {}: skipped, its keys passed before the edit", job.name),
                );
                results.push(JobResult::skipped(&job.name));
                continue;
            };
            let dir = self.dir.join(slug(&job.name));
            let target = self.caches.target_dir(job, &dir.join("target"));
            if target.exists() {
                std::fs::remove_dir_all(&target)
                    .with_context(|| format!("could not clear {}", target.display()))?;
            }
            if self.scenario.warm() {
                self.caches.restore(ctx, out, job, &target)?;
            }
            let (result, artifacts) = run_job(ctx, out, planned, (&dir, &target), &produced)?;
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
            let kept = !self.scenario.warm() && self.caches.adopt(ctx, job, &target)?;
            if !kept && target.exists() {
                // Keep only what a later job may download (disk).
                std::fs::remove_dir_all(&target)
                    .with_context(|| format!("could not remove {}", target.display()))?;
            }
            produced.insert(job.name.clone(), artifacts);
            results.push(result);
        }
        let needs = jobs
            .iter()
            .map(|j| (j.name.clone(), j.needs.clone()))
            .collect();
        Ok(VariantResult::new(self.variant, results, &needs))
    }
}
