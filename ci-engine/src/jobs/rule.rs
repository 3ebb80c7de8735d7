//! The plan job's rule: which entries and stages of a gated workflow run on a pull request.
//! The pipeline's first job, [`PLAN`], computes every stage's content key and looks up, without
//! downloading, a pass record per entry and stage that main saved when the whole pipeline passed
//! with that key. A cacheable stage runs when its record is missing; a build, when a job that
//! downloads what it builds runs; a stage that starts servers, with its job; any other stage,
//! always. Pushes, the merge queue and runs by hand run everything ([`FORCE`]). An entry runs
//! when any of its stages' rule holds, and then every stage of it runs but a called workflow's
//! stage that the caller switches, which runs by its own rule. The generator renders this rule
//! as expressions and a benchmark evaluates it ([`entry_runs`], [`step_runs`]), so the two
//! cannot disagree; [`runs_without_needs`] checks that no entry runs without one it needs.

use super::{CONCLUSION, Entry, Os, Trigger, Workflow};
use crate::graph::{Services, Stage};
use crate::yaml::Node;

pub const PLAN: &str = "plan";
/// When every job runs, whatever the records say (and records are saved afterwards on main):
/// pull requests skip on keys for speed; what is about to reach main never does.
pub const FORCE: &str = "github.event_name == 'push' || github.event_name == 'merge_group' || \
                     github.event_name == 'workflow_dispatch'";

/// Whether a workflow gets a plan job.
pub fn gated(workflow: &Workflow) -> bool {
    matches!(workflow.trigger, Trigger::Pipeline)
}

/// The stages entry `key` runs (a call: its called jobs' stages that are switched on).
pub fn entry_stages(workflow: &Workflow, key: &str) -> Vec<&'static Stage> {
    let mut stages: Vec<&'static Stage> = Vec::new();
    for instance in workflow
        .layout
        .instances(workflow.file)
        .into_iter()
        .filter(|i| i.entry == key)
    {
        for (name, _) in &instance.calls {
            if let Ok(stage) = workflow.pipeline().stage(name)
                && !stages.iter().any(|s| s.name == stage.name)
            {
                stages.push(stage);
            }
        }
    }
    stages
}

pub fn entry_keys(workflow: &Workflow) -> Vec<&'static str> {
    workflow
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Job(j) => Some(j.key),
            Entry::Call { key, .. } => Some(*key),
            Entry::Conclusion => None,
        })
        .collect()
}

/// Every pass record of the workflow: (entry, stage) for each cacheable stage of each entry.
pub fn records(workflow: &Workflow) -> Vec<(&'static str, &'static Stage)> {
    entry_keys(workflow)
        .into_iter()
        .flat_map(|key| {
            entry_stages(workflow, key)
                .into_iter()
                .filter(|s| s.inputs.cacheable)
                .map(move |s| (key, s))
        })
        .collect()
}

pub fn record_id(entry: &str, stage: &str) -> String {
    format!("pass-{entry}-{stage}")
}

/// The step output of `cargo xtask keys` that holds the key of a record.
pub fn record_output(entry: &str, stage: &str) -> String {
    format!("record-{entry}-{stage}")
}

pub fn record_key(entry: &str, stage: &str) -> String {
    format!(
        "pass-{entry}-{stage}-${{{{ steps.keys.outputs.{} }}}}",
        record_output(entry, stage)
    )
}

/// What a checkout reads on a platform besides the tree: `.gitattributes` decides the line
/// endings of a Windows checkout.
pub fn platform_inputs(os: Os) -> &'static [&'static str] {
    match os {
        Os::Windows => &[".gitattributes"],
        Os::Linux | Os::Macos => &[],
    }
}

/// Why a stage of a gated job runs: the plan's one rule, which a benchmark's emulation of
/// the plan follows too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// When its content key has no pass record.
    WhenKeyChanged,
    /// With the stages of its job that need it (a stage that starts the servers).
    WithItsJob,
    /// Every time: a stage that is not cacheable and builds nothing (its result may change
    /// with nothing here changing).
    Always,
    /// When a job that downloads what it builds runs.
    ForConsumers,
}

