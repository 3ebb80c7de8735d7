//! The stage graph: every CI stage declared once, as data.
//!
//! A stage has a name, a line of help, the artifacts it produces and consumes, whether it
//! starts or requires the services, the pinned tools it uses and the flags it accepts. The
//! stages it needs follow from what it consumes. Everything else — `cargo xtask list`,
//! `cargo xtask <stage> --help`, the order `cargo xtask ci` runs in, the generated workflows
//! and the docs table — is derived from [`STAGES`]. The graph is data only: the stages module
//! turns a stage into a plan.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::flags::{BACKEND, INDEX_URL, PARTITION, PYTHON, SERVICES_FULL};
pub use crate::flags::{Flag, StageArgs};
use crate::tools::Tool;

/// Something a stage leaves behind for later stages (and later workflow jobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Artifact {
    /// The nextest archive of every Rust test binary, with its manifest.
    RustTests,
    /// The abi3 wheel of icechunk-python, with its manifest.
    Wheels,
}

/// What is known of an artifact, in one place: adding an artifact is a variant, a row here and
/// its producer's build commands (`stages::build_commands`).
struct ArtifactKind {
    /// The name used in docs and, with the platform appended, for workflow artifacts.
    name: &'static str,
    /// The one stage that produces it.
    producer: &'static str,
    /// Its directory under `target/xtask/artifacts/`.
    dir: &'static str,
    /// The directory of sources it holds byte-for-byte copies of, if any.
    copied_sources: Option<&'static str>,
}

impl Artifact {
    pub const ALL: [Artifact; 2] = [Artifact::RustTests, Artifact::Wheels];

    fn kind(self) -> ArtifactKind {
        match self {
            Artifact::RustTests => ArtifactKind {
                name: "rust-artifacts",
                producer: "build-artifacts",
                dir: "rust",
                copied_sources: None,
            },
            Artifact::Wheels => ArtifactKind {
                name: "python-wheels",
                producer: "build-wheels",
                dir: "wheels",
                copied_sources: Some(PYTHON_PACKAGE_SOURCES),
            },
        }
    }

    /// The name used in docs and, with the platform appended, for workflow artifacts.
    pub fn name(self) -> &'static str {
        self.kind().name
    }

    /// The name of the one stage that produces this artifact (a test checks it against
    /// [`STAGES`]; error messages name it without looking the graph up).
    pub fn producer_name(self) -> &'static str {
        self.kind().producer
    }

    /// Its directory under `target/xtask/artifacts/`.
    pub fn dir_name(self) -> &'static str {
        self.kind().dir
    }

    /// The directory of sources the artifact holds byte-for-byte copies of, when it has one:
    /// its build may then repack the artifact of an earlier build whose other sources were the
    /// same instead of compiling (the wheel's Python package, which maturin copies).
    pub fn copied_sources(self) -> Option<&'static str> {
        self.kind().copied_sources
    }

    /// The one stage that produces this artifact.
    pub fn producer(self) -> &'static Stage {
        let name = self.producer_name();
        STAGES
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| unreachable!("every artifact has a producer (checked by a test)"))
    }
}

/// How a stage relates to the S3 and Azure servers. They are processes, not files: every job
/// that requires them starts its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Services {
    None,
    /// docker-up: starts them and writes `target/xtask/services.env`.
    Starts,
    /// Needs them running (and so needs docker-up).
    Requires,
}

/// What a stage reads, besides the artifacts it consumes.
#[derive(Clone, Copy, Debug)]
pub struct Inputs {
    /// Workspace packages it builds or tests; the packages they depend on count too.
    pub packages: &'static [&'static str],
    /// Other paths it reads (git pathspecs relative to the workspace root).
    pub paths: &'static [&'static str],
    /// Whether the Rust toolchain (`rustc -vV`) is an input.
    pub toolchain: bool,
    /// Whether a pass may be reused at all (a stage that starts servers, or tests against
    /// nightly builds that change without any change here, is always run).
    pub cacheable: bool,
}

/// Which stage a [`Stage`] is: `stages::plan` matches on it, so every stage has a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageId {
    LintRust,
    LintWorkflows,
    Codespell,
    BuildArtifacts,
    TestUnit,
    DockerUp,
    TestFull,
    BuildWheels,
    PythonLint,
    PythonTest,
    Upstream,
}

