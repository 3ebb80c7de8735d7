//! Documentation derived from the stage graph, the job table and the pins. Tests keep
//! docs/ci.md in step: a stale section is rewritten, then the test fails (commit the result).

use std::collections::BTreeMap;

use crate::pins;
use crate::pipeline::{LAYOUT, PIPELINE};
use ci_engine::graph::{self, Schedule};
use ci_engine::jobs::{CONCLUSION, Entry, Pythons, Trigger};

/// For each stage, the jobs that run it (`CI: python / python-test`).
fn callers() -> BTreeMap<String, Vec<String>> {
    let mut callers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for workflow in LAYOUT
        .workflows()
        .iter()
        .filter(|w| !matches!(w.trigger, Trigger::Called { .. }))
    {
        for instance in LAYOUT.instances(workflow.file) {
            for (stage, _) in &instance.calls {
                let name = format!("{}: {}", workflow.name, instance.name);
                let list = callers.entry(stage.clone()).or_default();
                if !list.contains(&name) {
                    list.push(name);
                }
            }
        }
    }
    callers
}

/// One row per stage: what it runs, what it needs and produces, which jobs run it.
pub fn stage_table() -> String {
    let callers = callers();
    let mut text =
        String::from("| stage | what it runs | needs | produces | jobs |\n|---|---|---|---|---|\n");
    for stage in PIPELINE.stages {
        let mut what = stage.help.to_string();
        if stage.schedule == Schedule::Scheduled {
            what.push_str(" (scheduled pipeline: `ci --scheduled`)");
        }
        let or_dash = |s: String| if s.is_empty() { "—".to_string() } else { s };
        let jobs = callers
            .get(stage.name)
            .map(|j| j.join("<br>"))
            .unwrap_or_default();
        text.push_str(&format!(
            "| `{}` | {what} | {} | {} | {} |\n",
            stage.name,
            or_dash(PIPELINE.needs(stage).join(", ")),
            or_dash(graph::artifact_names(stage.produces)),
            or_dash(jobs),
        ));
    }
    text
}

/// The job table: every workflow, its jobs, where they run, their stages and needs.
pub fn jobs_table() -> String {
    let mut text =
        String::from("| workflow | job | runner | stages | needs |\n|---|---|---|---|---|\n");
    for workflow in LAYOUT.workflows() {
        for entry in &workflow.entries {
            let (key, runner, stages) = match entry {
                Entry::Job(job) => (
                    job.key.to_string(),
                    format!(
                        "{}{}",
                        job.os.runner(),
                        match job.pythons {
                            Pythons::Every => " (every Python)",
                            Pythons::Newest => " (the newest Python)",
                            Pythons::Default => "",
                        }
                    ),
                    job.stages.join(", "),
                ),
                Entry::Call { key, file, stages } => (
                    key.to_string(),
                    format!("calls `{file}`"),
                    stages.join(", "),
                ),
                Entry::Conclusion => (
                    CONCLUSION.to_string(),
                    "ubuntu-24.04".to_string(),
                    "every other job succeeded (the required check)".to_string(),
                ),
            };
            let needs = LAYOUT.entry_needs(workflow.file, &key).join(", ");
            text.push_str(&format!(
                "| `{}` | `{key}` | {runner} | {} | {} |\n",
                workflow.file,
                if stages.is_empty() {
                    "—".into()
                } else {
                    stages
                },
                if needs.is_empty() {
                    "—".into()
                } else {
                    needs
                },
            ));
        }
    }
    text
}

/// Every pinned tool with its version and source.
pub fn tools_table() -> String {
    let mut text = String::from("| tool | version | from |\n|---|---|---|\n");
    for tool in PIPELINE.tools() {
        text.push_str(&format!(
            "| {} | {} | {} |\n",
            tool.name,
            tool.version,
            tool.source()
        ));
    }
    text
}

/// Every pinned action.
pub fn actions_table() -> String {
    let mut text = String::from("| action | release | commit |\n|---|---|---|\n");
    for pin in pins::actions() {
        text.push_str(&format!(
            "| `{}` | {} | `{}` |\n",
            pin.action, pin.release, pin.sha
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrite docs/ci.md's generated section `name` when it is stale, then fail.
    fn ensure_section(name: &str, expected: &str) {
        let path = crate::testing::checkout().join("docs/ci.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let begin = format!("<!-- {name}:begin (generated: xtask/src/docs.rs) -->\n");
        let end = format!("<!-- {name}:end -->");
        let (before, rest) = doc
            .split_once(&begin)
            .unwrap_or_else(|| panic!("docs/ci.md has no {name} section"));
        let (section, after) = rest.split_once(&end).unwrap();
        if section != expected {
            std::fs::write(&path, format!("{before}{begin}{expected}{end}{after}")).unwrap();
            panic!("docs/ci.md's {name} table was out of date and has been rewritten: commit it");
        }
    }

    #[test]
    fn the_generated_tables_in_docs_ci_md_are_current() {
        ensure_section("stages", &stage_table());
        ensure_section("jobs", &jobs_table());
        ensure_section("tools", &tools_table());
        ensure_section("actions", &actions_table());
    }
}
