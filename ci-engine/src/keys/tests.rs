//! Keys of a small pipeline in a scratch workspace: one package, a lint, a build and a test.

use super::*;
use crate::context::testing::context_at;
use crate::graph::Artifact;
use crate::graph::testing::{artifact, reads};
use crate::plan::Plan;

static PACKAGE: Artifact = artifact("package", "build", &["lib"]);

const fn stage(name: &'static str, paths: &'static [&'static str]) -> Stage {
    Stage::new(name, "", reads(paths), |_, _, _| {
        Ok(Plan::new().run(Cmd::new("true")))
    })
}

static PIPELINE: Pipeline = Pipeline {
    stages: &[
        stage("lint", &["."]),
        Stage {
            produces: &[&PACKAGE],
            ..stage("build", &["lib"])
        },
        Stage {
            consumes: &[&PACKAGE],
            ..stage("test", &["tests"])
        },
    ],
    unclaimed: &["Cargo.toml", "NOTES.md"],
    explained: &[],
    pin_files: &[],
    servers: None,
};

/// A scratch git checkout with a file under each stage's paths.
fn scratch(name: &str) -> Context {
    let root = std::env::temp_dir().join(format!("ci-engine-keys-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (file, text) in [
        ("Cargo.toml", "[workspace]\n"),
        ("lib/a.rs", "pub fn a() {}\n"),
        ("tests/a.py", "assert True\n"),
        ("NOTES.md", "prose\n"),
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    process::capture(&Cmd::new("git").args(["init", "-q"]), &root).unwrap();
    process::capture(&Cmd::new("git").args(["add", "-A"]), &root).unwrap();
    context_at(root)
}

fn keys(ctx: &Context) -> BTreeMap<String, String> {
    all(ctx, &PIPELINE)
        .unwrap()
        .into_iter()
        .map(|k| (k.stage, k.key))
        .collect()
}

fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(stage, key)| after.get(*stage) != Some(*key))
        .map(|(stage, _)| stage.clone())
        .collect()
}

#[test]
fn an_edit_reaches_the_stages_that_read_it_and_those_that_consume_their_artifacts() {
    let ctx = scratch("reach");
    let base = keys(&ctx);
    assert_eq!(base, keys(&ctx), "keys are stable");
    std::fs::write(ctx.root.join("lib/a.rs"), "pub fn b() {}\n").unwrap();
    assert_eq!(changed(&base, &keys(&ctx)), ["build", "lint", "test"]);
    std::fs::write(ctx.root.join("lib/a.rs"), "pub fn a() {}\n").unwrap();
    std::fs::write(ctx.root.join("tests/a.py"), "assert 1\n").unwrap();
    assert_eq!(changed(&base, &keys(&ctx)), ["lint", "test"]);
    std::fs::write(ctx.root.join("tests/a.py"), "assert True\n").unwrap();
    // Listed as affecting nothing: only the whole-tree lint reads it.
    std::fs::write(ctx.root.join("NOTES.md"), "other prose\n").unwrap();
    assert_eq!(changed(&base, &keys(&ctx)), ["lint"]);
    // A file nobody declared is in every key.
    std::fs::write(ctx.root.join("stray.txt"), "?\n").unwrap();
    assert_eq!(changed(&base, &keys(&ctx)), ["build", "lint", "test"]);
    let files = listed_files(&ctx, &[]).unwrap();
    assert_eq!(
        unclaimed_among(&ctx, &PIPELINE, &files).unwrap(),
        ["stray.txt"]
    );
    let _ = std::fs::remove_dir_all(&ctx.root);
}

#[test]
fn what_a_stage_runs_and_the_hashed_environment_are_in_its_key() {
    let ctx = scratch("plans");
    let key = |keys: &mut Keys, name: &str| keys.key(PIPELINE.stage(name).unwrap()).unwrap().key;
    let mut before = Keys::new(&ctx, &PIPELINE).unwrap();
    let mut after = Keys::new(&ctx, &PIPELINE).unwrap();
    // As if the code that plans `test` had changed what it runs.
    after
        .plans
        .entry("test")
        .and_modify(|p| p.push_str("\n$ more"));
    assert_ne!(key(&mut before, "test"), key(&mut after, "test"));
    assert_eq!(key(&mut before, "build"), key(&mut after, "build"));
    assert!(
        before.plans["test"].contains("$ true"),
        "{}",
        before.plans["test"]
    );
    let mut other = Keys::new(&ctx, &PIPELINE).unwrap();
    other.env.push_str("PYTHONPATH=/somewhere/else\n");
    for stage in PIPELINE.stages {
        assert_ne!(key(&mut before, stage.name), key(&mut other, stage.name));
    }
    let _ = std::fs::remove_dir_all(&ctx.root);
}

#[test]
fn a_pass_is_found_only_under_its_key() {
    let ctx = scratch("passes");
    assert!(find_pass(&ctx, "test", "k1").is_none());
    record_pass(&ctx, "test", "k1", "r").unwrap();
    let pass = find_pass(&ctx, "test", "k1").unwrap();
    assert_eq!((pass.stage.as_str(), pass.realized.as_str()), ("test", "r"));
    assert!(find_pass(&ctx, "test", "k2").is_none());
    std::fs::write(pass_path(&ctx, "test", "k2"), "not json").unwrap();
    assert!(
        find_pass(&ctx, "test", "k2").is_none(),
        "a broken record is no pass"
    );
    let _ = std::fs::remove_dir_all(&ctx.root);
}

#[test]
fn the_plan_check_names_every_stage_whose_key_differs() {
    let here: BTreeMap<String, String> = [("a", "1111"), ("b", "2222")]
        .into_iter()
        .map(|(s, k)| (s.to_string(), k.to_string()))
        .collect();
    check_planned(&serde_json::to_string(&here).unwrap(), &here).unwrap();
    let err = check_planned(r#"{"a": "1111", "b": "3333", "c": "4444"}"#, &here)
        .unwrap_err()
        .to_string();
    assert!(err.contains("b (plan 3333, here 2222)"), "{err}");
    assert!(err.contains("c (plan 4444, here none)"), "{err}");
    assert!(!err.contains("a (plan"), "{err}");
    let err = check_planned("", &here).unwrap_err().to_string();
    assert!(err.contains("--planned takes the plan job's"), "{err}");
}

#[test]
fn ago_says_how_long_ago_in_one_unit() {
    assert_eq!(ago(now()), "0 s ago");
    assert_eq!(ago(now() - 150), "2 min ago");
    assert_eq!(ago(now() - 3 * 86400), "3 days ago");
}
