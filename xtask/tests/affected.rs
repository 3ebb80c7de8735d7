//! Affected-only runs, end to end in a scratch clone of this repository: `cargo xtask ci` runs,
//! a file is edited, `ci` runs again, and `target/xtask/report.json` says which stages ran and
//! which were reused. The stages run for real are the quick ones (codespell, lint-workflows);
//! for the whole pipeline the test records passes at the clone's current keys, as a passing
//! run leaves them, and reads what `ci --dry-run` would run after each edit.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{scratch, workspace_root, xtask};

/// A clone of the workspace with its working tree's files (uncommitted changes included, so
/// the xtask under test and the files it checks agree).
fn clone(name: &str) -> PathBuf {
    let root = workspace_root();
    let dir = scratch(name).join("repo");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(&root)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "git clone failed");
    let listed = Command::new("git")
        .current_dir(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .unwrap();
    for file in String::from_utf8_lossy(&listed.stdout).split('\0') {
        let from = root.join(file);
        if file.is_empty() || !from.is_file() {
            continue;
        }
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    dir
}

fn append(repo: &Path, file: &str, text: &str) {
    let path = repo.join(file);
    let mut contents = std::fs::read_to_string(&path).unwrap();
    contents.push_str(text);
    std::fs::write(path, contents).unwrap();
}

/// `cargo xtask ci <args>` in the clone; returns each stage's status from report.json.
fn ci(repo: &Path, args: &[&str]) -> BTreeMap<String, String> {
    let mut all = vec!["ci"];
    all.extend(args);
    let out = xtask(repo, &all).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ci {args:?} failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("target/xtask/report.json")).unwrap(),
    )
    .unwrap();
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(s, v)| (s.to_string(), v.to_string()))
        .collect()
}

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

/// Record a pass of every stage at the clone's current keys, as a passing `ci` leaves them.
fn record_passes(repo: &Path) {
    let out = xtask(repo, &["keys", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in keys.as_array().unwrap() {
        let (stage, key) = (key["stage"].as_str().unwrap(), key["key"].as_str().unwrap());
        let dir = repo.join("target/xtask/passed").join(stage);
        std::fs::create_dir_all(&dir).unwrap();
        let record = serde_json::json!({ "stage": stage, "key": key, "passed_unix": 1 });
        std::fs::write(dir.join(format!("{key}.json")), record.to_string()).unwrap();
    }
}

/// The stages `ci --dry-run` would run (not reuse), in order.
fn would_run(repo: &Path) -> Vec<String> {
    let out = xtask(repo, &["ci", "--dry-run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let mut run = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("==> cargo xtask ") else {
            continue;
        };
        let stage = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let cached = lines.get(i + 1).is_some_and(|next| {
            next.contains(&format!("# {stage}: cached")) || next.contains("not needed")
        });
        if !cached {
            run.push(stage);
        }
    }
    run
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
