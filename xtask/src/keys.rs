//! Tests of this repository's content keys (the engine's `keys`, over [`PIPELINE`]): every
//! tracked file is claimed, a change reaches exactly the stages that read it, and keys do not
//! depend on the machine.

use std::collections::{BTreeMap, BTreeSet};

use crate::pipeline::PIPELINE;
use crate::testing::git;
use ci_engine::context::Context;
use ci_engine::keys::{Keys, all, unclaimed_among, workspace_packages};

/// A scratch workspace with a file under every path a stage declares.
fn scratch(name: &str) -> Context {
    let root = std::env::temp_dir().join(format!("xtask-keys-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"icechunk\", \"icechunk-python\", \"xtask\"]\nresolver = \"3\"\n",
    );
    let package = |name: &str, deps: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n{deps}"
        )
    };
    write("icechunk/Cargo.toml", &package("icechunk", ""));
    write(
        "icechunk-python/Cargo.toml",
        &package("icechunk-python", "icechunk = { path = \"../icechunk\" }\n"),
    );
    write("xtask/Cargo.toml", &package("xtask", ""));
    for stage in PIPELINE.stages {
        for spec in stage.inputs.paths.iter().filter(|p| **p != ".") {
            let file = match *spec {
                "icechunk" | "xtask" => format!("{spec}/src/lib.rs"),
                s if s.ends_with(".toml")
                    || s.ends_with(".lock")
                    || s.contains('.') && !s.starts_with('.') =>
                {
                    s.to_string()
                }
                s => format!("{s}/file"),
            };
            if !root.join(&file).exists() {
                write(&file, "one\n");
            }
        }
    }
    for file in [
        "icechunk/src/lib.rs",
        "icechunk-python/src/lib.rs",
        "xtask/src/lib.rs",
    ] {
        write(file, "pub fn f() {}\n");
    }
    write("README.md", "prose\n");
    git(&root, &["init", "-q"]);
    let ctx = crate::testing::context_at(root);
    Keys::new(&ctx, &PIPELINE).unwrap(); // let cargo write its lock file first
    git(&ctx.root, &["add", "-A"]);
    ctx
}

fn keys(ctx: &Context) -> BTreeMap<String, String> {
    all(ctx, &PIPELINE)
        .unwrap()
        .into_iter()
        .map(|k| (k.stage, k.key))
        .collect()
}

/// The stages whose key changes when `file` is edited.
fn reached(ctx: &Context, file: &str) -> Vec<String> {
    reached_from(ctx, &keys(ctx), file)
}

/// The same, against the keys `before` of the unedited tree (each edit is undone).
fn reached_from(ctx: &Context, before: &BTreeMap<String, String>, file: &str) -> Vec<String> {
    let path = ctx.root.join(file);
    let old = std::fs::read(&path).ok();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Appended as a comment, so a manifest stays valid for `cargo metadata`.
    let mut edited = old.clone().unwrap_or_default();
    edited.extend_from_slice(b"\n# edited\n");
    std::fs::write(&path, edited).unwrap();
    let after = keys(ctx);
    match old {
        Some(old) => std::fs::write(&path, old).unwrap(),
        None => std::fs::remove_file(&path).unwrap(),
    }
    before
        .iter()
        .filter(|(stage, key)| after.get(*stage) != Some(*key))
        .map(|(stage, _)| stage.clone())
        .collect()
}

#[test]
fn every_tracked_file_is_claimed_or_listed_as_affecting_nothing() {
    let ctx = crate::testing::context_at(crate::testing::checkout());
    // The names alone: this test reads no file's contents (test-unit's key covers only
    // what it declares).
    let files = ci_engine::files::listed_files(&ctx, &[]).unwrap();
    let unclaimed = unclaimed_among(&ctx, &PIPELINE, &files).unwrap();
    assert!(
        unclaimed.is_empty(),
        "no stage declares these as inputs: add them to a stage's inputs in pipeline.rs, or to \
         the pipeline's UNCLAIMED if they affect nothing: {unclaimed:?}"
    );
}

