//! This repository's pipeline: every stage declared once — what it produces, consumes,
//! requires and reads, its tools and flags, and its plan — and every artifact — its sources,
//! directory and build. Adding a stage or an artifact is a row here: a stage of every run that
//! no job of the job table names gets a job of its own in the CI workflow.

use crate::flags::{BACKEND, INDEX_URL, PARTITION, PYTHON, SERVICES_FULL};
use crate::pins;
use crate::stages::{self, clippy, lints, python, rust, services};
use crate::tools::{ACTIONLINT, AZURITE, CODESPELL, MATURIN, MOTO, NEXTEST, ZIZMOR};
use crate::workflows;
use ci_engine::graph::{
    Artifact, Copies, Inputs, Kept, Pipeline, Schedule, Servers, Services, Stage,
};
use ci_engine::jobs::{Generation, Layout};
use ci_engine::plan::Plan;
use ci_engine::tools::UV;

/// This repository's CI layout: the pipeline, the interpreters its Python stages test, and the
/// workflows' job table.
pub static LAYOUT: Layout = Layout {
    pipeline: &PIPELINE,
    project: &crate::project::PROJECT,
    python_flag: Some(&PYTHON),
    workflows: workflows::jobs::workflows,
    generation: Generation {
        table: "xtask/src/workflows/jobs.rs",
        toolchain_action: pins::RUST_TOOLCHAIN,
        installed_by_action: &[NEXTEST],
        // docker-up composes the servers where a Docker engine answers, as on GitHub's runners.
        servers_in_containers: true,
        python_dependencies: &[
            "icechunk-python/pyproject.toml",
            "icechunk-python/requirements/*.txt",
        ],
        xtask_sources: XTASK_SOURCES,
    },
};

/// What builds xtask's binary: its package and the engine's (a test checks that these are
/// every workspace package it depends on), the workspace's manifest, lock file and cargo config.
pub const XTASK_SOURCES: &[&str] = &[
    "ci-engine/**",
    "xtask/**",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
];

/// The nextest archive of every Rust test binary, with its manifest.
pub static RUST_TESTS: Artifact = Artifact {
    name: "rust-artifacts",
    producer: "build-artifacts",
    dir: "rust",
    sources: RUST_TEST_SOURCES,
    copies: None,
    build: |ctx, archive| vec![rust::archive_command(ctx, archive)],
    tools: &[NEXTEST],
    // Compiled with clippy-driver, as lint-rust's build is.
    prepare: || Plan::new().action(clippy::RequireDriver),
    python: false,
    compressed: true,
};

/// The abi3 wheel of icechunk-python, with its manifest.
pub static WHEELS: Artifact = Artifact {
    name: "python-wheels",
    producer: "build-wheels",
    dir: "wheels",
    sources: WHEEL_SOURCES,
    copies: Some(Copies {
        dir: PYTHON_PACKAGE_SOURCES,
        repack: stages::repack::before_build,
        record: stages::repack::after_build,
    }),
    build: |ctx, wheels| vec![python::maturin_command(ctx, wheels)],
    tools: &[MATURIN],
    prepare: Plan::new,
    python: true,
    compressed: false,
};

/// The Python package's sources, which maturin copies into the wheel (pyproject.toml's
/// `python-source`).
const PYTHON_PACKAGE_SOURCES: &str = "icechunk-python/python";

/// What the nextest archive is built from (also its manifest's sources); `nextest archive`
/// reads its configuration too.
const RUST_TEST_SOURCES: &[&str] = &[
    ".config/nextest.toml",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "ci-engine",
    "icechunk",
    "icechunk-python/Cargo.toml",
    "icechunk-python/src",
    "workspace-hack",
    "xtask",
];
/// What the wheel is built from (also its manifest's sources): maturin reads every member's
/// manifest (`cargo metadata`), the README the package's metadata embeds, and .gitignore.
const WHEEL_SOURCES: &[&str] = &[
    ".gitignore",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "icechunk/Cargo.toml",
    "icechunk/src",
    "icechunk-python/Cargo.toml",
    "icechunk-python/pyproject.toml",
    "icechunk-python/pyo3-config.txt",
    "icechunk-python/README.md",
    "icechunk-python/src",
    PYTHON_PACKAGE_SOURCES,
    "workspace-hack",
    "ci-engine/Cargo.toml",
    "xtask/Cargo.toml",
];

/// Hypothesis's database of the examples that failed, which it tries first next time.
const HYPOTHESIS: Kept = Kept {
    name: "hypothesis",
    path: "icechunk-python/.hypothesis/",
};

