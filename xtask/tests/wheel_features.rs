//! The wheel's build (icechunk-python alone, as maturin builds it) resolves every dependency
//! with the features the whole workspace's build gives it, so that it reuses what lint-rust
//! and the archive compiled. `workspace-hack/Cargo.toml` holds what makes them agree; this test
//! names what it lacks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// `name version` → features, as `cargo tree` resolves them for `selection` on this machine's
/// target.
fn resolved(selection: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .current_dir(common::workspace_root())
        .args([
            "tree", "--locked", "--prefix", "none", "--format", "{p}|{f}",
        ])
        // Plain text whatever the terminal settings (`CARGO_TERM_COLOR=always` in CI wraps the
        // ` (*)` marker in colour codes).
        .args(["--color", "never"])
        .args(selection)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // A package shown before is marked ` (*)` after its features.
        let features = features.trim_end_matches(" (*)").trim();
        // `name v1.2.3 (path or "proc-macro") (*)` → `name v1.2.3`
        let package: Vec<&str> = package.split_whitespace().take(2).collect();
        packages.entry(package.join(" ")).or_default().extend(
            features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_string),
        );
    }
    packages
}

#[test]
fn the_wheel_resolves_its_dependencies_like_the_workspace_build() {
    let wheel = resolved(&["-p", "icechunk-python", "--edges", "normal,build"]);
    let workspace = resolved(&[
        "--workspace",
        "--all-features",
        "--edges",
        "normal,build,dev",
    ]);
    let mut missing = Vec::new();
    for (package, features) in &wheel {
        // The workspace's own crates compile for the wheel anyway (icechunk without its
        // `integration` feature, the bindings as a cdylib).
        if package.starts_with("icechunk") {
            continue;
        }
        let Some(full) = workspace.get(package) else {
            missing.push(format!("{package}: not in the workspace build at all"));
            continue;
        };
        let lacking: Vec<&String> = full.difference(features).collect();
        if !lacking.is_empty() {
            missing.push(format!("{package}: {lacking:?}"));
        }
    }
    assert!(
        missing.is_empty(),
        "the wheel's build would compile these dependencies again, without the features the \
         workspace build gives them; add each to workspace-hack/Cargo.toml with those features:\n{}",
        missing.join("\n")
    );
}
