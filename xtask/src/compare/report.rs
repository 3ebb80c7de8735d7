//! What compare measured: each job's cost, each variant's totals and critical path, and the
//! Markdown table of both side by side.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::jobs::Variant;
use crate::context::Context;
use crate::report::format_seconds;

/// What one job cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobResult {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub cpu_seconds: f64,
    /// CPU of the commands that compiled something.
    pub compile_cpu_seconds: f64,
    /// rustc invocations that compiled something.
    pub rustc_compiles: u32,
    pub wheel_builds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VariantResult {
    pub variant: String,
    pub passed: bool,
    pub jobs: Vec<JobResult>,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub compile_cpu_seconds: f64,
    pub rustc_compiles: u32,
    pub wheel_builds: u32,
    /// The longest chain of jobs through `needs:`, with jobs in parallel as GitHub runs them.
    pub critical_path_seconds: f64,
}

impl VariantResult {
    pub fn new(
        variant: Variant,
        jobs: Vec<JobResult>,
        needs: &BTreeMap<String, Vec<String>>,
    ) -> VariantResult {
        VariantResult {
            variant: variant.name().to_string(),
            passed: jobs.iter().all(|j| j.passed),
            seconds: jobs.iter().map(|j| j.seconds).sum(),
            cpu_seconds: jobs.iter().map(|j| j.cpu_seconds).sum(),
            compile_cpu_seconds: jobs.iter().map(|j| j.compile_cpu_seconds).sum(),
            rustc_compiles: jobs.iter().map(|j| j.rustc_compiles).sum(),
            wheel_builds: jobs.iter().map(|j| j.wheel_builds).sum(),
            critical_path_seconds: critical_path(&jobs, needs),
            jobs,
        }
    }
}

