//! `compare`: a project's CI jobs run two ways on this machine, one after the other, from
//! the same commit, toolchain and warm registry caches, and measured side by side:
//!
//! - `per-job`: every workflow job as it would run on its own runner without artifact sharing
//!   or content keys — it builds what it needs itself, one job per Python interpreter, and a
//!   change reruns every job;
//! - `shared`: the generated pipeline — `plan` computes the keys, each artifact is built once
//!   by its own job, every other job gets the artifacts (copied in, as download-artifact does)
//!   and compiles nothing, and after an edit only the jobs whose keys changed run.
//!
//! A project describes what it measures with a [`Benchmark`]: its layout (whose pipeline and
//! nightly workflows' jobs run), its [`Scenario`]s and what a job's setup costs on a runner.
//! Each scenario starts the jobs cold or from restored dependency caches ([`caches`]), the
//! change scenarios after one edit (made in the working tree and undone, also by `--dry-run`,
//! which computes the keys with it). The jobs come from the job table the workflows are generated from ([`jobs`]);
//! every stage runs through [`crate::run::run_stage`] ([`measure`]); [`report`] holds the
//! results: per job and in total wall and CPU time, rustc invocations that compiled something
//! and wheel builds, and each variant's critical path as GitHub would schedule the jobs, with
//! each job's setup priced step by step ([`setup`]). It is a measurement, not a gate: `ci`
//! never runs it.

pub mod caches;
pub mod jobs;
pub mod measure;
pub mod report;
pub mod scenario;
pub mod setup;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use lexopt::prelude::*;

pub use self::scenario::Scenario;
pub use self::setup::{Price, Source};

use self::caches::DependencyCaches;
use self::jobs::{Job, Variant, call_lines};
use self::measure::run_job;
use self::report::{CompareReport, JobResult, ScenarioResult, VariantResult};
use self::scenario::AppliedEdit;
use crate::cli::{Parsed, names, shown};
use crate::context::Context;
use crate::graph::Artifact;
use crate::jobs::Layout;
use crate::jobs::rule::PLAN as PLAN_JOB;
use crate::keys;
use crate::output::{Output, Tone};
use crate::report::format_seconds;
use crate::workflows::{Setup, plan};

/// What a project measures with `compare`.
#[derive(Debug)]
pub struct Benchmark {
    /// Its layout: the Linux jobs of its pipeline workflow run, and with `--scheduled` those
    /// of its nightly ones.
    pub layout: &'static Layout,
    /// The situations `--scenario` picks from, in the order they run; the first is the default.
    pub scenarios: &'static [Scenario],
    /// A runner's start-up until its first step.
    pub runner_start: Price,
    /// What each setup step costs on a runner, and where the figure comes from.
    pub price: fn(Setup) -> Price,
    /// Where the prices are explained, as the report names it (a file of the project's docs).
    pub prices_from: &'static str,
    /// What the command line of a build of a wheel contains (`maturin build`), when the
    /// project builds wheels: each that succeeds counts as a wheel build.
    pub wheel_build: Option<&'static str>,
    /// The archive of Rust tests, when the project has one: a job running a stage that
    /// consumes it runs Rust tests.
    pub test_archive: Option<&'static Artifact>,
    /// The cargo profile the pipeline's stages compile with: a dependency cache keeps what
    /// `cargo clean` of the workspace's packages in it leaves.
    pub profile: &'static str,
}

/// What `compare` runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub benchmark: &'static Benchmark,
    /// Only jobs whose name or workflow key is listed (and, in `shared`, the builds they need).
    pub jobs: Option<Vec<String>>,
    /// Include the jobs of the scheduled workflows.
    pub scheduled: bool,
    pub dry_run: bool,
    /// The situations measured, in order.
    pub scenarios: Vec<&'static Scenario>,
}

impl Options {
    /// The benchmark's first scenario, every job of the pull-request pipeline.
    pub fn new(benchmark: &'static Benchmark) -> Options {
        Options {
            benchmark,
            jobs: None,
            scheduled: false,
            dry_run: false,
            scenarios: benchmark.scenarios.iter().take(1).collect(),
        }
    }

    /// `compare`'s arguments (after the command's name; `dry_run` when `--dry-run` was given).
    pub fn parse(
        benchmark: &'static Benchmark,
        args: Vec<String>,
        dry_run: bool,
    ) -> Result<Options> {
        let mut opts = Options {
            dry_run,
            ..Options::new(benchmark)
        };
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().context("could not read the arguments")? {
            match arg {
                Long("jobs") => opts
                    .jobs
                    .get_or_insert_with(Vec::new)
                    .extend(names(parser.value()?)?),
                Long("scheduled") => opts.scheduled = true,
                Long("scenario") => {
                    let value = parser
                        .value()?
                        .string()
                        .map_err(|_| anyhow::anyhow!("`--scenario` takes plain text"))?;
                    opts.scenarios = scenario::parse_list(benchmark.scenarios, &value)?;
                }
                other => bail!(
                    "unknown argument `{}` for compare; it accepts: --scenario S,..|all, \
                     --jobs a,b, --scheduled, --dry-run, --help",
                    shown(&other)
                ),
            }
        }
        Ok(opts)
    }
}

