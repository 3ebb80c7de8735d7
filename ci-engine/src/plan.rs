//! Plans: what a stage will do, as data.
//!
//! A stage turns into a [`Plan`]: external commands ([`Cmd`]) with their arguments and
//! environment, all run in the workspace root, and internal [`Action`]s (check a manifest, wait
//! for a server) that the module owning them implements. Planning is pure: a plan is computed
//! from the [`Context`] and the stage's flags alone, and everything that needs to look at the
//! world is a step. `--dry-run` prints plans, tests compare them, and the executor (`exec`) is the one
//! place that runs them, through the [`Runner`] they see.

use std::fmt;
use std::sync::Arc;

use anyhow::Result;

use crate::cmd::Cmd;
use crate::context::Context;
use crate::output::Output;

/// What an action may do while it runs: read the context, run commands, speak.
pub trait Runner {
    fn ctx(&self) -> &Context;
    fn out(&self) -> &Output;
    /// Echo and run one command; a failure is an error naming it.
    fn run(&mut self, cmd: &Cmd) -> Result<()>;
    /// Run commands at once, then show each one's output in turn: one result per command (a
    /// failure names it); `Err` only when they could not be run at all.
    fn run_together(&mut self, cmds: &[Cmd]) -> Result<Vec<Result<()>>>;
    /// Something the user must not miss (printed loudly, kept in the report).
    fn warn(&mut self, text: &str);
}

/// How an action ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go on with the next step.
    Continue,
    /// The rest of the plan is not needed (an artifact is already current), for this reason.
    Done(String),
}

/// An internal step of a plan. Its `Display` is the line `--dry-run` prints.
pub trait Action: fmt::Display + fmt::Debug {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome>;
}

/// One step of a plan.
#[derive(Clone, Debug)]
pub enum Step {
    Run(Cmd),
    Do(Arc<dyn Action>),
    /// Information for the reader; changes nothing.
    Note(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run(cmd) => write!(f, "$ {cmd}"),
            Step::Do(action) => write!(f, "- {action}"),
            Step::Note(text) => write!(f, "# {text}"),
        }
    }
}

/// What one stage invocation does.
#[derive(Clone, Debug, Default)]
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

    pub fn action(mut self, action: impl Action + 'static) -> Plan {
        self.steps.push(Step::Do(Arc::new(action)));
        self
    }

    pub fn note(mut self, text: impl Into<String>) -> Plan {
        self.steps.push(Step::Note(text.into()));
        self
    }

    pub fn extend(mut self, other: Plan) -> Plan {
        self.steps.extend(other.steps);
        self
    }

    /// One line per step, as `--dry-run` prints them.
    pub fn lines(&self) -> Vec<String> {
        self.steps.iter().map(ToString::to_string).collect()
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing {
    //! A runner that records what an action would run, for tests of actions whose commands
    //! cannot run here.
    use super::*;

    #[derive(Debug)]
    pub struct Recorder<'a> {
        ctx: &'a Context,
        out: Output,
        pub ran: Vec<String>,
        pub warnings: Vec<String>,
    }

    impl<'a> Recorder<'a> {
        pub fn new(ctx: &'a Context) -> Recorder<'a> {
            Recorder {
                ctx,
                out: Output::plain(),
                ran: Vec::new(),
                warnings: Vec::new(),
            }
        }
    }

    impl Runner for Recorder<'_> {
        fn ctx(&self) -> &Context {
            self.ctx
        }

        fn out(&self) -> &Output {
            &self.out
        }

        fn run(&mut self, cmd: &Cmd) -> Result<()> {
            self.ran.push(cmd.to_string());
            Ok(())
        }

        fn run_together(&mut self, cmds: &[Cmd]) -> Result<Vec<Result<()>>> {
            self.ran.extend(cmds.iter().map(|c| format!("{c} &")));
            Ok(cmds.iter().map(|_| Ok(())).collect())
        }

        fn warn(&mut self, text: &str) {
            self.warnings.push(text.to_string());
        }
    }
}