pub fn runs(stage: &Stage) -> Runs {
    if stage.inputs.cacheable {
        Runs::WhenKeyChanged
    } else if stage.services == Services::Starts {
        Runs::WithItsJob
    } else if !stage.builds() {
        Runs::Always
    } else {
        Runs::ForConsumers
    }
}

/// One way a stage of a gated entry comes to run on a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// Every time.
    Always,
    /// The pass record of `stage` in `entry` is missing (its key has not passed on main).
    Missing { entry: String, stage: &'static str },
}

impl Term {
    /// The term as an expression over the plan job's lookups.
    pub fn expression(&self) -> String {
        match self {
            Term::Always => "true".to_string(),
            Term::Missing { entry, stage } => format!(
                "steps.{}.outputs.cache-hit != 'true'",
                record_id(entry, stage)
            ),
        }
    }
}

/// The plan's rule: `None` for a stage that runs with its job (one that starts servers); otherwise the terms
/// of which one must hold for `stage` of `entry` to run on a pull request (none: it never
/// does). The generator renders it ([`stage_condition`]); a benchmark evaluates it
/// ([`stage_runs`]).
pub fn stage_terms(workflow: &Workflow, entry: &str, stage: &Stage) -> Option<Vec<Term>> {
    terms_of(workflow, entry, stage, &mut Vec::new())
}

