//! The workflow drift check: the GitHub workflows must stay thin calls to xtask that agree
//! with the stage graph.
//!
//! - every `run:` step is one `cargo xtask <stage or command> [flags]` line whose flags parse;
//! - every `uses:` step is a setup, cache or artifact action (no build logic in YAML);
//! - a stage's consumed artifacts come from earlier in the same job, or — for files — from a
//!   job it `needs:` (directly or not) that produces them, downloaded by name before the step;
//!   services never cross jobs, so a job runs docker-up before the stages that need them;
//! - a stage's flags match what `cargo xtask ci` runs it with (sharding aside);
//! - every stage of the graph runs in some workflow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_yaml_ng::Value;

use crate::graph::{self, Artifact, StageArgs};

pub const DIR: &str = ".github/workflows";

/// The actions a step may use: setup, caching and artifacts only.
const ALLOWED_ACTIONS: &[&str] = &[
    "actions/checkout",
    "actions/cache",
    "actions/cache/restore",
    "actions/cache/save",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/setup-python",
    "actions/setup-node",
    "Swatinem/rust-cache",
    "dtolnay/rust-toolchain",
    "taiki-e/install-action",
];

/// Commands a workflow may call besides the stages.
const OTHER_COMMANDS: &[&str] = &["docker-down"];

/// The workflow files, sorted.
pub fn files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("could not read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Check the repository's workflows; returns a one-line summary.
pub fn check(ctx: &crate::context::Context) -> Result<String> {
    let mut texts = Vec::new();
    for path in files(&ctx.root)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("could not read {}", path.display()))?;
        texts.push((name, text));
    }
    check_texts(&texts)
}

/// A `cargo xtask` call found in a job.
#[derive(Debug)]
struct Call {
    command: String,
    args: StageArgs,
    /// Transferable artifacts downloaded before this step.
    downloaded: BTreeSet<Artifact>,
    place: String,
}

#[derive(Debug, Default)]
struct Job {
    needs: Vec<String>,
    /// `uses: ./.github/workflows/x.yaml` for a reusable-workflow call.
    calls_workflow: Option<String>,
    calls: Vec<Call>,
}

/// Check workflow texts given as (file name, contents).
pub fn check_texts(files: &[(String, String)]) -> Result<String> {
    let mut problems = Vec::new();
    let mut workflows: BTreeMap<String, BTreeMap<String, Job>> = BTreeMap::new();
    for (name, text) in files {
        match parse(name, text, &mut problems) {
            Ok(jobs) => {
                workflows.insert(name.clone(), jobs);
            }
            Err(e) => problems.push(format!("{name}: {e:#}")),
        }
    }
    let mut steps = 0;
    let mut seen_stages = BTreeSet::new();
    for (file, jobs) in &workflows {
        for (job_name, job) in jobs {
            let mut produced_here = BTreeSet::new();
            for call in &job.calls {
                steps += 1;
                seen_stages.insert(call.command.clone());
                let Ok(stage) = graph::stage(&call.command) else {
                    continue; // docker-down
                };
                for artifact in stage.consumes {
                    if produced_here.contains(artifact) {
                        continue;
                    }
                    if !artifact.is_transferable() {
                        problems.push(format!(
                            "{}: runs {} without running {} earlier in the job (services do not \
                             cross jobs)",
                            call.place,
                            stage.name,
                            artifact.producer().name
                        ));
                    } else if !upstream_produces(&workflows, file, job_name, *artifact) {
                        problems.push(format!(
                            "{}: runs {}, which consumes {}, but the job neither builds it nor \
                             needs a job that runs {}",
                            call.place,
                            stage.name,
                            artifact.name(),
                            artifact.producer().name
                        ));
                    } else if !call.downloaded.contains(artifact) {
                        problems.push(format!(
                            "{}: runs {} without downloading the `{}-*` artifact first",
                            call.place,
                            stage.name,
                            artifact.name()
                        ));
                    }
                }
                produced_here.extend(stage.produces.iter().copied());
                let mut sharding_aside = call.args.clone();
                sharding_aside.partition = None;
                sharding_aside.index_url = None;
                let ci_args: Vec<String> = stage.ci_args.iter().map(|a| a.to_string()).collect();
                if sharding_aside.to_args() != ci_args {
                    problems.push(format!(
                        "{}: runs `cargo xtask {} {}`, but `cargo xtask ci` runs `cargo xtask {} {}`",
                        call.place,
                        stage.name,
                        call.args.to_args().join(" "),
                        stage.name,
                        ci_args.join(" ")
                    ));
                }
            }
        }
    }
    for stage in graph::STAGES {
        if !seen_stages.contains(stage.name) {
            problems.push(format!("no workflow runs `cargo xtask {}`", stage.name));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the workflows disagree with xtask:\n  - {}",
            problems.join("\n  - ")
        );
    }
    let jobs: usize = workflows.values().map(BTreeMap::len).sum();
    Ok(format!(
        "{} workflows, {jobs} jobs, {steps} xtask steps: every run step is a known cargo xtask \
         command and every job's needs agree with the stage graph",
        workflows.len()
    ))
}

