//! A project's `cargo xtask` command line: `ci`, `audit`, `keys`, `workflows`, `list`, each
//! stage by name, the command that stops the servers, `--help`, and the project's own commands.
//! A project gives its [`Cli`]: its layout (the pipeline and the workflows), its usage text
//! and its commands; [`main`] parses the arguments, runs what they ask and returns the exit
//! code (0 passed, 1 failed, 2 bad usage, 130 interrupted).

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use lexopt::prelude::*;

use crate::context::Context;
use crate::exec::Executor;
use crate::flags::StageArgs;
use crate::graph::{Pipeline, Selection, help};
use crate::jobs::Layout;
use crate::output::{Output, Tone};
use crate::process;
use crate::run::{self, Invocation, RunOptions};
use crate::workflows;

/// A project's command line.
pub struct Cli {
    pub layout: &'static Layout,
    /// What `cargo xtask --help` prints: every command, the `ci` flags, the project's own.
    pub usage: &'static str,
    /// The project's own commands, after the engine's.
    pub commands: &'static [ProjectCommand],
}

/// A command of the project's own: its name, and how its arguments (without `--dry-run`,
/// which comes as a switch) become what to run.
pub struct ProjectCommand {
    pub name: &'static str,
    pub parse: fn(Vec<String>, bool) -> Result<Box<dyn Parsed>>,
}

/// A project command, parsed.
pub trait Parsed: fmt::Debug {
    /// Whether it only prints and runs nothing that outlives it (a dry run).
    fn only_prints(&self) -> bool;
    /// Runs it; whether it passed.
    fn run(&self, ctx: &Context, out: &Output) -> Result<bool>;
}

impl Cli {
    fn pipeline(&self) -> &'static Pipeline {
        self.layout.pipeline
    }

    /// The command that stops the servers, when the pipeline has any.
    fn stop_command(&self) -> Option<&'static str> {
        self.pipeline().servers.as_ref().map(|s| s.stop_command)
    }

    /// The commands that are not stages, as `list` names them.
    fn other_commands(&self) -> String {
        let mut names = vec!["ci"];
        names.extend(self.stop_command());
        names.push("workflows");
        names.extend(self.commands.iter().map(|c| c.name));
        names.push("list");
        names.join(", ")
    }
}

/// What the arguments ask for, before anything runs.
#[derive(Debug)]
pub enum Command {
    Help(String),
    List,
    Ci {
        selection: Selection,
        keep_going: bool,
        force: bool,
        audit: bool,
        dry_run: bool,
    },
    Keys {
        json: bool,
        /// The plan job's keys, to check this job's against (`--planned`).
        planned: Option<String>,
    },
    Stage {
        name: String,
        args: StageArgs,
        dry_run: bool,
    },
    StopServers {
        dry_run: bool,
    },
    Workflows,
    Project(Box<dyn Parsed>),
}

