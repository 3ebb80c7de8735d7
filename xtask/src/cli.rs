//! The command line: `cargo xtask <command> [options]`. The engine parses and runs it
//! (`ci_engine::cli`); this is what it knows of this repository: the layout, the usage text and
//! `compare` over this repository's benchmark.

use crate::benchmark::BENCHMARK;
use crate::pipeline::LAYOUT;
use ci_engine::cli::{Cli, ProjectCommand};
use ci_engine::compare::Options;

/// This repository's command line.
pub static CLI: Cli = Cli {
    layout: &LAYOUT,
    usage: USAGE,
    commands: &[ProjectCommand {
        name: "compare",
        parse: |args, dry_run| Ok(Box::new(Options::parse(&BENCHMARK, args, dry_run)?)),
    }],
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Result;
    use ci_engine::cli::{Command, parse};

    fn parse_str(line: &str) -> Result<Command> {
        parse(&CLI, line.split_whitespace().map(str::to_string).collect())
    }

    #[test]
    fn unknown_things_answer_with_the_valid_ones() {
        let err = parse_str("ci --only lint-everything")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown stage `lint-everything`") && err.contains("test-unit"),
            "{err}"
        );
        let err = parse_str("lint-everything").unwrap_err().to_string();
        assert!(
            err.contains("the stages are: lint-rust")
                && err.contains("other commands: ci, docker-down, workflows, compare, list"),
            "{err}"
        );
        let err = parse_str("test-unit --full").unwrap_err().to_string();
        assert!(err.contains("--partition hash:M/N"), "{err}");
        let err = parse_str("compare --fast").unwrap_err().to_string();
        assert!(err.contains("--scenario"), "{err}");
    }

    #[test]
    fn the_usage_names_every_scenario_and_scheduled_stage() {
        for scenario in BENCHMARK.scenarios {
            assert!(USAGE.contains(scenario.name), "{}", scenario.name);
        }
        for stage in LAYOUT.pipeline.stages {
            if stage.schedule == ci_engine::graph::Schedule::Scheduled {
                assert!(USAGE.contains(stage.name), "{}", stage.name);
            }
        }
    }

    #[test]
    fn stages_compare_and_help() {
        let Command::Stage { name, args, .. } =
            parse_str("test-full --partition hash:1/2 --dry-run").unwrap()
        else {
            panic!("not a stage");
        };
        assert_eq!(name, "test-full");
        assert_eq!(args.to_args(), ["--partition", "hash:1/2"]);
        let compare = parse_str("compare --scenario all --dry-run").unwrap();
        assert!(compare.only_prints(), "{compare:?}");
        let Command::Help(text) = parse_str("python-test --help").unwrap() else {
            panic!()
        };
        assert!(
            text.contains("--full") && text.contains("In `cargo xtask ci`: python-test --full"),
            "{text}"
        );
        for line in ["", "compare --help", "help docker-down"] {
            let Command::Help(text) = parse_str(line).unwrap() else {
                panic!("{line}")
            };
            assert_eq!(text, USAGE, "{line}");
        }
    }
}
