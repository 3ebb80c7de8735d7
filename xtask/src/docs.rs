//! Documentation derived from the stage graph, the pinned tools and the workflows. Tests keep
//! docs/ci.md in step: when one fails, paste the table it prints.

use std::collections::BTreeMap;

use crate::graph::{self, Schedule};
use crate::tools::Tool;

/// One row per stage: what it runs, what it needs and produces, which workflow jobs call it.
pub fn stage_table(callers: &BTreeMap<String, Vec<String>>) -> String {
    let mut text = String::from(
        "| stage | what it runs | needs | produces | workflow jobs |\n|---|---|---|---|---|\n",
    );
    for stage in graph::STAGES {
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
            or_dash(stage.needs.join(", ")),
            or_dash(graph::artifact_names(stage.produces)),
            or_dash(jobs),
        ));
    }
    text
}

/// Every pinned tool with its version and source.
pub fn tools_table() -> String {
    let mut text = String::from("| tool | version | from |\n|---|---|---|\n");
    for tool in Tool::ALL {
        text.push_str(&format!(
            "| {} | {} | {} |\n",
            tool.name(),
            tool.version(),
            tool.source()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci_md() -> (std::path::PathBuf, String) {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
        let root = std::path::Path::new(&manifest)
            .parent()
            .unwrap()
            .to_path_buf();
        let text = std::fs::read_to_string(root.join("docs/ci.md")).unwrap();
        (root, text)
    }

    fn assert_section(doc: &str, name: &str, expected: &str) {
        let begin = format!("<!-- {name}:begin (generated: xtask/src/docs.rs) -->\n");
        let end = format!("<!-- {name}:end -->");
        let found = doc
            .split_once(&begin)
            .and_then(|(_, rest)| rest.split_once(&end))
            .map(|(section, _)| section);
        assert_eq!(
            found,
            Some(expected),
            "docs/ci.md's {name} table is out of date; between the markers it should read:\n{expected}"
        );
    }

    #[test]
    fn the_stage_table_in_docs_ci_md_is_current() {
        let (root, doc) = ci_md();
        let callers =
            crate::workflows::callers(&crate::workflows::read_all(&root).unwrap()).unwrap();
        assert_section(&doc, "stages", &stage_table(&callers));
    }

    #[test]
    fn the_tools_table_in_docs_ci_md_is_current() {
        let (_, doc) = ci_md();
        assert_section(&doc, "tools", &tools_table());
    }
}