impl Parsed for Options {
    fn only_prints(&self) -> bool {
        self.dry_run
    }

    fn run(&self, ctx: &Context, out: &Output) -> Result<bool> {
        run(ctx, out, self)
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
    let bench = opts.benchmark;
    let variants = jobs::plan(opts)?;
    let base = ctx.compare_dir();
    if opts.dry_run {
        print_plan(ctx, opts, &variants, &base)?;
        return Ok(true);
    }
    if base.exists() {
        std::fs::remove_dir_all(&base)
            .with_context(|| format!("could not clear {}", base.display()))?;
    }
    let caches = DependencyCaches::new(bench, base.join("dependencies"));
    let mut scenarios = Vec::new();
    // Without content keys a change reruns every job, from the same restored caches: per job,
    // one warm measurement serves every warm scenario.
    let mut per_job_warm: Option<VariantResult> = None;
    for scenario in &opts.scenarios {
        out.say(
            Tone::Bold,
            &format!(
                "==> compare --scenario {}: {}",
                scenario.name, scenario.about
            ),
        );
        let (_edit, changed, plan_seconds) = edit_and_compare_keys(ctx, bench, scenario)?;
        let mut results = Vec::new();
        for (variant, jobs) in &variants {
            if *variant == Variant::PerJob
                && scenario.warm
                && let Some(measured) = &per_job_warm
            {
                results.push(measured.clone());
                continue;
            }
            let running = match variant {
                Variant::Shared if scenario.edit.is_some() => jobs::affected(bench, jobs, &changed),
                _ => jobs.clone(),
            };
            let run = VariantRun {
                bench,
                variant: *variant,
                scenario,
                dir: base.join(scenario.name).join(variant.name()),
                caches: &caches,
            };
            let mut result = run.jobs(ctx, out, jobs, &running)?;
            if *variant == Variant::Shared {
                result.add_plan_job(
                    PLAN_JOB,
                    plan_seconds,
                    setup::seconds(bench, &plan::plan_setup(bench.layout)),
                );
            }
            if *variant == Variant::PerJob && scenario.warm {
                per_job_warm = Some(result.clone());
            }
            results.push(result);
        }
        scenarios.push(ScenarioResult::new(scenario, &changed, results));
        // Written after every scenario, so a long run that stops keeps what it measured.
        write_report(ctx, &CompareReport::new(ctx, bench, scenarios.clone()))?;
    }
    let report = CompareReport::new(ctx, bench, scenarios);
    let markdown = report.markdown();
    eprintln!("\n{markdown}");
    out.step_summary(&markdown);
    Ok(report.passed())
}

/// target/xtask/compare.json and compare.md.
fn write_report(ctx: &Context, report: &CompareReport) -> Result<()> {
    std::fs::write(
        ctx.compare_dir().with_extension("json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    std::fs::write(ctx.compare_dir().with_extension("md"), report.markdown())?;
    Ok(())
}

/// Make the scenario's edit (kept until the returned guard drops) and compare the keys before
/// and after: the stages whose key it changed, and how long computing the keys took (the plan
/// job's work).
fn edit_and_compare_keys(
    ctx: &Context,
    bench: &Benchmark,
    scenario: &Scenario,
) -> Result<(Option<AppliedEdit>, BTreeSet<String>, f64)> {
    let before = keys::all(ctx, bench.layout.pipeline)?;
    let edit = match scenario.edit {
        Some((file, line)) => Some(AppliedEdit::apply(&ctx.root, file, line)?),
        None => None,
    };
    let started = Instant::now();
    let after = keys::all(ctx, bench.layout.pipeline)?;
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
    let bench = opts.benchmark;
    for (variant, jobs) in variants {
        println!("== {} ({} jobs)", variant.name(), jobs.len());
        if *variant == Variant::Shared {
            println!("  {PLAN_JOB}");
            println!(
                "    {}",
                setup::describe(bench, &plan::plan_setup(bench.layout))
            );
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
            println!("    {}", setup::describe(bench, &job.setup));
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
        let Some((file, _)) = scenario.edit else {
            println!("== {}: {}; every job runs", scenario.name, scenario.about);
            continue;
        };
        // The keys with the edit made (and undone at once): what the plan job would see.
        let (_, changed, _) = edit_and_compare_keys(ctx, bench, scenario)?;
        let running = jobs::affected(bench, shared, &changed);
        let skipped: Vec<&str> = shared
            .iter()
            .filter(|j| !running.iter().any(|r| r.name == j.name))
            .map(|j| j.name.as_str())
            .collect();
        println!(
            "== {}: edits {file}; shared runs {} jobs, skips: {}",
            scenario.name,
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
    bench: &'static Benchmark,
    variant: Variant,
    scenario: &'static Scenario,
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
                self.scenario.name,
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
            if self.scenario.warm {
                self.caches.restore(ctx, out, job, &target)?;
            }
            let (result, artifacts) =
                run_job(ctx, out, self.bench, planned, (&dir, &target), &produced)?;
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
            let kept = !self.scenario.warm && self.caches.adopt(ctx, job, &target)?;
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
