//! What can be wrong with a layout's job table, named before any workflow is generated from it.

use anyhow::{Result, bail};

use super::{Entry, Layout, Trigger, rule};
use crate::graph::Schedule;

impl Layout {
    /// What is wrong with the layout, if anything: a stage of every run that no job of the
    /// pipeline's workflow runs (only another workflow's jobs name it), a scheduled stage no
    /// job runs, a job that runs an unknown stage, runs stages out of the pipeline's order or
    /// runs a stage that needs the servers without starting them, flags of a job that its
    /// stages' checks refuse, two checks of one name, a call of a workflow that is not called,
    /// an entry that waits for itself, or a gated workflow whose plan could run a job without
    /// one it needs (a project's test should call it).
    pub fn check(&'static self) -> Result<()> {
        let all = self.workflows();
        for workflow in &all {
            for job in workflow.jobs() {
                let mut last = None;
                for name in job.stages {
                    let Some(at) = self.pipeline.stages.iter().position(|s| s.name == *name) else {
                        bail!(
                            "{}: job `{}` runs the unknown stage `{name}`",
                            workflow.file,
                            job.key
                        );
                    };
                    if last.is_some_and(|l| l >= at) {
                        bail!(
                            "{}: job `{}` runs `{name}` out of the pipeline's order",
                            workflow.file,
                            job.key
                        );
                    }
                    last = Some(at);
                    let stage = &self.pipeline.stages[at];
                    let starters: Vec<&str> = self
                        .pipeline
                        .service_starters(stage)
                        .map(|s| s.name)
                        .collect();
                    if !starters.is_empty() && !starters.iter().any(|s| job.stages.contains(s)) {
                        bail!(
                            "{}: job `{}` runs `{name}`, which needs the servers, and starts none: \
                             name `{name}` in a job that runs {}",
                            workflow.file,
                            job.key,
                            starters.join(" or ")
                        );
                    }
                    let args = job.args(self, stage).to_args();
                    if let Err(e) = stage.parse_args(&args) {
                        bail!(
                            "{}: job `{}` runs `{name} {}`: {e}",
                            workflow.file,
                            job.key,
                            args.join(" ")
                        );
                    }
                }
            }
            for entry in &workflow.entries {
                if let Entry::Call { file, .. } = entry
                    && !all
                        .iter()
                        .any(|w| w.file == *file && matches!(w.trigger, Trigger::Called { .. }))
                {
                    bail!(
                        "{}: calls {file}, which is not a called workflow",
                        workflow.file
                    );
                }
            }
            if matches!(workflow.trigger, Trigger::Called { .. }) {
                continue;
            }
            let keys = rule::entry_keys(workflow);
            for key in &keys {
                // The entries `key` waits for, directly or not: never itself.
                let mut reached: Vec<String> = self.entry_needs(workflow.file, key);
                let mut at = 0;
                while at < reached.len() {
                    if reached[at] == *key {
                        bail!(
                            "{}: `{key}` waits for itself (a cycle of needs)",
                            workflow.file
                        );
                    }
                    for need in self.entry_needs(workflow.file, &reached[at]) {
                        if !reached.contains(&need) {
                            reached.push(need);
                        }
                    }
                    at += 1;
                }
            }
            if rule::gated(workflow)
                && let Some((entry, need)) = rule::runs_without_needs(workflow).first()
            {
                bail!(
                    "{}: the plan could run `{entry}` without `{need}`, which builds what it downloads",
                    workflow.file
                );
            }
            if matches!(workflow.trigger, Trigger::Pipeline) {
                // What `ci` runs on every run, a pull request runs too.
                let calls: Vec<String> = self
                    .instances(workflow.file)
                    .into_iter()
                    .flat_map(|i| i.calls.into_iter().map(|(s, _)| s))
                    .collect();
                if let Some(stage) = self
                    .pipeline
                    .stages
                    .iter()
                    .filter(|s| s.schedule == Schedule::EveryRun)
                    .find(|s| !calls.iter().any(|c| c == s.name))
                {
                    bail!(
                        "{}: no job runs `{}`, which `ci` runs on every run: only jobs of other \
                         workflows name it; name it in a job of this one, or in none for a job \
                         of its own",
                        workflow.file,
                        stage.name
                    );
                }
            }
        }
        // A scheduled stage runs only where a job names it: none is made for it.
        if let Some(stage) = self.pipeline.stages.iter().find(|s| {
            s.schedule == Schedule::Scheduled
                && !all
                    .iter()
                    .flat_map(|w| w.jobs())
                    .any(|j| j.stages.contains(&s.name))
        }) {
            bail!(
                "no job runs the scheduled stage `{}`: name it in a job of a nightly workflow",
                stage.name
            );
        }
        // A check's name is its job's, whichever workflow runs it: branch protection and the
        // conclusion tell two of one name apart by nothing.
        let mut names: Vec<(String, &str)> = all
            .iter()
            .filter(|w| !matches!(w.trigger, Trigger::Called { .. }))
            .flat_map(|w| self.instances(w.file).into_iter().map(|i| (i.name, w.file)))
            .collect();
        names.sort();
        if let Some(pair) = names.windows(2).find(|w| w[0].0 == w[1].0) {
            bail!(
                "two checks are called `{}` ({} and {})",
                pair[0].0,
                pair[0].1,
                pair[1].1
            );
        }
        Ok(())
    }
}
