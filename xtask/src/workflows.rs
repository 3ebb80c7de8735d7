//! The workflow drift check: the GitHub workflows must stay thin calls to xtask that agree
//! with the stage graph.
//!
//! - every `run:` step is one `cargo xtask <stage or command> [flags]` line whose flags parse;
//! - every `uses:` step is a setup, cache or artifact action (no build logic in YAML);
//! - a stage's consumed artifacts come from earlier in the same job, or — for files — from a
//!   job it `needs:` (directly or not) that produces them, downloaded by name before the step;
//!   a reusable workflow's jobs are checked as each caller runs them (the caller's `needs:`, the
//!   artifact names it passes in `with:`, the inputs that switch build steps on);
//!   services never cross jobs, so a job runs docker-up before the stages that need them;
//! - a stage's flags match what `cargo xtask ci` runs it with (sharding, the interpreter and
//!   the package index aside: those vary between jobs);
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
    check_texts(&read_all(&ctx.root)?)
}

/// A step that matters to the check.
#[derive(Debug)]
enum Step {
    Xtask {
        command: String,
        args: StageArgs,
        place: String,
        /// `if: inputs.<name>` on the step: the input of its reusable workflow that runs it.
        when_input: Option<String>,
    },
    /// `actions/download-artifact` with this `name:` (possibly an expression).
    Download(String),
    /// `actions/upload-artifact` with this `name:`.
    Upload(String),
}

#[derive(Debug, Default)]
struct Job {
    needs: Vec<String>,
    /// `uses: ./.github/workflows/x.yaml` for a reusable-workflow call.
    calls_workflow: Option<String>,
    /// The `with:` inputs of that call, as written.
    with: BTreeMap<String, String>,
    /// The job's `outputs:`.
    outputs: BTreeMap<String, String>,
    steps: Vec<Step>,
}

impl Job {
    /// Whether the job runs `stage`; `input_on` tells whether an input of its workflow is set.
    fn runs(&self, stage: &str, input_on: &dyn Fn(&str) -> bool) -> bool {
        self.steps.iter().any(|s| {
            matches!(s, Step::Xtask { command, when_input, .. }
                if command == stage && when_input.as_deref().is_none_or(input_on))
        })
    }

    /// Whether this call of `workflow` sets its boolean input `name` (or leaves its default on).
    fn sets(&self, workflow: &Workflow, name: &str) -> bool {
        match self.with.get(name) {
            Some(value) => value == "true",
            None => workflow.input_defaults.get(name) == Some(&true),
        }
    }
}

#[derive(Debug, Default)]
struct Workflow {
    jobs: BTreeMap<String, Job>,
    /// `on.workflow_call.outputs.<name>.value`, for reusable workflows.
    outputs: BTreeMap<String, String>,
    /// The defaults of its boolean `workflow_call` inputs.
    input_defaults: BTreeMap<String, bool>,
    /// Every `workflow_call` input it declares.
    inputs: BTreeSet<String>,
    /// Whether it has triggers of its own besides `workflow_call`.
    standalone: bool,
}

type Workflows = BTreeMap<String, Workflow>;