/// When the last job finishes if every job starts as soon as the jobs it needs are done.
pub fn critical_path(jobs: &[JobResult], needs: &BTreeMap<String, Vec<String>>) -> f64 {
    fn finish(
        name: &str,
        jobs: &[JobResult],
        needs: &BTreeMap<String, Vec<String>>,
        memo: &mut BTreeMap<String, f64>,
    ) -> f64 {
        if let Some(t) = memo.get(name) {
            return *t;
        }
        let own = jobs
            .iter()
            .find(|j| j.name == name)
            .map(|j| j.seconds)
            .unwrap_or(0.0);
        let start = needs
            .get(name)
            .into_iter()
            .flatten()
            .map(|n| finish(n, jobs, needs, memo))
            .fold(0.0, f64::max);
        memo.insert(name.to_string(), start + own);
        start + own
    }
    let mut memo = BTreeMap::new();
    jobs.iter()
        .map(|j| finish(&j.name, jobs, needs, &mut memo))
        .fold(0.0, f64::max)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareReport {
    pub format: u32,
    pub commit: String,
    pub cores: usize,
    pub variants: Vec<VariantResult>,
}

impl CompareReport {
    pub fn new(ctx: &Context, variants: Vec<VariantResult>) -> Result<CompareReport> {
        let commit = crate::artifacts::Sources::of(ctx, crate::graph::Artifact::RustTests)
            .map(|s| s.commit)
            .unwrap_or_default();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(CompareReport {
            format: 1,
            commit,
            cores,
            variants,
        })
    }

    pub fn markdown(&self) -> String {
        let mut text = format!(
            "### cargo xtask compare\n\nCommit `{}`, {} cores; jobs run one after the other.\n\n",
            crate::artifacts::short(&self.commit, 10),
            self.cores
        );
        let mut names: Vec<String> = Vec::new();
        for v in &self.variants {
            for j in &v.jobs {
                if !names.contains(&j.name) {
                    names.push(j.name.clone());
                }
            }
        }
        text.push_str("| job |");
        for v in &self.variants {
            text.push_str(&format!(
                " {0} time | {0} CPU | {0} rustc | {0} wheels |",
                v.variant
            ));
        }
        text.push_str("\n|---|");
        text.push_str(&"---:|".repeat(4 * self.variants.len()));
        text.push('\n');
        for name in &names {
            text.push_str(&format!("| {name} |"));
            for v in &self.variants {
                match v.jobs.iter().find(|j| &j.name == name) {
                    Some(j) if j.passed => text.push_str(&format!(
                        " {} | {} | {} | {} |",
                        format_seconds(j.seconds),
                        format_seconds(j.cpu_seconds),
                        j.rustc_compiles,
                        j.wheel_builds
                    )),
                    Some(_) => text.push_str(" FAILED | — | — | — |"),
                    None => text.push_str(" — | — | — | — |"),
                }
            }
            text.push('\n');
        }
        text.push_str("| **total** |");
        for v in &self.variants {
            if v.passed {
                text.push_str(&format!(
                    " {} | {} | {} | {} |",
                    format_seconds(v.seconds),
                    format_seconds(v.cpu_seconds),
                    v.rustc_compiles,
                    v.wheel_builds
                ));
            } else {
                text.push_str(" FAILED | — | — | — |");
            }
        }
        text.push_str("\n\n| | per-job | shared | shared / per-job |\n|---|---:|---:|---:|\n");
        let (Some(per), Some(shared)) = (
            self.variants.iter().find(|v| v.variant == "per-job"),
            self.variants.iter().find(|v| v.variant == "shared"),
        ) else {
            return text;
        };
        if !(per.passed && shared.passed) {
            text.push_str("| a variant failed: no ratios | | | |\n");
            return text;
        }
        let row = |label: &str, p: f64, s: f64, time: bool| {
            let show = |x: f64| {
                if time {
                    format_seconds(x)
                } else {
                    format!("{x:.0}")
                }
            };
            let ratio = if p > 0.0 {
                format!("{:.2}", s / p)
            } else {
                "—".into()
            };
            format!("| {label} | {} | {} | {ratio} |\n", show(p), show(s))
        };
        text.push_str(&row(
            "wall time, all jobs",
            per.seconds,
            shared.seconds,
            true,
        ));
        text.push_str(&row(
            "CPU time, all jobs",
            per.cpu_seconds,
            shared.cpu_seconds,
            true,
        ));
        text.push_str(&row(
            "compile CPU time",
            per.compile_cpu_seconds,
            shared.compile_cpu_seconds,
            true,
        ));
        text.push_str(&row(
            "rustc invocations that compiled",
            per.rustc_compiles.into(),
            shared.rustc_compiles.into(),
            false,
        ));
        text.push_str(&row(
            "wheel builds",
            per.wheel_builds.into(),
            shared.wheel_builds.into(),
            false,
        ));
        text.push_str(&row(
            "critical path (jobs in parallel)",
            per.critical_path_seconds,
            shared.critical_path_seconds,
            true,
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_path_follows_needs() {
        let job = |name: &str, seconds| JobResult {
            name: name.into(),
            passed: true,
            seconds,
            ..JobResult::default()
        };
        let jobs = [
            job("build", 100.0),
            job("test-a", 30.0),
            job("test-b", 50.0),
            job("lint", 120.0),
        ];
        let needs: BTreeMap<_, _> = [
            ("test-a".to_string(), vec!["build".to_string()]),
            ("test-b".to_string(), vec!["build".to_string()]),
        ]
        .into();
        assert_eq!(critical_path(&jobs, &needs), 150.0);
        assert_eq!(critical_path(&jobs, &BTreeMap::new()), 120.0);
    }

    #[test]
    fn the_report_gives_ratios_only_when_both_variants_passed() {
        let result = |variant: &str, passed: bool, seconds: f64, compiles: u32| VariantResult {
            variant: variant.to_string(),
            passed,
            jobs: vec![JobResult {
                name: "j".into(),
                passed,
                seconds,
                cpu_seconds: seconds,
                compile_cpu_seconds: seconds,
                rustc_compiles: compiles,
                wheel_builds: 1,
                error: None,
            }],
            seconds,
            cpu_seconds: seconds,
            compile_cpu_seconds: seconds,
            rustc_compiles: compiles,
            wheel_builds: 1,
            critical_path_seconds: seconds,
        };
        let report = CompareReport {
            format: 1,
            commit: "abc".into(),
            cores: 2,
            variants: vec![
                result("per-job", true, 400.0, 800),
                result("shared", true, 100.0, 200),
            ],
        };
        let md = report.markdown();
        assert!(
            md.contains("| compile CPU time | 6m40s | 1m40s | 0.25 |"),
            "{md}"
        );
        assert!(
            md.contains("| rustc invocations that compiled | 800 | 200 | 0.25 |"),
            "{md}"
        );
        let failed = CompareReport {
            variants: vec![
                result("per-job", true, 400.0, 800),
                result("shared", false, 100.0, 200),
            ],
            ..report
        };
        assert!(failed.markdown().contains("a variant failed: no ratios"));
    }
}
