//! The job table as GitHub Actions YAML: every step a job needs follows from its stages — the
//! toolchain, Python, the tools install-action installs, the caches, the artifacts it downloads
//! and uploads — so a job is written once, in the project's table, and never by hand.

use super::caches::{
    Cache, artifact_cache, artifact_path, caches, on_runner, rust_cache, uses_uv_cache, xtask_bin,
    xtask_bin_restore, xtask_bin_restore_or_build,
};
use super::steps::{
    ON_MAIN, Setup, XtaskSource, condition, python_version, step, step_condition, with_if,
    xtask_source,
};
use super::{actions, conclusion, plan};
use crate::graph::{Artifact, Stage};
use crate::jobs::{CONCLUSION, Entry, Job, Layout, Trigger, Workflow, outcome_output, rule};
use crate::tools::UV;
use crate::yaml::Node;

/// The file's whole text.
pub fn render(workflow: &Workflow) -> String {
    let mut text = format!(
        "# Generated from {} (the job table) and the stage graph; do not edit.\n\
         # Rebuild with `{}`.\n#\n",
        workflow.layout.generation.table,
        super::REGENERATE
    );
    for line in wrap(workflow.about, 96) {
        text.push_str(&format!("# {line}\n"));
    }
    text.push_str(&crate::yaml::render(&document(workflow)));
    text
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().map(|l| l.len()).unwrap_or(0);
        if last > 0 && last + word.len() + 1 > width {
            lines.push(String::new());
        }
        if let Some(line) = lines.last_mut() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn document(workflow: &Workflow) -> Node {
    let mut doc = vec![
        ("name", Node::str(workflow.name)),
        ("on", triggers(workflow)),
        (
            "permissions",
            // actions: read lets download-artifact find artifacts of earlier attempts of the run
            // (re-run failed jobs).
            Node::map([
                ("contents", Node::str("read")),
                ("actions", Node::str("read")),
            ]),
        ),
    ];
    if !matches!(workflow.trigger, Trigger::Called { .. }) {
        // Every commit on main gets its own run (never cancelled or replaced by a newer one);
        // a pull request's newer push cancels its older run.
        let mut group = "github.event_name == 'push' && github.sha || github.ref".to_string();
        if let Trigger::Nightly { label, .. } = workflow.trigger {
            // Another label added to the pull request is a run of its own that cancels nothing
            // (and whose jobs are skipped): only pushes and its own label restart this one.
            group = format!("{} && github.run_id || {group}", other_label(label));
        }
        doc.push((
            "concurrency",
            Node::map([
                (
                    "group",
                    Node::str(format!("${{{{ github.workflow }}}}-${{{{ {group} }}}}")),
                ),
                (
                    "cancel-in-progress",
                    Node::str("${{ github.event_name == 'pull_request' }}"),
                ),
            ]),
        ));
    }
    doc.push((
        "env",
        Node::map([("CARGO_TERM_COLOR", Node::str("always"))]),
    ));
    let mut jobs: Vec<(String, Node)> = Vec::new();
    if rule::gated(workflow) {
        jobs.push((rule::PLAN.to_string(), plan::plan_job(workflow)));
    }
    jobs.extend(
        workflow
            .entries
            .iter()
            .map(|entry| entry_node(workflow, entry)),
    );
    doc.push(("jobs", Node::Map(jobs)));
    Node::map(doc)
}

fn triggers(workflow: &Workflow) -> Node {
    match &workflow.trigger {
        Trigger::Pipeline => Node::map([
            (
                "push",
                Node::map([("branches", Node::seq([Node::str("main")]))]),
            ),
            ("pull_request", Node::Null),
            ("merge_group", Node::Null),
            ("workflow_dispatch", Node::Null),
        ]),
        Trigger::Called { switches } => {
            let mut call = Vec::new();
            let inputs: Vec<(String, Node)> = switches
                .iter()
                .map(|stage| {
                    (
                        stage.to_string(),
                        Node::map([
                            (
                                "description",
                                Node::str(format!("Run cargo xtask {stage}.")),
                            ),
                            ("type", Node::str("boolean")),
                            ("default", Node::bool(false)),
                        ]),
                    )
                })
                .collect();
            if !inputs.is_empty() {
                call.push(("inputs".to_string(), Node::Map(inputs)));
            }
            // A called job's outcome outputs, passed on to the caller's conclusion.
            let outputs: Vec<(String, Node)> = workflow
                .jobs()
                .flat_map(|job| {
                    job.reported_outcomes(workflow.layout)
                        .into_iter()
                        .map(move |stage| {
                            let name = outcome_output(stage.name);
                            let value = format!("${{{{ jobs.{}.outputs.{name} }}}}", job.key);
                            (name, Node::map([("value", Node::str(value))]))
                        })
                })
                .collect();
            if !outputs.is_empty() {
                call.push(("outputs".to_string(), Node::Map(outputs)));
            }
            let call = if call.is_empty() {
                Node::Null
            } else {
                Node::Map(call)
            };
            Node::map([("workflow_call", call)])
        }
        Trigger::Nightly { cron, .. } => Node::map([
            (
                "schedule",
                Node::seq([Node::map([("cron", Node::str(*cron))])]),
            ),
            ("workflow_dispatch", Node::Null),
            (
                "pull_request",
                Node::map([(
                    "types",
                    Node::seq(["opened", "reopened", "synchronize", "labeled"].map(Node::str)),
                )]),
            ),
        ]),
    }
}

fn entry_node(workflow: &Workflow, entry: &Entry) -> (String, Node) {
    match entry {
        Entry::Job(job) => (job.key.to_string(), job_node(workflow, job)),
        Entry::Call { key, file, stages } => {
            let mut node = Vec::new();
            push_needs(&mut node, workflow, key);
            node.push((
                "uses".to_string(),
                // The `$/` self-repository form is newer than actionlint, which rejects it.
                Node::Commented(
                    format!("./.github/workflows/{file}"),
                    "zizmor: ignore[self-repository]".into(),
                ),
            ));
            if !stages.is_empty() {
                let with = stages.iter().map(|s| {
                    let on = if rule::gated(workflow) {
                        rule::switch(key, s)
                    } else {
                        Node::bool(true)
                    };
                    (s.to_string(), on)
                });
                node.push(("with".to_string(), Node::map(with)));
            }
            (key.to_string(), Node::Map(node))
        }
        Entry::Conclusion => (CONCLUSION.to_string(), conclusion::job(workflow)),
    }
}

fn push_needs(node: &mut Vec<(String, Node)>, workflow: &Workflow, key: &str) {
    let mut needs = workflow.layout.entry_needs(workflow.file, key);
    if rule::gated(workflow) {
        needs.insert(0, rule::PLAN.to_string());
        node.push(("needs".into(), Node::seq(needs.into_iter().map(Node::Str))));
        node.push(("if".into(), Node::Str(rule::entry_if(key))));
    } else if !needs.is_empty() {
        node.push(("needs".into(), Node::seq(needs.into_iter().map(Node::Str))));
    } else if let Trigger::Nightly { label, .. } = workflow.trigger {
        node.push((
            "if".into(),
            Node::str(format!(
                "github.event_name != 'pull_request' || contains(github.event.pull_request.labels.*.name, '{label}') && !({})",
                other_label(label)
            )),
        ));
    }
}

/// The condition "this is a pull request event that added a label other than `label`".
fn other_label(label: &str) -> String {
    format!(
        "github.event_name == 'pull_request' && github.event.action == 'labeled' && github.event.label.name != '{label}'"
    )
}

fn job_node(workflow: &Workflow, job: &Job) -> Node {
    let mut node = Vec::new();
    push_needs(&mut node, workflow, job.key);
    // A called job whose every stage its caller switches runs only when one is on: it does not
    // start, set up and skip each step.
    let stages: Vec<&Stage> = job.stages(workflow.pipeline()).collect();
    if let Some(on) = condition(workflow, &stages) {
        node.push(("if".into(), Node::Str(on)));
    }
    node.push(("runs-on".into(), Node::str(job.os.runner())));
    node.push(("timeout-minutes".into(), Node::int(job.timeout_minutes)));
    let outcomes: Vec<(String, Node)> = job
        .reported_outcomes(workflow.layout)
        .into_iter()
        .map(|stage| {
            let value = format!("${{{{ steps.{}.outcome }}}}", stage.name);
            (outcome_output(stage.name), Node::Str(value))
        })
        .collect();
    if !outcomes.is_empty() {
        node.push(("outputs".into(), Node::Map(outcomes)));
    }
    node.push(("steps".into(), Node::Seq(steps(workflow, job))));
    Node::Map(node)
}

/// The rustup components a job's stages run, each once, in stage order.
fn rust_components(stages: &[&Stage]) -> Vec<&'static str> {
    let mut components = Vec::new();
    for component in stages.iter().flat_map(|s| s.rust_components) {
        if !components.contains(component) {
            components.push(*component);
        }
    }
    components
}