/// What rustfmt and clippy read besides the icechunk and xtask packages: the bindings' Rust
/// and the crate that aligns the wheel's dependency features.
const RUST_LINT_SOURCES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "icechunk-python/Cargo.toml",
    "icechunk-python/src",
    "icechunk-python/pyo3-config.txt",
    "workspace-hack",
];
/// What the tests of the archive read at run time, besides their packages.
/// xtask's own tests build scratch workspaces from exactly these files (its whole workspace's
/// manifests, so that `cargo metadata` answers there; git lists them through .gitignore), run
/// codespell over them, and compare the docs' generated tables and the workflows.
const RUST_TEST_READS: &[&str] = &[
    ".config/nextest.toml",
    ".gitignore",
    ".codespellrc",
    ".cargo",
    "compose.yaml",
    "Cargo.toml",
    "Cargo.lock",
    ".github",
    "docs/ci.md",
    "icechunk-python/Cargo.toml",
    "icechunk-python/src",
    "workspace-hack",
];
/// What the stages that run the archive's tests (test-unit, test-full) read: the packages
/// whose tests it holds, and what those tests read at run time.
const ARCHIVE_RUN: Inputs = Inputs {
    packages: &["icechunk", "xtask"],
    paths: RUST_TEST_READS,
    toolchain: false,
    cacheable: true,
};
/// What the Python checks read, besides the wheel.
const PYTHON_SOURCES: &[&str] = &[
    PYTHON_PACKAGE_SOURCES,
    "icechunk-python/tests",
    "icechunk-python/pyproject.toml",
    "icechunk-python/requirements",
    "icechunk-python/README.md",
];

/// What the Python lints read: the Python sources, and .gitignore, which ruff follows to pick
/// the files it checks.
const PYTHON_LINT_SOURCES: &[&str] = &[
    PYTHON_PACKAGE_SOURCES,
    "icechunk-python/tests",
    "icechunk-python/pyproject.toml",
    "icechunk-python/requirements",
    "icechunk-python/README.md",
    ".gitignore",
];

/// This repository's pipeline.
pub static PIPELINE: Pipeline = Pipeline {
    stages: STAGES,
    unclaimed: UNCLAIMED,
    explained: EXPLAINED,
    pin_files: crate::tools::PIN_FILES,
    servers: Some(Servers {
        stop_command: "docker-down",
        stop: services::take_down,
        env_file: crate::services::env_path,
    }),
};

/// Reads the audit finds that are not inputs, besides the engine's own, each with why it
/// cannot change a result.
const EXPLAINED: &[(&str, &str)] = &[
    (
        "target/.rustc_info.json",
        "cargo's record of `rustc -vV`, refreshed when rustc changes; the toolchain is in the key",
    ),
    (
        "target/debug",
        "xtask's own build: what it runs for a stage is the stage's plan, which is in the key",
    ),
    (
        "target/ci",
        "cargo's build directory: cargo's own fingerprints decide whether a unit is current, \
         and every source they cover is a declared input",
    ),
    (
        "target/nextest",
        "nextest's scratch directory for the archive it unpacks (the archive is the consumed \
         artifact)",
    ),
    (
        "icechunk-python/.hypothesis",
        "hypothesis's example database: it replays examples that failed before, so it can make a \
         run fail, never make one pass",
    ),
];

/// Tracked files that affect no stage (a file neither claimed nor listed here makes every
/// stage run).
const UNCLAIMED: &[&str] = &[
    ".gitattributes",
    // The entry point of CI: it runs `cargo xtask ci`, whose stages have their own keys.
    ".ci",
    // Prose for people (codespell reads it, as it reads everything).
    "README.md",
    "docs/performance.md",
];