/// Check workflow texts given as (file name, contents).
pub fn check_texts(files: &[(String, String)]) -> Result<String> {
    let mut problems = Vec::new();
    let mut workflows = Workflows::new();
    for (name, text) in files {
        match parse(name, text, &mut problems) {
            Ok(workflow) => {
                workflows.insert(name.clone(), workflow);
            }
            Err(e) => problems.push(format!("{name}: {e:#}")),
        }
    }
    let mut xtask_steps = 0;
    let mut seen_stages = BTreeSet::new();
    for (file, workflow) in &workflows {
        // A reusable workflow's jobs are checked as each caller runs them: the caller's needs
        // and `with:` inputs stand in for theirs.
        let callers = calling_jobs(&workflows, file);
        for caller in &callers {
            for input in caller.call.with.keys() {
                if !workflow.inputs.contains(input) {
                    problems.push(format!(
                        "{}: job {}: passes `{input}`, which {file} does not declare as an input",
                        caller.file, caller.job
                    ));
                }
            }
        }
        let mut contexts: Vec<Option<Caller>> = Vec::new();
        if callers.is_empty() || workflow.standalone {
            contexts.push(None);
        }
        contexts.extend(callers.into_iter().map(Some));
        for (job_name, job) in &workflow.jobs {
            if job.calls_workflow.is_some() && contexts.iter().any(Option::is_some) {
                problems.push(format!(
                    "{file}: job {job_name}: a called workflow calls another one; the drift check \
                     follows one level of calls"
                ));
            }
            let mut produced_here = BTreeSet::new();
            let mut downloaded = vec![BTreeSet::new(); contexts.len()];
            for step in &job.steps {
                let (command, args, place) = match step {
                    Step::Download(name) => {
                        for (context, downloaded) in contexts.iter().zip(&mut downloaded) {
                            let resolved = resolve_in(&workflows, file, context.as_ref(), name);
                            downloaded.extend(artifact_named(&resolved));
                        }
                        continue;
                    }
                    Step::Upload(_) => continue,
                    Step::Xtask {
                        command,
                        args,
                        place,
                        when_input,
                    } => {
                        if let Some(input) = when_input
                            && !workflow.inputs.contains(input)
                        {
                            problems.push(format!(
                                "{place}: runs if `inputs.{input}`, which {file} does not declare"
                            ));
                        }
                        // A step switched on by an input runs only if some caller sets it.
                        let runs = when_input.as_deref().is_none_or(|input| {
                            contexts.iter().any(|context| {
                                context
                                    .as_ref()
                                    .is_some_and(|caller| caller.call.sets(workflow, input))
                            })
                        });
                        if runs {
                            seen_stages.insert(command.clone());
                        }
                        (command, args, place)
                    }
                };
                xtask_steps += 1;
                let Ok(stage) = graph::stage(command) else {
                    continue; // docker-down
                };
                for artifact in stage.consumes {
                    if produced_here.contains(artifact) {
                        continue;
                    }
                    for (context, downloaded) in contexts.iter().zip(&downloaded) {
                        let problem = if !artifact.is_transferable() {
                            Some(format!(
                                "runs {} without running {} earlier in the job (services do not \
                             cross jobs)",
                                stage.name,
                                artifact.producer().name
                            ))
                        } else {
                            let producer = upstream_producer(&workflows, file, job_name, *artifact)
                                .or_else(|| {
                                    let caller = context.as_ref()?;
                                    upstream_producer(
                                        &workflows,
                                        caller.file,
                                        caller.job,
                                        *artifact,
                                    )
                                });
                            match producer {
                                None => Some(format!(
                                    "runs {}, which consumes {}, but the job neither builds it nor \
                                 needs a job that runs {}",
                                    stage.name,
                                    artifact.name(),
                                    artifact.producer().name
                                )),
                                Some(producer) if !uploads(producer, *artifact) => Some(format!(
                                    "runs {}, but the job that builds {} does not upload a `{}-*` \
                                 artifact",
                                    stage.name,
                                    artifact.name(),
                                    artifact.name()
                                )),
                                Some(_) if !downloaded.contains(artifact) => Some(format!(
                                    "runs {} without downloading the `{}-*` artifact first",
                                    stage.name,
                                    artifact.name()
                                )),
                                Some(_) => None,
                            }
                        };
                        if let Some(problem) = problem {
                            let problem = match context {
                                Some(caller) if artifact.is_transferable() => {
                                    format!(
                                        "{place} (called by {}: {}): {problem}",
                                        caller.file, caller.job
                                    )
                                }
                                _ => format!("{place}: {problem}"),
                            };
                            if !problems.contains(&problem) {
                                problems.push(problem);
                            }
                        }
                    }
                }
                produced_here.extend(stage.produces.iter().copied());
                let matrix_aside = StageArgs {
                    partition: None,
                    index_url: None,
                    python: None,
                    ..args.clone()
                };
                let in_ci = StageArgs::for_ci(stage)?;
                if matrix_aside != in_ci {
                    problems.push(format!(
                        "{place}: runs `cargo xtask {} {}`, but `cargo xtask ci` runs `cargo \
                         xtask {} {}`",
                        stage.name,
                        args.to_args().join(" "),
                        stage.name,
                        in_ci.to_args().join(" ")
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
    let jobs: usize = workflows.values().map(|w| w.jobs.len()).sum();
    Ok(format!(
        "{} workflows, {jobs} jobs, {xtask_steps} xtask steps: every run step is a known cargo \
         xtask command and every job's needs agree with the stage graph",
        workflows.len()
    ))
}

/// For each stage and command, the workflow jobs that run it (`file: job`), from workflow texts
/// (for the stage table of docs/ci.md).
#[cfg(test)]
pub fn callers(files: &[(String, String)]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut problems = Vec::new();
    let mut callers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, text) in files {
        let workflow = parse(file, text, &mut problems)?;
        for (job_name, job) in &workflow.jobs {
            for step in &job.steps {
                if let Step::Xtask { command, .. } = step {
                    let place = format!("{file}: {job_name}");
                    let jobs = callers.entry(command.clone()).or_default();
                    if !jobs.contains(&place) {
                        jobs.push(place);
                    }
                }
            }
        }
    }
    Ok(callers)
}

/// Read every workflow of the repository as (file name, contents).
pub fn read_all(root: &Path) -> Result<Vec<(String, String)>> {
    files(root)?
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            Ok((name, text))
        })
        .collect()
}

/// One job as GitHub schedules it: a matrix combination of a workflow job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInstance {
    pub workflow: String,
    /// The job's key in the workflow.
    pub job: String,
    /// `test-full (shard=1)` for a matrix combination, else the job's key.
    pub name: String,
    /// Keys of the jobs it needs, in the same workflow.
    pub needs: Vec<String>,
    pub runs_on: String,
    /// Its `cargo xtask` calls, in order, each with the `if: inputs.<name>` of its step (or
    /// of the job) that switches it on in a reusable workflow.
    calls: Vec<(String, StageArgs, Option<String>)>,
    /// For a reusable-workflow call: the called file and its boolean `with:` inputs.
    pub calls_workflow: Option<(String, BTreeMap<String, bool>)>,
    /// The defaults of its workflow's boolean `workflow_call` inputs.
    input_defaults: BTreeMap<String, bool>,
    /// Whether the workflow runs on pull requests.
    pub on_pull_request: bool,
}

impl JobInstance {
    /// The `cargo xtask` calls it makes when its workflow is called with `inputs` (empty for a
    /// job of a workflow that runs on its own).
    pub fn calls(&self, inputs: &BTreeMap<String, bool>) -> Vec<(String, StageArgs)> {
        let on = |input: &String| {
            inputs
                .get(input)
                .or_else(|| self.input_defaults.get(input))
                .copied()
                .unwrap_or(false)
        };
        self.calls
            .iter()
            .filter(|(_, _, when)| when.as_ref().is_none_or(on))
            .map(|(command, args, _)| (command.clone(), args.clone()))
            .collect()
    }
}

/// Every job of every workflow, one instance per matrix combination.
pub fn job_instances(files: &[(String, String)]) -> Result<Vec<JobInstance>> {
    let mut instances = Vec::new();
    for (file, text) in files {
        let doc: Value =
            serde_yaml_ng::from_str(text).with_context(|| format!("{file}: not valid YAML"))?;
        let on_pull_request = triggers(&doc).is_some_and(|on| on.get("pull_request").is_some());
        let input_defaults = input_defaults(&doc);
        let jobs = doc
            .get("jobs")
            .and_then(Value::as_mapping)
            .with_context(|| format!("{file}: no jobs"))?;
        for (key, job) in jobs {
            let key = key
                .as_str()
                .with_context(|| format!("{file}: a job name is not a string"))?;
            let calls_workflow = job.get("uses").and_then(Value::as_str).and_then(|uses| {
                let called = called_file(uses)?;
                let inputs = job
                    .get("with")
                    .and_then(Value::as_mapping)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_bool()?)))
                    .collect();
                Some((called, inputs))
            });
            let job_input = when_input(job);
            let runs_on = job
                .get("runs-on")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let steps = job
                .get("steps")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for combo in combinations(&matrix_of(job)) {
                let single: Matrix = combo
                    .iter()
                    .map(|(k, v)| (k.clone(), vec![v.clone()]))
                    .collect();
                let mut calls = Vec::new();
                for step in &steps {
                    let Some(run) = step.get("run").and_then(Value::as_str) else {
                        continue;
                    };
                    let when = when_input(step).or_else(|| job_input.clone());
                    calls.extend(
                        parse_run(run, &single)
                            .with_context(|| format!("{file}: job {key}"))?
                            .into_iter()
                            .map(|(command, args)| (command, args, when.clone())),
                    );
                }
                let label: Vec<String> = combo.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let name = if label.is_empty() {
                    key.to_string()
                } else {
                    format!("{key} ({})", label.join(", "))
                };
                instances.push(JobInstance {
                    workflow: file.clone(),
                    job: key.to_string(),
                    name,
                    needs: string_list(job.get("needs")),
                    runs_on: runs_on.clone(),
                    calls,
                    calls_workflow: calls_workflow.clone(),
                    input_defaults: input_defaults.clone(),
                    on_pull_request,
                });
            }
        }
    }
    Ok(instances)
}

