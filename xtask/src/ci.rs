//! Running stages: `cargo xtask ci` runs the selected part of the graph in order, and
//! `cargo xtask <stage>` runs one stage the same way. Services started by the run are always
//! taken down at the end of `ci` — after a failure and after Ctrl-C too.

use std::time::Instant;

use anyhow::Result;

use crate::context::Context;
use crate::exec::{Executor, Interrupted};
use crate::graph::{Artifact, Stage, StageArgs};
use crate::output::Output;
use crate::report::{Report, StageReport, Status};
use crate::stages;

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
            args: StageArgs::for_ci(stage)?,
        })
    }

    /// `python-test --full`
    pub fn line(&self) -> String {
        std::iter::once(self.stage.name.to_string())
            .chain(self.args.to_args())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub struct RunOptions {
    /// What the report calls the run (`ci`, or the stage's name).
    pub command: String,
    pub keep_going: bool,
    pub dry_run: bool,
    /// Stop the services the run started once it ends (`ci`), or leave them up (`docker-up`).
    pub teardown_services: bool,
}

/// Run `invocations` in order and report. Returns the report; `Err` only for failures of the
/// run itself (not of a stage).
pub fn run(
    ctx: &Context,
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

    for inv in invocations {
        let mut report = StageReport {
            stage: inv.stage.name.to_string(),
            invocation: inv.line(),
            status: Status::Passed,
            seconds: 0.0,
            notes: Vec::new(),
            commands: Vec::new(),
        };
        if let Some(status) = stop {
            report.status = if status == Status::Interrupted {
                Status::Interrupted
            } else {
                Status::NotRun
            };
            reports.push(report);
            continue;
        }
        if let Some(need) = inv.stage.needs.iter().find(|n| not_passed.contains(n)) {
            report.status = Status::Skipped;
            report
                .notes
                .push(format!("needs {need}, which did not pass"));
            not_passed.push(inv.stage.name);
            reports.push(report);
            continue;
        }
        if opts.dry_run {
            println!("==> cargo xtask {}", inv.line());
        } else {
            out.stage_header(&inv.line());
        }
        services_touched |= inv.stage.produces.contains(&Artifact::Services);
        let stage_started = Instant::now();
        let result = (inv.stage.plan)(ctx, &inv.args).and_then(|plan| exec.run_plan(&plan));
        report.seconds = stage_started.elapsed().as_secs_f64();
        report.commands = std::mem::take(&mut exec.records);
        report.notes = std::mem::take(&mut exec.warnings);
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

    if opts.teardown_services && services_touched {
        reports.extend(teardown(&mut exec, opts.dry_run));
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

/// Stop the services whatever happened before. A failure here fails the run: it comes back as
/// a failed `docker-down` row of the report, never hidden.
fn teardown(exec: &mut Executor<'_>, dry_run: bool) -> Option<StageReport> {
    if dry_run {
        println!("==> cargo xtask docker-down (always, at the end of ci)");
    } else {
        exec.out.stage_header("docker-down (end of ci)");
    }
    let started = Instant::now();
    let result = stages::services::take_down(exec);
    let commands = std::mem::take(&mut exec.records);
    let mut notes = std::mem::take(&mut exec.warnings);
    let error = result.err()?;
    let message = format!("{error:#}");
    exec.out.stage_failed("docker-down", &message);
    notes.insert(0, message);
    Some(StageReport {
        stage: "docker-down".to_string(),
        invocation: "docker-down (end of ci)".to_string(),
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
