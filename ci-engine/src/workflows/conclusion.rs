//! The pipeline's conclusion, `ci-passed`: the one check branch protection requires. It fails
//! unless every other job succeeded or was skipped by the plan, and unless every stage whose
//! outcome a job reports as an output (a lint beside a shared build) passed; on main it then
//! saves the pass records of the commit's keys.

use super::plan;
use crate::jobs::{OUTCOME_PREFIX, Os, Workflow, rule};
use crate::yaml::Node;

/// The conclusion job. A job skipped because one it needs failed leaves that one failed, which
/// fails this.
pub fn job(workflow: &Workflow) -> Node {
    let mut steps = vec![Node::map([
        (
            "name",
            Node::str("every needed job succeeded or was not needed"),
        ),
        (
            "env",
            Node::map([("NEEDS", Node::str("${{ toJSON(needs) }}"))]),
        ),
        ("run", Node::Str(check_script())),
    ])];
    steps.extend(plan::save_steps(workflow));
    Node::map([
        ("if", Node::str("!cancelled()")),
        (
            "needs",
            Node::seq(rule::conclusion_needs(workflow).into_iter().map(Node::Str)),
        ),
        ("runs-on", Node::str(Os::Linux.runner())),
        ("timeout-minutes", Node::int(10)),
        ("steps", Node::Seq(steps)),
    ])
}

/// The check, run by the runner's python3 (no checkout, no toolchain): print each job's result
/// and each reported outcome that ran; fail on a job that neither succeeded nor was skipped,
/// on a reported outcome other than success or skipped (a failure, a cancellation, one never
/// set), and when the plan did not succeed.
fn check_script() -> String {
    format!(
        r#"python3 - <<'EOF'
import json, os, sys
prefix = "{OUTCOME_PREFIX}"
needs = json.loads(os.environ["NEEDS"])
passed = needs.get("plan", {{}}).get("result") == "success"
for job, need in needs.items():
    print(f"{{job}}: {{need['result']}}")
    passed = passed and need["result"] in ("success", "skipped")
    for name, outcome in (need.get("outputs") or {{}}).items():
        if not name.startswith(prefix):
            continue
        if outcome != "skipped":
            print(f"{{job}} / {{name[len(prefix):]}}: {{outcome or 'never set'}}")
        if outcome not in ("success", "skipped"):
            passed = False
            print(f"::error::{{name[len(prefix):]}} did not pass in {{job}}. Re-run that job (its dependents follow); re-running failed jobs alone re-runs only this check, which reads the same outcome.")
sys.exit(0 if passed else 1)
EOF
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the check over `needs` as the runner does (`bash -e`, python3 on PATH).
    fn passes(needs: &str) -> bool {
        let status = std::process::Command::new("bash")
            .args(["-e", "-c", &check_script()])
            .env("NEEDS", needs)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("bash runs");
        status.success()
    }

    #[test]
    fn the_check_fails_on_a_failed_job_or_a_reported_outcome_that_did_not_pass() {
        let needs = |archive: &str, lint: &str| {
            format!(
                r#"{{"plan": {{"result": "success", "outputs": {{"run-archive": "true"}}}},
                    "build": {{"result": "{archive}", "outputs": {{"{OUTCOME_PREFIX}lint": "{lint}"}}}},
                    "wheel": {{"result": "skipped", "outputs": {{}}}}}}"#
            )
        };
        assert!(passes(&needs("success", "success")));
        assert!(passes(&needs("success", "skipped")));
        assert!(!passes(&needs("success", "failure")), "a lint finding");
        assert!(!passes(&needs("success", "cancelled")));
        assert!(!passes(&needs("success", "")), "an outcome never set");
        assert!(!passes(&needs("failure", "success")), "the build");
        assert!(!passes(r#"{"plan": {"result": "failure", "outputs": {}}}"#));
    }
}