/// Every combination of a matrix's values (one empty combination without a matrix).
fn combinations(matrix: &Matrix) -> Vec<BTreeMap<String, String>> {
    matrix
        .iter()
        .fold(vec![BTreeMap::new()], |combos, (name, values)| {
            combos
                .iter()
                .flat_map(|combo| {
                    values.iter().map(move |value| {
                        let mut next = combo.clone();
                        next.insert(name.clone(), value.clone());
                        next
                    })
                })
                .collect()
        })
}

/// The transferable artifact a name refers to (`rust-artifacts-x86_64-...`).
fn artifact_named(name: &str) -> Option<Artifact> {
    Artifact::ALL
        .into_iter()
        .filter(|a| a.is_transferable())
        .find(|a| name.starts_with(&format!("{}-", a.name())))
}

/// Follow `${{ needs.<job>.outputs.<name> }}` to the value it stands for: a job's output, or
/// a reusable workflow's output and, through it, the called job's output.
fn resolve_name(workflows: &Workflows, file: &str, name: &str) -> String {
    let reference = |prefix: &str| -> Option<(String, String)> {
        let inner = name.trim().strip_prefix("${{")?.strip_suffix("}}")?.trim();
        let (job, output) = inner.strip_prefix(prefix)?.split_once(".outputs.")?;
        Some((job.to_string(), output.to_string()))
    };
    let Some((job_name, output)) = reference("needs.") else {
        return name.to_string();
    };
    let Some(job) = workflows.get(file).and_then(|w| w.jobs.get(&job_name)) else {
        return name.to_string();
    };
    match &job.calls_workflow {
        None => job
            .outputs
            .get(&output)
            .cloned()
            .unwrap_or_else(|| name.to_string()),
        Some(called) => {
            let Some(workflow) = workflows.get(called) else {
                return name.to_string();
            };
            let Some(value) = workflow.outputs.get(&output) else {
                return name.to_string();
            };
            let inner = value
                .trim()
                .trim_start_matches("${{")
                .trim_end_matches("}}")
                .trim();
            inner
                .strip_prefix("jobs.")
                .and_then(|rest| rest.split_once(".outputs."))
                .and_then(|(job, out)| workflow.jobs.get(job)?.outputs.get(out).cloned())
                .unwrap_or_else(|| value.clone())
        }
    }
}

