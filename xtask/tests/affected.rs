//! Affected-only runs, end to end in a scratch clone of this repository: `cargo xtask ci` runs,
//! a file is edited, `ci` runs again, and `target/xtask/report.json` says which stages ran and
//! which were reused. The stages run for real are the quick ones (codespell, lint-workflows);
//! for the whole pipeline the test records passes at the clone's current keys, as a passing
//! run leaves them, and reads what `ci --dry-run` would run after each edit.

mod common;

use common::{append, ci, clone, record_passes, statuses, would_run, xtask};

#[test]
fn a_rerun_reuses_passes_and_an_edit_reruns_exactly_the_stages_that_read_it() {
    let repo = clone("affected-run");
    let quick = ["--only", "codespell,lint-workflows"];
    let first = ci(&repo, &quick);
    assert_eq!(
        first,
        statuses(&[("lint-workflows", "passed"), ("codespell", "passed")])
    );

    // No change: nothing runs, and the output says why.
    let out = xtask(&repo, &["ci", "--only", "codespell,lint-workflows"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("codespell: cached: passed") && stderr.contains("with key"),
        "{stderr}"
    );
    assert_eq!(
        ci(&repo, &quick),
        statuses(&[("lint-workflows", "cached"), ("codespell", "cached")])
    );

    // docs/ only: the spelling check, not the workflow lint.
    append(
        &repo,
        "docs/performance.md",
        "\nA sentence about performance.\n",
    );
    assert_eq!(
        ci(&repo, &quick),
        statuses(&[("lint-workflows", "cached"), ("codespell", "passed")])
    );

    // icechunk/src: not an input of the xtask-only stage.
    append(&repo, "icechunk/src/lib.rs", "// an edit\n");
    assert_eq!(
        ci(&repo, &quick),
        statuses(&[("lint-workflows", "cached"), ("codespell", "passed")])
    );

    // xtask: the workflow lint runs again.
    append(&repo, "xtask/src/lib.rs", "// an edit\n");
    assert_eq!(
        ci(&repo, &quick),
        statuses(&[("lint-workflows", "passed"), ("codespell", "passed")])
    );

    // --force runs everything.
    let mut forced = quick.to_vec();
    forced.push("--force");
    assert_eq!(
        ci(&repo, &forced),
        statuses(&[("lint-workflows", "passed"), ("codespell", "passed")])
    );
}

#[test]
fn after_a_pass_each_kind_of_edit_runs_only_the_stages_it_affects() {
    let repo = clone("affected-plan");
    record_passes(&repo);
    // The build stages always run and check their manifests (cheap when current).
    assert_eq!(would_run(&repo), ["build-artifacts", "build-wheels"]);

    append(&repo, "docs/performance.md", "\nA sentence.\n");
    assert_eq!(
        would_run(&repo),
        ["codespell", "build-artifacts", "build-wheels"]
    );
    record_passes(&repo);

    append(
        &repo,
        "icechunk-python/python/icechunk/__init__.py",
        "# an edit\n",
    );
    let python = would_run(&repo);
    assert_eq!(
        python,
        [
            "codespell",
            "build-artifacts",
            "docker-up",
            "build-wheels",
            "python-lint",
            "python-test",
            "docker-down"
        ],
        "no Rust test, no clippy"
    );
    record_passes(&repo);

    append(&repo, "icechunk/src/lib.rs", "// an edit\n");
    let rust = would_run(&repo);
    assert!(
        !rust.iter().any(|s| s == "lint-workflows"),
        "xtask-only: {rust:?}"
    );
    for stage in [
        "lint-rust",
        "test-unit",
        "test-full",
        "python-lint",
        "python-test",
    ] {
        assert!(
            rust.iter().any(|s| s == stage),
            "{stage} depends on icechunk: {rust:?}"
        );
    }
}