/// When `cargo xtask ci` runs a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// On every pipeline run (pull requests, pushes, `cargo xtask ci`).
    EveryRun,
    /// Only in the scheduled pipeline (`cargo xtask ci --scheduled`).
    Scheduled,
}

/// One CI stage.
#[derive(Debug)]
pub struct Stage {
    pub id: StageId,
    pub name: &'static str,
    pub help: &'static str,
    /// A longer explanation for `cargo xtask <stage> --help`.
    pub about: &'static str,
    pub produces: &'static [Artifact],
    pub consumes: &'static [Artifact],
    pub services: Services,
    /// What its content key covers (see `keys`).
    pub inputs: Inputs,
    /// The pinned tools its plan ensures (the workflows cache exactly these; a test checks the
    /// plans against it).
    pub tools: &'static [Tool],
    pub flags: &'static [Flag],
    /// The flags `cargo xtask ci` runs this stage with.
    pub ci_args: &'static [&'static str],
    pub schedule: Schedule,
    /// The rustup components its commands run (clippy-driver is in `clippy`).
    pub rust_components: &'static [&'static str],
    /// What its runs keep for the next (the workflows cache it per job).
    pub keeps: &'static [Kept],
}

/// A directory a stage keeps between runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Kept {
    /// The cache's name in the workflows.
    pub name: &'static str,
    /// Relative to the workspace root, ending in `/`.
    pub path: &'static str,
}

/// Hypothesis's database of the examples that failed, which it tries first next time.
const HYPOTHESIS: Kept = Kept {
    name: "hypothesis",
    path: "icechunk-python/.hypothesis/",
};

impl Stage {
    /// Parse `args` against this stage's flags.
    pub fn parse_args(&self, args: &[String]) -> Result<StageArgs> {
        StageArgs::parse(self.name, self.flags, args)
    }

    /// The flags `cargo xtask ci` runs this stage with.
    pub fn ci_args(&self) -> Result<StageArgs> {
        let args: Vec<String> = self.ci_args.iter().map(|a| a.to_string()).collect();
        self.parse_args(&args)
    }

    /// Whether it runs the Rust toolchain: it compiles (the toolchain is one of its inputs), or
    /// it runs the test archive, which nextest runs through cargo and whose tests run cargo. A
    /// stage that only uses an artifact does not: its build compared the toolchain.
    pub fn uses_toolchain(&self) -> bool {
        self.inputs.toolchain || self.tools.contains(&Tool::Nextest)
    }

    /// Whether it builds an artifact (build-artifacts, build-wheels).
    pub fn builds(&self) -> bool {
        !self.produces.is_empty()
    }

    /// The stages that start the servers this one requires (none when it requires none).
    pub fn service_starters(&self) -> impl Iterator<Item = &'static Stage> + '_ {
        STAGES
            .iter()
            .filter(|s| self.services == Services::Requires && s.services == Services::Starts)
    }

    /// The stages this one needs, in graph order: the producers of what it consumes, and
    /// docker-up when it requires the services.
    pub fn needs(&self) -> Vec<&'static str> {
        let starters: Vec<&str> = self.service_starters().map(|s| s.name).collect();
        STAGES
            .iter()
            .filter(|s| {
                s.produces.iter().any(|a| self.consumes.contains(a)) || starters.contains(&s.name)
            })
            .map(|s| s.name)
            .collect()
    }
}

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
/// The Python package's sources, which maturin copies into the wheel (pyproject.toml's
/// `python-source`).
const PYTHON_PACKAGE_SOURCES: &str = "icechunk-python/python";
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