/// A job that calls a reusable workflow.
struct Caller<'a> {
    file: &'a str,
    job: &'a str,
    call: &'a Job,
}

/// The jobs, in any workflow, that call the workflow `file`.
fn calling_jobs<'a>(workflows: &'a Workflows, file: &str) -> Vec<Caller<'a>> {
    workflows
        .iter()
        .flat_map(|(caller_file, workflow)| {
            workflow
                .jobs
                .iter()
                .filter(|(_, job)| job.calls_workflow.as_deref() == Some(file))
                .map(|(job, call)| Caller {
                    file: caller_file,
                    job,
                    call,
                })
        })
        .collect()
}

/// An artifact name as a job of `file` sees it: `${{ inputs.<name> }}` is what the caller
/// passes, followed from the caller's workflow.
fn resolve_in(workflows: &Workflows, file: &str, caller: Option<&Caller>, name: &str) -> String {
    let input = name
        .trim()
        .strip_prefix("${{")
        .and_then(|n| n.strip_suffix("}}"))
        .and_then(|n| n.trim().strip_prefix("inputs."));
    match (input, caller) {
        (Some(input), Some(caller)) => match caller.call.with.get(input) {
            Some(passed) => resolve_name(workflows, caller.file, passed),
            None => name.to_string(),
        },
        _ => resolve_name(workflows, file, name),
    }
}

