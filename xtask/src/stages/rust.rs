//! The Rust stages: lint-rust, build-artifacts (one nextest archive), test-unit and test-full
//! (both run from that archive and compile nothing). The two builds compile the workspace the
//! same way, with clippy ([`clippy`]), so either leaves most of the other's work done.

use std::path::PathBuf;

use crate::flags::PARTITION;
use crate::services;
use crate::stages::clippy::{self, RequireDriver};
use crate::tools::NEXTEST;
use ci_engine::artifacts;
use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::flags::StageArgs;
use ci_engine::graph::Artifact;
use ci_engine::junit::TestRun;
use ci_engine::plan::Plan;

/// The cargo profile every CI build uses (see `[profile.ci]` in Cargo.toml).
pub const PROFILE: &str = "ci";

/// Test binaries that need the S3 and Azure services: test-full runs them, test-unit not.
pub const SERVICE_TEST_BINARIES: [&str; 2] = ["icechunk::integration", "xtask::services"];

/// rustfmt, then clippy on every target through a build (see [`clippy`]).
pub fn lint(ctx: &Context) -> Plan {
    Plan::new()
        .run(ctx.cargo().args(["fmt", "--all", "--check"]))
        .action(RequireDriver)
        .action(clippy::lint_build(ctx, PROFILE))
}

/// The nextest archive, its crates compiled with clippy like lint-rust's, so that each build
/// reuses the other's.
pub fn archive_command(ctx: &Context, archive: &Artifact) -> Cmd {
    clippy::linted(
        ctx,
        NEXTEST
            .cmd(ctx)
            .args([
                "archive",
                "--locked",
                "--workspace",
                "--all-features",
                "--cargo-profile",
                PROFILE,
            ])
            .arg("--archive-file")
            .arg(ctx.rel(&archive_file(ctx, archive))),
    )
}

/// The archive's file, in the directory of the artifact that holds it.
fn archive_file(ctx: &Context, archive: &Artifact) -> PathBuf {
    artifacts::dir(ctx, archive).join("nextest-archive.tar.zst")
}

/// `cargo nextest run` from the archive: nothing is compiled.
fn run_archive(ctx: &Context, archive: &Artifact, args: &StageArgs, filter: Option<String>) -> Cmd {
    let mut cmd = NEXTEST
        .cmd(ctx)
        .args(["run", "--archive-file"])
        .arg(ctx.rel(&archive_file(ctx, archive)))
        .args(["--workspace-remap", ".", "--profile", PROFILE]);
    if let Some(filter) = filter {
        cmd = cmd.args(["-E", &filter]);
    }
    if let Some(partition) = args.value(&PARTITION) {
        cmd = cmd.args(["--partition", partition]);
    }
    cmd
}

fn unit_filter() -> String {
    let binaries: Vec<String> = SERVICE_TEST_BINARIES
        .iter()
        .map(|b| format!("binary_id({b})"))
        .collect();
    format!("not ({})", binaries.join(" | "))
}

/// A nextest run whose failures are annotated from the JUnit report of the `ci` profile
/// (`.config/nextest.toml`).
fn reported(cmd: Cmd, title: &str) -> TestRun {
    TestRun {
        cmd,
        report: PathBuf::from("target/nextest/ci/junit.xml"),
        title: title.to_string(),
        path_prefix: "",
    }
}

/// The CPython interpreters the project finds, which the archive's tests run (the second
/// project's, the first one found), as a line of the plan: a pass then records which ones
/// (a key names them by version, what the machine ran by path), and a pass with others is not
/// reused. Tests that run `python3` from PATH are not covered.
fn pythons_note(ctx: &Context) -> String {
    let found: Vec<String> = ctx
        .interpreters()
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    format!(
        "the tests run these Pythons: {}",
        if found.is_empty() {
            "none found".to_string()
        } else {
            found.join(", ")
        }
    )
}

