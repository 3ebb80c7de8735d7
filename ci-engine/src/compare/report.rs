//! What compare measured: each job's cost, each variant's totals and critical path per
//! scenario, and the Markdown tables of both variants side by side.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Benchmark;
use super::jobs::Variant;
use super::scenario::Scenario;
use crate::cmd::Cmd;
use crate::context::Context;
use crate::report::format_seconds;

/// What one job cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobResult {
    pub name: String,
    pub passed: bool,
    /// Not run: the plan found every key of its stages passed.
    #[serde(default)]
    pub skipped: bool,
    pub seconds: f64,
    /// What the job spends before its first stage on a GitHub runner ([`super::setup`]); the
    /// critical path adds it to `seconds` when the job runs.
    #[serde(default)]
    pub setup_seconds: f64,
    pub cpu_seconds: f64,
    /// CPU of the commands that compiled something.
    pub compile_cpu_seconds: f64,
    /// rustc invocations that compiled something.
    pub rustc_compiles: u32,
    pub wheel_builds: u32,
    /// It ran a stage that consumes the benchmark's archive of Rust tests.
    #[serde(default)]
    pub rust_tests: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobResult {
    pub fn skipped(name: &str) -> JobResult {
        JobResult {
            name: name.to_string(),
            passed: true,
            skipped: true,
            ..JobResult::default()
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VariantResult {
    pub variant: String,
    pub passed: bool,
    pub jobs: Vec<JobResult>,
    /// Each job's `needs:`.
    pub needs: BTreeMap<String, Vec<String>>,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub compile_cpu_seconds: f64,
    pub rustc_compiles: u32,
    pub wheel_builds: u32,
    pub jobs_run: usize,
    pub rust_tests: bool,
    /// The longest chain of jobs through `needs:`, with jobs in parallel as GitHub runs them
    /// and each job's setup added when it runs.
    pub critical_path_seconds: f64,
    /// The same without the setup cost.
    pub critical_path_without_setup_seconds: f64,
}

impl VariantResult {
    pub fn new(
        variant: Variant,
        jobs: Vec<JobResult>,
        needs: &BTreeMap<String, Vec<String>>,
    ) -> VariantResult {
        let mut result = VariantResult {
            variant: variant.name().to_string(),
            needs: needs.clone(),
            jobs,
            ..VariantResult::default()
        };
        result.total();
        result
    }

    fn total(&mut self) {
        let jobs = &self.jobs;
        self.passed = jobs.iter().all(|j| j.passed);
        self.seconds = jobs.iter().map(|j| j.seconds).sum();
        self.cpu_seconds = jobs.iter().map(|j| j.cpu_seconds).sum();
        self.compile_cpu_seconds = jobs.iter().map(|j| j.compile_cpu_seconds).sum();
        self.rustc_compiles = jobs.iter().map(|j| j.rustc_compiles).sum();
        self.wheel_builds = jobs.iter().map(|j| j.wheel_builds).sum();
        self.jobs_run = jobs.iter().filter(|j| !j.skipped).count();
        self.rust_tests = jobs.iter().any(|j| j.rust_tests && !j.skipped);
    }

    /// The shared pipeline's first job, which computes the keys (`seconds`, measured) after its
    /// `setup_seconds`, and which every other job needs.
    pub fn add_plan_job(&mut self, name: &str, seconds: f64, setup_seconds: f64) {
        for job in &self.jobs {
            self.needs
                .entry(job.name.clone())
                .or_default()
                .insert(0, name.to_string());
        }
        self.jobs.insert(
            0,
            JobResult {
                name: name.to_string(),
                passed: true,
                seconds,
                setup_seconds,
                cpu_seconds: seconds,
                ..JobResult::default()
            },
        );
        self.total();
    }
}

/// When the last job finishes if every job starts as soon as the jobs it needs are done, each
/// job that runs taking its measured time plus, with `setup`, its setup (a skipped job takes
/// none).
pub fn critical_path(
    jobs: &[JobResult],
    needs: &BTreeMap<String, Vec<String>>,
    setup: bool,
) -> f64 {
    fn finish(
        name: &str,
        jobs: &[JobResult],
        needs: &BTreeMap<String, Vec<String>>,
        setup: bool,
        memo: &mut BTreeMap<String, f64>,
    ) -> f64 {
        if let Some(t) = memo.get(name) {
            return *t;
        }
        // A cycle of needs ends here rather than recursing without end (`Layout::check` names
        // one before anything is measured).
        memo.insert(name.to_string(), 0.0);
        let own = jobs
            .iter()
            .find(|j| j.name == name)
            .filter(|j| !j.skipped)
            .map(|j| j.seconds + if setup { j.setup_seconds } else { 0.0 })
            .unwrap_or(0.0);
        let start = needs
            .get(name)
            .into_iter()
            .flatten()
            .map(|n| finish(n, jobs, needs, setup, memo))
            .fold(0.0, f64::max);
        memo.insert(name.to_string(), start + own);
        start + own
    }
    let mut memo = BTreeMap::new();
    jobs.iter()
        .map(|j| finish(&j.name, jobs, needs, setup, &mut memo))
        .fold(0.0, f64::max)
}

/// Both variants in one scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub scenario: String,
    pub about: String,
    /// The stages whose content key the scenario's edit changed.
    pub changed_stages: Vec<String>,
    pub variants: Vec<VariantResult>,
}

impl ScenarioResult {
    pub fn new(
        scenario: &Scenario,
        changed: &BTreeSet<String>,
        mut variants: Vec<VariantResult>,
    ) -> ScenarioResult {
        for v in &mut variants {
            v.critical_path_seconds = critical_path(&v.jobs, &v.needs, true);
            v.critical_path_without_setup_seconds = critical_path(&v.jobs, &v.needs, false);
        }
        ScenarioResult {
            scenario: scenario.name.to_string(),
            about: scenario.about.to_string(),
            changed_stages: changed.iter().cloned().collect(),
            variants,
        }
    }

    fn variant(&self, name: &str) -> Option<&VariantResult> {
        self.variants.iter().find(|v| v.variant == name)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareReport {
    pub format: u32,
    pub commit: String,
    pub cores: usize,
    /// Where the setup's prices are explained ([`Benchmark::prices_from`]).
    pub prices_from: String,
    pub scenarios: Vec<ScenarioResult>,
}

fn ratio(per_job: f64, shared: f64) -> String {
    if per_job > 0.0 {
        format!("{:.2}", shared / per_job)
    } else {
        "—".into()
    }
}

impl CompareReport {
    pub fn new(ctx: &Context, bench: &Benchmark, scenarios: Vec<ScenarioResult>) -> CompareReport {
        let commit =
            crate::process::capture(&Cmd::new("git").args(["rev-parse", "HEAD"]), &ctx.root)
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        CompareReport {
            format: 4,
            commit,
            cores,
            prices_from: bench.prices_from.to_string(),
            scenarios,
        }
    }

    pub fn passed(&self) -> bool {
        self.scenarios
            .iter()
            .all(|s| s.variants.iter().all(|v| v.passed))
    }

    pub fn markdown(&self) -> String {
        let mut text = format!(
            "### cargo xtask compare\n\nCommit `{}`, {} cores; jobs run one after the other; \
             critical paths add each job's setup (its steps as {} prices them) to every job \
             that runs.\n\n",
            crate::files::short(&self.commit, 10),
            self.cores,
            self.prices_from,
        );
        text.push_str(&self.overview());
        for scenario in &self.scenarios {
            text.push_str(&format!(
                "\n#### {}: {}\n\n",
                scenario.scenario, scenario.about
            ));
            if !scenario.changed_stages.is_empty() {
                text.push_str(&format!(
                    "Stages whose key changed: {}.\n\n",
                    scenario.changed_stages.join(", ")
                ));
            }
            text.push_str(&jobs_table(&scenario.variants));
            text.push_str(&totals_table(scenario));
        }
        text
    }

    /// One line per scenario: the figures issue-style, shared against per-job.
    fn overview(&self) -> String {
        let mut text = String::from(
            "| scenario | critical path per-job | shared | shared / per-job | without setup | \
             compile CPU per-job | shared | shared / per-job | rustc units per-job | shared | \
             jobs run shared | Rust tests shared |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for s in &self.scenarios {
            let (Some(per), Some(shared)) = (s.variant("per-job"), s.variant("shared")) else {
                continue;
            };
            if !(per.passed && shared.passed) {
                text.push_str(&format!(
                    "| {} | a variant failed: no figures | | | | | | | | | | |\n",
                    s.scenario
                ));
                continue;
            }
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} of {} | {} |\n",
                s.scenario,
                format_seconds(per.critical_path_seconds),
                format_seconds(shared.critical_path_seconds),
                ratio(per.critical_path_seconds, shared.critical_path_seconds),
                ratio(
                    per.critical_path_without_setup_seconds,
                    shared.critical_path_without_setup_seconds
                ),
                format_seconds(per.compile_cpu_seconds),
                format_seconds(shared.compile_cpu_seconds),
                ratio(per.compile_cpu_seconds, shared.compile_cpu_seconds),
                per.rustc_compiles,
                shared.rustc_compiles,
                shared.jobs_run,
                shared.jobs.len(),
                if shared.rust_tests { "yes" } else { "no" }
            ));
        }
        text
    }
}

fn jobs_table(variants: &[VariantResult]) -> String {
    let mut names: Vec<String> = Vec::new();
    for v in variants {
        for j in &v.jobs {
            if !names.contains(&j.name) {
                names.push(j.name.clone());
            }
        }
    }
    let mut text = String::from("| job |");
    for v in variants {
        text.push_str(&format!(
            " {0} time | {0} CPU | {0} rustc | {0} wheels |",
            v.variant
        ));
    }
    text.push_str("\n|---|");
    text.push_str(&"---:|".repeat(4 * variants.len()));
    text.push('\n');
    for name in &names {
        text.push_str(&format!("| {name} |"));
        for v in variants {
            match v.jobs.iter().find(|j| &j.name == name) {
                Some(j) if j.skipped => text.push_str(" skipped | — | — | — |"),
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
    for v in variants {
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
    text.push('\n');
    text
}

fn totals_table(scenario: &ScenarioResult) -> String {
    let mut text =
        String::from("\n| | per-job | shared | shared / per-job |\n|---|---:|---:|---:|\n");
    let (Some(per), Some(shared)) = (scenario.variant("per-job"), scenario.variant("shared"))
    else {
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
        format!(
            "| {label} | {} | {} | {} |\n",
            show(p),
            show(s),
            ratio(p, s)
        )
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
        "jobs run",
        per.jobs_run as f64,
        shared.jobs_run as f64,
        false,
    ));
    text.push_str(&row(
        "critical path (jobs in parallel, with setup)",
        per.critical_path_seconds,
        shared.critical_path_seconds,
        true,
    ));
    text.push_str(&row(
        "critical path without setup",
        per.critical_path_without_setup_seconds,
        shared.critical_path_without_setup_seconds,
        true,
    ));
    text
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
            setup_seconds: 10.0,
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
        assert_eq!(critical_path(&jobs, &needs, false), 150.0);
        assert_eq!(critical_path(&jobs, &BTreeMap::new(), false), 120.0);
        let cycle: BTreeMap<_, _> = [
            ("test-a".to_string(), vec!["test-b".to_string()]),
            ("test-b".to_string(), vec!["test-a".to_string()]),
        ]
        .into();
        assert_eq!(critical_path(&jobs, &cycle, false), 120.0, "ends");
        // Setup is paid by each job of the chain.
        assert_eq!(critical_path(&jobs, &needs, true), 170.0);
        let mut skipped = jobs.to_vec();
        skipped[3] = JobResult::skipped("lint");
        assert_eq!(critical_path(&skipped, &BTreeMap::new(), true), 110.0);
    }

    #[test]
    fn the_report_gives_ratios_only_when_both_variants_passed() {
        let result = |variant: Variant, passed: bool, seconds: f64, compiles: u32| {
            let job = JobResult {
                name: "j".into(),
                passed,
                seconds,
                setup_seconds: 30.0,
                cpu_seconds: seconds,
                compile_cpu_seconds: seconds,
                rustc_compiles: compiles,
                wheel_builds: 1,
                ..JobResult::default()
            };
            VariantResult::new(variant, vec![job], &BTreeMap::new())
        };
        let mut shared = result(Variant::Shared, true, 100.0, 200);
        shared.add_plan_job("plan", 5.0, 30.0);
        let scenario = |shared: VariantResult| {
            ScenarioResult::new(
                &Scenario {
                    name: "warm",
                    about: "from caches",
                    warm: true,
                    edit: None,
                },
                &BTreeSet::new(),
                vec![result(Variant::PerJob, true, 400.0, 800), shared],
            )
        };
        let report = CompareReport {
            format: 4,
            commit: "abc".into(),
            cores: 2,
            prices_from: "docs/prices.md".into(),
            scenarios: vec![scenario(shared.clone())],
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
        // per-job: 400 + 30; shared: plan 5 + 30, then the job 100 + 30.
        assert!(
            md.contains("| critical path (jobs in parallel, with setup) | 7m10s | 2m45s | 0.38 |"),
            "{md}"
        );
        // Without setup: 400 against 5 + 100.
        assert!(
            md.contains("| warm | 7m10s | 2m45s | 0.38 | 0.26 |"),
            "{md}"
        );
        let failed = CompareReport {
            scenarios: vec![scenario(result(Variant::Shared, false, 100.0, 200))],
            ..report
        };
        assert!(failed.markdown().contains("a variant failed: no ratios"));
        assert!(!failed.passed());
    }
}
