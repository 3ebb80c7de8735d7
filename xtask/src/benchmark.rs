//! What `cargo xtask compare` measures (`ci_engine::compare` runs it): the pull-request
//! pipeline's jobs and, with `--scheduled`, the nightly one's; the situations; and what each
//! setup step of a job costs on a runner.

use crate::pipeline::{LAYOUT, RUST_TESTS};
use crate::stages::rust::PROFILE;
use ci_engine::compare::{Benchmark, Price, Scenario, Source};
use ci_engine::workflows::{Setup, TOOLS_CACHE};

/// This repository's benchmark.
pub static BENCHMARK: Benchmark = Benchmark {
    layout: &LAYOUT,
    scenarios: &[
        Scenario {
            name: "cold",
            about: "every job starts from an empty target directory",
            warm: false,
            edit: None,
        },
        Scenario {
            name: "warm",
            about: "every job starts with its dependencies compiled (a restored Rust cache), \
                    the workspace crates not",
            warm: true,
            edit: None,
        },
        Scenario {
            name: "rust-change",
            about: "warm, after a one-line edit in icechunk/src",
            warm: true,
            edit: Some(("icechunk/src/lib.rs", "// compare: rust-change\n")),
        },
        Scenario {
            name: "python-change",
            about: "warm, after a one-line edit in icechunk-python/python",
            warm: true,
            edit: Some((
                "icechunk-python/python/icechunk/__init__.py",
                "# compare: python-change\n",
            )),
        },
        Scenario {
            name: "docs-change",
            about: "warm, after a one-line edit in docs/",
            warm: true,
            edit: Some(("docs/performance.md", "\ncompare: docs-change\n")),
        },
    ],
    runner_start: RUNNER_START,
    price,
    prices_from: "docs/performance.md",
    wheel_build: Some("maturin build"),
    test_archive: Some(&RUST_TESTS),
    profile: PROFILE,
};

/// A GitHub-hosted runner's start-up until the job's first step: GitHub publishes no figure.
/// Depot's published target for starting its own runners is five seconds
/// (depot.dev/blog/github-actions-breaking-five-second-barrier); a GitHub-hosted VM is not
/// faster, so this is a lower bound.
const RUNNER_START: Price = (
    5.0,
    Source::Estimate("a lower bound: Depot's published start-up target for its own runners"),
);

/// actions/cache's restore rate under act: a 45 MB tools cache (the checks' and the wheel
/// job's) restored in 1.6 s, the median of its six hits.
const RESTORE_MB_PER_S: f64 = 45.0 / 1.6;

