//! Plans: what a stage will do, as data.
//!
//! A stage turns into a [`Plan`] — external commands with their arguments and environment, all
//! run in the workspace root, plus a few named internal actions (check a manifest, wait for a
//! server).
//! `--dry-run` prints plans, tests compare them, and [`crate::exec`] is the one place that runs
//! them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::graph::Artifact;
use crate::services::{Backend, Daemon, Endpoint};
use crate::tools::Tool;

/// An external command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// `KEY=VALUE` lines read when the command starts (the services' endpoints).
    pub env_file: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_file: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.args.extend(
            args.into_iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        );
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.env
            .push((key.into(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    pub fn env_file(mut self, path: impl AsRef<Path>) -> Cmd {
        self.env_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// The command line alone, shell-quoted.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `env $(cat file) KEY=value program args` — what a shell user would type in the workspace
/// root, where every command runs.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.env_file {
            write!(f, "env $(cat {}) ", quote(&file.to_string_lossy()))?;
        }
        for (key, value) in &self.env {
            write!(f, "{key}={} ", quote(value))?;
        }
        f.write_str(&self.command_line())
    }
}

/// Quote `word` for a POSIX shell when it needs it.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%^".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An internal operation of a plan, described for `--dry-run`.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Check that an artifact exists and matches the sources; locally, build a missing one.
    RequireArtifact(Artifact),
    /// Empty an artifact's directory before building it, so no stale file survives.
    ResetDir(Artifact),
    /// Record what was just built (commit, sources hash, rustc, file hashes).
    WriteManifest(Artifact),
    /// Check that `target/xtask/services.env` exists and its servers answer.
    RequireServices,
    /// Fail unless nothing listens on the port (never attach to a foreign server).
    CheckPortFree { port: u16, variable: &'static str },
    /// Record in the state file which backend is starting, before anything starts, so a
    /// failure half-way can still be cleaned up.
    TrackServices(Backend),
    /// Start a server in the background; it outlives this process until docker-down.
    Spawn(Daemon),
    /// Wait until the endpoint answers HTTP, or fail with the tail of its log.
    WaitReady(Endpoint),
    /// Create the S3 bucket (moto accepts unauthenticated requests).
    CreateBucket { endpoint: String, bucket: String },
    /// Create the Azure container with a SharedKey-signed request.
    CreateContainer { endpoint: String, container: String },
    /// Write endpoints and credentials to services.env (and `$GITHUB_ENV`) and record what was
    /// started in the state file.
    RecordServices(Backend),
    /// Stop exactly what the state file says docker-up started, then remove it.
    StopServices,
    /// Check the workflows against the stage graph.
    CheckWorkflows,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::RequireArtifact(a) => write!(
                f,
                "check that {} exists and matches the sources (locally: build it when missing)",
                a.name()
            ),
            Action::ResetDir(a) => write!(f, "empty the directory of {}", a.name()),
            Action::WriteManifest(a) => write!(f, "write the manifest of {}", a.name()),
            Action::RequireServices => {
                write!(
                    f,
                    "check target/xtask/services.env and that its servers answer"
                )
            }
            Action::CheckPortFree { port, variable } => {
                write!(
                    f,
                    "check that port {port} is free (change it with {variable})"
                )
            }
            Action::TrackServices(b) => {
                write!(f, "record the {b} backend in the services state file")
            }
            Action::Spawn(d) => {
                write!(
                    f,
                    "start {} in the background, log {}: {}",
                    d.name,
                    d.log.display(),
                    d.cmd
                )
            }
            Action::WaitReady(e) => {
                write!(
                    f,
                    "wait up to {}s for {} at {}",
                    e.deadline_secs, e.name, e.url
                )
            }
            Action::CreateBucket { endpoint, bucket } => {
                write!(f, "create bucket {bucket} at {endpoint}")
            }
            Action::CreateContainer {
                endpoint,
                container,
            } => {
                write!(
                    f,
                    "create container {container} at {endpoint} (SharedKey-signed)"
                )
            }
            Action::RecordServices(b) => write!(
                f,
                "write target/xtask/services.env (and $GITHUB_ENV) and the {b} state file"
            ),
            Action::StopServices => write!(f, "stop what the services state file records"),
            Action::CheckWorkflows => write!(
                f,
                "check that every workflow `run:` step is a known cargo xtask command and every \
                 job's needs agree with the stage graph"
            ),
        }
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Run(Cmd),
    /// Find the pinned tool, or install it into the tools directory.
    Ensure(Tool),
    Do(Action),
    /// Information for the reader; changes nothing.
    Note(String),
    /// Something the user must not miss (printed loudly, annotated, kept in the report).
    Warn(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run(cmd) => write!(f, "$ {cmd}"),
            Step::Ensure(tool) => write!(f, "- ensure {tool}"),
            Step::Do(action) => write!(f, "- {action}"),
            Step::Note(text) => write!(f, "# {text}"),
            Step::Warn(text) => write!(f, "! {text}"),
        }
    }
}

/// What one stage invocation does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    pub fn run(mut self, cmd: Cmd) -> Plan {
        self.steps.push(Step::Run(cmd));
        self
    }

    pub fn ensure(mut self, tool: Tool) -> Plan {
        self.steps.push(Step::Ensure(tool));
        self
    }

    pub fn action(mut self, action: Action) -> Plan {
        self.steps.push(Step::Do(action));
        self
    }

    pub fn note(mut self, text: impl Into<String>) -> Plan {
        self.steps.push(Step::Note(text.into()));
        self
    }

    pub fn warn(mut self, text: impl Into<String>) -> Plan {
        self.steps.push(Step::Warn(text.into()));
        self
    }

    pub fn extend(mut self, other: Plan) -> Plan {
        self.steps.extend(other.steps);
        self
    }

    /// One line per step, as `--dry-run` prints them.
    #[cfg(test)]
    pub fn lines(&self) -> Vec<String> {
        self.steps.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_render_like_a_shell_line() {
        let cmd = Cmd::new("cargo")
            .args([
                "nextest",
                "run",
                "-E",
                "not binary_id(icechunk::integration)",
            ])
            .env("RUST_BACKTRACE", "1")
            .env_file("target/xtask/services.env");
        assert_eq!(
            cmd.to_string(),
            "env $(cat target/xtask/services.env) RUST_BACKTRACE=1 cargo nextest run -E \
             'not binary_id(icechunk::integration)'"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
