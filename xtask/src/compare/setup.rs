//! What a job costs before its first stage: the runner's start-up plus the price of each of its
//! setup steps ([`Setup`], the list the workflows are rendered from). A price was measured under
//! act on this machine where act runs the real action (docs/performance.md, "Setup per job,
//! executed under act", says how); where act runs a stand-in or nothing (runner start-up,
//! checkout, the toolchain, nextest's install), it is an estimate and says so.

use crate::pipeline::PIPELINE;
use crate::pipeline::RUST_TESTS;
use crate::tools::NEXTEST;
use ci_engine::flags::StageArgs;
use ci_engine::graph::Stage;
use ci_engine::workflows::{Setup, TOOLS_CACHE};

/// Where a price comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The median of that step's execution time under act: every job of `run.sh push docs-pr
    /// py-pr queue`, one job at a time (docs/performance.md).
    Act,
    /// Not measurable under act; why, and where the figure comes from.
    Estimate(&'static str),
}

/// A GitHub-hosted runner's start-up until the job's first step: GitHub publishes no figure.
/// Depot's published target for starting its own runners is five seconds
/// (depot.dev/blog/github-actions-breaking-five-second-barrier); a GitHub-hosted VM is not
/// faster, so this is a lower bound.
pub const RUNNER_START: (f64, Source) = (
    5.0,
    Source::Estimate("a lower bound: Depot's published start-up target for its own runners"),
);

/// actions/cache's restore rate under act: a 45 MB tools cache (the checks' and the wheel
/// job's) restored in 1.6 s, the median of its six hits.
const RESTORE_MB_PER_S: f64 = 45.0 / 1.6;

/// The price of one step.
pub fn price(step: Setup) -> (f64, Source) {
    use Source::{Act, Estimate};
    match step {
        Setup::Checkout => (
            2.0,
            Estimate("act copies the tree instead of checking it out"),
        ),
        Setup::Toolchain => (
            15.0,
            Estimate("act's stand-in only checks the host's toolchain; rustup installing 1.95.0"),
        ),
        Setup::InstallAction => (
            2.0,
            Estimate("act's stand-in only checks the host's cargo-nextest; one binary download"),
        ),
        Setup::Python(_) => (0.2, Act),
        // Under act every rust-cache restore misses (each job's CARGO_HOME is in the key): a
        // hit is priced at the restore rate measured for actions/cache and the size of the
        // entry act saved (the workspace's build 270 MB, xtask's dependencies 91 MB).
        Setup::RustCache { workspace: true } => (
            270.0 / RESTORE_MB_PER_S,
            Estimate("act never restores it; its size at the measured restore rate"),
        ),
        Setup::RustCache { workspace: false } => (
            91.0 / RESTORE_MB_PER_S,
            Estimate("act never restores it; its size at the measured restore rate"),
        ),
        // xtask and, as act restores no Rust cache, its dependencies: an upper bound (7.7 s
        // with the dependencies restored, docs/ci.md).
        Setup::BuildXtask => (15.9, Act),
        Setup::XtaskBinary => (0.3, Act),
        Setup::BuildXtaskIfMissing => (
            0.0,
            Estimate("never runs with the plan job, which saves xtask's binary first"),
        ),
        // Median of ten hits; the Python jobs' took 17-28 s, as act's jobs share one HOME and
        // their entry held every tool the run had installed (117 MB, against 45 MB).
        Setup::Cache(TOOLS_CACHE) => (2.3, Act),
        // uv's (4 hits, 0.23-0.27 s) and hypothesis's (2 hits, 0.18-0.19 s).
        Setup::Cache(_) => (0.3, Act),
        // Most of it passes before the transfer starts (the transfer itself takes under a
        // second); GitHub's may be shorter.
        Setup::Download(a) if *a == RUST_TESTS => (14.6, Act),
        Setup::Download(_) => (9.4, Act),
        Setup::Keys => (0.3, Act),
    }
}

/// A job's whole setup: the runner's start-up and every step.
pub fn seconds(steps: &[Setup]) -> f64 {
    RUNNER_START.0 + steps.iter().map(|s| price(*s).0).sum::<f64>()
}

