//! A skip is never a false green, end to end in a scratch clone of this repository: each way a
//! stage's result can change without a file of its own changing — how the servers start, the
//! environment, an edit while the run goes on, the machine the keys are computed on, the
//! machine the stage passed on — makes it run again (or keeps its pass from being recorded),
//! and without the change it stays cached.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::{append, ci, clone, record_passes, scratch, stage_keys, statuses, would_run, xtask};

/// What a run right after a passing one runs when nothing changed.
const UNCHANGED: [&str; 2] = ["build-artifacts", "build-wheels"];

fn replace(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn a_change_to_how_the_servers_start_reruns_every_stage_that_uses_them() {
    let repo = clone("sound-services");
    record_passes(&repo);
    assert_eq!(would_run(&repo), UNCHANGED);
    // A variable docker-up exports, renamed: the Python tests would no longer find it.
    replace(
        &repo,
        "xtask/src/services/mod.rs",
        "(\"ICECHUNK_TEST_S3_BUCKET\"",
        "(\"ICECHUNK_TEST_S3_BUCKET_NAME\"",
    );
    let run = would_run(&repo);
    for stage in ["docker-up", "test-full", "python-test"] {
        assert!(run.iter().any(|s| s == stage), "{stage}: {run:?}");
    }
    assert!(!run.iter().any(|s| s == "python-lint"), "{run:?}");
}

#[test]
fn a_variable_that_changes_results_reruns_and_one_that_cannot_does_not() {
    let repo = clone("sound-env");
    record_passes(&repo);
    let mut cmd = xtask(&repo, &["ci", "--dry-run"]);
    cmd.env("OLDPWD", "/somewhere")
        .env("UNRELATED_SETTING", "1");
    assert_eq!(common::would_run_with(cmd), UNCHANGED);
    // A PYTHONPATH that shadows the installed package changes what pytest imports.
    let mut cmd = xtask(&repo, &["ci", "--dry-run"]);
    cmd.env("PYTHONPATH", repo.join("shadow"));
    let run = common::would_run_with(cmd);
    for stage in ["python-lint", "python-test", "test-unit", "lint-rust"] {
        assert!(run.iter().any(|s| s == stage), "{stage}: {run:?}");
    }
}

#[test]
fn a_pass_from_a_machine_that_would_run_the_stage_differently_is_not_reused() {
    let repo = clone("sound-machine");
    record_passes(&repo);
    for entry in std::fs::read_dir(repo.join("target/xtask/passed/python-test")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut pass: serde_json::Value = serde_json::from_str(&text).unwrap();
        pass["realized"] = "a machine with other interpreters".into();
        std::fs::write(&path, pass.to_string()).unwrap();
    }
    let out = xtask(&repo, &["ci", "--dry-run"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("python-test: runs: its key passed")
            && stderr.contains("would run it differently"),
        "{stderr}"
    );
    assert!(would_run(&repo).iter().any(|s| s == "python-test"));
}

#[test]
fn keys_are_the_same_without_python_nextest_or_pyenv() {
    let repo = clone("sound-pure");
    let here = stage_keys(xtask(&repo, &["keys", "--json"]));
    // A PATH with git, cargo and rustc only: no interpreter, no cargo-nextest, no pyenv.
    let bin = scratch("sound-pure-bin");
    for tool in ["git", "cargo", "rustc"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        assert!(!path.is_empty(), "{tool} is on PATH");
        std::os::unix::fs::symlink(path, bin.join(tool)).unwrap();
    }
    let mut bare = xtask(&repo, &["keys", "--json"]);
    bare.env("PATH", &bin)
        .env("PYENV_ROOT", bin.join("no-pyenv"))
        .env("XTASK_TOOLS_DIR", bin.join("no-tools"));
    assert_eq!(here, stage_keys(bare));
}

#[test]
fn an_edit_while_a_stage_runs_records_no_pass() {
    let repo = clone("sound-edit");
    let mut child = xtask(&repo, &["ci", "--only", "lint-workflows"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    // Once the stage has begun (its key was computed before), edit one of its inputs.
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("==> cargo xtask lint-workflows") {
            append(&repo, "xtask/src/lib.rs", "// edited during the run\n");
            break;
        }
        line.clear();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(
        seen.contains("lint-workflows: pass not recorded: its inputs changed while the run went on (xtask/src/lib.rs)"),
        "{seen}"
    );
    // Nothing was recorded, under the old key or the new: it runs again, then is cached.
    let only = ["--only", "lint-workflows"];
    assert_eq!(ci(&repo, &only), statuses(&[("lint-workflows", "passed")]));
    assert_eq!(ci(&repo, &only), statuses(&[("lint-workflows", "cached")]));
}

/// xtask's own tests (in test-unit and test-full) read scratch copies of the workspace: a copy
/// holds only files those stages' keys cover, so a file they do not declare cannot change
/// their result (the audit checks the same from the other side).
#[test]
fn a_copy_holds_only_files_the_stages_running_xtasks_tests_declare() {
    let repo = clone("sound-copy");
    let out = xtask(&repo, &["keys", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = std::process::Command::new("git")
        .current_dir(&repo)
        .args(["ls-files"])
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&listed.stdout).into_owned();
    for stage in ["test-unit", "test-full"] {
        let covers: Vec<String> = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["stage"] == stage)
            .unwrap()["covers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        for file in files.lines().filter(|f| *f != ".gitignore") {
            assert!(
                covers
                    .iter()
                    .any(|c| file == c || file.starts_with(&format!("{c}/"))),
                "{stage} does not declare {file}, which a copy holds: {covers:?}"
            );
        }
    }
}

/// Two checkouts of one tree at different paths (as every GitHub or act job has its own) have
/// the same keys, even with what `cargo run` sets from the workspace's `[env]` (a path into the
/// checkout).
#[test]
fn keys_do_not_depend_on_where_the_checkout_is() {
    let keys = |repo: &Path| {
        let mut cmd = xtask(repo, &["keys", "--json"]);
        cmd.env(
            "PYO3_CONFIG_FILE",
            repo.join("icechunk-python/pyo3-config.txt"),
        );
        stage_keys(cmd)
    };
    assert_eq!(
        keys(&clone("sound-where-one")),
        keys(&clone("sound-where-two"))
    );
}
