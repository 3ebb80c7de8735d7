//! The executor: runs plans and knows no stage.
//!
//! [`Executor`] echoes each command of a plan, runs it through [`crate::process`], records wall
//! and CPU time, turns a failure into an error that names the command, and performs each action
//! through the [`Runner`] interface. It stops with [`Interrupted`] after Ctrl-C unless it is
//! tearing down.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::output::{Output, Tone};
use crate::plan::{Outcome, Plan, Runner, Step};
use crate::process::{self, Interrupted, interrupted};

/// What one command cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command: String,
    pub seconds: f64,
    /// User + system CPU of the command and every descendant it waited for.
    pub cpu_seconds: f64,
    pub success: bool,
    /// Where its output went, when the executor logs to files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<std::path::PathBuf>,
}

/// What [`Executor::rewrite`] holds.
pub type Rewrite = Box<dyn FnMut(&Cmd) -> Cmd>;

/// Runs plans.
pub struct Executor<'a> {
    pub ctx: &'a Context,
    pub out: Output,
    pub dry_run: bool,
    /// Every command run so far.
    pub records: Vec<CommandRecord>,
    /// Warnings raised by plans, for the report.
    pub warnings: Vec<String>,
    /// Tearing down after a failure or an interrupt: keep going despite Ctrl-C.
    pub finishing: bool,
    /// Variables set for every command (compare points cargo at a job's own target directory).
    pub env: Vec<(String, String)>,
    /// When set, each command's output goes to a numbered file here instead of the terminal.
    pub log_dir: Option<std::path::PathBuf>,
    /// Log files written so far (the numbering goes on when a stage takes the records).
    logged: usize,
    /// Applied to every command before it runs (compare asks cargo for JSON messages, which
    /// leaves the build unchanged; the audit runs each command under a tracer).
    pub rewrite: Option<Rewrite>,
}

impl<'a> Executor<'a> {
    pub fn new(ctx: &'a Context, out: Output, dry_run: bool) -> Executor<'a> {
        Executor {
            ctx,
            out,
            dry_run,
            records: Vec::new(),
            warnings: Vec::new(),
            finishing: false,
            env: Vec::new(),
            log_dir: None,
            logged: 0,
            rewrite: None,
        }
    }

    /// Run (or, in a dry run, print) every step of `plan`.
    pub fn run_plan(&mut self, plan: &Plan) -> Result<()> {
        for step in &plan.steps {
            if self.dry_run {
                println!("  {step}");
                continue;
            }
            if interrupted() && !self.finishing {
                bail!(Interrupted);
            }
            match step {
                Step::Run(cmd) => self.run(cmd)?,
                Step::Do(action) => {
                    if let Outcome::Done(why) = action.perform(self)? {
                        self.out.say(Tone::Dim, &format!("# {why}"));
                        return Ok(());
                    }
                }
                Step::Note(text) => self.out.say(Tone::Dim, &format!("# {text}")),
            }
        }
        Ok(())
    }

    /// Echo and run one command (its output to the terminal, or to a file under `log_dir`).
    pub fn run(&mut self, cmd: &Cmd) -> Result<()> {
        let rewritten = self.rewrite.as_mut().map(|rewrite| rewrite(cmd));
        let cmd = rewritten.as_ref().unwrap_or(cmd);
        let line = cmd.to_string();
        self.out.begin_command(&line);
        let log = match self.log_dir.clone() {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                Some(self.next_log(&dir))
            }
            None => None,
        };
        let result = process::run_to_completion(cmd, &self.ctx.root, &self.env, log.as_deref());
        self.out.end_command();
        let (seconds, cpu_seconds, status) = result?;
        self.records.push(CommandRecord {
            command: line.clone(),
            seconds,
            cpu_seconds,
            success: status.success(),
            log,
        });
        if interrupted() && !self.finishing {
            bail!(Interrupted);
        }
        let log = self.records.last().and_then(|r| r.log.clone());
        checked(cmd, status, log.as_deref())
    }

    /// The next numbered log file in `dir`.
    fn next_log(&mut self, dir: &std::path::Path) -> std::path::PathBuf {
        self.logged += 1;
        dir.join(format!("{:03}.log", self.logged))
    }