/// The price of one step: measured under act on this machine where act runs the real action
/// (docs/performance.md, "Setup per job, executed under act", says how), estimated where act
/// runs a stand-in or nothing (runner start-up, checkout, the toolchain, nextest's install).
fn price(step: Setup) -> Price {
    use Source::{Estimate, Measured};
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
        Setup::Python(_) => (0.2, Measured),
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
        Setup::BuildXtask => (15.9, Measured),
        Setup::XtaskBinary => (0.3, Measured),
        Setup::BuildXtaskIfMissing => (
            0.0,
            Estimate("never runs with the plan job, which saves xtask's binary first"),
        ),
        // Median of ten hits; the Python jobs' took 17-28 s, as act's jobs share one HOME and
        // their entry held every tool the run had installed (117 MB, against 45 MB).
        Setup::Cache(TOOLS_CACHE) => (2.3, Measured),
        // uv's (4 hits, 0.23-0.27 s) and hypothesis's (2 hits, 0.18-0.19 s).
        Setup::Cache(_) => (0.3, Measured),
        // Most of it passes before the transfer starts (the transfer itself takes under a
        // second); GitHub's may be shorter.
        Setup::Download(a) if *a == RUST_TESTS => (14.6, Measured),
        Setup::Download(_) => (9.4, Measured),
        Setup::Keys => (0.3, Measured),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::pipeline::{PIPELINE, WHEELS};
    use ci_engine::compare::caches::builds_of;
    use ci_engine::compare::jobs::{Job, Variant, affected, call_lines, plan};
    use ci_engine::compare::setup::{describe, per_job, seconds};
    use ci_engine::compare::{Options, scenario};
    use ci_engine::flags::StageArgs;

    fn builds(command: &str) -> bool {
        PIPELINE.stage(command).is_ok_and(|s| s.builds())
    }

    fn variants(jobs: Option<&[&str]>) -> Vec<(Variant, Vec<Job>)> {
        let opts = Options {
            jobs: jobs.map(|j| j.iter().map(|s| s.to_string()).collect()),
            ..Options::new(&BENCHMARK)
        };
        plan(&opts).unwrap()
    }

    fn names(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.name.as_str()).collect()
    }

    #[test]
    fn shared_builds_each_artifact_once_and_test_jobs_reuse_it() {
        let all = variants(None);
        let shared = &all[1].1;
        let building: Vec<&Job> = shared
            .iter()
            .filter(|j| j.calls.iter().any(|(c, _)| builds(c)))
            .collect();
        let lines: Vec<Vec<String>> = building.iter().map(|j| call_lines(j)).collect();
        assert_eq!(
            lines,
            [
                vec![
                    "cargo xtask lint-rust".to_string(),
                    "cargo xtask build-artifacts".to_string()
                ],
                vec!["cargo xtask build-wheels".to_string()]
            ]
        );
        let python = shared
            .iter()
            .find(|j| j.name == "python / python-test")
            .unwrap();
        assert_eq!(python.needs, ["wheel / build"]);
        assert_eq!(
            call_lines(python),
            [
                "cargo xtask docker-up",
                "cargo xtask python-test --full --python 3.11,3.12,3.13"
            ]
        );
        let full = shared.iter().find(|j| j.name == "test-full").unwrap();
        assert_eq!(full.needs, ["archive / build"]);
        assert!(
            shared
                .iter()
                .all(|j| !j.name.contains("macos") && !j.name.contains("windows"))
        );
        assert!(
            shared.iter().all(|j| !j.name.contains("upstream")),
            "scheduled only"
        );
        let scheduled = plan(&Options {
            scheduled: true,
            ..Options::new(&BENCHMARK)
        })
        .unwrap();
        assert!(names(&scheduled[1].1).contains(&"upstream"));
    }

    #[test]
    fn each_job_is_charged_the_setup_its_workflow_renders() {
        let all = variants(None);
        let find = |variant: usize, name: &str| {
            all[variant]
                .1
                .iter()
                .find(|j| j.name == name)
                .unwrap()
                .setup
                .clone()
        };
        // Shared: test-unit downloads the archive and restores the plan's xtask.
        let shared = find(1, "test-unit");
        assert!(shared.contains(&Setup::Download(&RUST_TESTS)));
        assert!(shared.contains(&Setup::XtaskBinary));
        assert!(!shared.contains(&Setup::BuildXtask));
        // Per job: it builds the archive itself, so it restores the workspace's Rust cache
        // and compiles xtask, and downloads nothing.
        let own = find(0, "test-unit");
        assert!(own.contains(&Setup::RustCache { workspace: true }));
        assert!(own.contains(&Setup::BuildXtask));
        assert!(!own.iter().any(|s| matches!(s, Setup::Download(_))));
        // One interpreter per per-job Python job, three in the shared one.
        assert!(find(1, "python / python-test").contains(&Setup::Python(3)));
        assert!(find(0, "python / python-test (3.12)").contains(&Setup::Python(1)));
    }

    #[test]
    fn per_job_builds_in_every_job_that_needs_an_artifact() {
        let all = variants(None);
        let per_job = &all[0].1;
        assert!(per_job.iter().all(|j| j.needs.is_empty()));
        let full = per_job.iter().find(|j| j.name == "test-full").unwrap();
        assert_eq!(
            call_lines(full),
            [
                "cargo xtask build-artifacts",
                "cargo xtask docker-up",
                "cargo xtask test-full"
            ]
        );
        let wheel_builds = per_job
            .iter()
            .flat_map(|j| &j.calls)
            .filter(|(c, _)| c == "build-wheels")
            .count();
        assert_eq!(
            wheel_builds, 4,
            "python-lint and one python-test job per interpreter"
        );
        let python = per_job
            .iter()
            .find(|j| j.name == "python / python-test (3.12)")
            .unwrap();
        assert_eq!(
            call_lines(python),
            [
                "cargo xtask build-wheels",
                "cargo xtask docker-up",
                "cargo xtask python-test --full --python 3.12"
            ]
        );
        let lint = per_job.iter().find(|j| j.name == "lint-rust").unwrap();
        assert_eq!(call_lines(lint), ["cargo xtask lint-rust"]);
    }

    #[test]
    fn an_edit_runs_the_jobs_whose_keys_it_changed_and_their_builds() {
        let shared = &variants(None)[1].1;
        let changed = |stages: &[&str]| -> BTreeSet<String> {
            stages.iter().map(|s| s.to_string()).collect()
        };
        let python = affected(
            &BENCHMARK,
            shared,
            &changed(&["build-wheels", "python-lint", "python-test", "codespell"]),
        );
        assert_eq!(
            names(&python),
            [
                "wheel / build",
                "python / python-lint",
                "python / python-test",
                "checks / codespell"
            ]
        );
        let docs = affected(&BENCHMARK, shared, &changed(&["codespell"]));
        assert_eq!(names(&docs), ["checks / codespell"]);
        assert!(affected(&BENCHMARK, shared, &BTreeSet::new()).is_empty());
        // In the archive's job each step follows its own key: the bindings' Rust changes what
        // clippy reads, not the archive, and no Rust test runs.
        let bindings = affected(&BENCHMARK, shared, &changed(&["lint-rust", "build-wheels"]));
        let archive = bindings
            .iter()
            .find(|j| j.name == "archive / build")
            .unwrap();
        assert_eq!(call_lines(archive), ["cargo xtask lint-rust"]);
        assert!(!names(&bindings).contains(&"test-unit"));
        // A test's input alone: the archive is built for the tests, clippy is not rerun.
        let nextest_config = affected(&BENCHMARK, shared, &changed(&["test-unit", "test-full"]));
        let archive = nextest_config
            .iter()
            .find(|j| j.name == "archive / build")
            .unwrap();
        assert_eq!(call_lines(archive), ["cargo xtask build-artifacts"]);
        let full = nextest_config
            .iter()
            .find(|j| j.name == "test-full")
            .unwrap();
        assert_eq!(
            call_lines(full),
            ["cargo xtask docker-up", "cargo xtask test-full"],
            "services follow their job"
        );
    }

    #[test]
    fn jobs_can_be_selected_and_bring_their_builds() {
        let picked = variants(Some(&["test-unit"]));
        assert_eq!(names(&picked[1].1), ["archive / build", "test-unit"]);
        assert_eq!(names(&picked[0].1), ["test-unit"]);
        assert_eq!(call_lines(&picked[1].1[0]), ["cargo xtask build-artifacts"]);
        let python = variants(Some(&["python-test"]));
        assert_eq!(
            names(&python[1].1),
            ["wheel / build", "python / python-test"]
        );
        assert_eq!(python[0].1.len(), 3, "one job per interpreter");
        let lint = variants(Some(&["lint-rust"]));
        assert_eq!(names(&lint[1].1), ["archive / build"]);
        assert_eq!(call_lines(&lint[1].1[0]), ["cargo xtask lint-rust"]);
        assert_eq!(names(&lint[0].1), ["lint-rust"]);
        let err = plan(&Options {
            jobs: Some(vec!["nope".into()]),
            ..Options::new(&BENCHMARK)
        });
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("--jobs matched no job")
        );
    }

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
            per_job(&LAYOUT, &shared, &calls, Some(1)),
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
                &LAYOUT,
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
        let line = describe(&BENCHMARK, &steps);
        assert!(
            line.starts_with(&format!(
                "setup {:.1} s = runner",
                seconds(&BENCHMARK, &steps)
            )),
            "{line}"
        );
        let checkout = format!("checkout {:.1}*", price(Setup::Checkout).0);
        assert!(
            line.contains(&checkout) && line.contains("keys 0.3 "),
            "{line}"
        );
    }

    #[test]
    fn a_job_starts_with_the_dependencies_of_the_stages_that_compile() {
        let job = |calls: &[&str]| Job {
            name: "j".into(),
            needs: vec![],
            calls: calls
                .iter()
                .map(|c| (c.to_string(), StageArgs::default()))
                .collect(),
            setup: vec![],
            origin: None,
        };
        assert_eq!(
            builds_of(
                &PIPELINE,
                &job(&["build-artifacts", "docker-up", "test-full"])
            ),
            "build-artifacts"
        );
        assert_eq!(builds_of(&PIPELINE, &job(&["lint-rust"])), "lint-rust");
        assert_eq!(builds_of(&PIPELINE, &job(&["python-lint"])), "");
    }

    #[test]
    fn every_edited_file_exists_and_all_names_every_scenario() {
        let root = crate::testing::checkout();
        for scenario in BENCHMARK.scenarios {
            if let Some((file, _)) = scenario.edit {
                assert!(root.join(file).is_file(), "{file}");
            }
        }
        let all = scenario::parse_list(BENCHMARK.scenarios, "all").unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "cold",
                "warm",
                "rust-change",
                "python-change",
                "docs-change"
            ]
        );
    }
}