/// [`stage_terms`], with the builds whose consumers are being visited: a cycle of needs (which
/// GitHub would refuse) adds nothing instead of recursing without end.
fn terms_of<'a>(
    workflow: &Workflow,
    entry: &'a str,
    stage: &'a Stage,
    visiting: &mut Vec<(&'a str, &'a str)>,
) -> Option<Vec<Term>> {
    match runs(stage) {
        Runs::WhenKeyChanged => {
            return Some(vec![Term::Missing {
                entry: entry.to_string(),
                stage: stage.name,
            }]);
        }
        Runs::WithItsJob => return None,
        Runs::Always => return Some(vec![Term::Always]),
        Runs::ForConsumers => {}
    }
    // A build runs when a job that downloads what it builds runs: whichever of that job's
    // stages makes it run, the job downloads the artifact before its first stage.
    let mut terms = Vec::new();
    if visiting.contains(&(entry, stage.name)) {
        return Some(terms);
    }
    visiting.push((entry, stage.name));
    for other in entry_keys(workflow) {
        if other == entry
            || !workflow
                .layout
                .entry_needs(workflow.file, other)
                .iter()
                .any(|n| n == entry)
        {
            continue;
        }
        let stages = entry_stages(workflow, other);
        if !stages
            .iter()
            .any(|s| s.consumes.iter().any(|a| stage.produces.contains(a)))
        {
            continue;
        }
        for runs_it in stages {
            for term in terms_of(workflow, other, runs_it, visiting)
                .into_iter()
                .flatten()
            {
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
    }
    visiting.pop();
    Some(terms)
}

pub fn stage_condition(workflow: &Workflow, entry: &str, stage: &Stage) -> Vec<String> {
    let terms = stage_terms(workflow, entry, stage).unwrap_or_default();
    terms.iter().map(Term::expression).collect()
}

/// Whether `stage` of `entry` runs on a pull request whose records say `passed(entry, stage)`:
/// the rule the plan job renders, evaluated. `None` for a stage that runs with its job.
pub fn stage_runs(
    workflow: &Workflow,
    entry: &str,
    stage: &Stage,
    passed: &dyn Fn(&str, &str) -> bool,
) -> Option<bool> {
    let terms = stage_terms(workflow, entry, stage)?;
    Some(terms.iter().any(|term| match term {
        Term::Always => true,
        Term::Missing { entry, stage } => !passed(entry, stage),
    }))
}

/// Whether entry `entry` runs on a pull request whose records say `passed`: when the rule of
/// any of its stages holds (its `run-<entry>` output).
pub fn entry_runs(workflow: &Workflow, entry: &str, passed: &dyn Fn(&str, &str) -> bool) -> bool {
    entry_stages(workflow, entry)
        .iter()
        .any(|stage| stage_runs(workflow, entry, stage, passed) == Some(true))
}

/// Whether `stage` of `entry` runs on such a pull request: a stage that a caller's switch turns
/// on runs by its own rule (its `stage-<entry>-<stage>` output); any other runs whenever its
/// entry does, whatever its own record says (its job has no condition of its own).
pub fn step_runs(
    workflow: &Workflow,
    entry: &str,
    stage: &Stage,
    passed: &dyn Fn(&str, &str) -> bool,
) -> bool {
    if !entry_runs(workflow, entry, passed) {
        return false;
    }
    // A switched stage runs when its own output holds: one that runs with its job has no terms,
    // so its switch is on only when everything runs (as the plan job renders it).
    !switched(workflow, entry, stage.name)
        || stage_runs(workflow, entry, stage, passed) == Some(true)
}

/// Whether `stage` of `entry` is switched on by the plan (a stage of a called workflow that the
/// caller turns on with an input).
fn switched(workflow: &Workflow, entry: &str, stage: &str) -> bool {
    let Some(Entry::Call { file, .. }) = workflow
        .entries
        .iter()
        .find(|e| matches!(e, Entry::Call { key, .. } if *key == entry))
    else {
        return false;
    };
    workflow.layout.workflows().iter().any(|w| {
        w.file == *file
            && matches!(w.trigger, Trigger::Called { switches } if switches.contains(&stage))
    })
}

/// Entries that could run without an entry they need, for some combination of pass records:
/// `(entry, needed)` pairs, none when the rule is sound. Every entry's rule is an "or" of
/// "always" and "this record is missing", so an entry that runs without one it needs does so
/// with no record missing, or with one of its own alone: trying those is trying every
/// combination. (Needs between the jobs inside a called workflow are not checked.)
pub fn runs_without_needs(workflow: &Workflow) -> Vec<(String, String)> {
    let records = records(workflow);
    let mut found = Vec::new();
    for missing in std::iter::once(None).chain(records.iter().map(Some)) {
        let passed =
            |entry: &str, stage: &str| missing.is_none_or(|(e, s)| *e != entry || s.name != stage);
        for entry in entry_keys(workflow) {
            if !entry_runs(workflow, entry, &passed) {
                continue;
            }
            for need in workflow.layout.entry_needs(workflow.file, entry) {
                let pair = (entry.to_string(), need.clone());
                if !entry_runs(workflow, &need, &passed) && !found.contains(&pair) {
                    found.push(pair);
                }
            }
        }
    }
    found
}

pub fn expression(conditions: Vec<String>) -> String {
    let mut parts = vec![FORCE.to_string()];
    for c in conditions {
        if !parts.contains(&c) {
            parts.push(c);
        }
    }
    format!("${{{{ {} }}}}", parts.join(" || "))
}

/// The `if:` of a gated entry.
pub fn entry_if(key: &str) -> String {
    format!("needs.{PLAN}.outputs.run-{key} == 'true'")
}

/// The value of a called workflow's stage switch.
pub fn switch(key: &str, stage: &str) -> Node {
    Node::Str(format!(
        "${{{{ needs.{PLAN}.outputs.stage-{key}-{stage} == 'true' }}}}"
    ))
}

/// The conclusion's name and needs include the plan job.
pub fn conclusion_needs(workflow: &Workflow) -> Vec<String> {
    let mut needs = vec![PLAN.to_string()];
    needs.extend(entry_keys(workflow).into_iter().map(str::to_string));
    needs.retain(|n| n != CONCLUSION);
    needs
}
