//! Running stages: `cargo xtask ci` runs the selected part of a pipeline in order, and
//! `cargo xtask <stage>` runs one stage the same way ([`run_stage`] is the one routine, which a
//! project's benchmarks may use too). Locally a stage whose artifact is not selected gets its
//! producer run first (which does nothing when the artifact is current); in CI artifacts are
//! downloaded.
//! Servers started by the run are always taken down at the end of `ci` — after a failure and
//! after Ctrl-C too ([`Pipeline::servers`]).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;

use crate::context::Context;
use crate::exec::Executor;
use crate::flags::StageArgs;
use crate::graph::{Pipeline, Servers, Services, Stage};
use crate::keys::{self, Keys};
use crate::output::{Output, Tone};
use crate::process::Interrupted;
use crate::report::{Report, StageReport, Status};

/// A stage with its flags.
#[derive(Debug)]
pub struct Invocation {
    pub stage: &'static Stage,
    pub args: StageArgs,
}

impl Invocation {
    /// How `cargo xtask ci` runs `stage`.
    pub fn for_ci(stage: &'static Stage) -> Result<Invocation> {
        Ok(Invocation {
            stage,
            args: stage.ci_args()?,
        })
    }

    /// The stage's name and its flags: `test --quick`
    pub fn line(&self) -> String {
        std::iter::once(self.stage.name.to_string())
            .chain(self.args.to_args())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Locally (not in CI), put the producer of every artifact a stage consumes before it unless it
/// is already there or `skipped`: a stage run alone builds what it uses when that is missing or
/// stale, and the build does nothing more when it is current.
pub fn with_producers(
    ctx: &Context,
    pipeline: &Pipeline,
    invocations: Vec<Invocation>,
    skipped: &[String],
) -> Result<Vec<Invocation>> {
    if ctx.ci {
        return Ok(invocations);
    }
    let mut out: Vec<Invocation> = Vec::new();
    for inv in invocations {
        for artifact in inv.stage.consumes {
            let producer = pipeline.producer(artifact);
            let present = out.iter().any(|i| i.stage.name == producer.name);
            if !present && !skipped.iter().any(|s| s == producer.name) {
                out.push(Invocation::for_ci(producer)?);
            }
        }
        if !out.iter().any(|i| i.stage.name == inv.stage.name) {
            out.push(inv);
        }
    }
    Ok(out)
}

pub struct RunOptions {
    /// What the report calls the run (`ci`, or the stage's name).
    pub command: String,
    pub keep_going: bool,
    pub dry_run: bool,
    /// Stop the servers the run started once it ends (`ci`), or leave them up (a stage run
    /// alone that starts them).
    pub teardown_services: bool,
    /// Skip a stage whose content key has passed before (`ci` without `--force`).
    pub reuse_passes: bool,
    /// Trace the stages whose results can be reused and check what they read (`--audit`).
    pub audit: bool,
}

/// Whether a pass of this invocation is recorded and reused: a cacheable stage run with the
/// flags `ci` uses (its key covers those).
fn keyed(inv: &Invocation) -> bool {
    inv.stage.inputs.cacheable && inv.stage.ci_args().is_ok_and(|args| args == inv.args)
}

/// The passes this run may reuse: each selected stage whose key has passed, and the stage that
/// starts the servers when every stage that needs them is reused. A tree whose keys cannot be
/// computed (no git) reuses nothing, loudly.
fn reusable(
    ctx: &Context,
    pipeline: &'static Pipeline,
    out: &Output,
    invocations: &[Invocation],
    keys: &mut Option<Keys>,
) -> BTreeMap<&'static str, String> {
    let mut reused = BTreeMap::new();
    let Some(keys) = keys else {
        return reused;
    };
    for inv in invocations {
        if !keyed(inv) {
            continue;
        }
        match keys.key(inv.stage) {
            Ok(key) => {
                let Some(pass) = keys::find_pass(ctx, inv.stage.name, &key.key) else {
                    continue;
                };
                // The key is the same everywhere; the pass counts where the same would run.
                let here = keys::realized(ctx, pipeline, inv.stage, &inv.args).ok();
                if here.as_deref() != Some(pass.realized.as_str()) {
                    let why = match &here {
                        _ if pass.realized.is_empty() => {
                            "its record does not say what ran it".to_string()
                        }
                        None => "it cannot be planned on this machine".to_string(),
                        Some(_) => "this machine would run it differently (other interpreters, \
                                    tools or services backend)"
                            .to_string(),
                    };
                    out.say(
                        Tone::Dim,
                        &format!(
                            "{}: runs: its key passed {}, but {why}",
                            inv.stage.name,
                            keys::ago(pass.passed_unix)
                        ),
                    );
                    continue;
                }
                reused.insert(
                    inv.stage.name,
                    format!(
                        "cached: passed {} with key {}",
                        keys::ago(pass.passed_unix),
                        crate::files::short(&key.key, 12)
                    ),
                );
            }
            Err(e) => out.warn(&format!(
                "could not compute the key of {}: {e:#}",
                inv.stage.name
            )),
        }
    }
    let users: Vec<&Invocation> = invocations
        .iter()
        .filter(|i| i.stage.services == Services::Requires)
        .collect();
    if !users.is_empty() && users.iter().all(|i| reused.contains_key(i.stage.name)) {
        for starter in invocations
            .iter()
            .filter(|i| i.stage.services == Services::Starts)
        {
            reused.insert(
                starter.stage.name,
                "not needed: every stage that uses the services is cached".to_string(),
            );
        }
    }
    reused
}

/// Run `invocations` in order and report. Returns the report; `Err` only for failures of the
/// run itself (not of a stage).
pub fn run(
    ctx: &Context,
    pipeline: &'static Pipeline,
    out: &Output,
    invocations: &[Invocation],
    opts: &RunOptions,
) -> Result<Report> {
    let started = Instant::now();
    let mut exec = Executor::new(ctx, out.clone(), opts.dry_run);
    let mut reports = Vec::new();
    let mut not_passed: Vec<&str> = Vec::new();
    let mut stop: Option<Status> = None;
    let mut services_touched = false;
    if opts.dry_run {
        println!(
            "# every command runs in {}; relative paths are relative to it",
            ctx.root.display()
        );
    }

    // Keys only when a stage is reused or recorded by key: they hash the whole tree. A
    // workflow job records nothing (the conclusion saves the run's records under the plan's
    // keys), so it computes none, and runs no rustc for them.
    let needs_keys = opts.audit || (!ctx.github_actions && invocations.iter().any(keyed));
    let mut keys = match needs_keys.then(|| Keys::new(ctx, pipeline)) {
        None => None,
        Some(Ok(keys)) => Some(keys),
        Some(Err(e)) => {
            out.warn(&format!(
                "content keys unavailable ({e:#}): every stage runs and no pass is recorded"
            ));
            None
        }
    };
    let reused = if opts.reuse_passes {
        reusable(ctx, pipeline, out, invocations, &mut keys)
    } else {
        BTreeMap::new()
    };
    let mut audit = opts
        .audit
        .then(|| crate::audit::Run::start(ctx, pipeline, out, opts.dry_run));

    for inv in invocations {
        let mut report = StageReport::new(inv.stage.name, inv.line());
        if let Some(status) = stop {
            report.status = if status == Status::Interrupted {
                Status::Interrupted
            } else {
                Status::NotRun
            };
            reports.push(report);
            continue;
        }
        if let Some(need) = pipeline
            .needs(inv.stage)
            .iter()
            .find(|n| not_passed.contains(n))
        {
            report.status = Status::Skipped;
            report
                .notes
                .push(format!("needs {need}, which did not pass"));
            not_passed.push(inv.stage.name);
            reports.push(report);
            continue;
        }
        if let Some(why) = reused.get(inv.stage.name) {
            report.status = Status::Cached;
            report.notes.push(why.clone());
            let line = format!("{}: {why}", inv.stage.name);
            if opts.dry_run {
                println!("==> cargo xtask {}\n  # {line}", inv.line());
            } else {
                out.say(Tone::Dim, &line);
            }
            reports.push(report);
            continue;
        }
        services_touched |= inv.stage.services == Services::Starts;
        // The key of what is about to be tested, recorded if it passes.
        let key = match &mut keys {
            Some(keys) if keyed(inv) => keys.key(inv.stage).ok(),
            _ => None,
        };
        let traces = match &mut audit {
            Some(audit) if !opts.dry_run => audit.begin(&mut exec, inv.stage),
            _ => None,
        };
        let result = run_stage(&mut exec, pipeline, inv, &mut report);
        if let (Some(audit), Some(dir)) = (&mut audit, traces) {
            exec.rewrite = None;
            let covered = keys.as_ref().map(|k| k.covered(inv.stage));
            audit.end(ctx, inv.stage, &dir, covered, result.is_ok());
        }
        if result.is_ok()
            && !opts.dry_run
            && let (Some(key), Some(before)) = (key, &keys)
        {
            let note = record_if_unchanged(ctx, pipeline, inv, before, &key.key);
            if let Some(note) = note {
                out.warn(&note);
                report.notes.push(note);
            }
        }
        if let Err(error) = result {
            not_passed.push(inv.stage.name);
            if error.is::<Interrupted>() {
                report.status = Status::Interrupted;
                stop = Some(Status::Interrupted);
            } else {
                let message = format!("{error:#}");
                report.status = Status::Failed;
                if opts.dry_run {
                    // Nothing runs in a dry run, so show the whole plan despite the error.
                    println!("  error: {message}");
                } else {
                    out.stage_failed(inv.stage.name, &message);
                    if !opts.keep_going {
                        stop = Some(Status::Failed);
                    }
                }
                report.notes.insert(0, message);
            }
        }
        reports.push(report);
    }

    if let Some(row) = audit.and_then(|audit| audit.finish(ctx, out, opts.dry_run)) {
        reports.push(row);
    }
    if let (true, true, Some(servers)) =
        (opts.teardown_services, services_touched, &pipeline.servers)
    {
        reports.extend(teardown(&mut exec, servers, opts.dry_run));
    }

    let report = Report::new(&opts.command, reports, started.elapsed().as_secs_f64());
    if !opts.dry_run {
        eprintln!();
        eprint!("{}", report.table(out));
        report.write_json(&ctx.report_path())?;
        out.step_summary(&report.markdown());
    }
    Ok(report)
}

/// Record the pass of `inv` under `key`, the key its inputs had when the run began, only if
/// they still hash the same now that it has passed: what it tested is what the key says.
/// Returns why nothing was recorded, when it was not.
fn record_if_unchanged(
    ctx: &Context,
    pipeline: &'static Pipeline,
    inv: &Invocation,
    before: &Keys,
    key: &str,
) -> Option<String> {
    let name = inv.stage.name;
    let mut after = match Keys::new(ctx, pipeline) {
        Ok(after) => after,
        Err(e) => {
            return Some(format!(
                "{name}: pass not recorded: its key cannot be computed again ({e:#})"
            ));
        }
    };
    match after.key(inv.stage) {
        Ok(now) if now.key == key => {}
        Ok(_) => {
            let changed = keys::changed_between(before, &after, inv.stage);
            let shown: Vec<&str> = changed.iter().take(5).map(String::as_str).collect();
            let more = changed.len().saturating_sub(shown.len());
            return Some(format!(
                "{name}: pass not recorded: its inputs changed while the run went on ({}{}), so \
                 what passed is not what its key describes; run it again",
                if shown.is_empty() {
                    "its toolchain, its plan, the settings or an input of a stage it depends on"
                        .to_string()
                } else {
                    shown.join(", ")
                },
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        Err(e) => return Some(format!("{name}: pass not recorded: {e:#}")),
    }
    let realized = match keys::realized(ctx, pipeline, inv.stage, &inv.args) {
        Ok(realized) => realized,
        Err(e) => return Some(format!("{name}: pass not recorded: {e:#}")),
    };
    keys::record_pass(ctx, name, key, &realized)
        .err()
        .map(|e| format!("could not record the pass of {name}: {e:#}"))
}

/// Plan and run one stage, recording its time, commands and warnings in `report`.
pub fn run_stage(
    exec: &mut Executor<'_>,
    pipeline: &'static Pipeline,
    inv: &Invocation,
    report: &mut StageReport,
) -> Result<()> {
    if exec.dry_run {
        println!("==> cargo xtask {}", inv.line());
    } else {
        exec.out.stage_header(&inv.line());
    }
    let started = Instant::now();
    let result = pipeline
        .plan(inv.stage, exec.ctx, &inv.args)
        .and_then(|plan| exec.run_plan(&plan));
    report.seconds = started.elapsed().as_secs_f64();
    report.commands = std::mem::take(&mut exec.records);
    report.notes = std::mem::take(&mut exec.warnings);
    result
}

/// Stop the servers whatever happened before. A failure here fails the run: it comes back as
/// a failed row of the report (named for the command that stops them), never hidden.
fn teardown(exec: &mut Executor<'_>, servers: &Servers, dry_run: bool) -> Option<StageReport> {
    let name = servers.stop_command;
    if dry_run {
        println!("==> cargo xtask {name} (always, at the end of ci)");
    } else {
        exec.out.stage_header(&format!("{name} (end of ci)"));
    }
    let started = Instant::now();
    let result = (servers.stop)(exec);
    let commands = std::mem::take(&mut exec.records);
    let mut notes = std::mem::take(&mut exec.warnings);
    let error = result.err()?;
    let message = format!("{error:#}");
    exec.out.stage_failed(name, &message);
    notes.insert(0, message);
    Some(StageReport {
        stage: name.to_string(),
        invocation: format!("{name} (end of ci)"),
        status: Status::Failed,
        seconds: started.elapsed().as_secs_f64(),
        notes,
        commands,
    })
}

/// Whether a finished run was interrupted.
pub fn was_interrupted(report: &Report) -> bool {
    report
        .stages
        .iter()
        .any(|s| s.status == Status::Interrupted)
}
