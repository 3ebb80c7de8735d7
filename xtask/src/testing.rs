//! Deterministic contexts of this repository for plan tests, and git in scratch checkouts.

use std::path::{Path, PathBuf};

use ci_engine::cmd::Cmd;
use ci_engine::context::{Context, Interpreter};
use ci_engine::process;

use crate::project::PROJECT;

pub fn context() -> Context {
    context_with_env(&[])
}

/// Run git in a scratch checkout with a fixed author; a failure fails the test.
pub fn git(root: &Path, args: &[&str]) {
    process::capture(
        &Cmd::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args),
        root,
    )
    .unwrap();
}

/// The checkout the tests run in, found at run time: an archive's tests run in another
/// checkout than the one that built them (nextest's `--workspace-remap` sets
/// `CARGO_MANIFEST_DIR` there).
pub fn checkout() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
    Path::new(&manifest).parent().unwrap().to_path_buf()
}

/// Every file under the directories `dirs` of `root`.
pub fn files_under(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A context whose root is a real directory (for tests that run commands).
pub fn context_at(root: PathBuf) -> Context {
    let target = root.join("target");
    Context::new(&PROJECT, root, target, "/tools".into(), std::iter::empty())
}

pub fn context_with_env(env: &[(&str, &str)]) -> Context {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Context::new(
        &PROJECT,
        "/repo".into(),
        "/repo/target".into(),
        "/tools".into(),
        env,
    )
    .with_facts(
        vec![
            Interpreter {
                version: "3.11".into(),
                path: "/py/3.11/bin/python3.11".into(),
            },
            Interpreter {
                version: "3.13".into(),
                path: "/py/3.13/bin/python3.13".into(),
            },
        ],
        false,
        &[("cargo-nextest", crate::pins::NEXTEST_VERSION)],
    )
}
