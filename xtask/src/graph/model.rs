//! The model of a pipeline: stages, what they read and leave behind, when they run. The
//! pipeline module has this repository's stages; the graph module the lookups over one.

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use crate::flags::{Flag, StageArgs};
use crate::tools::NEXTEST;
use ci_engine::context::Context;
use ci_engine::plan::Plan;
use ci_engine::tools::Tool;

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
    /// What it is built from (also its manifest's sources, and its producer's inputs).
    sources: &'static [&'static str],
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

    const fn kind(self) -> ArtifactKind {
        match self {
            Artifact::RustTests => ArtifactKind {
                sources: RUST_TEST_SOURCES,
                name: "rust-artifacts",
                producer: "build-artifacts",
                dir: "rust",
                copied_sources: None,
            },
            Artifact::Wheels => ArtifactKind {
                sources: WHEEL_SOURCES,
                name: "python-wheels",
                producer: "build-wheels",
                dir: "wheels",
                copied_sources: Some(PYTHON_PACKAGE_SOURCES),
            },
        }
    }

    /// What it is built from, as git pathspecs relative to the workspace root (also its
    /// manifest's sources, and its producer's inputs).
    pub const fn sources(self) -> &'static [&'static str] {
        self.kind().sources
    }

    /// The name used in docs and, with the platform appended, for workflow artifacts.
    pub fn name(self) -> &'static str {
        self.kind().name
    }

    /// The name of the one stage that produces this artifact (a test checks it against
    /// the stage table; error messages name it without looking the graph up).
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

/// How a stage becomes a plan: from the pipeline it belongs to, the context and its flags.
pub type PlanFn = fn(&'static Pipeline, &Context, &StageArgs) -> Result<Plan>;

/// A project's stages, in an order where each comes after the stages it needs. Every lookup
/// of a stage goes through one (see the graph module).
#[derive(Debug)]
pub struct Pipeline {
    pub stages: &'static [Stage],
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
    /// Its plan.
    pub plan: PlanFn,
}

/// A directory a stage keeps between runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Kept {
    /// The cache's name in the workflows.
    pub name: &'static str,
    /// Relative to the workspace root, ending in `/`.
    pub path: &'static str,
}

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
        self.inputs.toolchain || self.tools.contains(&NEXTEST)
    }

    /// Whether it builds an artifact (build-artifacts, build-wheels).
    pub fn builds(&self) -> bool {
        !self.produces.is_empty()
    }
}

/// The Python package's sources, which maturin copies into the wheel (pyproject.toml's
/// `python-source`).
pub const PYTHON_PACKAGE_SOURCES: &str = "icechunk-python/python";

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
