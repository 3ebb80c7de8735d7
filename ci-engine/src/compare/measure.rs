//! Running one compare job and measuring it: its own target directory and executor, cargo's
//! JSON messages for counting what compiled, the artifacts it leaves for later jobs (copied, as
//! download-artifact does), and its cost from the executor's records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};

use super::Benchmark;
use super::jobs::Job;
use super::report::JobResult;
use crate::artifacts;
use crate::cmd::Cmd;
use crate::context::Context;
use crate::exec::{CommandRecord, Executor};
use crate::graph::{Artifact, Services};
use crate::output::Output;
use crate::report::StageReport;
use crate::run::{self, Invocation};

/// rustc invocations that compiled something, from one command's output: cargo's JSON
/// `compiler-artifact` messages that are not fresh, or — when the output has none (maturin
/// keeps cargo's JSON to itself) — cargo's verbose `Running rustc` lines, coloured or not
/// (`CARGO_TERM_COLOR=always`, as CI sets it).
pub fn count_compiles(output: &str) -> u32 {
    let mut json = 0;
    let mut verbose = 0;
    for line in output.lines() {
        let line = without_colours(line);
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

/// `line` without a terminal's colour codes (`ESC [ parameters final-byte`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            plain.push(c);
        } else if chars.clone().next() == Some('[') {
            chars.next();
            for code in chars.by_ref() {
                if ('@'..='~').contains(&code) {
                    break;
                }
            }
        }
    }
    plain
}

/// Ask cargo for JSON messages where the command lets us (the measured build is unchanged).
fn with_json_messages(cmd: &Cmd) -> Cmd {
    let mut cmd = cmd.clone();
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    if let ["nextest", "archive", ..] = args.as_slice() {
        cmd.args
            .insert(2, "--cargo-message-format=json-render-diagnostics".into());
    }
    cmd
}

/// An executor for one job: its own target directory, cargo's verbose and JSON output, and a
/// log per command.
pub fn new_executor<'a>(
    ctx: &'a Context,
    out: &Output,
    target: &Path,
    logs: &Path,
) -> Executor<'a> {
    let mut exec = Executor::new(ctx, out.clone(), false);
    exec.env = vec![
        (
            "CARGO_TARGET_DIR".into(),
            target.to_string_lossy().into_owned(),
        ),
        ("CARGO_TERM_VERBOSE".into(), "true".into()),
    ];
    exec.log_dir = Some(logs.to_path_buf());
    exec.rewrite = Some(Box::new(with_json_messages));
    exec
}

/// Run one job in its own directory; returns its result and the artifacts it leaves for others.
pub fn run_job(
    ctx: &Context,
    out: &Output,
    bench: &'static Benchmark,
    job: &Job,
    (dir, target): (&Path, &Path),
    produced: &BTreeMap<String, Vec<(&'static Artifact, PathBuf)>>,
) -> Result<(JobResult, Vec<(&'static Artifact, PathBuf)>)> {
    let target = target.to_path_buf();
    let mut job_ctx = ctx.with_target_dir(target.clone());
    // Like a CI job: an artifact must come from an earlier job, never be built implicitly.
    job_ctx.ci = true;
    let started = Instant::now();
    // download-artifact: copy what the needed jobs built.
    for need in &job.needs {
        for (artifact, from) in produced.get(need).into_iter().flatten() {
            copy_tree(from, &artifacts::dir(&job_ctx, artifact))?;
        }
    }
    let mut exec = new_executor(&job_ctx, out, &target, &dir.join("logs"));
    let mut error = None;
    let mut services_up = false;
    let mut records = Vec::new();
    let pipeline = bench.layout.pipeline;
    let mut rust_tests = false;
    for (command, args) in &job.calls {
        let stage = pipeline.stage(command)?;
        rust_tests |= bench
            .test_archive
            .is_some_and(|archive| stage.consumes.contains(&archive));
        services_up |= stage.services == Services::Starts;
        let inv = Invocation {
            stage,
            args: args.clone(),
        };
        let mut report = StageReport::new(stage.name, inv.line());
        let result = run::run_stage(&mut exec, pipeline, &inv, &mut report);
        records.extend(report.commands);
        if let Err(e) = result {
            error = Some(format!("{command}: {e:#}"));
            break;
        }
    }
    if services_up
        && let Some(servers) = &pipeline.servers
        && let Err(e) = (servers.stop)(&mut exec)
    {
        error.get_or_insert(format!("{}: {e:#}", servers.stop_command));
    }
    records.append(&mut exec.records);
    let seconds = started.elapsed().as_secs_f64();
    let mut result = JobResult {
        name: job.name.clone(),
        passed: error.is_none(),
        seconds,
        setup_seconds: super::setup::seconds(bench, &job.setup),
        error,
        rust_tests,
        ..JobResult::default()
    };
    for record in &records {
        account(bench, &mut result, record);
    }
    let mut kept = Vec::new();
    for artifact in pipeline.artifacts() {
        let built = artifacts::dir(&job_ctx, artifact);
        if built.join(artifacts::MANIFEST).is_file() {
            let keep = dir.join("artifacts").join(artifact.name);
            copy_tree(&built, &keep)?;
            kept.push((artifact, keep));
        }
    }
    Ok((result, kept))
}

fn account(bench: &Benchmark, result: &mut JobResult, record: &CommandRecord) {
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
    if record.success
        && bench
            .wheel_build
            .is_some_and(|build| record.command.contains(build))
    {
        result.wheel_builds += 1;
    }
}

/// Copy a directory tree (files and directories; what a target directory and an artifact hold),
/// keeping each file's modification time as rust-cache's tarball does: cargo compares them.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("could not read {}", from.display()))?
    {
        let entry = entry?;
        let kind = entry.file_type()?;
        let into = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &into)?;
        } else {
            std::fs::copy(entry.path(), &into)
                .with_context(|| format!("could not copy {}", entry.path().display()))?;
            let modified = entry.metadata()?.modified()?;
            std::fs::File::options()
                .write(true)
                .open(&into)?
                .set_modified(modified)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_are_counted_from_cargo_messages() {
        // Recorded from `cargo nextest archive --cargo-message-format=json-render-diagnostics`.
        let json = concat!(
            r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.228","target":{"kind":["lib"],"name":"serde"},"fresh":false}"#,
            "\n",
            r#"{"reason":"build-script-executed","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.228"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///repo/core#0.1.0","target":{"kind":["lib"],"name":"core"},"fresh":true}"#,
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
        // The same with colours, as cargo writes them under CARGO_TERM_COLOR=always.
        let coloured = "\x1b[1m\x1b[92m   Compiling\x1b[0m greet v0.1.0\n\x1b[1m\x1b[92m     Running\x1b[0m `rustc --crate-name greet --edition=2021 src/lib.rs`\n";
        assert_eq!(count_compiles(coloured), 1);
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
        let other = Cmd::new("cargo").args(["fmt", "--check"]);
        assert_eq!(with_json_messages(&other), other);
    }
}
