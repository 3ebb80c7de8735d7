//! What a job costs before its first stage: the runner's start-up plus the price of each of its
//! setup steps ([`Setup`], the list the workflows are rendered from), as the project's
//! [`Benchmark`] prices them: measured where it could run the real step, estimated, and saying
//! so, where not.

use super::Benchmark;
use crate::flags::StageArgs;
use crate::graph::Stage;
use crate::jobs::Layout;
use crate::workflows::Setup;

/// Where a price comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Measured: the median of that step's execution time where it ran (under act, say).
    Measured,
    /// Not measurable there; why, and where the figure comes from.
    Estimate(&'static str),
}

/// Seconds, and where the figure comes from.
pub type Price = (f64, Source);

/// A job's whole setup: the runner's start-up and every step.
pub fn seconds(bench: &Benchmark, steps: &[Setup]) -> f64 {
    bench.runner_start.0 + steps.iter().map(|s| (bench.price)(*s).0).sum::<f64>()
}

/// `steps` as one line: each step and its price, the estimates marked.
pub fn describe(bench: &Benchmark, steps: &[Setup]) -> String {
    let mark = |source: Source| match source {
        Source::Estimate(_) => "*",
        Source::Measured => "",
    };
    let (start, source) = bench.runner_start;
    let mut parts = vec![format!("runner {start:.1}{}", mark(source))];
    for step in steps {
        let (seconds, source) = (bench.price)(*step);
        parts.push(format!(
            "{} {seconds:.1}{}",
            name(bench, *step),
            mark(source)
        ));
    }
    format!(
        "setup {:.1} s = {} (* estimated)",
        seconds(bench, steps),
        parts.join(" + ")
    )
}

fn name(bench: &Benchmark, step: Setup) -> String {
    match step {
        Setup::Checkout => "checkout".into(),
        Setup::Toolchain => "toolchain".into(),
        Setup::Python(n) => format!("python×{n}"),
        Setup::RustCache { workspace: true } => "rust-cache".into(),
        Setup::RustCache { workspace: false } => "rust-cache(xtask)".into(),
        Setup::BuildXtask => "xtask build".into(),
        Setup::XtaskBinary => "xtask binary".into(),
        Setup::BuildXtaskIfMissing => "xtask build if missing".into(),
        Setup::InstallAction => {
            let tools = &bench.layout.generation.installed_by_action;
            let names: Vec<&str> = tools.iter().map(|t| t.name).collect();
            names.join("+")
        }
        Setup::Cache(what) => format!("{what} cache"),
        Setup::Download(artifact) => format!("{} download", artifact.name),
        Setup::Keys => "keys".into(),
    }
}

/// The setup of a per-job job that runs `calls`, made from the shared job it comes from: it
/// downloads nothing and computes no keys; it installs the toolchain (where the shared job,
/// running the plan's xtask, may not) and compiles xtask, with the workspace's Rust cache
/// when one of its calls compiles (it builds what the shared job downloaded) and xtask's
/// otherwise; install-action's tools only when a call uses one; `pythons` interpreters when it
/// was split per interpreter.
pub fn per_job(
    layout: &Layout,
    shared: &[Setup],
    calls: &[(String, StageArgs)],
    pythons: Option<usize>,
) -> Vec<Setup> {
    let stages: Vec<&Stage> = calls
        .iter()
        .filter_map(|(c, _)| layout.pipeline.stage(c).ok())
        .collect();
    let compiles = stages.iter().any(|s| s.compiles());
    let installs = stages.iter().any(|s| {
        s.tools
            .iter()
            .any(|t| layout.generation.installed_by_action.contains(t))
    });
    let mut out = Vec::new();
    for step in shared {
        match *step {
            Setup::Download(_)
            | Setup::Keys
            | Setup::BuildXtask
            | Setup::BuildXtaskIfMissing
            | Setup::Toolchain => {}
            Setup::Checkout => out.extend([Setup::Checkout, Setup::Toolchain]),
            Setup::XtaskBinary | Setup::RustCache { .. } if !out.contains(&Setup::BuildXtask) => {
                out.push(Setup::RustCache {
                    workspace: compiles,
                });
                out.push(Setup::BuildXtask);
            }
            Setup::XtaskBinary | Setup::RustCache { .. } => {}
            Setup::InstallAction if !installs => {}
            Setup::Python(n) => out.push(Setup::Python(pythons.unwrap_or(n))),
            other => out.push(other),
        }
    }
    out
}
