//! `cargo xtask list` and `cargo xtask <stage> --help`, rendered from a pipeline.

use super::{Pipeline, Schedule, Stage, artifact_names};

/// A text rendering of `pipeline`, for `cargo xtask list`; `others` names the commands that
/// are not stages.
pub fn list(pipeline: &Pipeline, others: &str) -> String {
    let width = pipeline
        .stages
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Stages, in the order `cargo xtask ci` runs them:\n\n");
    for s in pipeline.stages {
        out.push_str(&format!("  {:width$}  {}\n", s.name, s.help));
        let mut facts = Vec::new();
        let needs = pipeline.needs(s);
        if !needs.is_empty() {
            facts.push(format!("needs {}", needs.join(", ")));
        }
        if !s.consumes.is_empty() {
            facts.push(format!("consumes {}", artifact_names(s.consumes)));
        }
        if !s.produces.is_empty() {
            facts.push(format!("produces {}", artifact_names(s.produces)));
        }
        if s.schedule == Schedule::Scheduled {
            facts.push("scheduled pipeline only (ci --scheduled)".to_string());
        }
        if !facts.is_empty() {
            out.push_str(&format!("  {:width$}    {}\n", "", facts.join("; ")));
        }
    }
    out.push_str(&format!(
        "\nOther commands: {others}. `cargo xtask <command> --help` explains one.\n"
    ));
    out
}

/// The `--help` text of `stage` of `pipeline`.
pub fn stage(pipeline: &Pipeline, stage: &Stage) -> String {
    let mut out = format!(
        "cargo xtask {} — {}\n\n{}\n",
        stage.name,
        stage.help,
        wrap(stage.about)
    );
    out.push_str("\nOptions:\n");
    for f in stage.flags {
        let name = match f.value {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        };
        out.push_str(&format!("  {name:28} {}\n", f.help));
    }
    out.push_str(&format!(
        "  {:28} {}\n",
        "--dry-run", "print the plan; run nothing but read-only probes"
    ));
    out.push_str(&format!("  {:28} {}\n", "--help", "this text"));
    let needs = pipeline.needs(stage);
    if !needs.is_empty() {
        out.push_str(&format!("\nNeeds: {}\n", needs.join(", ")));
    }
    if !stage.consumes.is_empty() {
        out.push_str(&format!("Consumes: {}\n", artifact_names(stage.consumes)));
    }
    if !stage.produces.is_empty() {
        out.push_str(&format!("Produces: {}\n", artifact_names(stage.produces)));
    }
    if !stage.ci_args.is_empty() {
        out.push_str(&format!(
            "In `cargo xtask ci`: {} {}\n",
            stage.name,
            stage.ci_args.join(" ")
        ));
    }
    out
}

fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() + 1 > 90 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}