/// The job (here, or inside a called workflow) among those `job` needs, directly or not, that
/// produces `artifact`.
fn upstream_producer<'a>(
    workflows: &'a Workflows,
    file: &str,
    job: &str,
    artifact: Artifact,
) -> Option<&'a Job> {
    let jobs = &workflows.get(file)?.jobs;
    let mut queue: Vec<&str> = jobs.get(job)?.needs.iter().map(String::as_str).collect();
    let mut visited = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !visited.insert(name) {
            continue;
        }
        let Some(needed) = jobs.get(name) else {
            continue;
        };
        if let Some(producer) = producing_job(workflows, needed, artifact) {
            return Some(producer);
        }
        queue.extend(needed.needs.iter().map(String::as_str));
    }
    None
}

fn producing_job<'a>(
    workflows: &'a Workflows,
    job: &'a Job,
    artifact: Artifact,
) -> Option<&'a Job> {
    let stage = artifact.producer().name;
    if job.runs(stage, &|_| true) {
        return Some(job);
    }
    let called = workflows.get(job.calls_workflow.as_deref()?)?;
    called
        .jobs
        .values()
        .find(|j| j.runs(stage, &|input| job.sets(called, input)))
}

fn uploads(job: &Job, artifact: Artifact) -> bool {
    job.steps
        .iter()
        .any(|s| matches!(s, Step::Upload(name) if artifact_named(name) == Some(artifact)))
}