#[test]
fn the_key_of_xtask_s_binary_covers_every_package_it_is_built_from() {
    let packages =
        workspace_packages(&crate::testing::context_at(crate::testing::checkout())).unwrap();
    let mut todo = vec!["xtask".to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            todo.extend(packages[&name].1.iter().cloned());
        }
    }
    let dirs: BTreeSet<String> = seen
        .iter()
        .map(|n| format!("{}/**", packages[n].0))
        .collect();
    let listed: BTreeSet<String> = crate::pipeline::XTASK_SOURCES
        .iter()
        .filter(|s| s.ends_with("/**"))
        .map(|s| s.to_string())
        .collect();
    assert_eq!(dirs, listed);
}

#[test]
fn keys_do_not_depend_on_what_the_machine_has() {
    let ctx = scratch("machine");
    let bare = keys(&ctx);
    // Another machine: every interpreter, nextest on PATH, a Docker engine, its own tools
    // and target directories and the cargo of a toolchain at some path.
    let other = Context::new(
        &crate::project::PROJECT,
        ctx.root.clone(),
        "/elsewhere/target".into(),
        "/elsewhere/tools".into(),
        [("CARGO".to_string(), "/elsewhere/rust/bin/cargo".to_string())],
    )
    .with_facts(
        crate::pins::PYTHON_VERSIONS
            .iter()
            .map(|v| ci_engine::context::Interpreter {
                version: v.to_string(),
                path: format!("/elsewhere/python{v}/bin/python{v}").into(),
            })
            .collect(),
        true,
        &[("cargo-nextest", crate::tools::NEXTEST_VERSION)],
    );
    assert_eq!(bare, keys(&other));
    let _ = std::fs::remove_dir_all(&ctx.root);
}

/// The archive's tests run the machine's Pythons (the second project's tests among them): a
/// pass records which, so that one made with other interpreters is not reused.
#[test]
fn what_a_pass_of_the_rust_tests_records_names_the_pythons_they_ran() {
    let ctx = scratch("pythons");
    let with = |paths: &[&str]| {
        let found = paths
            .iter()
            .zip(crate::pins::PYTHON_VERSIONS)
            .map(|(path, version)| ci_engine::context::Interpreter {
                version: version.to_string(),
                path: path.into(),
            })
            .collect();
        let machine = crate::testing::context_at(ctx.root.clone()).with_facts(found, false, &[]);
        let mut realized = Vec::new();
        for stage in ["test-unit", "test-full"] {
            let stage = PIPELINE.stage(stage).unwrap();
            let args = stage.ci_args().unwrap();
            realized.push(ci_engine::keys::realized(&machine, &PIPELINE, stage, &args).unwrap());
        }
        realized
    };
    let here = with(&["/a/python3.11"]);
    assert_eq!(here, with(&["/a/python3.11"]));
    let upgraded = with(&["/b/python3.11"]);
    let more = with(&["/a/python3.11", "/a/python3.12"]);
    for (i, stage) in ["test-unit", "test-full"].iter().enumerate() {
        assert_ne!(here[i], upgraded[i], "{stage}");
        assert_ne!(here[i], more[i], "{stage}");
    }
    let _ = std::fs::remove_dir_all(&ctx.root);
}

