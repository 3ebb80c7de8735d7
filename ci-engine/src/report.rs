//! The end-of-run report: a table of stages with status and duration, written to the terminal,
//! to `target/xtask/report.json`, and (under GitHub Actions) to the step summary.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::exec::CommandRecord;
use crate::output::{Output, Tone};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    /// Not run: its content key passed before (or, for a stage that only serves others, nothing needs it).
    Cached,
    Failed,
    /// Not run because a stage it needs failed (with --keep-going).
    Skipped,
    /// Not reached: an earlier stage failed (without --keep-going).
    NotRun,
    /// Stopped by Ctrl-C, or not reached because of it.
    Interrupted,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Cached => "cached",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
            Status::NotRun => "not run",
            Status::Interrupted => "interrupted",
        }
    }

    fn tone(self) -> Tone {
        match self {
            Status::Passed | Status::Cached => Tone::Good,
            Status::Failed | Status::Interrupted => Tone::Bad,
            Status::Skipped | Status::NotRun => Tone::Warn,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageReport {
    pub stage: String,
    /// The command line that reproduces it: `cargo xtask <stage> <args>`.
    pub invocation: String,
    pub status: Status,
    pub seconds: f64,
    /// The error, or why it was skipped, or warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRecord>,
}

impl StageReport {
    /// A stage about to run (passed until something says otherwise).
    pub fn new(stage: &str, invocation: String) -> StageReport {
        StageReport {
            stage: stage.to_string(),
            invocation,
            status: Status::Passed,
            seconds: 0.0,
            notes: Vec::new(),
            commands: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    /// What was run: `ci`, or a stage
    pub command: String,
    pub success: bool,
    pub seconds: f64,
    pub stages: Vec<StageReport>,
}

impl Report {
    pub const FORMAT: u32 = 1;

    pub fn new(command: &str, stages: Vec<StageReport>, seconds: f64) -> Report {
        let success = stages
            .iter()
            .all(|s| matches!(s.status, Status::Passed | Status::Cached));
        Report {
            format: Report::FORMAT,
            command: command.to_string(),
            success,
            seconds,
            stages,
        }
    }

    /// The table for a terminal.
    pub fn table(&self, out: &Output) -> String {
        let width = self
            .stages
            .iter()
            .map(|s| s.invocation.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut text = format!("{:width$}  {:11}  {:>8}\n", "stage", "status", "time");
        for s in &self.stages {
            let status = out.paint(s.status.tone(), &format!("{:11}", s.status.label()));
            text.push_str(&format!(
                "{:width$}  {status}  {:>8}\n",
                s.invocation,
                format_seconds(s.seconds)
            ));
            for note in &s.notes {
                text.push_str(&format!("{:width$}    {}\n", "", first_line(note)));
            }
        }
        let verdict = if self.success { "passed" } else { "FAILED" };
        text.push_str(&format!("{verdict} in {}\n", format_seconds(self.seconds)));
        text
    }

    /// The same table in Markdown, for `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let mut text = format!(
            "### cargo xtask {}\n\n| stage | status | time |\n|---|---|---:|\n",
            self.command
        );
        for s in &self.stages {
            let icon = if s.status == Status::Passed {
                "✅"
            } else {
                "❌"
            };
            text.push_str(&format!(
                "| `{}` | {icon} {} | {} |\n",
                s.invocation,
                s.status.label(),
                format_seconds(s.seconds)
            ));
        }
        let notes: Vec<String> = self
            .stages
            .iter()
            .flat_map(|s| {
                s.notes
                    .iter()
                    .map(move |n| format!("- **{}**: {}", s.stage, first_line(n)))
            })
            .collect();
        if !notes.is_empty() {
            text.push('\n');
            text.push_str(&notes.join("\n"));
            text.push('\n');
        }
        text
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("could not write {}", path.display()))
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

pub fn format_seconds(seconds: f64) -> String {
    if seconds >= 60.0 {
        format!(
            "{}m{:02}s",
            (seconds / 60.0).floor() as u64,
            (seconds % 60.0).floor() as u64
        )
    } else {
        format!("{seconds:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let stage = |name: &str, status, seconds, notes: &[&str]| StageReport {
            stage: name.to_string(),
            invocation: name.to_string(),
            status,
            seconds,
            notes: notes.iter().map(|n| n.to_string()).collect(),
            commands: vec![],
        };
        Report::new(
            "ci",
            vec![
                stage("lint-code", Status::Passed, 12.34, &[]),
                stage(
                    "build-test-bins",
                    Status::Failed,
                    75.0,
                    &["`cargo nextest archive` failed\nmore"],
                ),
                stage(
                    "run-tests",
                    Status::Skipped,
                    0.0,
                    &["needs build-test-bins, which failed"],
                ),
            ],
            87.5,
        )
    }

    #[test]
    fn the_table_lists_every_stage_with_status_and_time() {
        let table = sample().table(&Output::plain());
        assert_eq!(
            table,
            "stage            status           time\n\
             lint-code        passed          12.3s\n\
             build-test-bins  FAILED          1m15s\n\
             \x20                  `cargo nextest archive` failed\n\
             run-tests        skipped          0.0s\n\
             \x20                  needs build-test-bins, which failed\n\
             FAILED in 1m27s\n"
        );
    }

    #[test]
    fn markdown_for_the_step_summary() {
        let md = sample().markdown();
        assert!(
            md.starts_with("### cargo xtask ci\n\n| stage | status | time |\n|---|---|---:|\n")
        );
        assert!(
            md.contains("| `build-test-bins` | ❌ FAILED | 1m15s |"),
            "{md}"
        );
        assert!(
            md.contains("- **build-test-bins**: `cargo nextest archive` failed\n"),
            "{md}"
        );
    }

    #[test]
    fn json_round_trips_with_a_stable_shape() {
        let report = sample();
        assert!(!report.success);
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["format"], 1);
        assert_eq!(json["command"], "ci");
        assert_eq!(json["stages"][1]["status"], "failed");
        assert_eq!(json["stages"][2]["status"], "skipped");
        assert!(
            json["stages"][0].get("notes").is_none(),
            "empty notes are left out"
        );
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.stages.len(), 3);
    }
}
