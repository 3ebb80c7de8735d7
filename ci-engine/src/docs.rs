//! Tables for a project's documentation, derived from its layout: the stages, the jobs, the
//! pinned tools and actions. [`ensure_section`] keeps a generated section of a document in
//! step (a project's test rewrites a stale one, then fails).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::graph::{self, Pipeline, Schedule};
use crate::jobs::{CONCLUSION, Entry, Layout, Os, Pin, Pythons, Trigger};

/// For each stage, the jobs that run it (`CI: py / py-test`).
fn callers(layout: &'static Layout) -> BTreeMap<String, Vec<String>> {
    let mut callers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for workflow in layout
        .workflows()
        .iter()
        .filter(|w| !matches!(w.trigger, Trigger::Called { .. }))
    {
        for instance in layout.instances(workflow.file) {
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
pub fn stage_table(layout: &'static Layout) -> String {
    let pipeline = layout.pipeline;
    let callers = callers(layout);
    let mut text =
        String::from("| stage | what it runs | needs | produces | jobs |\n|---|---|---|---|---|\n");
    for stage in pipeline.stages {
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
            or_dash(pipeline.needs(stage).join(", ")),
            or_dash(graph::artifact_names(stage.produces)),
            or_dash(jobs),
        ));
    }
    text
}

/// The job table: every workflow, its jobs, where they run, their stages and needs.
pub fn jobs_table(layout: &'static Layout) -> String {
    let mut text =
        String::from("| workflow | job | runner | stages | needs |\n|---|---|---|---|---|\n");
    for workflow in layout.workflows() {
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
                    Os::Linux.runner().to_string(),
                    "every other job succeeded (the required check)".to_string(),
                ),
            };
            let needs = layout.entry_needs(workflow.file, &key).join(", ");
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
pub fn tools_table(pipeline: &Pipeline) -> String {
    let mut text = String::from("| tool | version | from |\n|---|---|---|\n");
    for tool in pipeline.tools() {
        text.push_str(&format!(
            "| {} | {} | {} |\n",
            tool.name,
            tool.version,
            tool.source()
        ));
    }
    text
}

/// Every pinned action of `pins`.
pub fn actions_table(pins: &[Pin]) -> String {
    let mut text = String::from("| action | release | commit |\n|---|---|---|\n");
    for pin in pins {
        text.push_str(&format!(
            "| `{}` | {} | `{}` |\n",
            pin.action, pin.release, pin.sha
        ));
    }
    text
}

/// Make the section `name` of the document at `path` (between `<!-- name:begin (generated:
/// generator) -->` and `<!-- name:end -->`) read `expected`; whether it did not already (it is
/// rewritten then).
pub fn ensure_section(path: &Path, generator: &str, name: &str, expected: &str) -> Result<bool> {
    let doc = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let begin = format!("<!-- {name}:begin (generated: {generator}) -->\n");
    let end = format!("<!-- {name}:end -->");
    let Some((before, rest)) = doc.split_once(&begin) else {
        anyhow::bail!("{} has no `{}`", path.display(), begin.trim_end());
    };
    let Some((section, after)) = rest.split_once(&end) else {
        anyhow::bail!(
            "{}: `{}` is never ended by `{end}`",
            path.display(),
            begin.trim_end()
        );
    };
    if section == expected {
        return Ok(false);
    }
    std::fs::write(path, format!("{before}{begin}{expected}{end}{after}"))
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::tests::LAYOUT;

    #[test]
    fn the_tables_follow_the_layout() {
        let stages = stage_table(&LAYOUT);
        assert!(
            stages.contains("| `test` |  | build | — | CI: test<br>CI: test-macos |"),
            "{stages}"
        );
        assert!(
            stages.contains("(scheduled pipeline: `ci --scheduled`) | — | — | nightly: nightly |"),
            "{stages}"
        );
        let jobs = jobs_table(&LAYOUT);
        assert!(
            jobs.contains("| `ci.yaml` | `test` | ubuntu-24.04 (every Python) | test | package |"),
            "{jobs}"
        );
        assert!(
            jobs.contains("| `ci.yaml` | `ci-passed` | ubuntu-24.04 | every other job succeeded"),
            "{jobs}"
        );
    }

    #[test]
    fn a_stale_section_is_rewritten_and_said() {
        let path = std::env::temp_dir().join(format!("ci-engine-doc-{}.md", std::process::id()));
        let doc = "intro\n<!-- t:begin (generated: gen.rs) -->\nold\n<!-- t:end -->\nrest\n";
        std::fs::write(&path, doc).unwrap();
        assert!(ensure_section(&path, "gen.rs", "t", "new\n").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "intro\n<!-- t:begin (generated: gen.rs) -->\nnew\n<!-- t:end -->\nrest\n"
        );
        assert!(!ensure_section(&path, "gen.rs", "t", "new\n").unwrap());
        let err = ensure_section(&path, "gen.rs", "u", "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no `<!-- u:begin (generated: gen.rs) -->`"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
