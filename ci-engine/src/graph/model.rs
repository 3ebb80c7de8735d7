//! The model of a pipeline: stages, the artifacts they leave behind, what they read, when they
//! run. A project declares its own as `static` values; [`super`] has the lookups over them.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::cmd::Cmd;
use crate::context::Context;
use crate::exec::Executor;
use crate::flags::{Flag, StageArgs};
use crate::plan::Plan;
use crate::tools::Tool;

/// Something a stage leaves behind for later stages (and later workflow jobs), with everything
/// known of it in one row. Two artifacts are the same when their names are.
#[derive(Debug)]
pub struct Artifact {
    /// The name used in docs, in its manifest and, with the platform appended, for workflow
    /// artifacts.
    pub name: &'static str,
    /// The one stage that produces it (`Pipeline::check` checks it; error messages name it
    /// without looking the pipeline up).
    pub producer: &'static str,
    /// Its directory under the artifacts directory (`target/xtask/artifacts/`).
    pub dir: &'static str,
    /// What it is built from, as git pathspecs relative to the workspace root (also its
    /// manifest's sources, and its producer's inputs).
    pub sources: &'static [&'static str],
    /// The sources it holds byte-for-byte copies of, if any, and how its build then reuses an
    /// earlier build whose other sources were the same instead of compiling.
    pub copies: Option<Copies>,
    /// The commands that build it (also its manifest's recipe), given the artifact.
    pub build: fn(&Context, &Artifact) -> Vec<Cmd>,
    /// The pinned tools those commands run: its build ensures them first.
    pub tools: &'static [Tool],
    /// What else those commands need before they run.
    pub prepare: fn() -> Plan,
    /// Whether a stage that consumes it runs Python: its job sets an interpreter up and keeps
    /// uv's cache.
    pub python: bool,
    /// Whether its files are compressed already (uploaded without compressing them again).
    pub compressed: bool,
}

impl PartialEq for Artifact {
    fn eq(&self, other: &Artifact) -> bool {
        self.name == other.name
    }
}

impl Eq for Artifact {}

impl Hash for Artifact {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl PartialOrd for Artifact {
    fn partial_cmp(&self, other: &Artifact) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Artifact {
    fn cmp(&self, other: &Artifact) -> Ordering {
        self.name.cmp(other.name)
    }
}

/// The sources an artifact holds byte-for-byte copies of (a wheel's Python package), and how
/// its build reuses an earlier build when only they changed.
#[derive(Debug)]
pub struct Copies {
    /// The directory of those sources.
    pub dir: &'static str,
    /// Steps before the build: bring an earlier build up to date by copying the sources in,
    /// when they are all that changed (the plan ends there when that was done).
    pub repack: fn(&Context, &'static Artifact) -> Result<Plan>,
    /// Steps after the build: record what a later repack may reuse.
    pub record: fn(&Context, &'static Artifact) -> Result<Plan>,
}

/// How a stage relates to the project's servers. They are processes, not files: every job
/// that requires them starts its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Services {
    None,
    /// Starts them (one stage of a pipeline does).
    Starts,
    /// Needs them running (and so needs the stage that starts them).
    Requires,
}

/// What a stage reads, besides the artifacts it consumes.
#[derive(Clone, Copy, Debug)]
pub struct Inputs {
    /// Workspace packages it builds or tests; the packages they depend on count too.
    pub packages: &'static [&'static str],
    /// Other paths it reads (git pathspecs relative to the workspace root).
    pub paths: &'static [&'static str],
    /// Whether it compiles the workspace: the Rust toolchain (`rustc -vV`) is an input (as it is
    /// of a stage whose tools run it, see [`Stage::uses_toolchain`]).
    pub toolchain: bool,
    /// Whether a pass may be reused at all (a stage that starts servers, or tests against
    /// nightly builds that change without any change here, is always run; so is a build,
    /// whose manifest decides whether its artifact is current).
    pub cacheable: bool,
}

/// How a stage becomes a plan: from the pipeline it belongs to, the context and its flags.
pub type PlanFn = fn(&'static Pipeline, &Context, &StageArgs) -> Result<Plan>;

/// A project's stages, in an order where each comes after the stages it needs. Every lookup
/// of a stage goes through one (see [`super`]).
#[derive(Debug)]
pub struct Pipeline {
    pub stages: &'static [Stage],
    /// Tracked files that affect no stage, as pathspecs: a file neither a stage's input nor
    /// listed here is in every stage's key, so that a file nobody declared makes every stage
    /// run.
    pub unclaimed: &'static [&'static str],
    /// Reads the audit finds that are not inputs, each with why it cannot change a result
    /// (pathspecs relative to the root), besides the engine's own (see the audit module).
    pub explained: &'static [(&'static str, &'static str)],
    /// The files the tools' pins are written in: a key that covers them all covers every tool.
    pub pin_files: &'static [&'static str],
    /// The servers its stage that starts them leaves running, when one does.
    pub servers: Option<Servers>,
}