/// What `job` does before its first stage, each step with the node that does it (none for
/// xtask's build, which happens in the first step that calls `cargo xtask`).
pub fn setup(workflow: &Workflow, job: &Job) -> Vec<(Setup, Option<Node>)> {
    let stages: Vec<&Stage> = job.stages(workflow.pipeline()).collect();
    let layout = workflow.layout;
    let os = job.os.platform();
    let mut out = vec![(
        Setup::Checkout,
        Some(Node::Map(step(
            actions::CHECKOUT,
            vec![("persist-credentials", Node::bool(false))],
        ))),
    )];
    // A job that runs the plan's xtask and no stage that uses the toolchain installs none: its
    // xtask asks the runner image's cargo only where the workspace is (`cargo metadata`).
    let source = xtask_source(workflow, job);
    if source != XtaskSource::Plans || stages.iter().any(|s| s.uses_toolchain()) {
        let components = rust_components(&stages);
        out.push((
            Setup::Toolchain,
            Some(Node::Map(step(
                layout.generation.toolchain_action,
                if components.is_empty() {
                    vec![]
                } else {
                    vec![("components", Node::str(components.join(", ")))]
                },
            ))),
        ));
    }
    let python = python_version(workflow, job);
    if let Some(version) = &python {
        let users: Vec<&Stage> = stages.iter().copied().filter(|s| s.uses_python()).collect();
        let mut node = vec![("id".to_string(), Node::str("python"))];
        node.extend(step(
            actions::SETUP_PYTHON,
            vec![("python-version", Node::str(version))],
        ));
        out.push((
            Setup::Python(version.lines().count()),
            Some(with_if(node, step_condition(workflow, job, &users))),
        ));
    }
    if source == XtaskSource::Plans {
        out.push((Setup::XtaskBinary, Some(xtask_bin_restore(layout, job.os))));
    } else {
        out.push((
            Setup::RustCache {
                workspace: job.compiles(workflow.pipeline()),
            },
            Some(Node::Map(rust_cache(workflow, job))),
        ));
        if source == XtaskSource::Built {
            out.push((Setup::BuildXtask, None));
        } else {
            let [restore, build] = xtask_bin_restore_or_build(layout, job.os);
            out.push((Setup::XtaskBinary, Some(restore)));
            out.push((Setup::BuildXtaskIfMissing, Some(build)));
        }
    }
    for tool in layout.generation.installed_by_action {
        let users: Vec<&Stage> = stages
            .iter()
            .copied()
            .filter(|s| s.tools.contains(tool))
            .collect();
        if users.is_empty() {
            continue;
        }
        out.push((
            Setup::InstallAction,
            Some(with_if(
                step(
                    actions::INSTALL_ACTION,
                    vec![("tool", Node::str(format!("{}@{}", tool.name, tool.version)))],
                ),
                step_condition(workflow, job, &users),
            )),
        ));
    }
    for cache in caches(workflow, job, &stages, python.is_some()) {
        out.push((Setup::Cache(cache.name), Some(cache.restore())));
    }
    for artifact in job.consumes(workflow.pipeline()) {
        // Downloaded when a stage that uses it runs (a caller's switch may turn them off).
        let users: Vec<&Stage> = stages
            .iter()
            .copied()
            .filter(|s| s.consumes.contains(&artifact))
            .collect();
        out.push((
            Setup::Download(artifact),
            Some(with_if(
                step(
                    actions::DOWNLOAD_ARTIFACT,
                    vec![
                        ("name", Node::str(format!("{}-{os}", artifact.name))),
                        ("path", Node::str(artifact_path(layout, artifact))),
                        ("github-token", Node::str("${{ github.token }}")),
                        ("run-id", Node::str("${{ github.run_id }}")),
                    ],
                ),
                step_condition(workflow, job, &users),
            )),
        ));
    }
    if !reused(workflow, job).is_empty() {
        out.push((
            Setup::Keys,
            Some(Node::map([
                ("id", Node::str("keys")),
                (
                    "run",
                    Node::str(format!("{} keys", xtask_command(layout, source))),
                ),
            ])),
        ));
    }
    out
}

