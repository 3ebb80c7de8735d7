//! Helpers shared by the tests that run the xtask binary.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The xtask binary: nextest gives its (possibly remapped) path at run time.
pub fn xtask_bin() -> PathBuf {
    std::env::var_os("NEXTEST_BIN_EXE_xtask")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_xtask")))
}

/// The workspace root, read at run time so archives can be remapped.
pub fn workspace_root() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
    Path::new(&manifest)
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two distinct ports nothing listens on right now (both held while they are chosen, so the
/// system cannot hand out the same one twice).
pub fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Whether `pid` is a live process (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// An xtask command with the variables of an enclosing cargo/nextest/CI run removed, so the
/// child behaves like a developer's shell.
pub fn xtask(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(xtask_bin());
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let inherited_run = key.starts_with("NEXTEST")
            || key.starts_with("CARGO_")
            || key.starts_with("ICECHUNK_TEST_")
            || key.starts_with("XTASK_")
            || matches!(
                key.as_str(),
                "CI" | "GITHUB_ACTIONS" | "GITHUB_ENV" | "GITHUB_STEP_SUMMARY"
            );
        let keep = matches!(key.as_str(), "CARGO_HOME" | "XTASK_TOOLS_DIR");
        if inherited_run && !keep {
            cmd.env_remove(&key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

pub fn run(mut cmd: Command) -> Output {
    let output = cmd.output().expect("xtask runs");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `KEY=VALUE` lines of a services.env file.
pub fn read_env(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn var(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key}"))
}

/// The pids in a services state file.
pub fn recorded_pids(state: &Path) -> Vec<u32> {
    let text =
        std::fs::read_to_string(state).unwrap_or_else(|e| panic!("{}: {e}", state.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap() as u32)
        .collect()
}

/// What a scratch copy of the workspace holds: the files xtask's tests may read, each an input
/// of the stages that run these tests (test-unit, test-full). A test checks that their keys
/// cover every file of a copy; nothing else of the repository reaches them.
pub const COPIED: &[&str] = &[
    ".cargo",
    ".codespellrc",
    ".config/nextest.toml",
    ".github",
    "Cargo.lock",
    "ci-engine",
    "Cargo.toml",
    "compose.yaml",
    "docs/ci.md",
    "icechunk",
    "icechunk-python/Cargo.toml",
    "icechunk-python/src",
    "workspace-hack",
    "xtask",
];

/// A scratch workspace made of the working tree's files under [`COPIED`] (uncommitted changes
/// included, so the xtask under test and the files it checks agree), committed to a new git
/// repository, with a `.gitignore` of its own for its `target/`.
pub fn clone(name: &str) -> PathBuf {
    let root = workspace_root();
    let dir = scratch(name).join("repo");
    let listed = Command::new("git")
        .current_dir(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
        ])
        .args(COPIED)
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
    std::fs::write(dir.join(".gitignore"), "/target/\n").unwrap();
    commit_all(&dir, "copy");
    dir
}

/// A new git repository in `dir` with everything in it committed.
pub fn commit_all(dir: &Path, message: &str) {
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ],
    ] {
        let status = Command::new("git")
            .current_dir(dir)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?} failed");
    }
}

/// Append `text` to a file of the copy (made when the copy does not have it).
pub fn append(repo: &Path, file: &str, text: &str) {
    let path = repo.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut contents = std::fs::read_to_string(&path).unwrap_or_default();
    contents.push_str(text);
    std::fs::write(path, contents).unwrap();
}

/// Record a pass of every stage at the clone's current keys, as a passing `ci` leaves them.
pub fn record_passes(repo: &Path) {
    let out = xtask(repo, &["keys", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key_of in keys.as_array().unwrap() {
        let (stage, key) = (
            key_of["stage"].as_str().unwrap(),
            key_of["key"].as_str().unwrap(),
        );
        let dir = repo.join("target/xtask/passed").join(stage);
        std::fs::create_dir_all(&dir).unwrap();
        let record = serde_json::json!({
            "stage": stage,
            "key": key,
            "passed_unix": 1,
            "realized": key_of["here"],
        });
        std::fs::write(dir.join(format!("{key}.json")), record.to_string()).unwrap();
    }
}

/// The stages `ci --dry-run` would run (not reuse), in order.
pub fn would_run(repo: &Path) -> Vec<String> {
    would_run_with(xtask(repo, &["ci", "--dry-run"]))
}

/// The stages a `ci --dry-run` command would run (not reuse), in order.
pub fn would_run_with(mut cmd: Command) -> Vec<String> {
    let out = cmd.output().unwrap();
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

/// `cargo xtask ci <args>` in the clone; returns each stage's status from report.json.
pub fn ci(repo: &Path, args: &[&str]) -> BTreeMap<String, String> {
    let mut all = vec!["ci"];
    all.extend(args);
    let out = xtask(repo, &all).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ci {args:?} failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("target/xtask/report.json")).unwrap(),
    )
    .unwrap();
    by_stage(&report["stages"], "status")
}

/// Runs `cmd` (a `keys --json`) and returns each stage's key.
pub fn stage_keys(mut cmd: Command) -> BTreeMap<String, String> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    by_stage(&serde_json::from_slice(&out.stdout).unwrap(), "key")
}

/// `field` of each object in a JSON array of `{"stage": …}` objects, by stage.
fn by_stage(rows: &serde_json::Value, field: &str) -> BTreeMap<String, String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s[field].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(s, v)| (s.to_string(), v.to_string()))
        .collect()
}