#[test]
fn what_starts_the_servers_reaches_every_stage_that_uses_them() {
    let ctx = scratch("services");
    let base = keys(&ctx);
    for file in [
        "compose.yaml",
        "ci-engine/src/http.rs",
        "ci-engine/src/process.rs",
        "ci-engine/src/servers.rs",
        "xtask/src/services/file",
        "xtask/src/stages/services.rs",
    ] {
        let reached = reached_from(&ctx, &base, file);
        for stage in ["docker-up", "test-full", "python-test"] {
            assert!(reached.contains(&stage.to_string()), "{file}: {reached:?}");
        }
        assert!(
            !reached.contains(&"python-lint".to_string()),
            "{file}: {reached:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&ctx.root);
}

#[cfg(unix)]
#[test]
fn every_tree_git_can_hold_has_a_key() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let ctx = scratch("tree");
    let base = keys(&ctx);
    // Links to a directory, to a file and to nothing, added but not committed.
    symlink("src", ctx.root.join("icechunk/linked-dir")).unwrap();
    symlink("src/lib.rs", ctx.root.join("icechunk/linked-file")).unwrap();
    symlink("nowhere", ctx.root.join("icechunk/dangling")).unwrap();
    git(&ctx.root, &["add", "-A"]);
    let linked = keys(&ctx);
    assert_ne!(base["build-artifacts"], linked["build-artifacts"]);
    // Where a link points is its content.
    std::fs::remove_file(ctx.root.join("icechunk/dangling")).unwrap();
    symlink("elsewhere", ctx.root.join("icechunk/dangling")).unwrap();
    assert_ne!(linked["build-artifacts"], keys(&ctx)["build-artifacts"]);
    // A mode is content.
    let script = ctx.root.join("icechunk/src/lib.rs");
    let before = keys(&ctx);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(before["build-artifacts"], keys(&ctx)["build-artifacts"]);
    // A rename is a change.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(before, keys(&ctx));
    std::fs::rename(
        ctx.root.join("icechunk/linked-file"),
        ctx.root.join("icechunk/renamed-link"),
    )
    .unwrap();
    git(&ctx.root, &["add", "-A"]);
    assert_ne!(before["build-artifacts"], keys(&ctx)["build-artifacts"]);
    let _ = std::fs::remove_dir_all(&ctx.root);
}

#[test]
fn a_change_reaches_exactly_the_stages_whose_inputs_hold_it() {
    let ctx = scratch("reach");
    let base = keys(&ctx);
    assert_eq!(base, keys(&ctx), "keys are stable");
    // Every declared input reaches its stage (each file edited once, however many stages
    // declare it).
    let covered = Keys::new(&ctx, &PIPELINE).unwrap();
    let mut reach: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for stage in PIPELINE.stages {
        for spec in covered.covered(stage) {
            if spec == "." {
                continue;
            }
            let file = if ctx.root.join(&spec).is_dir() {
                format!("{spec}/new-file")
            } else {
                spec.clone()
            };
            let stages = reach
                .entry(file.clone())
                .or_insert_with(|| reached_from(&ctx, &base, &file));
            assert!(
                stages.contains(&stage.name.to_string()),
                "{}: editing {file} must change its key",
                stage.name
            );
        }
    }
    let python = reached(&ctx, "icechunk-python/python/file");
    for stage in ["build-wheels", "python-lint", "python-test", "codespell"] {
        assert!(python.contains(&stage.to_string()), "{python:?}");
    }
    for stage in [
        "build-artifacts",
        "test-unit",
        "test-full",
        "lint-workflows",
    ] {
        assert!(!python.contains(&stage.to_string()), "{python:?}");
    }
    let rust = reached(&ctx, "icechunk/src/lib.rs");
    for stage in [
        "lint-rust",
        "build-artifacts",
        "test-unit",
        "build-wheels",
        "python-test",
    ] {
        assert!(rust.contains(&stage.to_string()), "{rust:?}");
    }
    assert!(!rust.contains(&"lint-workflows".to_string()), "{rust:?}");
    let xtask = reached(&ctx, "xtask/src/lib.rs");
    assert!(xtask.contains(&"lint-workflows".to_string()), "{xtask:?}");
    assert!(!xtask.contains(&"python-lint".to_string()), "{xtask:?}");
    assert_eq!(reached(&ctx, "README.md"), ["codespell"], "listed as prose");
    // A file no stage declares reaches every stage (fail-safe).
    let unknown = reached(&ctx, "new-top-level-file.txt");
    assert_eq!(unknown.len(), PIPELINE.stages.len(), "{unknown:?}");
    let _ = std::fs::remove_dir_all(&ctx.root);
}