/// `steps` as one line: each step and its price, the estimates marked.
pub fn describe(steps: &[Setup]) -> String {
    let mut parts = vec![format!("runner {:.1}*", RUNNER_START.0)];
    for step in steps {
        let (seconds, source) = price(*step);
        let mark = if matches!(source, Source::Estimate(_)) {
            "*"
        } else {
            ""
        };
        parts.push(format!("{} {seconds:.1}{mark}", name(*step)));
    }
    format!(
        "setup {:.1} s = {} (* estimated)",
        seconds(steps),
        parts.join(" + ")
    )
}

fn name(step: Setup) -> String {
    match step {
        Setup::Checkout => "checkout".into(),
        Setup::Toolchain => "toolchain".into(),
        Setup::Python(n) => format!("python×{n}"),
        Setup::RustCache { workspace: true } => "rust-cache".into(),
        Setup::RustCache { workspace: false } => "rust-cache(xtask)".into(),
        Setup::BuildXtask => "xtask build".into(),
        Setup::XtaskBinary => "xtask binary".into(),
        Setup::BuildXtaskIfMissing => "xtask build if missing".into(),
        Setup::InstallAction => "nextest".into(),
        Setup::Cache(what) => format!("{what} cache"),
        Setup::Download(artifact) => format!("{} download", artifact.name),
        Setup::Keys => "keys".into(),
    }
}

/// The setup of a per-job job that runs `calls`, made from the shared job it comes from: it
/// downloads nothing and computes no keys; it installs the toolchain (where the shared job,
/// running the plan's xtask, may not) and compiles xtask, with the workspace's Rust cache
/// when one of its calls compiles (it builds what the shared job downloaded) and xtask's
/// otherwise; nextest only when a call runs it; `pythons` interpreters when it was split per
/// interpreter.
pub fn per_job(
    shared: &[Setup],
    calls: &[(String, StageArgs)],
    pythons: Option<usize>,
) -> Vec<Setup> {
    let stages: Vec<&Stage> = calls
        .iter()
        .filter_map(|(c, _)| PIPELINE.stage(c).ok())
        .collect();
    let compiles = stages.iter().any(|s| s.inputs.toolchain);
    let nextest = stages.iter().any(|s| s.tools.contains(&NEXTEST));
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
            Setup::InstallAction if !nextest => {}
            Setup::Python(n) => out.push(Setup::Python(pythons.unwrap_or(n))),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::WHEELS;

    #[test]
    fn a_per_job_job_builds_what_the_shared_one_downloads() {
        // The shared job runs the plan's xtask and uses no toolchain; the per-job one builds
        // xtask.
        let shared = [
            Setup::Checkout,
            Setup::Python(3),
            Setup::XtaskBinary,
            Setup::Cache("uv"),
            Setup::Download(&WHEELS),
        ];
        let calls: Vec<(String, StageArgs)> = ["build-wheels", "python-test"]
            .iter()
            .map(|c| (c.to_string(), StageArgs::default()))
            .collect();
        assert_eq!(
            per_job(&shared, &calls, Some(1)),
            vec![
                Setup::Checkout,
                Setup::Toolchain,
                Setup::Python(1),
                Setup::RustCache { workspace: true },
                Setup::BuildXtask,
                Setup::Cache("uv"),
            ]
        );
        // A job that builds nothing restores only xtask's Rust cache, and no nextest.
        let codespell = [("codespell".to_string(), StageArgs::default())];
        assert_eq!(
            per_job(
                &[Setup::Checkout, Setup::XtaskBinary, Setup::InstallAction],
                &codespell,
                None
            ),
            vec![
                Setup::Checkout,
                Setup::Toolchain,
                Setup::RustCache { workspace: false },
                Setup::BuildXtask
            ]
        );
    }

    #[test]
    fn the_description_sums_what_it_lists() {
        let steps = [Setup::Checkout, Setup::Keys];
        let line = describe(&steps);
        assert!(
            line.starts_with(&format!("setup {:.1} s = runner", seconds(&steps))),
            "{line}"
        );
        let checkout = format!("checkout {:.1}*", price(Setup::Checkout).0);
        assert!(
            line.contains(&checkout) && line.contains("keys 0.3 "),
            "{line}"
        );
    }
}