    /// Run `cmds` at once, each with its output to a log file (under `log_dir`, else
    /// target/xtask/logs/), then show each one's output in turn, in order. Each command's CPU
    /// time is the group's, split in proportion to wall time (overlapping children cannot be
    /// told apart).
    pub fn run_together(&mut self, cmds: &[Cmd]) -> Result<Vec<Result<()>>> {
        let cmds: Vec<Cmd> = cmds
            .iter()
            .map(|c| match self.rewrite.as_mut() {
                Some(rewrite) => rewrite(c),
                None => c.clone(),
            })
            .collect();
        let dir = self
            .log_dir
            .clone()
            .unwrap_or_else(|| self.ctx.xtask_dir().join("logs"));
        std::fs::create_dir_all(&dir)?;
        let logs: Vec<std::path::PathBuf> = cmds.iter().map(|_| self.next_log(&dir)).collect();
        for cmd in &cmds {
            self.out.say(
                Tone::Bold,
                &format!("$ {cmd}   (at once with the others; its output follows when all end)"),
            );
        }
        let runs: Vec<(&Cmd, &std::path::Path)> =
            cmds.iter().zip(logs.iter().map(|l| l.as_path())).collect();
        let (finished, cpu) = process::run_concurrently(&runs, &self.ctx.root, &self.env)?;
        let wall: f64 = finished.iter().map(|(s, _)| s).sum();
        let mut results = Vec::new();
        for ((cmd, log), (seconds, status)) in runs.into_iter().zip(finished) {
            let line = cmd.to_string();
            let kept = self.log_dir.is_some().then(|| log.to_path_buf());
            if kept.is_none() {
                self.out.begin_command(&line);
                match std::fs::read_to_string(log) {
                    Ok(text) => eprint!("{text}"),
                    Err(e) => self
                        .out
                        .warn(&format!("could not read {}: {e}", log.display())),
                }
                self.out.end_command();
            }
            self.records.push(CommandRecord {
                command: line,
                seconds,
                cpu_seconds: if wall > 0.0 {
                    cpu * seconds / wall
                } else {
                    0.0
                },
                success: status.success(),
                log: kept.clone(),
            });
            results.push(checked(cmd, status, kept.as_deref()));
        }
        if interrupted() && !self.finishing {
            bail!(Interrupted);
        }
        Ok(results)
    }
}

/// A command's exit as a result: a failure is an error that names it (and its log).
fn checked(
    cmd: &Cmd,
    status: std::process::ExitStatus,
    log: Option<&std::path::Path>,
) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "a signal".to_string(),
    };
    let see = log
        .map(|l| format!(" (output in {})", l.display()))
        .unwrap_or_default();
    bail!("`{}` failed with {how}{see}", cmd.command_line())
}

impl Runner for Executor<'_> {
    fn ctx(&self) -> &Context {
        self.ctx
    }

    fn run(&mut self, cmd: &Cmd) -> Result<()> {
        Executor::run(self, cmd)
    }

    fn run_together(&mut self, cmds: &[Cmd]) -> Result<Vec<Result<()>>> {
        Executor::run_together(self, cmds)
    }

    fn out(&self) -> &Output {
        &self.out
    }

    fn warn(&mut self, text: &str) {
        self.out.warn(text);
        self.warnings.push(text.to_string());
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_names_itself_and_is_recorded() {
        let ctx = crate::context::testing::context_at(std::env::temp_dir());
        let mut exec = Executor::new(&ctx, Output::plain(), false);
        let err = exec
            .run(&Cmd::new("sh").args(["-c", "exit 7"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sh -c 'exit 7'` failed with exit code 7"),
            "{err}"
        );
        assert_eq!(exec.records.len(), 1);
        assert!(!exec.records[0].success);
    }

    #[test]
    fn commands_run_together_and_each_result_names_its_command() {
        let dir = std::env::temp_dir().join(format!("xtask-together-{}", std::process::id()));
        let ctx = crate::context::testing::context_at(dir.clone());
        std::fs::create_dir_all(&dir).unwrap();
        let mut exec = Executor::new(&ctx, Output::plain(), false);
        exec.log_dir = Some(dir.join("logs"));
        // The first waits (up to 20 s) for a file the second creates: run one after the
        // other, it would fail.
        let results = exec
            .run_together(&[
                Cmd::new("sh").args([
                    "-c",
                    "for i in $(seq 200); do [ -f marker ] && echo one && exit 0; sleep 0.1; done; exit 1",
                ]),
                Cmd::new("sh").args(["-c", "touch marker; exit 3"]),
            ])
            .unwrap();
        assert!(results[0].is_ok(), "{:?}", results[0]);
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("`sh -c 'touch marker; exit 3'` failed with exit code 3"),
            "{err}"
        );
        assert_eq!(exec.records.len(), 2);
        let log = exec.records[0].log.clone().unwrap();
        assert_eq!(std::fs::read_to_string(log).unwrap(), "one\n");
        // A stage takes the records; the next log does not overwrite an earlier one.
        exec.records.clear();
        exec.run(&Cmd::new("true")).unwrap();
        let next = exec.records[0].log.clone().unwrap();
        assert!(next.ends_with("003.log"), "{}", next.display());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
