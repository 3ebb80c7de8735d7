//! The GitHub workflows, generated from a project's [`Layout`]: [`render`] turns its job table
//! into YAML with every step a stage needs ([`plan`] the plan job, [`conclusion`] the required
//! check, [`caches`] what each job restores and saves, [`actions`] the pinned actions), and
//! [`crate::yaml`] writes it. [`write()`] writes `.github/workflows/`; [`CheckGenerated`] (a
//! lint) fails when the files differ.

pub mod actions;
pub mod caches;
mod conclusion;
pub mod plan;
pub mod render;
mod steps;
#[cfg(test)]
mod tests;

pub use steps::{Setup, TOOLS_CACHE};

use std::fmt;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::flags::StageArgs;
use crate::jobs::Layout;
use crate::plan::{Action, Outcome, Runner};
use crate::yaml;

pub const DIR: &str = ".github/workflows";
/// The command that writes them.
pub const REGENERATE: &str = "cargo xtask workflows";

/// Every generated file of `layout`: its name under [`DIR`] and its text.
pub fn generate(layout: &'static Layout) -> Vec<(String, String)> {
    layout
        .workflows()
        .iter()
        .map(|w| (w.file.to_string(), render::render(w)))
        .collect()
}

/// The files under [`DIR`] that differ from what is generated (changed, missing, or present
/// but not generated).
pub fn stale(layout: &'static Layout, root: &Path) -> Result<Vec<String>> {
    let dir = root.join(DIR);
    let generated = generate(layout);
    let mut stale = Vec::new();
    for (name, text) in &generated {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(on_disk) if on_disk == *text => {}
            Ok(_) => stale.push(format!("{DIR}/{name} differs")),
            Err(_) => stale.push(format!("{DIR}/{name} is missing")),
        }
    }
    let entries = std::fs::read_dir(&dir).with_context(|| format!("could not read {DIR}"))?;
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !generated.iter().any(|(g, _)| *g == name) {
            stale.push(format!(
                "{DIR}/{name} is not generated (remove it or add it to the job table)"
            ));
        }
    }
    Ok(stale)
}

/// What the job `job` of the workflow `file` does before its first stage, as the workflow
/// renders it, when it runs `calls`: a step that a caller's switches turn off (`if:
/// inputs.<stage>`, a stage not among `calls`) is left out.
pub fn setup(
    layout: &'static Layout,
    file: &str,
    job: &str,
    calls: &[(String, StageArgs)],
) -> Vec<Setup> {
    let all = layout.workflows();
    let found = all.iter().find(|w| w.file == file).and_then(|w| {
        w.jobs()
            .find(|j| j.key == job)
            .map(|job| render::setup(w, job))
    });
    let on = |node: &Option<yaml::Node>| {
        let Some(yaml::Node::Map(fields)) = node else {
            return true;
        };
        let Some((_, yaml::Node::Str(condition))) = fields.iter().find(|(k, _)| k == "if") else {
            return true;
        };
        let switches: Option<Vec<&str>> = condition
            .split(" || ")
            .map(|term| term.strip_prefix("inputs."))
            .collect();
        switches.is_none_or(|names| {
            names
                .iter()
                .any(|name| calls.iter().any(|(call, _)| call == name))
        })
    };
    found
        .into_iter()
        .flatten()
        .filter(|(_, node)| on(node))
        .map(|(setup, _)| setup)
        .collect()
}

/// Write every generated file, remove files of [`DIR`] that are not generated; returns what
/// changed.
pub fn write(layout: &'static Layout, root: &Path) -> Result<Vec<String>> {
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {DIR}"))?;
    let changed = stale(layout, root)?;
    let generated = generate(layout);
    for (name, text) in &generated {
        std::fs::write(dir.join(name), text).with_context(|| format!("could not write {name}"))?;
    }
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| !generated.iter().any(|(g, _)| *g == n)) {
            std::fs::remove_file(&path)
                .with_context(|| format!("could not remove {}", path.display()))?;
        }
    }
    Ok(changed)
}

/// A lint's first step: the files are what the layout's job table generates.
#[derive(Debug)]
pub struct CheckGenerated(pub &'static Layout);

impl fmt::Display for CheckGenerated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check that the files in {DIR} are what `{REGENERATE}` generates"
        )
    }
}

impl Action for CheckGenerated {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let stale = stale(self.0, &runner.ctx().root)?;
        if !stale.is_empty() {
            bail!(
                "the workflows are generated from {} and these are not what it generates:\n  \
                 {}\nRun `{REGENERATE}` (and commit the result); edit the job table, not the YAML.",
                self.0.generation.table,
                stale.join("\n  ")
            );
        }
        runner.out().say(
            crate::output::Tone::Good,
            &format!("{} workflows are current", generate(self.0).len()),
        );
        Ok(Outcome::Continue)
    }
}