/// Parses the process's arguments and runs them.
pub fn main(cli: &Cli) -> ExitCode {
    let command = match parse(cli, std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if command.only_prints() {
        process::default_sigpipe();
    }
    match run(cli, command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn passed(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(cli: &Cli, command: Command) -> Result<ExitCode> {
    let pipeline = cli.pipeline();
    let project = cli.layout.project;
    let (invocations, opts) = match command {
        Command::Help(text) => {
            println!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Command::List => {
            print!("{}", help::list(pipeline, &cli.other_commands()));
            return Ok(ExitCode::SUCCESS);
        }
        Command::StopServers { dry_run } => {
            process::install_signal_handler()?;
            let ctx = Context::discover(project)?;
            let mut executor = Executor::new(&ctx, Output::from_env(ctx.github_actions), dry_run);
            if let Some(servers) = &pipeline.servers {
                if dry_run {
                    println!("==> cargo xtask {}", servers.stop_command);
                }
                (servers.stop)(&mut executor)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Workflows => {
            let ctx = Context::discover(project)?;
            let changed = workflows::write(cli.layout, &ctx.root)?;
            let out = Output::from_env(ctx.github_actions);
            if changed.is_empty() {
                out.say(Tone::Good, "the workflows were already current");
            }
            for line in changed {
                out.say(Tone::Bold, &format!("rewrote: {line}"));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Project(parsed) => {
            process::install_signal_handler()?;
            let ctx = Context::discover(project)?;
            let out = Output::from_env(ctx.github_actions);
            return Ok(passed(parsed.run(&ctx, &out)?));
        }
        Command::Keys { json, planned } => {
            let ctx = Context::discover(project)?;
            keys(cli, &ctx, json, planned)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Ci {
            selection,
            keep_going,
            force,
            audit,
            dry_run,
        } => {
            let invocations = selection
                .resolve(pipeline)?
                .into_iter()
                .map(Invocation::for_ci)
                .collect::<Result<Vec<_>>>()?;
            (
                (invocations, selection.skip),
                RunOptions {
                    command: "ci".into(),
                    keep_going,
                    dry_run,
                    teardown_services: true,
                    reuse_passes: !force,
                    audit,
                },
            )
        }
        Command::Stage {
            name,
            args,
            dry_run,
        } => {
            let stage = pipeline.stage(&name)?;
            let opts = RunOptions {
                command: name,
                keep_going: false,
                dry_run,
                teardown_services: false,
                reuse_passes: false,
                audit: false,
            };
            ((vec![Invocation { stage, args }], Vec::new()), opts)
        }
    };
    let (invocations, skipped) = invocations;
    process::install_signal_handler()?;
    let ctx = Context::discover(project)?;
    let invocations = run::with_producers(&ctx, pipeline, invocations, &skipped)?;
    let out = Output::from_env(ctx.github_actions);
    let report = run::run(&ctx, pipeline, &out, &invocations, &opts)?;
    Ok(if run::was_interrupted(&report) {
        ExitCode::from(130)
    } else {
        passed(report.success)
    })
}

/// `keys`: every stage's key, printed and written to the keys file (CI's pass records are
/// cache entries of it), and on a runner as step outputs with the record keys of the plan job.
fn keys(cli: &Cli, ctx: &Context, json: bool, planned: Option<String>) -> Result<()> {
    let keys = crate::keys::all(ctx, cli.pipeline())?;
    let text = serde_json::to_string_pretty(&keys)? + "\n";
    std::fs::create_dir_all(ctx.xtask_dir())?;
    std::fs::write(ctx.keys_file(), &text)?;
    if json {
        print!("{text}");
    } else {
        print!("{}", crate::keys::table(&keys));
    }
    let by_stage: BTreeMap<String, String> = keys
        .iter()
        .map(|k| (k.stage.clone(), k.key.clone()))
        .collect();
    let mut outputs: Vec<(String, String)> = keys
        .iter()
        .map(|k| (format!("key-{}", k.stage), k.key.clone()))
        .collect();
    outputs.extend(workflows::plan::record_keys(
        cli.layout, &ctx.root, &by_stage,
    )?);
    outputs.push((
        workflows::plan::PLANNED_KEYS_OUTPUT.to_string(),
        serde_json::to_string(&by_stage)?,
    ));
    Output::from_env(ctx.github_actions).step_outputs(&outputs);
    if let Some(planned) = planned {
        crate::keys::check_planned(&planned, &by_stage)?;
    }
    Ok(())
}

impl Command {
    /// Whether the command only prints (help, the list, a dry run) and runs nothing that
    /// outlives it, so that a closed stdout (`| head`) may simply end it.
    pub fn only_prints(&self) -> bool {
        match self {
            Command::Help(_) | Command::List => true,
            Command::Workflows | Command::Keys { .. } => false,
            Command::Ci { dry_run, .. }
            | Command::Stage { dry_run, .. }
            | Command::StopServers { dry_run } => *dry_run,
            Command::Project(parsed) => parsed.only_prints(),
        }
    }
}

/// The command `args` (the arguments after `cargo xtask`) ask for; an unknown one is an error
/// that names the valid ones.
pub fn parse(cli: &Cli, args: Vec<String>) -> Result<Command> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help(cli.usage.to_string()));
    };
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    let dry_run = rest.iter().any(|a| a == "--dry-run");
    let rest: Vec<String> = rest.iter().filter(|a| *a != "--dry-run").cloned().collect();
    match command.as_str() {
        "help" | "--help" | "-h" => Ok(Command::Help(match rest.first() {
            Some(name) => help_for(cli, name)?,
            None => cli.usage.to_string(),
        })),
        _ if wants_help => Ok(Command::Help(help_for(cli, command)?)),
        "list" => no_more_args(command, &rest).map(|_| Command::List),
        name if Some(name) == cli.stop_command() => {
            no_more_args(command, &rest).map(|_| Command::StopServers { dry_run })
        }
        "workflows" => no_more_args(command, &rest).map(|_| Command::Workflows),
        "keys" => {
            let (mut json, mut planned) = (false, None);
            let mut args = rest.iter();
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--json" => json = true,
                    "--planned" => match args.next() {
                        Some(value) => planned = Some(value.clone()),
                        None => bail!("`--planned` takes the plan job's keys (JSON)"),
                    },
                    other => {
                        bail!("`cargo xtask keys` takes --json and --planned <keys>, not `{other}`")
                    }
                }
            }
            Ok(Command::Keys { json, planned })
        }
        "ci" => parse_ci(cli.pipeline(), rest, dry_run, false),
        // Every stage whose result can be reused, run again and traced.
        "audit" => parse_ci(cli.pipeline(), rest, dry_run, true),
        name => {
            if let Some(own) = cli.commands.iter().find(|c| c.name == name) {
                return Ok(Command::Project((own.parse)(rest, dry_run)?));
            }
            let stage = cli.pipeline().stage(name).map_err(|e| {
                anyhow::anyhow!(
                    "{e}; other commands: {} (see `cargo xtask --help`)",
                    cli.other_commands()
                )
            })?;
            Ok(Command::Stage {
                name: name.to_string(),
                args: stage.parse_args(&rest)?,
                dry_run,
            })
        }
    }
}

fn no_more_args(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        Some(arg) => {
            bail!("`cargo xtask {command}` takes no argument `{arg}` (only --dry-run, --help)")
        }
        None => Ok(()),
    }
}

fn help_for(cli: &Cli, name: &str) -> Result<String> {
    let engine = ["ci", "audit", "list", "workflows", "keys"];
    if engine.contains(&name)
        || Some(name) == cli.stop_command()
        || cli.commands.iter().any(|c| c.name == name)
    {
        return Ok(cli.usage.to_string());
    }
    Ok(help::stage(cli.pipeline(), cli.pipeline().stage(name)?))
}

fn parse_ci(
    pipeline: &'static Pipeline,
    args: Vec<String>,
    dry_run: bool,
    audit_command: bool,
) -> Result<Command> {
    let mut selection = Selection::default();
    let mut keep_going = false;
    let mut force = audit_command;
    let mut audit = audit_command;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().context("could not read the arguments")? {
        match arg {
            Long("only") => selection
                .only
                .get_or_insert_with(Vec::new)
                .extend(names(parser.value()?)?),
            Long("skip") => selection.skip.extend(names(parser.value()?)?),
            Long("keep-going") => keep_going = true,
            Long("force") => force = true,
            Long("audit") => audit = true,
            Long("scheduled") => selection.scheduled = true,
            other => bail!(
                "unknown argument `{}` for ci; it accepts: --only a,b, --skip a,b, --scheduled, \
                 --keep-going, --force, --audit, --dry-run, --help",
                shown(&other)
            ),
        }
    }
    selection.resolve(pipeline)?;
    Ok(Command::Ci {
        // The scheduled pipeline proves its keys (docs/ci.md, "The audit").
        audit: audit || selection.scheduled,
        selection,
        keep_going,
        force,
        dry_run,
    })
}

/// A comma-separated list of names (`a,b`).
pub fn names(value: std::ffi::OsString) -> Result<Vec<String>> {
    let text = value
        .into_string()
        .map_err(|_| anyhow::anyhow!("names are plain text"))?;
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// An argument as the user typed it, for error messages.
pub fn shown(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        Long(name) => format!("--{name}"),
        Short(c) => format!("-{c}"),
        Value(v) => v.to_string_lossy().into_owned(),
    }
}