/// What a pipeline's servers leave behind and how they stop.
#[derive(Debug)]
pub struct Servers {
    /// The command that stops them, which `ci` runs at the end of a run that started them.
    pub stop_command: &'static str,
    pub stop: fn(&mut Executor<'_>) -> Result<()>,
    /// The file the starting stage writes their endpoints to, which a stage that requires them
    /// reads.
    pub env_file: fn(&Context) -> PathBuf,
}

/// When `ci` runs a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// On every pipeline run (pull requests, pushes, `ci`).
    EveryRun,
    /// Only in the scheduled pipeline (`ci --scheduled`).
    Scheduled,
}

/// One CI stage.
#[derive(Debug)]
pub struct Stage {
    pub name: &'static str,
    pub help: &'static str,
    /// A longer explanation for `<stage> --help`.
    pub about: &'static str,
    pub produces: &'static [&'static Artifact],
    pub consumes: &'static [&'static Artifact],
    pub services: Services,
    /// What its content key covers.
    pub inputs: Inputs,
    /// The pinned tools its plan ensures (the workflows cache exactly these).
    pub tools: &'static [Tool],
    pub flags: &'static [Flag],
    /// The flags `ci` runs this stage with, spelled as they parse (flags in the order of their
    /// names; `Pipeline::check` says when they are not).
    pub ci_args: &'static [&'static str],
    pub schedule: Schedule,
    /// The rustup components its commands run.
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
    /// A stage that reads `inputs` and runs `plan`, with nothing else of its own: no
    /// artifacts, servers, tools, flags or kept directories, run on every pipeline run, its
    /// `help` also its `about`. Give it more with struct update syntax
    /// (`Stage { produces: &[&ZIP], ..Stage::new(…) }`).
    pub const fn new(
        name: &'static str,
        help: &'static str,
        inputs: Inputs,
        plan: PlanFn,
    ) -> Stage {
        Stage {
            name,
            help,
            about: help,
            produces: &[],
            consumes: &[],
            services: Services::None,
            inputs,
            tools: &[],
            flags: &[],
            ci_args: &[],
            schedule: Schedule::EveryRun,
            rust_components: &[],
            keeps: &[],
            plan,
        }
    }

    /// Parse `args` against this stage's flags.
    pub fn parse_args(&self, args: &[String]) -> Result<StageArgs> {
        StageArgs::parse(self.name, self.flags, args)
    }

    /// The flags `ci` runs this stage with.
    pub fn ci_args(&self) -> Result<StageArgs> {
        let args: Vec<String> = self.ci_args.iter().map(|a| a.to_string()).collect();
        self.parse_args(&args)
    }

    /// Whether it compiles: the toolchain is one of its inputs.
    pub fn compiles(&self) -> bool {
        self.inputs.toolchain
    }

    /// Whether it runs the Rust toolchain: it compiles, or one of its tools runs it (see
    /// [`Tool::uses_toolchain`]). A stage that only uses an artifact does not: its build
    /// compared the toolchain.
    pub fn uses_toolchain(&self) -> bool {
        self.compiles() || self.tools.iter().any(|t| t.uses_toolchain())
    }

    /// Whether it consumes an artifact that runs in Python (installed with uv, whose cache
    /// its job keeps).
    pub fn consumes_python(&self) -> bool {
        self.consumes.iter().any(|a| a.python)
    }

    /// Whether it runs Python: it consumes an artifact that runs in Python, or a tool of it
    /// is installed into a venv.
    pub fn uses_python(&self) -> bool {
        self.consumes_python() || self.tools.iter().any(|t| t.needs_python())
    }

    /// The pinned tools it runs: its own, those the builds of what it produces run, and the
    /// tools that install them (uv for a PyPI tool), each once. Its key has their pins, and the
    /// audit lets it read their installs.
    pub fn pinned_tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = Vec::new();
        let own = self.tools.iter();
        for tool in own.chain(self.produces.iter().flat_map(|a| a.tools)) {
            for t in tool.with_installer() {
                if !tools.contains(&t) {
                    tools.push(t);
                }
            }
        }
        tools
    }

    /// Whether it builds an artifact.
    pub fn builds(&self) -> bool {
        !self.produces.is_empty()
    }
}
