use ci_engine::jobs::OUTCOME_PREFIX;
use ci_engine::workflows::conclusion::check_script;

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
                "archive": {{"result": "{archive}", "outputs": {{"{OUTCOME_PREFIX}lint-rust": "{lint}"}}}},
                "wheel": {{"result": "skipped", "outputs": {{}}}}}}"#
        )
    };
    assert!(passes(&needs("success", "success")));
    assert!(passes(&needs("success", "skipped")));
    assert!(!passes(&needs("success", "failure")), "a lint finding");
    assert!(!passes(&needs("success", "cancelled")));
    assert!(!passes(&needs("success", "")), "an outcome never set");
    assert!(!passes(&needs("failure", "success")), "the archive's build");
    assert!(!passes(r#"{"plan": {"result": "failure", "outputs": {}}}"#));
}