/// Every stage, in an order where each stage comes after the stages it needs.
pub static STAGES: &[Stage] = &[
    Stage {
        id: StageId::LintRust,
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
    },
    Stage {
        id: StageId::LintWorkflows,
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
        tools: &[Tool::Zizmor, Tool::Actionlint],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::Codespell,
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
        tools: &[Tool::Codespell],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::BuildArtifacts,
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
            paths: RUST_TEST_SOURCES,
            toolchain: true,
            cacheable: false,
        },
        tools: &[Tool::Nextest],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &["clippy"],
        keeps: &[],
    },
    Stage {
        id: StageId::TestUnit,
        name: "test-unit",
        help: "run the unit tests from the archive (compiles nothing)",
        about: "Runs every test that needs no service from the nextest archive. Refuses an \
                archive built from other sources. Locally, a missing archive is built first; in \
                CI a missing archive is an error (a test job never compiles).",
        produces: &[],
        consumes: &[Artifact::RustTests],
        services: Services::None,
        inputs: Inputs {
            packages: &["icechunk", "xtask"],
            paths: RUST_TEST_READS,
            toolchain: false,
            cacheable: true,
        },
        tools: &[Tool::Nextest],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::DockerUp,
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
        tools: &[Tool::Moto, Tool::Azurite],
        flags: &[BACKEND],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::TestFull,
        name: "test-full",
        help: "run every test from the archive, integration tests included, against the services",
        about: "Runs all tests of the nextest archive, including the integration tests against \
                the S3 and Azure endpoints that docker-up wrote to target/xtask/services.env.",
        produces: &[],
        consumes: &[Artifact::RustTests],
        services: Services::Requires,
        inputs: Inputs {
            packages: &["icechunk", "xtask"],
            paths: RUST_TEST_READS,
            toolchain: false,
            cacheable: true,
        },
        tools: &[Tool::Nextest],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::BuildWheels,
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
            paths: WHEEL_SOURCES,
            toolchain: true,
            cacheable: false,
        },
        tools: &[Tool::Maturin],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::PythonLint,
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
        tools: &[Tool::Uv],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[],
    },
    Stage {
        id: StageId::PythonTest,
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
        tools: &[Tool::Uv],
        flags: &[SERVICES_FULL, PYTHON],
        ci_args: &["--full"],
        schedule: Schedule::EveryRun,
        rust_components: &[],
        keeps: &[HYPOTHESIS],
    },
    Stage {
        id: StageId::Upstream,
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
        tools: &[Tool::Uv],
        flags: &[INDEX_URL],
        ci_args: &[],
        schedule: Schedule::Scheduled,
        rust_components: &[],
        keeps: &[HYPOTHESIS],
    },
];

/// The stage called `name`, or an error that lists every stage.
pub fn stage(name: &str) -> Result<&'static Stage> {
    STAGES.iter().find(|s| s.name == name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown stage `{name}`; the stages are: {}",
            stage_names().join(", ")
        )
    })
}

pub fn stage_names() -> Vec<&'static str> {
    STAGES.iter().map(|s| s.name).collect()
}

/// Which stages `cargo xtask ci` runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub only: Option<Vec<String>>,
    pub skip: Vec<String>,
    pub scheduled: bool,
}

impl Selection {
    /// The selected stages, in graph order. A stage that only brings services up is left out
    /// when no other selected stage uses them, unless `--only` names it.
    pub fn resolve(&self) -> Result<Vec<&'static Stage>> {
        for name in self.only.iter().flatten().chain(&self.skip) {
            stage(name)?;
        }
        let named = |s: &Stage| self.only.iter().flatten().any(|n| n == s.name);
        let selected: Vec<&'static Stage> = STAGES
            .iter()
            .filter(|s| match &self.only {
                Some(_) => named(s),
                None => self.scheduled || s.schedule == Schedule::EveryRun,
            })
            .filter(|s| !self.skip.iter().any(|n| n == s.name))
            .collect();
        let services_used = selected.iter().any(|s| s.services == Services::Requires);
        let stages: Vec<_> = selected
            .iter()
            .copied()
            .filter(|s| s.services != Services::Starts || services_used || named(s))
            .collect();
        if stages.is_empty() {
            bail!(
                "this selection leaves no stage to run; the stages are: {}",
                stage_names().join(", ")
            );
        }
        Ok(stages)
    }
}

