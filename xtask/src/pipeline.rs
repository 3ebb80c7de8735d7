//! This repository's pipeline: every stage declared once — what it produces, consumes,
//! requires and reads, its tools and flags, and its plan. Adding a stage is a row here (and a
//! place in a job of the workflows' job table).

use crate::flags::{BACKEND, INDEX_URL, PARTITION, PYTHON, SERVICES_FULL};
use crate::graph::{
    Artifact, Inputs, Kept, PYTHON_PACKAGE_SOURCES, Pipeline, Schedule, Services, Stage,
};
use crate::stages::{self, lints, python, rust, services};
use crate::tools::{ACTIONLINT, AZURITE, CODESPELL, MATURIN, MOTO, NEXTEST, ZIZMOR};
use ci_engine::tools::UV;

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
pub static PIPELINE: Pipeline = Pipeline { stages: STAGES };

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
        plan: |pipeline, ctx, _| Ok(lints::workflows(pipeline, ctx)),
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
        produces: &[Artifact::RustTests],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: Artifact::RustTests.sources(),
            toolchain: true,
            cacheable: false,
        },
        tools: &[NEXTEST],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &["clippy"],
        keeps: &[],
        plan: |_, ctx, _| stages::build(ctx, Artifact::RustTests),
    },
    Stage {
        name: "test-unit",
        help: "run the unit tests from the archive (compiles nothing)",
        about: "Runs every test that needs no service from the nextest archive. Refuses an \
                archive built from other sources. Locally, a missing archive is built first; in \
                CI a missing archive is an error (a test job never compiles).",
        produces: &[],
        consumes: &[Artifact::RustTests],
        services: Services::None,
        inputs: ARCHIVE_RUN,
        tools: &[NEXTEST],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, args| Ok(rust::test_unit(ctx, args)),
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
            // client, which creates them.
            paths: &[
                "compose.yaml",
                "ci-engine/src/http.rs",
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
        consumes: &[Artifact::RustTests],
        services: Services::Requires,
        inputs: ARCHIVE_RUN,
        tools: &[NEXTEST],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, args| Ok(rust::test_full(ctx, args)),
    },
    Stage {
        name: "build-wheels",
        help: "build the one abi3 wheel of icechunk-python, with a manifest",
        about: "Builds the abi3 wheel once with maturin (`ci` profile, workspace target directory, \
                so dependencies compiled by build-artifacts are reused) into \
                target/xtask/artifacts/wheels/, with a manifest like the Rust archive's. Does \
                nothing when the manifest already matches the sources.",
        produces: &[Artifact::Wheels],
        consumes: &[],
        services: Services::None,
        inputs: Inputs {
            packages: &[],
            paths: Artifact::Wheels.sources(),
            toolchain: true,
            cacheable: false,
        },
        tools: &[MATURIN],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
        plan: |_, ctx, _| stages::build(ctx, Artifact::Wheels),
    },
    Stage {
        name: "python-lint",
        help: "ruff check, ruff format --check and mypy --strict, with the wheel installed",
        about: "Creates a venv with the pinned lint requirements and the built wheel (never \
                building it), then runs ruff and mypy over the package and its tests.",
        produces: &[],
        consumes: &[Artifact::Wheels],
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
        plan: |_, ctx, _| python::lint(ctx),
    },
    Stage {
        name: "python-test",
        help: "pytest on every Python interpreter found, each in a fresh venv with the wheel",
        about: "Per CPython found (3.11 required; --python: exactly those listed) a fresh uv venv \
                with the test requirements and the built wheel (--no-index), then every pytest \
                at once, outputs shown in turn. With --full, the tests marked `services` run \
                too, against target/xtask/services.env.",
        produces: &[],
        consumes: &[Artifact::Wheels],
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
        plan: |_, ctx, args| python::test(ctx, args),
    },
    Stage {
        name: "upstream",
        help: "the Python tests against the newest pre-releases of zarr, numpy and friends",
        about: "A fresh venv with the built wheel and the newest pre-releases of the Python \
                dependencies (highest resolution) from the configured index (default: the \
                scientific-python nightly wheels). When that index cannot be reached it says so \
                loudly and falls back to PyPI. Prints the resolved versions, then runs pytest.",
        produces: &[],
        consumes: &[Artifact::Wheels],
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
        plan: |_, ctx, args| python::upstream(ctx, args),
    },
];
