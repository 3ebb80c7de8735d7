//! Compiled dependencies per build, as a restored rust-cache gives a GitHub job: in `warm` and
//! the change scenarios every job starts with the dependencies of the builds it runs already
//! compiled in its target directory, and its workspace crates not (rust-cache never keeps
//! those). Each distinct set of builds is compiled once — or taken from the job that ran it in
//! `cold` — and copied into every job that runs it; the copy is not part of the job's time.
//! Every job of one set of builds uses the same target directory path, as every run of a
//! GitHub job does: build scripts' outputs and cargo's dep-info hold absolute paths, and a
//! cache restored elsewhere would be stale.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::Benchmark;
use super::jobs::Job;
use super::measure::{copy_tree, new_executor};
use crate::cmd::Cmd;
use crate::context::Context;
use crate::graph::Pipeline;
use crate::output::{Output, Tone};
use crate::report::StageReport;
use crate::run::{self, Invocation};

pub struct DependencyCaches {
    bench: &'static Benchmark,
    dir: PathBuf,
}

/// The builds of a job: its calls of stages that compile, as `lint+build`; empty when it
/// compiles nothing.
pub fn builds_of(pipeline: &Pipeline, job: &Job) -> String {
    let names: Vec<&str> = job
        .calls
        .iter()
        .filter(|(c, _)| pipeline.stage(c).is_ok_and(|s| s.compiles()))
        .map(|(c, _)| c.as_str())
        .collect();
    names.join("+")
}

impl DependencyCaches {
    pub fn new(bench: &'static Benchmark, dir: PathBuf) -> DependencyCaches {
        DependencyCaches { bench, dir }
    }

    fn builds_of(&self, job: &Job) -> String {
        builds_of(self.bench.layout.pipeline, job)
    }

    /// Where the job's target directory is: the one path of its set of builds, or `own` for a
    /// job that compiles nothing.
    pub fn target_dir(&self, job: &Job, own: &Path) -> PathBuf {
        let builds = self.builds_of(job);
        if builds.is_empty() {
            own.to_path_buf()
        } else {
            self.dir.join("targets").join(builds)
        }
    }

    /// Put the compiled dependencies of the job's builds into `target` (its
    /// [`Self::target_dir`]), compiling them there first if no job has yet.
    pub fn restore(&self, ctx: &Context, out: &Output, job: &Job, target: &Path) -> Result<()> {
        let builds = self.builds_of(job);
        if builds.is_empty() {
            return Ok(());
        }
        let cache = self.dir.join(&builds);
        if !cache.exists() {
            out.say(
                Tone::Dim,
                &format!("    compiling the dependencies of {builds} (not measured)"),
            );
            std::fs::create_dir_all(&self.dir)?;
            let job_ctx = ctx.with_target_dir(target.to_path_buf());
            let mut exec = new_executor(&job_ctx, out, target, &self.dir.join("logs"));
            let pipeline = self.bench.layout.pipeline;
            // The calls that compile: those `builds` names.
            for (command, args) in job
                .calls
                .iter()
                .filter(|(c, _)| pipeline.stage(c).is_ok_and(|s| s.compiles()))
            {
                let inv = Invocation {
                    stage: pipeline.stage(command)?,
                    args: args.clone(),
                };
                let mut report = StageReport::new(inv.stage.name, inv.line());
                run::run_stage(&mut exec, pipeline, &inv, &mut report)
                    .with_context(|| format!("compiling the dependencies of {builds}"))?;
            }
            self.keep(ctx, target, &cache)?;
        }
        copy_tree(&cache, target)
    }

    /// After a cold job: keep its target directory as the cache of its builds, if none exists.
    /// Returns whether it was kept (then the caller must not delete it).
    pub fn adopt(&self, ctx: &Context, job: &Job, target: &Path) -> Result<bool> {
        let builds = self.builds_of(job);
        if builds.is_empty() || self.dir.join(&builds).exists() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.dir)?;
        self.keep(ctx, target, &self.dir.join(&builds))?;
        Ok(true)
    }

    /// Remove the workspace crates and the engine's own files from `target`, then move it to
    /// `cache`.
    fn keep(&self, ctx: &Context, target: &Path, cache: &Path) -> Result<()> {
        let mut clean = Cmd::new(&ctx.cargo)
            .args(["clean", "--profile", self.bench.profile])
            .env("CARGO_TARGET_DIR", target.as_os_str());
        for package in crate::keys::workspace_packages(ctx)?.keys() {
            clean = clean.args(["-p", package]);
        }
        crate::process::capture(&clean, &ctx.root)
            .context("could not remove the workspace crates from a dependency cache")?;
        let own = ctx.with_target_dir(target.to_path_buf()).xtask_dir();
        if own.exists() {
            std::fs::remove_dir_all(&own)?;
        }
        std::fs::rename(target, cache)
            .with_context(|| format!("could not move {} to {}", target.display(), cache.display()))
    }
}