pub fn test_unit(ctx: &Context, args: &StageArgs, archive: &'static Artifact) -> Plan {
    artifacts::using(ctx, &[NEXTEST], archive)
        .note(pythons_note(ctx))
        .action(reported(
            run_archive(ctx, archive, args, Some(unit_filter())),
            "Rust unit tests (test-unit)",
        ))
}

pub fn test_full(ctx: &Context, args: &StageArgs, archive: &'static Artifact) -> Plan {
    artifacts::using(ctx, &[NEXTEST], archive)
        .note(pythons_note(ctx))
        .action(services::require_step())
        .action(reported(
            run_archive(ctx, archive, args, None).env_file(ctx.rel(&services::env_path(ctx))),
            "Rust tests with services (test-full)",
        ))
}

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use crate::stages::testing::plan_lines;
    use crate::testing::context;

    #[test]
    fn lint_rust_plan() {
        assert_eq!(
            plan_lines(&context(), "lint-rust", &[]),
            [
                "$ cargo fmt --all --check",
                "- check that clippy-driver is installed beside cargo",
                "- run `RUSTC_WORKSPACE_WRAPPER=clippy-driver cargo build --locked --workspace \
                 --all-targets --all-features --profile ci --message-format json > \
                 target/xtask/lint-rust.jsonl`, then show each warning and error it reported and \
                 fail on any"
            ]
        );
    }

    #[test]
    fn build_artifacts_plan() {
        assert_eq!(
            plan_lines(&context(), "build-artifacts", &[]),
            [
                "- stop here when rust-artifacts already matches the sources (its manifest)",
                "- ensure cargo-nextest 0.9.143",
                "- check that clippy-driver is installed beside cargo",
                "- empty the directory of rust-artifacts",
                "$ RUSTC_WORKSPACE_WRAPPER=clippy-driver cargo nextest archive --locked \
                 --workspace --all-features --cargo-profile ci --archive-file \
                 target/xtask/artifacts/rust/nextest-archive.tar.zst",
                "- write the manifest of rust-artifacts",
            ]
        );
    }

    #[test]
    fn test_unit_plan_runs_the_archive_without_the_service_binaries() {
        assert_eq!(
            plan_lines(&context(), "test-unit", &["--partition", "hash:1/2"]),
            [
                "- ensure cargo-nextest 0.9.143",
                "- check that rust-artifacts exists and matches the sources",
                "# the tests run these Pythons: /py/3.11/bin/python3.11, /py/3.13/bin/python3.13",
                "- run `cargo nextest run --archive-file target/xtask/artifacts/rust/nextest-archive.tar.zst \
                 --workspace-remap . --profile ci -E 'not (binary_id(icechunk::integration) | binary_id(xtask::services))' \
                 --partition hash:1/2`; on GitHub Actions annotate its failed tests from \
                 target/nextest/ci/junit.xml",
            ]
        );
    }

    #[test]
    fn test_full_plan_reads_the_services_env() {
        assert_eq!(
            plan_lines(&context(), "test-full", &[]),
            [
                "- ensure cargo-nextest 0.9.143",
                "- check that rust-artifacts exists and matches the sources",
                "# the tests run these Pythons: /py/3.11/bin/python3.11, /py/3.13/bin/python3.13",
                "- check target/xtask/services.env and that its servers answer",
                "- run `env $(cat target/xtask/services.env) cargo nextest run --archive-file \
                 target/xtask/artifacts/rust/nextest-archive.tar.zst --workspace-remap . \
                 --profile ci`; on GitHub Actions annotate its failed tests from \
                 target/nextest/ci/junit.xml",
            ]
        );
    }

    #[test]
    fn the_service_binaries_exist() {
        // The unit filter names test binaries by id (`crate::file`); a renamed file would
        // silently move its tests into test-unit.
        let root = crate::testing::checkout();
        for binary in super::SERVICE_TEST_BINARIES {
            let (krate, file) = binary.split_once("::").unwrap();
            let path = root.join(krate).join("tests").join(format!("{file}.rs"));
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}