fn parse(file: &str, text: &str, problems: &mut Vec<String>) -> Result<Workflow> {
    let doc: Value = serde_yaml_ng::from_str(text).context("not valid YAML")?;
    let jobs_value = doc
        .get("jobs")
        .and_then(Value::as_mapping)
        .context("no `jobs` mapping")?;
    let called = triggers(&doc).and_then(|on| on.get("workflow_call"));
    let mut workflow = Workflow {
        input_defaults: input_defaults(&doc),
        inputs: called
            .and_then(|call| call.get("inputs"))
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(name, _)| name.as_str().map(str::to_string))
            .collect(),
        standalone: called.is_none()
            || triggers(&doc)
                .and_then(Value::as_mapping)
                .is_some_and(|on| on.len() > 1),
        ..Workflow::default()
    };
    let outputs = triggers(&doc)
        .and_then(|on| on.get("workflow_call"))
        .and_then(|call| call.get("outputs"))
        .and_then(Value::as_mapping);
    for (name, output) in outputs.into_iter().flatten() {
        if let (Some(name), Some(value)) =
            (name.as_str(), output.get("value").and_then(Value::as_str))
        {
            workflow.outputs.insert(name.to_string(), value.to_string());
        }
    }
    for (name, job_value) in jobs_value {
        let name = name
            .as_str()
            .context("a job name is not a string")?
            .to_string();
        let mut job = Job {
            needs: string_list(job_value.get("needs")),
            ..Job::default()
        };
        for (key, value) in job_value
            .get("outputs")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
        {
            if let (Some(key), Some(value)) = (key.as_str(), value.as_str()) {
                job.outputs.insert(key.to_string(), value.to_string());
            }
        }
        if let Some(uses) = job_value.get("uses").and_then(Value::as_str) {
            match called_file(uses) {
                Some(called) => {
                    job.calls_workflow = Some(called);
                    for (key, value) in job_value
                        .get("with")
                        .and_then(Value::as_mapping)
                        .into_iter()
                        .flatten()
                    {
                        if let (Some(key), Some(value)) = (key.as_str(), scalar(value)) {
                            job.with.insert(key.to_string(), value);
                        }
                    }
                }
                None => problems.push(format!(
                    "{file}: job {name}: calls a workflow outside this repository ({uses})"
                )),
            }
        }
        let matrix = matrix_of(job_value);
        let steps = job_value
            .get("steps")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for (index, step) in steps.iter().enumerate() {
            let place = format!("{file}: job {name}, step {}", index + 1);
            let with_name = || {
                step.get("with")
                    .and_then(|w| w.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            if let Some(uses) = step.get("uses").and_then(Value::as_str) {
                let action = uses.split('@').next().unwrap_or(uses);
                if !ALLOWED_ACTIONS.contains(&action) {
                    problems.push(format!(
                        "{place}: uses {action}; only setup, cache and artifact actions belong in a \
                         workflow ({}), everything else is a cargo xtask stage",
                        ALLOWED_ACTIONS.join(", ")
                    ));
                }
                match action {
                    "actions/download-artifact" => job.steps.push(Step::Download(with_name())),
                    "actions/upload-artifact" => job.steps.push(Step::Upload(with_name())),
                    _ => {}
                }
            }
            if let Some(run) = step.get("run").and_then(Value::as_str) {
                match parse_run(run, &matrix) {
                    Ok(calls) => {
                        job.steps
                            .extend(calls.into_iter().map(|(command, args)| Step::Xtask {
                                command,
                                args,
                                place: place.clone(),
                                when_input: when_input(step).or_else(|| when_input(job_value)),
                            }))
                    }
                    Err(e) => problems.push(format!("{place}: {e}")),
                }
            }
        }
        workflow.jobs.insert(name, job);
    }
    Ok(workflow)
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

/// A job's `strategy.matrix` scalar lists.
type Matrix = BTreeMap<String, Vec<String>>;

/// A YAML scalar as the text GitHub substitutes for it.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The triggers of a workflow (YAML 1.1 readers take a bare `on` for `true`; either spelling
/// of the key is accepted).
fn triggers(doc: &Value) -> Option<&Value> {
    doc.get("on").or_else(|| doc.get(Value::Bool(true)))
}

/// The defaults of a reusable workflow's boolean inputs (an input without one is off).
fn input_defaults(doc: &Value) -> BTreeMap<String, bool> {
    triggers(doc)
        .and_then(|on| on.get("workflow_call"))
        .and_then(|call| call.get("inputs"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter(|(_, input)| input.get("type").and_then(Value::as_str) == Some("boolean"))
        .filter_map(|(name, input)| {
            let default = input
                .get("default")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some((name.as_str()?.to_string(), default))
        })
        .collect()
}

/// `if: inputs.<name>` on a job or a step of a reusable workflow: the input that switches it on.
fn when_input(value: &Value) -> Option<String> {
    value
        .get("if")
        .and_then(Value::as_str)
        .map(|condition| {
            let condition = condition.trim();
            condition
                .strip_prefix("${{")
                .and_then(|c| c.strip_suffix("}}"))
                .unwrap_or(condition)
                .trim()
        })
        .and_then(|condition| condition.strip_prefix("inputs."))
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
}

/// The file a `uses: ./.github/workflows/<file>` job calls.
fn called_file(uses: &str) -> Option<String> {
    uses.split_whitespace()
        .next()?
        .strip_prefix("./.github/workflows/")
        .map(str::to_string)
}

fn matrix_of(job: &Value) -> Matrix {
    job.get("strategy")
        .and_then(|s| s.get("matrix"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            Some((
                k.as_str()?.to_string(),
                v.as_sequence()?.iter().filter_map(scalar).collect(),
            ))
        })
        .collect()
}

/// `cargo xtask <command> [args]` → (command, parsed args), once per matrix value it expands.
/// Only `${{ matrix.<name> }}` may appear: anything else expanded into a script is refused.
fn parse_run(run: &str, matrix: &Matrix) -> Result<Vec<(String, StageArgs)>> {
    let line = run.trim();
    if line.contains('\n') {
        bail!("`run:` must be one `cargo xtask` line, found a script:\n{line}");
    }
    let mut variants = vec![String::new()];
    let mut rest = line;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e + 2)
            .context("unclosed ${{ expression")?;
        let expression = rest[start + 3..end - 2].trim();
        let values = expression
            .strip_prefix("matrix.")
            .and_then(|name| matrix.get(name))
            .filter(|values| !values.is_empty())
            .with_context(|| {
                format!(
                    "`{line}` expands `${{{{ {expression} }}}}`; a run step may only use values of \
                     its job's matrix"
                )
            })?;
        variants = variants
            .iter()
            .flat_map(|prefix| {
                values
                    .iter()
                    .map(move |v| format!("{prefix}{}{v}", &rest[..start]))
            })
            .collect();
        rest = &rest[end..];
    }
    variants
        .iter()
        .map(|v| parse_words(line, &format!("{v}{rest}")))
        .collect()
}

fn parse_words(line: &str, expanded: &str) -> Result<(String, StageArgs)> {
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
        read_all(root.parent().expect("xtask lives in the workspace")).unwrap()
    }

    /// The check of the repository's workflows with one edit made to `file`.
    fn check_edited(file: &str, from: &str, to: &str) -> Result<String> {
        let mut files = repository_workflows();
        let (_, text) = files.iter_mut().find(|(n, _)| n == file).unwrap();
        assert!(text.contains(from), "{file} should contain {from:?}");
        *text = text.replacen(from, to, 1);
        check_texts(&files)
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
        let err = check_edited(
            "shared-build.yaml",
            "run: cargo xtask lint-rust",
            "run: cargo clippy --workspace",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("must call `cargo xtask <stage>`; found `cargo clippy --workspace`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_stage_or_flag_fails_the_check() {
        let err = check_edited(
            "shared-build.yaml",
            "run: cargo xtask lint-rust",
            "run: cargo xtask lint-everything",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown stage `lint-everything`"), "{err}");

        let err = check_edited(
            "python-check-optimized.yaml",
            "cargo xtask python-test --full",
            "cargo xtask python-test --fast",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown argument `--fast`"), "{err}");
    }

    #[test]
    fn a_build_job_that_does_not_upload_fails_the_check() {
        let err = check_edited(
            "shared-build.yaml",
            "name: rust-artifacts-x86_64-${{ github.sha }}",
            "name: archive-${{ github.sha }}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("does not upload a `rust-artifacts-*` artifact"),
            "{err}"
        );
    }

    #[test]
    fn a_test_job_that_does_not_need_the_build_fails_the_check() {
        let err = check_edited("rust-ci-optimized.yaml", "needs: [build]", "needs: []")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("neither builds it nor needs a job that runs build-artifacts"),
            "{err}"
        );
    }

    #[test]
    fn a_called_workflow_is_checked_as_its_caller_runs_it() {
        // python-check-optimized.yaml's jobs get the wheel through their caller: its needs,
        // the artifact name it passes, and the inputs it gives the build.
        let broken = [
            (
                "  python:\n    needs: [build]\n",
                "  python:\n",
                "neither builds it nor needs a job that runs build-wheels",
            ),
            (
                "wheel-artifact: ${{ needs.build.outputs.wheel-artifact }}",
                "wheel-artifact: ${{ needs.build.outputs.rust-artifact }}",
                "without downloading the `python-wheels-*` artifact first",
            ),
            (
                "      wheels: true\n",
                "      wheels: false\n",
                "neither builds it nor needs a job that runs build-wheels",
            ),
        ];
        for (from, to, expected) in broken {
            let err = check_edited("rust-ci-optimized.yaml", from, to)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{from:?} -> {to:?}: {err}");
            assert!(
                err.contains("(called by rust-ci-optimized.yaml: python)"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_inputs_of_the_shared_build_are_checked() {
        let broken = [
            (
                "rust-ci-optimized.yaml",
                "      lint: true\n",
                "",
                "no workflow runs `cargo xtask lint-rust`",
            ),
            (
                "shared-build.yaml",
                "if: inputs.lint\n",
                "if: inputs.lnit\n",
                "runs if `inputs.lnit`, which shared-build.yaml does not declare",
            ),
            (
                "rust-ci-optimized.yaml",
                "      lint: true\n",
                "      lnit: true\n",
                "passes `lnit`, which shared-build.yaml does not declare as an input",
            ),
        ];
        for (file, from, to, expected) in broken {
            let err = check_edited(file, from, to).unwrap_err().to_string();
            assert!(err.contains(expected), "{from:?} -> {to:?}: {err}");
        }
        // The expression form of the same condition is the same condition.
        check_edited(
            "shared-build.yaml",
            "if: inputs.lint\n",
            "if: ${{ inputs.lint }}\n",
        )
        .unwrap();
    }

    #[test]
    fn services_must_be_started_in_the_job_that_uses_them() {
        let err = check_edited(
            "python-check-optimized.yaml",
            "run: cargo xtask docker-up",
            "run: cargo xtask docker-down",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("without running docker-up earlier in the job"),
            "{err}"
        );
    }

    #[test]
    fn build_logic_in_yaml_fails_the_check() {
        let err = check_edited(
            "shared-build.yaml",
            "run: cargo xtask lint-rust",
            "run: |\n          cargo xtask lint-rust\n          cargo build",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be one `cargo xtask` line"), "{err}");
    }

    #[test]
    fn run_lines_expand_their_matrix_and_nothing_else() {
        let matrix: Matrix = [("shard".to_string(), vec!["1".to_string(), "2".to_string()])].into();
        let calls = parse_run(
            "cargo xtask test-full --partition hash:${{ matrix.shard }}/2",
            &matrix,
        )
        .unwrap();
        let partitions: Vec<_> = calls
            .iter()
            .map(|(_, a)| a.partition.clone().unwrap())
            .collect();
        assert_eq!(partitions, ["hash:1/2", "hash:2/2"]);

        let err = parse_run(
            "cargo xtask test-full --partition hash:${{ matrix.shard }}/1",
            &matrix,
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("invalid partition `hash:2/1`")
        );
        let err = parse_run(
            "cargo xtask upstream --index-url ${{ github.event.issue.title }}",
            &matrix,
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("may only use values of its job's matrix")
        );
        assert!(parse_run("cargo xtask test-unit && rm -rf /", &matrix).is_err());
    }

    #[test]
    fn job_instances_expand_the_matrix() {
        let instances = job_instances(&repository_workflows()).unwrap();
        let shards: Vec<_> = instances
            .iter()
            .filter(|j| j.job == "test-full")
            .map(|j| {
                let calls = j.calls(&BTreeMap::new());
                (j.name.as_str(), calls[1].1.partition.clone().unwrap())
            })
            .collect();
        assert_eq!(
            shards,
            [
                ("test-full (shard=1)", "hash:1/2".into()),
                ("test-full (shard=2)", "hash:2/2".into())
            ]
        );
        let build = instances
            .iter()
            .find(|j| j.workflow == "rust-ci-optimized.yaml" && j.job == "build")
            .unwrap();
        let (called, inputs) = build.calls_workflow.clone().unwrap();
        assert_eq!(called, "shared-build.yaml");
        assert_eq!(inputs.get("rust"), Some(&true));
        // The steps of the one shared build job run as the caller's inputs choose.
        let shared = instances
            .iter()
            .find(|j| j.workflow == "shared-build.yaml")
            .unwrap();
        let commands = |inputs: &[(&str, bool)]| -> Vec<String> {
            let inputs = inputs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            shared.calls(&inputs).into_iter().map(|(c, _)| c).collect()
        };
        assert_eq!(
            commands(&[("lint", true)]),
            ["lint-rust", "build-artifacts", "build-wheels"]
        );
        assert_eq!(commands(&[]), ["build-artifacts", "build-wheels"]);
        assert_eq!(commands(&[("rust", false)]), ["build-wheels"]);
    }

    #[test]
    fn a_matrix_value_the_stage_rejects_fails_the_check() {
        let err = check_edited(
            "python-check-optimized.yaml",
            "\"3.13\"]",
            "\"3.13\", \"3.14\"]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid Python version `3.14`"), "{err}");
    }
}