/// Whether some job that `job` needs (transitively) produces `artifact`.
fn upstream_produces(
    workflows: &BTreeMap<String, BTreeMap<String, Job>>,
    file: &str,
    job: &str,
    artifact: Artifact,
) -> bool {
    let Some(jobs) = workflows.get(file) else {
        return false;
    };
    let mut queue: Vec<&str> = jobs
        .get(job)
        .map(|j| j.needs.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut visited = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !visited.insert(name) {
            continue;
        }
        let Some(needed) = jobs.get(name) else {
            continue;
        };
        if job_produces(workflows, needed, artifact) {
            return true;
        }
        queue.extend(needed.needs.iter().map(String::as_str));
    }
    false
}

fn job_produces(
    workflows: &BTreeMap<String, BTreeMap<String, Job>>,
    job: &Job,
    artifact: Artifact,
) -> bool {
    let runs_producer = job
        .calls
        .iter()
        .any(|c| c.command == artifact.producer().name);
    let called = job.calls_workflow.as_deref().and_then(|w| workflows.get(w));
    runs_producer
        || called.is_some_and(|jobs| jobs.values().any(|j| job_produces(workflows, j, artifact)))
}

fn parse(file: &str, text: &str, problems: &mut Vec<String>) -> Result<BTreeMap<String, Job>> {
    let doc: Value = serde_yaml_ng::from_str(text).context("not valid YAML")?;
    let jobs_value = doc
        .get("jobs")
        .and_then(Value::as_mapping)
        .context("no `jobs` mapping")?;
    let mut jobs = BTreeMap::new();
    for (name, job_value) in jobs_value {
        let name = name
            .as_str()
            .context("a job name is not a string")?
            .to_string();
        let mut job = Job {
            needs: string_list(job_value.get("needs")),
            ..Job::default()
        };
        if let Some(uses) = job_value.get("uses").and_then(Value::as_str) {
            match uses.strip_prefix("./.github/workflows/") {
                Some(called) => job.calls_workflow = Some(called.to_string()),
                None => problems.push(format!(
                    "{file}: job {name}: calls a workflow outside this repository ({uses})"
                )),
            }
        }
        let mut downloaded = BTreeSet::new();
        let steps = job_value
            .get("steps")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for (index, step) in steps.iter().enumerate() {
            let place = format!("{file}: job {name}, step {}", index + 1);
            if let Some(uses) = step.get("uses").and_then(Value::as_str) {
                let action = uses.split('@').next().unwrap_or(uses);
                if !ALLOWED_ACTIONS.contains(&action) {
                    problems.push(format!(
                        "{place}: uses {action}; only setup, cache and artifact actions belong in a \
                         workflow ({}), everything else is a cargo xtask stage",
                        ALLOWED_ACTIONS.join(", ")
                    ));
                }
                if action == "actions/download-artifact" {
                    let wanted = step
                        .get("with")
                        .and_then(|w| w.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    for artifact in Artifact::ALL.into_iter().filter(|a| a.is_transferable()) {
                        if wanted.starts_with(&format!("{}-", artifact.name())) {
                            downloaded.insert(artifact);
                        }
                    }
                }
            }
            if let Some(run) = step.get("run").and_then(Value::as_str) {
                match parse_run(run) {
                    Ok((command, args)) => job.calls.push(Call {
                        command,
                        args,
                        downloaded: downloaded.clone(),
                        place,
                    }),
                    Err(e) => problems.push(format!("{place}: {e}")),
                }
            }
        }
        jobs.insert(name, job);
    }
    Ok(jobs)
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// `cargo xtask <command> [args]` → (command, parsed args). `${{ expr }}` counts as the value `1`.
fn parse_run(run: &str) -> Result<(String, StageArgs)> {
    let line = run.trim();
    if line.contains('\n') {
        bail!("`run:` must be one `cargo xtask` line, found a script:\n{line}");
    }
    let mut expanded = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${{") {
        expanded.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e + 2)
            .context("unclosed ${{ expression")?;
        expanded.push('1');
        rest = &rest[end..];
    }
    expanded.push_str(rest);
    if expanded.contains(['\'', '"', '|', '&', ';', '$', '>', '<', '`']) {
        bail!("`run:` must be a plain `cargo xtask` call without shell syntax: `{line}`");
    }
    let words: Vec<&str> = expanded.split_whitespace().collect();
    let ["cargo", "xtask", command, args @ ..] = words.as_slice() else {
        bail!("`run:` must call `cargo xtask <stage>`; found `{line}`");
    };
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if OTHER_COMMANDS.contains(command) {
        if !args.is_empty() {
            bail!("`cargo xtask {command}` takes no arguments here");
        }
        return Ok((command.to_string(), StageArgs::default()));
    }
    let stage = graph::stage(command)
        .map_err(|e| anyhow::anyhow!("{e} (or {})", OTHER_COMMANDS.join(", ")))?;
    Ok((command.to_string(), StageArgs::parse(stage, &args)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_workflows() -> Vec<(String, String)> {
        let root =
            PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo or nextest"));
        let root = root
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf();
        files(&root)
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect()
    }

    fn edit(files: &mut [(String, String)], file: &str, from: &str, to: &str) {
        let (_, text) = files.iter_mut().find(|(n, _)| n == file).unwrap();
        assert!(text.contains(from), "{file} should contain {from:?}");
        *text = text.replacen(from, to, 1);
    }

    #[test]
    fn the_repository_workflows_agree_with_the_stage_graph() {
        let summary = check_texts(&repository_workflows()).unwrap();
        assert!(
            summary.contains("every run step is a known cargo xtask command"),
            "{summary}"
        );
    }

    #[test]
    fn a_step_that_calls_something_else_than_xtask_fails_the_check() {
        let mut files = repository_workflows();
        edit(
            &mut files,
            "rust-ci-optimized.yaml",
            "run: cargo xtask lint-rust",
            "run: cargo clippy --workspace",
        );
        let err = check_texts(&files).unwrap_err().to_string();
        assert!(
            err.contains("must call `cargo xtask <stage>`; found `cargo clippy --workspace`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_stage_or_flag_fails_the_check() {
        let mut files = repository_workflows();
        edit(
            &mut files,
            "rust-ci-optimized.yaml",
            "run: cargo xtask lint-rust",
            "run: cargo xtask lint-everything",
        );
        let err = check_texts(&files).unwrap_err().to_string();
        assert!(err.contains("unknown stage `lint-everything`"), "{err}");

        let mut files = repository_workflows();
        edit(
            &mut files,
            "python-check-optimized.yaml",
            "cargo xtask python-test --full",
            "cargo xtask python-test --fast",
        );
        let err = check_texts(&files).unwrap_err().to_string();
        assert!(err.contains("unknown argument `--fast`"), "{err}");
    }

    #[test]
    fn a_test_job_that_does_not_need_the_build_fails_the_check() {
        let mut files = repository_workflows();
        edit(
            &mut files,
            "rust-ci-optimized.yaml",
            "needs: [build]",
            "needs: []",
        );
        let err = check_texts(&files).unwrap_err().to_string();
        assert!(
            err.contains("neither builds it nor needs a job that runs build-artifacts"),
            "{err}"
        );
    }

    #[test]
    fn services_must_be_started_in_the_job_that_uses_them() {
        let mut files = repository_workflows();
        edit(
            &mut files,
            "python-check-optimized.yaml",
            "run: cargo xtask docker-up",
            "run: cargo xtask docker-down",
        );
        let err = check_texts(&files).unwrap_err().to_string();
        assert!(
            err.contains("without running docker-up earlier in the job"),
            "{err}"
        );
    }

    #[test]
    fn build_logic_in_yaml_fails_the_check() {
        let mut files = repository_workflows();
        edit(
            &mut files,
            "rust-ci-optimized.yaml",
            "run: cargo xtask lint-rust",
            "run: |\n          cargo xtask lint-rust\n          cargo build",
        );
        let err = check_texts(&files).unwrap_err().to_string();
        assert!(err.contains("must be one `cargo xtask` line"), "{err}");
    }

    #[test]
    fn run_lines_parse_with_expressions_as_values() {
        let (command, args) =
            parse_run("cargo xtask test-full --partition hash:${{ matrix.shard }}/2").unwrap();
        assert_eq!(command, "test-full");
        assert_eq!(args.partition.as_deref(), Some("hash:1/2"));
        assert!(parse_run("cargo xtask test-unit && rm -rf /").is_err());
        assert!(parse_run("echo ${{ github.event.issue.title }}").is_err());
    }
}