pub fn artifact_names(artifacts: &[Artifact]) -> String {
    artifacts
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = stage_names();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate stage names");
    }

    #[test]
    fn every_need_exists_and_comes_earlier() {
        // Declaration order is the run order, so it must be a topological order; that also
        // proves the graph acyclic.
        for (i, s) in STAGES.iter().enumerate() {
            for need in s.needs() {
                let pos = STAGES.iter().position(|t| t.name == need);
                let pos = pos.unwrap_or_else(|| panic!("{} needs unknown stage {need}", s.name));
                assert!(pos < i, "{} needs {need}, which is declared later", s.name);
            }
        }
    }

    #[test]
    fn every_artifact_has_exactly_one_producer_which_it_names() {
        for artifact in Artifact::ALL {
            let producers: Vec<&str> = STAGES
                .iter()
                .filter(|s| s.produces.contains(&artifact))
                .map(|s| s.name)
                .collect();
            assert_eq!(producers, [artifact.producer_name()], "{}", artifact.name());
        }
        let starters = STAGES.iter().filter(|s| s.services == Services::Starts);
        assert_eq!(starters.count(), 1, "one stage starts the services");
    }

    #[test]
    fn needs_follow_from_what_a_stage_consumes_and_requires() {
        let needs = |name: &str| stage(name).unwrap().needs();
        assert_eq!(needs("test-unit"), ["build-artifacts"]);
        assert_eq!(needs("test-full"), ["build-artifacts", "docker-up"]);
        assert_eq!(needs("python-test"), ["docker-up", "build-wheels"]);
        assert!(needs("lint-rust").is_empty());
    }

    #[test]
    fn ci_args_parse_against_the_stage_flags() {
        for s in STAGES {
            let args: Vec<String> = s.ci_args.iter().map(|a| a.to_string()).collect();
            let parsed = s.parse_args(&args).unwrap();
            assert_eq!(
                parsed.to_args(),
                args,
                "{} ci args do not round-trip",
                s.name
            );
        }
    }

    /// The stages a `ci` selection runs: `--only`, `--skip`, `--scheduled`.
    fn selected(only: Option<&[&str]>, skip: &[&str], scheduled: bool) -> Vec<&'static str> {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection {
            only: only.map(names),
            skip: names(skip),
            scheduled,
        }
        .resolve()
        .unwrap()
        .iter()
        .map(|s| s.name)
        .collect()
    }

    #[test]
    fn selection_filters_and_keeps_graph_order() {
        let all = selected(None, &[], false);
        assert!(!all.contains(&"upstream"), "upstream is scheduled only");
        assert!(selected(None, &[], true).contains(&"upstream"));

        let only = selected(Some(&["test-unit", "build-artifacts"]), &[], false);
        assert_eq!(only, ["build-artifacts", "test-unit"]);

        let no_service_users = selected(None, &["test-full", "python-test"], false);
        assert!(
            !no_service_users.contains(&"docker-up"),
            "{no_service_users:?}"
        );
        assert_eq!(selected(Some(&["docker-up"]), &[], false), ["docker-up"]);
        assert_eq!(
            selected(Some(&["docker-up", "test-full"]), &[], false),
            ["docker-up", "test-full"]
        );
        assert!(all.contains(&"docker-up"));

        assert!(!selected(None, &["lint-rust"], false).contains(&"lint-rust"));
    }

    #[test]
    fn unknown_stage_lists_the_valid_ones() {
        let err = stage("test-everything").unwrap_err().to_string();
        assert!(err.contains("unknown stage `test-everything`"), "{err}");
        for name in stage_names() {
            assert!(err.contains(name), "{err} should list {name}");
        }
        let empty = Selection {
            only: Some(Vec::new()),
            ..Selection::default()
        };
        let err = empty.resolve().unwrap_err().to_string();
        assert!(err.contains("no stage to run"), "{err}");
        let bad = Selection {
            skip: vec!["nope".into()],
            ..Selection::default()
        };
        assert!(bad.resolve().unwrap_err().to_string().contains("lint-rust"));
    }

    #[test]
    fn stage_flags_are_checked() {
        let test_unit = stage("test-unit").unwrap();
        let ok = test_unit
            .parse_args(&["--partition".into(), "hash:1/3".into()])
            .unwrap();
        assert_eq!(ok.partition.as_deref(), Some("hash:1/3"));
        let inline = test_unit
            .parse_args(&["--partition=hash:2/3".into()])
            .unwrap();
        assert_eq!(inline.partition.as_deref(), Some("hash:2/3"));
        let err = test_unit
            .parse_args(&["--full".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--partition hash:M/N"), "{err}");
        let err = test_unit.parse_args(&["--partition".into(), "hash:4/3".into()]);
        assert!(err.unwrap_err().to_string().contains("invalid partition"));
        let err = test_unit
            .parse_args(&["--partition".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a value"), "{err}");
    }
}