/// Every stage, in an order where each stage comes after the stages it needs.
static STAGES: &[Stage] = &[
    Stage {
        name: "lint-rust",
        help: "cargo fmt --check and clippy over the workspace, warnings denied",
        about: "Checks formatting of every crate and runs clippy over the whole workspace and all \
                targets with every feature, in the `ci` profile, denying warnings.",
        produces: &[],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &["icechunk", "xtask"],
            paths: RUST_LINT_SOURCES,
            toolchain: true,
            cacheable: true,
        },
        tools: &[],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &["clippy", "rustfmt"],
        keeps: &[],
        plan: |_, ctx, _| Ok(rust::lint(ctx)),
    },
    Stage {
        name: "lint-workflows",
        help: "the generated workflows are current; zizmor and actionlint over them",
        about: "Regenerates the GitHub workflows in memory from the stage graph and the job \
                table (xtask/src/workflows/) and fails on any difference from the files in \
                .github/workflows, naming `cargo xtask workflows` as the fix; then runs zizmor \
                (offline) and actionlint over the files.",
        produces: &[],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &["xtask"],
            // zizmor walks .github the way git would, .gitignore included.
            paths: &[".github", ".gitignore"],
            toolchain: false,
            cacheable: true,
        },
        tools: &[ZIZMOR, ACTIONLINT],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, _| Ok(lints::workflows(&LAYOUT, ctx)),
    },
    Stage {
        name: "codespell",
        help: "spell-check the sources and docs (codespell, pinned)",
        about: "Runs codespell over the repository with the settings in `.codespellrc`.",
        produces: &[],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: &[".", ".codespellrc"],
            toolchain: false,
            cacheable: true,
        },
        tools: &[CODESPELL],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, _| Ok(lints::codespell(ctx)),
    },
    Stage {
        name: "build-artifacts",
        help: "compile every Rust test once into a nextest archive, with a manifest",
        about: "Builds every test binary of the workspace exactly once (`cargo nextest archive`, \
                `ci` profile, all features) into target/xtask/artifacts/rust/, and writes a \
                manifest: commit, dirty flag, hash of the sources, rustc version, archive sha256. \
                Does nothing when the manifest already matches the sources.",
        produces: &[&RUST_TESTS],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: RUST_TESTS.sources,
            toolchain: true,
            cacheable: false,
        },
        tools: &[NEXTEST],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &["clippy"],
        keeps: &[],
        plan: |_, ctx, _| ci_engine::artifacts::build(ctx, &RUST_TESTS),
    },
    Stage {
        name: "test-unit",
        help: "run the unit tests from the archive (compiles nothing)",
        about: "Runs every test that needs no service from the nextest archive. Refuses an \
                archive built from other sources. Locally, a missing archive is built first; in \
                CI a missing archive is an error (a test job never compiles).",
        produces: &[],
        consumes: &[&RUST_TESTS],
        services: Services::None,
        inputs: ARCHIVE_RUN,
        tools: &[NEXTEST],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, args| Ok(rust::test_unit(ctx, args, &RUST_TESTS)),
    },
    Stage {
        name: "docker-up",
        help: "start the S3 and Azure servers (Docker, or natively without an engine)",
        about: "Starts an S3 server and Azurite: with Docker (compose.yaml, images cached as one \
                tarball) when an engine answers, natively otherwise (moto and Azurite on \
                127.0.0.1). Creates the bucket and the container and writes the endpoints to \
                target/xtask/services.env (and $GITHUB_ENV). Reuses servers that are already up.",
        produces: &[],
        consumes: &[],
        services: Services::Starts,
        inputs: Inputs {
            packages: &[],
            // What decides what the servers are: the compose file, and the code that starts
            // them natively, creates the bucket and the container and names the variables
            // it exports (the pins and the backend are in its plan), with the engine's HTTP
            // client, which creates them, its supervision of background servers and its
            // processes module, which starts them with the environment they see.
            paths: &[
                "compose.yaml",
                "ci-engine/src/http.rs",
                "ci-engine/src/process.rs",
                "ci-engine/src/servers.rs",
                "xtask/src/services",
                "xtask/src/stages/services.rs",
            ],
            toolchain: false,
            cacheable: false,
        },
        tools: &[MOTO, AZURITE],
        flags: &[BACKEND],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, args| services::up(ctx, args),
    },
    Stage {
        name: "test-full",
        help: "run every test from the archive, integration tests included, against the services",
        about: "Runs all tests of the nextest archive, including the integration tests against \
                the S3 and Azure endpoints that docker-up wrote to target/xtask/services.env.",
        produces: &[],
        consumes: &[&RUST_TESTS],
        services: Services::Requires,
        inputs: ARCHIVE_RUN,
        tools: &[NEXTEST],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, args| Ok(rust::test_full(ctx, args, &RUST_TESTS)),
    },
    Stage {
        name: "build-wheels",
        help: "build the one abi3 wheel of icechunk-python, with a manifest",
        about: "Builds the abi3 wheel once with maturin (`ci` profile, workspace target directory, \
                so dependencies compiled by build-artifacts are reused) into \
                target/xtask/artifacts/wheels/, with a manifest like the Rust archive's. Does \
                nothing when the manifest already matches the sources.",
        produces: &[&WHEELS],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: WHEELS.sources,
            toolchain: true,
            cacheable: false,
        },
        tools: &[MATURIN],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, _| ci_engine::artifacts::build(ctx, &WHEELS),
    },
    Stage {
        name: "python-lint",
        help: "ruff check, ruff format --check and mypy --strict, with the wheel installed",
        about: "Creates a venv with the pinned lint requirements and the built wheel (never \
                building it), then runs ruff and mypy over the package and its tests.",
        produces: &[],
        consumes: &[&WHEELS],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: PYTHON_LINT_SOURCES,
            toolchain: false,
            cacheable: true,
        },
        tools: &[UV],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, _| python::lint(ctx, &WHEELS),
    },
    Stage {
        name: "python-test",
        help: "pytest on every Python interpreter found, each in a fresh venv with the wheel",
        about: "Per CPython found (3.11 required; --python: exactly those listed) a fresh uv venv \
                with the test requirements and the built wheel (--no-index), then every pytest \
                at once, outputs shown in turn. With --full, the tests marked `services` run \
                too, against target/xtask/services.env.",
        produces: &[],
        consumes: &[&WHEELS],
        services: Services::Requires,
        inputs: Inputs {
            packages: &[],
            paths: PYTHON_SOURCES,
            toolchain: false,
            cacheable: true,
        },
        tools: &[UV],
        flags: &[SERVICES_FULL, PYTHON],
        ci_args: &["--full"],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[HYPOTHESIS],
        plan: |_, ctx, args| python::test(ctx, args, &WHEELS),
    },
    Stage {
        name: "upstream",
        help: "the Python tests against the newest pre-releases of zarr, numpy and friends",
        about: "A fresh venv with the built wheel and the newest pre-releases of the Python \
                dependencies (highest resolution) from the configured index (default: the \
                scientific-python nightly wheels). When that index cannot be reached it says so \
                loudly and falls back to PyPI. Prints the resolved versions, then runs pytest.",
        produces: &[],
        consumes: &[&WHEELS],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: PYTHON_SOURCES,
            toolchain: false,
            cacheable: false,
        },
        tools: &[UV],
        flags: &[INDEX_URL],
        ci_args: &[],
        schedule: Schedule::Scheduled,
        rust_components: &[],
        keeps: &[HYPOTHESIS],
        plan: |_, ctx, args| python::upstream(ctx, args, &WHEELS),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use ci_engine::graph::Selection;

    #[test]
    fn the_pipeline_is_well_formed() {
        PIPELINE.check().unwrap();
        let starters = PIPELINE
            .stages
            .iter()
            .filter(|s| s.services == Services::Starts);
        assert_eq!(starters.count(), 1, "one stage starts the services");
    }

    #[test]
    fn needs_follow_from_what_a_stage_consumes_and_requires() {
        let needs = |name: &str| PIPELINE.needs(PIPELINE.stage(name).unwrap());
        assert_eq!(needs("test-unit"), ["build-artifacts"]);
        assert_eq!(needs("test-full"), ["build-artifacts", "docker-up"]);
        assert_eq!(needs("python-test"), ["docker-up", "build-wheels"]);
        assert!(needs("lint-rust").is_empty());
    }

    /// The stages a `ci` selection runs: `--only`, `--skip`, `--scheduled`.
    fn selected(only: Option<&[&str]>, skip: &[&str], scheduled: bool) -> Vec<&'static str> {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection {
            only: only.map(names),
            skip: names(skip),
            scheduled,
        }
        .resolve(&PIPELINE)
        .unwrap()
        .iter()
        .map(|s| s.name)
        .collect()
    }

    #[test]
    fn selection_leaves_the_servers_out_when_nothing_uses_them() {
        let all = selected(None, &[], false);
        assert!(!all.contains(&"upstream"), "upstream is scheduled only");
        assert!(selected(None, &[], true).contains(&"upstream"));
        assert!(all.contains(&"docker-up"));
        let no_service_users = selected(None, &["test-full", "python-test"], false);
        assert!(
            !no_service_users.contains(&"docker-up"),
            "{no_service_users:?}"
        );
        assert_eq!(
            selected(Some(&["docker-up", "test-full"]), &[], false),
            ["docker-up", "test-full"]
        );
    }

    #[test]
    fn stage_flags_are_checked() {
        let test_unit = PIPELINE.stage("test-unit").unwrap();
        let ok = test_unit
            .parse_args(&["--partition".into(), "hash:1/3".into()])
            .unwrap();
        assert_eq!(ok.value(&PARTITION), Some("hash:1/3"));
        let inline = test_unit
            .parse_args(&["--partition=hash:2/3".into()])
            .unwrap();
        assert_eq!(inline.value(&PARTITION), Some("hash:2/3"));
        let err = test_unit
            .parse_args(&["--full".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--partition hash:M/N"), "{err}");
        let err = test_unit.parse_args(&["--partition".into(), "hash:4/3".into()]);
        assert!(err.unwrap_err().to_string().contains("invalid partition"));
        let python_test = PIPELINE.stage("python-test").unwrap();
        let listed = python_test
            .parse_args(&["--python".into(), "3.12, 3.11,3.12".into()])
            .unwrap();
        assert_eq!(listed.list(&PYTHON), ["3.12", "3.11"]);
        let err = python_test.parse_args(&["--python".into(), "2.7".into()]);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("invalid Python version")
        );
    }
}