/// How a job's steps call xtask.
fn xtask_command(layout: &Layout, source: XtaskSource) -> String {
    match source {
        XtaskSource::Built => "cargo xtask".to_string(),
        XtaskSource::Plans | XtaskSource::RestoredOrBuilt => xtask_bin(layout),
    }
}

/// The artifacts `job` builds and shares, which it may reuse by content key.
fn reused(workflow: &Workflow, job: &Job) -> Vec<&'static Artifact> {
    job.stages(workflow.pipeline())
        .flat_map(|s| s.produces.iter().copied())
        .filter(|a| job.shares(workflow.layout, a))
        .collect()
}

fn steps(workflow: &Workflow, job: &Job) -> Vec<Node> {
    let stages: Vec<&Stage> = job.stages(workflow.pipeline()).collect();
    let layout = workflow.layout;
    let os = job.os.platform();
    let mut out: Vec<Node> = setup(workflow, job)
        .into_iter()
        .filter_map(|(_, node)| node)
        .collect();
    let xtask = xtask_command(layout, xtask_source(workflow, job));
    let caches = caches(
        workflow,
        job,
        &stages,
        python_version(workflow, job).is_some(),
    );
    let reused = reused(workflow, job);
    for stage in &stages {
        let kept: Vec<Cache> = stage
            .produces
            .iter()
            .filter(|a| reused.contains(a))
            .map(|a| artifact_cache(workflow, job, stage, a))
            .collect();
        out.extend(kept.iter().map(Cache::restore));
        let args = job.args(workflow.layout, stage);
        let line = std::iter::once(format!("{xtask} {}", stage.name))
            .chain(args.to_args())
            .collect::<Vec<_>>()
            .join(" ");
        let mut run = Vec::new();
        if job.reports_outcome(workflow.layout, stage) {
            // Its failure is the job's output, which the conclusion checks; the steps after it
            // (a shared build and its upload) still run.
            run.push(("id".to_string(), Node::str(stage.name)));
            run.push(("continue-on-error".to_string(), Node::bool(true)));
        }
        run.push(("run".to_string(), Node::Str(line)));
        out.push(with_if(run, step_condition(workflow, job, &[stage])));
        for artifact in stage
            .produces
            .iter()
            .filter(|a| job.shares(workflow.layout, a))
        {
            let mut with = vec![
                ("name", Node::str(format!("{}-{os}", artifact.name))),
                ("path", Node::str(artifact_path(layout, artifact))),
                ("retention-days", Node::int(3)),
                ("if-no-files-found", Node::str("error")),
                // A re-run of this job replaces what the first attempt uploaded.
                ("overwrite", Node::bool(true)),
            ];
            if artifact.compressed {
                with.push(("compression-level", Node::int(0)));
            }
            let mut upload = step(actions::UPLOAD_ARTIFACT, with);
            // One block at a time: the order the blob service receives blocks in is then the
            // order of the file. GitHub's store commits blocks by id and is indifferent; act's
            // artifact server writes each block at the end of the file as it arrives, so
            // concurrent blocks (5 by default) corrupt any artifact over one 8 MiB block.
            upload.push((
                "env".into(),
                Node::map([("ACTIONS_ARTIFACT_UPLOAD_CONCURRENCY", Node::int(1))]),
            ));
            out.push(with_if(upload, step_condition(workflow, job, &[stage])));
        }
        out.extend(kept.iter().map(Cache::save));
    }
    if job.starts_services(workflow.pipeline())
        && let Some(servers) = &workflow.pipeline().servers
    {
        out.push(Node::map([
            ("if", Node::str("always()")),
            (
                "run",
                Node::str(format!("{xtask} {}", servers.stop_command)),
            ),
        ]));
    }
    if uses_uv_cache(layout, &stages) {
        // Pruned before it is saved: what `uv cache prune --ci` keeps is what pays to restore.
        let uv = on_runner(layout, |ctx| UV.program(ctx));
        out.push(Node::map([
            ("if", Node::str(format!("always() && {ON_MAIN}"))),
            ("run", Node::str(format!("{uv} cache prune --ci"))),
        ]));
    }
    for cache in &caches {
        out.push(cache.save());
    }
    out
}
