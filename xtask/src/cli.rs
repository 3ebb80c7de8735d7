//! The command line: `cargo xtask <command> [options]`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use lexopt::prelude::*;

use crate::pipeline::{LAYOUT, PIPELINE};
use ci_engine::context::Context;
use ci_engine::exec::Executor;
use ci_engine::flags::StageArgs;
use ci_engine::graph::{Selection, help};
use ci_engine::output::{Output, Tone};
use ci_engine::process;
use ci_engine::run::{self, Invocation, RunOptions};

const USAGE: &str = "\
cargo xtask — the repository's CI as commands; `cargo xtask ci` runs what CI runs.

Usage:
  cargo xtask ci [--only a,b] [--skip x] [--scheduled] [--keep-going] [--force] [--audit] [--dry-run]
  cargo xtask audit [--only a,b] [--skip x]   ci --force --audit: every stage traced, reads checked
  cargo xtask <stage> [flags] [--dry-run]
  cargo xtask docker-down [--dry-run]
  cargo xtask keys [--json]        each stage's content key and the inputs it covers
                                   (--planned <keys>: fail unless they equal the plan job's)
  cargo xtask workflows            write .github/workflows/ from the job table (xtask/src/workflows/)
  cargo xtask compare [--scenario S,..|all] [--jobs a,b] [--scheduled] [--dry-run]
  cargo xtask list
  cargo xtask <command> --help

ci flags:
  --only a,b     run only these stages (in graph order)
  --skip a,b     leave these stages out
  --scheduled    add the stages of the scheduled pipeline (upstream)
  --keep-going   run every stage whose needs passed, and report every failure
  --force        run every stage, also those whose content key passed before (see `keys`)
  --audit        trace every command of each stage whose result can be reused (strace) and
                 fail on a file it read that its key does not cover (on with --scheduled)
  --dry-run      print every command with its arguments, environment and directory; run
                 nothing but read-only probes (git, rustc -vV, docker info, health checks)

compare measures the workflow jobs two ways, per-job builds and the shared pipeline, and
writes target/xtask/compare.{json,md} (see docs/performance.md). `--scenario` picks from cold
(the default), warm, rust-change, python-change, docs-change (or all); `--jobs` picks jobs by
name. The critical path adds each job's setup, its steps priced as measured under act
(`--dry-run` prints each job's).

`cargo xtask list` shows the stages and how they depend on each other.";

/// The commands that are not stages, as `list` names them.
const OTHER_COMMANDS: &str = "ci, docker-down, workflows, compare, list";

#[derive(Debug, PartialEq)]
enum Command {
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
    DockerDown {
        dry_run: bool,
    },
    Workflows,
    Compare(crate::compare::Options),
}

/// Exit codes: 0 passed, 1 failed, 2 bad usage, 130 interrupted.
pub fn main() -> ExitCode {
    let command = match parse(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if command.only_prints() {
        process::default_sigpipe();
    }
    match run(command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    let (invocations, opts) = match command {
        Command::Help(text) => {
            println!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Command::List => {
            print!("{}", help::list(&PIPELINE, OTHER_COMMANDS));
            return Ok(ExitCode::SUCCESS);
        }
        Command::DockerDown { dry_run } => {
            process::install_signal_handler()?;
            let ctx = Context::discover(&crate::project::PROJECT)?;
            let mut executor = Executor::new(&ctx, Output::from_env(ctx.github_actions), dry_run);
            if dry_run {
                println!("==> cargo xtask docker-down");
            }
            crate::stages::services::take_down(&mut executor)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Workflows => {
            let ctx = Context::discover(&crate::project::PROJECT)?;
            let changed = ci_engine::workflows::write(&LAYOUT, &ctx.root)?;
            let out = Output::from_env(ctx.github_actions);
            if changed.is_empty() {
                out.say(Tone::Good, "the workflows were already current");
            }
            for line in changed {
                out.say(Tone::Bold, &format!("rewrote: {line}"));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Compare(opts) => {
            process::install_signal_handler()?;
            let ctx = Context::discover(&crate::project::PROJECT)?;
            let out = Output::from_env(ctx.github_actions);
            let passed = crate::compare::run(&ctx, &out, &opts)?;
            return Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Keys { json, planned } => {
            let ctx = Context::discover(&crate::project::PROJECT)?;
            let keys = ci_engine::keys::all(&ctx, &PIPELINE)?;
            // Also as a file: CI's pass records are cache entries of it, keyed by these keys.
            let text = serde_json::to_string_pretty(&keys)? + "\n";
            std::fs::create_dir_all(ctx.xtask_dir())?;
            std::fs::write(ctx.keys_file(), &text)?;
            if json {
                print!("{text}");
            } else {
                print!("{}", ci_engine::keys::table(&keys));
            }
            let by_stage: BTreeMap<String, String> = keys
                .iter()
                .map(|k| (k.stage.clone(), k.key.clone()))
                .collect();
            let mut outputs: Vec<(String, String)> = keys
                .iter()
                .map(|k| (format!("key-{}", k.stage), k.key.clone()))
                .collect();
            outputs.extend(ci_engine::workflows::plan::record_keys(
                &LAYOUT, &ctx.root, &by_stage,
            )?);
            outputs.push((
                ci_engine::workflows::plan::PLANNED_KEYS_OUTPUT.to_string(),
                serde_json::to_string(&by_stage)?,
            ));
            Output::from_env(ctx.github_actions).step_outputs(&outputs);
            if let Some(planned) = planned {
                ci_engine::keys::check_planned(&planned, &by_stage)?;
            }
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
                .resolve(&PIPELINE)?
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
            let stage = PIPELINE.stage(&name)?;
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
    let ctx = Context::discover(&crate::project::PROJECT)?;
    let invocations = run::with_producers(&ctx, &PIPELINE, invocations, &skipped)?;
    let out = Output::from_env(ctx.github_actions);
    let report = run::run(&ctx, &PIPELINE, &out, &invocations, &opts)?;
    Ok(if run::was_interrupted(&report) {
        ExitCode::from(130)
    } else if report.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

impl Command {
    /// Whether the command only prints (help, the list, a dry run) and runs nothing that
    /// outlives it, so that a closed stdout (`| head`) may simply end it.
    fn only_prints(&self) -> bool {
        match self {
            Command::Help(_) | Command::List => true,
            Command::Workflows | Command::Keys { .. } => false,
            Command::Ci { dry_run, .. }
            | Command::Stage { dry_run, .. }
            | Command::DockerDown { dry_run } => *dry_run,
            Command::Compare(opts) => opts.dry_run,
        }
    }
}

fn parse(args: Vec<String>) -> Result<Command> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help(USAGE.to_string()));
    };
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    let dry_run = rest.iter().any(|a| a == "--dry-run");
    let rest: Vec<String> = rest.iter().filter(|a| *a != "--dry-run").cloned().collect();
    match command.as_str() {
        "help" | "--help" | "-h" => Ok(Command::Help(match rest.first() {
            Some(name) => help_for(name)?,
            None => USAGE.to_string(),
        })),
        _ if wants_help => Ok(Command::Help(help_for(command)?)),
        "list" => no_more_args(command, &rest).map(|_| Command::List),
        "docker-down" => no_more_args(command, &rest).map(|_| Command::DockerDown { dry_run }),
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
        "ci" => parse_ci(rest, dry_run, false),
        // Every stage whose result can be reused, run again and traced.
        "audit" => parse_ci(rest, dry_run, true),
        "compare" => parse_compare(rest, dry_run),
        name => {
            let stage = PIPELINE.stage(name).map_err(|e| {
                anyhow::anyhow!("{e}; other commands: {OTHER_COMMANDS} (see `cargo xtask --help`)")
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

fn help_for(name: &str) -> Result<String> {
    match name {
        "ci" | "audit" | "list" | "docker-down" | "workflows" | "keys" | "compare" => {
            Ok(USAGE.to_string())
        }
        _ => Ok(help::stage(&PIPELINE, PIPELINE.stage(name)?)),
    }
}

fn parse_ci(args: Vec<String>, dry_run: bool, audit_command: bool) -> Result<Command> {
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
    selection.resolve(&PIPELINE)?;
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
fn names(value: std::ffi::OsString) -> Result<Vec<String>> {
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

fn parse_compare(args: Vec<String>, dry_run: bool) -> Result<Command> {
    let mut opts = crate::compare::Options {
        dry_run,
        ..Default::default()
    };
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().context("could not read the arguments")? {
        match arg {
            Long("jobs") => opts
                .jobs
                .get_or_insert_with(Vec::new)
                .extend(names(parser.value()?)?),
            Long("scheduled") => opts.scheduled = true,
            Long("scenario") => {
                let value = parser
                    .value()?
                    .string()
                    .map_err(|_| anyhow::anyhow!("`--scenario` takes plain text"))?;
                opts.scenarios = crate::compare::Scenario::parse_list(&value)?;
            }
            other => bail!(
                "unknown argument `{}` for compare; it accepts: --scenario S,..|all, \
                 --jobs a,b, --scheduled, --dry-run, --help",
                shown(&other)
            ),
        }
    }
    Ok(Command::Compare(opts))
}

/// An argument as the user typed it, for error messages.
fn shown(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        Long(name) => format!("--{name}"),
        Short(c) => format!("-{c}"),
        Value(v) => v.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command> {
        parse(line.split_whitespace().map(str::to_string).collect())
    }

    #[test]
    fn ci_flags() {
        let Command::Ci {
            selection,
            keep_going,
            force,
            audit,
            dry_run,
        } = parse_str(
            "ci --only lint-rust,test-unit --skip codespell --keep-going --dry-run --scheduled \
             --force",
        )
        .unwrap()
        else {
            panic!("not ci");
        };
        assert_eq!(
            selection.only,
            Some(vec!["lint-rust".to_string(), "test-unit".to_string()])
        );
        assert_eq!(selection.skip, ["codespell"]);
        assert!(keep_going && dry_run && selection.scheduled && force);
        assert!(audit, "the scheduled pipeline proves its keys");
        let audited = |line: &str| {
            matches!(
                parse_str(line).unwrap(),
                Command::Ci {
                    audit: true,
                    force: true,
                    ..
                }
            )
        };
        assert!(audited("audit --only codespell"));
        assert!(!audited("ci --force"));
        assert!(matches!(
            parse_str("ci --audit").unwrap(),
            Command::Ci {
                audit: true,
                force: false,
                ..
            }
        ));
    }

    #[test]
    fn unknown_things_answer_with_the_valid_ones() {
        let err = parse_str("ci --fast").unwrap_err().to_string();
        assert!(err.contains("--keep-going"), "{err}");
        let err = parse_str("ci --only lint-everything")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown stage `lint-everything`") && err.contains("test-unit"),
            "{err}"
        );
        let err = parse_str("lint-everything").unwrap_err().to_string();
        assert!(
            err.contains("the stages are: lint-rust") && err.contains("docker-down"),
            "{err}"
        );
        let err = parse_str("test-unit --full").unwrap_err().to_string();
        assert!(err.contains("--partition hash:M/N"), "{err}");
        let err = parse_str("list --verbose").unwrap_err().to_string();
        assert!(err.contains("takes no argument `--verbose`"), "{err}");
    }

    #[test]
    fn stages_and_help() {
        assert_eq!(
            parse_str("test-full --partition hash:1/2 --dry-run").unwrap(),
            Command::Stage {
                name: "test-full".into(),
                args: StageArgs::default().with(&crate::flags::PARTITION, Some("hash:1/2".into())),
                dry_run: true
            }
        );
        let Command::Help(text) = parse_str("python-test --help").unwrap() else {
            panic!()
        };
        assert!(
            text.contains("--full") && text.contains("In `cargo xtask ci`: python-test --full"),
            "{text}"
        );
        let Command::Help(text) = parse_str("").unwrap_or(Command::Help(USAGE.into())) else {
            panic!()
        };
        assert!(text.contains("cargo xtask ci"));
    }
}
