//! Content keys: a stage's key is a hash of everything it reads — the files of the workspace
//! packages it builds or tests (with the packages they depend on, from cargo's package graph),
//! the other paths it declares, the toolchain, its tools' pins, its flags, its plan, the
//! declared environment's hashed variables, the services' key when it requires them and the
//! keys of the artifacts it consumes — never of timestamps, the commit or what this machine
//! happens to have installed (plans are made with [`Context::for_keys`]). A stage that passed
//! is recorded with its key under `target/xtask/passed/`; `cargo xtask ci` skips a stage whose
//! key has passed and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pipeline::PIPELINE;
use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::graph::Stage;
use ci_engine::process;

/// One stage's key and what it covers.
#[derive(Clone, Debug, Serialize)]
pub struct StageKey {
    pub stage: String,
    pub key: String,
    /// The workspace packages and paths whose files it hashes.
    pub covers: Vec<String>,
    pub files: usize,
    pub cacheable: bool,
    /// What this machine would run for the stage ([`realized`]; a pass records it): not part
    /// of the key, and the one field that differs between machines. `None` where the stage
    /// cannot be planned here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub here: Option<String>,
}

/// Computes keys for one state of the tree; file hashes and the toolchain are read once.
pub struct Keys {
    /// Every file git tracks or would add, with its content hash.
    files: BTreeMap<String, String>,
    /// Package name → its directory and its workspace dependencies.
    packages: BTreeMap<String, (String, Vec<String>)>,
    rustc: String,
    /// The hashed variables of the declared environment and cargo's configuration outside the
    /// workspace ([`ci_engine::environment::settings`]).
    env: String,
    /// What each stage runs with its ci flags: its plan, as `--dry-run` prints it for
    /// [`Context::for_keys`], so a change in the xtask code behind a stage changes its key and
    /// other xtask changes do not.
    plans: BTreeMap<&'static str, String>,
    memo: BTreeMap<&'static str, StageKey>,
}

impl Keys {
    pub fn new(ctx: &Context) -> Result<Keys> {
        let mut files = BTreeMap::new();
        for name in crate::artifacts::listed_files(ctx, &[])? {
            let digest = crate::artifacts::entry_digest(&ctx.root, &name)?;
            files.insert(name, digest);
        }
        let for_keys = ctx.for_keys();
        let mut plans = BTreeMap::new();
        for stage in PIPELINE.stages {
            let plan = stage
                .ci_args()
                .and_then(|args| PIPELINE.plan(stage, &for_keys, &args))
                .with_context(|| format!("the plan of {} cannot be made", stage.name))?;
            plans.insert(stage.name, plan.lines().join("\n"));
        }
        Ok(Keys {
            files,
            packages: workspace_packages(ctx)?,
            rustc: process::capture(&Cmd::new("rustc").arg("-vV"), &ctx.root)?,
            env: ci_engine::environment::settings(&ctx.root),
            plans,
            memo: BTreeMap::new(),
        })
    }

    /// The directories of `names` and of every workspace package they depend on.
    fn package_dirs(&self, names: &[&str]) -> BTreeSet<String> {
        let mut todo: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut seen = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some((dir, deps)) = self.packages.get(&name) {
                dirs.insert(dir.clone());
                todo.extend(deps.iter().cloned());
            }
        }
        dirs
    }

    /// Every path a stage's key covers (package directories and declared paths).
    pub fn covered(&self, stage: &Stage) -> Vec<String> {
        let mut covered: Vec<String> = self
            .package_dirs(stage.inputs.packages)
            .into_iter()
            .collect();
        covered.extend(stage.inputs.paths.iter().map(|p| p.to_string()));
        covered
    }

    pub fn key(&mut self, stage: &'static Stage) -> Result<StageKey> {
        if let Some(found) = self.memo.get(stage.name) {
            return Ok(found.clone());
        }
        let covers = self.covered(stage);
        let mut hasher = Sha256::new();
        let mut field = |name: &str, value: &str| {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(value.as_bytes());
            hasher.update([0]);
        };
        field("stage", stage.name);
        field("args", &stage.ci_args.join(" "));
        for tool in stage.tools {
            field("tool", &tool.to_string());
        }
        if stage.inputs.toolchain {
            field("rustc", &self.rustc);
        }
        field("env", &self.env);
        field(
            "plan",
            self.plans.get(stage.name).map_or("", String::as_str),
        );
        for name in self.unclaimed() {
            field("unclaimed", &name);
            field(&name, self.files.get(&name).map_or("", String::as_str));
        }
        let mut files = 0;
        for (name, digest) in &self.files {
            if covers.iter().any(|c| covers_path(c, name)) {
                field(name, digest);
                files += 1;
            }
        }
        let mut consumed = Vec::new();
        for artifact in stage.consumes {
            consumed.push(self.key(PIPELINE.producer(artifact))?.key);
        }
        // The servers are an input: what starts them (its files, plan, pins and backend).
        for starter in PIPELINE.service_starters(stage) {
            consumed.push(self.key(starter)?.key);
        }
        let mut hasher = hasher;
        for key in consumed {
            hasher.update(key.as_bytes());
        }
        let key = StageKey {
            stage: stage.name.to_string(),
            key: crate::artifacts::hex(&hasher.finalize()),
            covers,
            files,
            cacheable: stage.inputs.cacheable,
            here: None,
        };
        self.memo.insert(stage.name, key.clone());
        Ok(key)
    }

    /// The files no stage's own inputs cover (see [`unclaimed`]).
    pub fn unclaimed(&self) -> Vec<String> {
        unclaimed(self.files.keys(), |stage| self.covered(stage))
    }
}

/// The files among `files` that no stage's own inputs (`covered`) cover, the whole-tree
/// linters aside, and that are not listed in [`UNCLAIMED`]. They count in every key, so a new
/// file nobody declared makes every stage run; a test keeps the list empty.
fn unclaimed<'a>(
    files: impl Iterator<Item = &'a String>,
    covered: impl Fn(&Stage) -> Vec<String>,
) -> Vec<String> {
    let covered: Vec<String> = PIPELINE
        .stages
        .iter()
        .flat_map(covered)
        .filter(|c| c != ".")
        .collect();
    files
        .filter(|f| !covered.iter().any(|c| covers_path(c, f)))
        .filter(|f| !UNCLAIMED.iter().any(|u| covers_path(u, f)))
        .cloned()
        .collect()
}

/// Tracked files that affect no stage (a file neither claimed nor listed here makes every
/// stage run: see [`Keys::unclaimed`]).
pub const UNCLAIMED: &[&str] = &[
    ".gitattributes",
    // The entry point of CI: it runs `cargo xtask ci`, whose stages have their own keys.
    ".ci",
    // Prose for people (codespell reads it, as it reads everything).
    "README.md",
    "docs/performance.md",
];

/// Whether the pathspec `spec` (a file or a directory, `.` for everything) covers `file`.
pub fn covers_path(spec: &str, file: &str) -> bool {
    spec == "."
        || file == spec
        || file
            .strip_prefix(spec.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The workspace's packages: name → (directory relative to the root, the workspace packages it
/// depends on), from `cargo metadata`.
pub fn workspace_packages(ctx: &Context) -> Result<BTreeMap<String, (String, Vec<String>)>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(&ctx.root)
        .no_deps()
        .exec()
        .context("`cargo metadata` failed")?;
    let members: BTreeSet<String> = metadata
        .packages
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let mut packages = BTreeMap::new();
    for package in &metadata.packages {
        let dir = package
            .manifest_path
            .parent()
            .map(|d| d.as_std_path().to_path_buf())
            .unwrap_or_default();
        let dir = ctx.rel(&dir).to_string_lossy().replace('\\', "/");
        let deps = package
            .dependencies
            .iter()
            .filter(|d| d.path.is_some() && members.contains(&d.name))
            .map(|d| d.name.clone())
            .collect();
        packages.insert(package.name.to_string(), (dir, deps));
    }
    Ok(packages)
}

/// A stage that passed with a key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pass {
    pub stage: String,
    pub key: String,
    pub passed_unix: u64,
    /// A digest of what this machine ran for it ([`realized`]): the key is the same on every
    /// machine, but a pass counts only where the same would run again (the same interpreters,
    /// the same services backend).
    #[serde(default)]
    pub realized: String,
}

/// Where the pass record of `stage` with `key` lives (one small file: CI caches it by key).
pub fn pass_path(ctx: &Context, stage: &str, key: &str) -> PathBuf {
    ctx.xtask_dir()
        .join("passed")
        .join(stage)
        .join(format!("{key}.json"))
}

pub fn find_pass(ctx: &Context, stage: &str, key: &str) -> Option<Pass> {
    let text = std::fs::read_to_string(pass_path(ctx, stage, key)).ok()?;
    serde_json::from_str::<Pass>(&text)
        .ok()
        .filter(|p| p.key == key)
}

pub fn record_pass(ctx: &Context, stage: &str, key: &str, realized: &str) -> Result<()> {
    let path = pass_path(ctx, stage, key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let pass = Pass {
        stage: stage.to_string(),
        key: key.to_string(),
        passed_unix: now(),
        realized: realized.to_string(),
    };
    std::fs::write(&path, serde_json::to_string_pretty(&pass)? + "\n")
        .with_context(|| format!("could not write {}", path.display()))
}

/// What this machine runs for `stage` with `args`: the digest of its plan made with this
/// machine's facts (its interpreters, tools and Docker engine), and of the services' plan
/// when it requires them.
pub fn realized(
    ctx: &Context,
    stage: &Stage,
    args: &ci_engine::flags::StageArgs,
) -> Result<String> {
    let mut hasher = Sha256::new();
    for line in PIPELINE.plan(stage, ctx, args)?.lines() {
        hasher.update(line.as_bytes());
        hasher.update([0]);
    }
    for starter in PIPELINE.service_starters(stage) {
        for line in PIPELINE.plan(starter, ctx, &starter.ci_args()?)?.lines() {
            hasher.update(line.as_bytes());
            hasher.update([0]);
        }
    }
    Ok(crate::artifacts::hex(&hasher.finalize()))
}

/// The files whose contents differ between two states of the tree among those `stage` reads
/// (all of them when a key field other than files changed, e.g. the toolchain).
pub fn changed_between(before: &Keys, after: &Keys, stage: &Stage) -> Vec<String> {
    let covers = before.covered(stage);
    let names: BTreeSet<&String> = before.files.keys().chain(after.files.keys()).collect();
    names
        .into_iter()
        .filter(|name| before.files.get(*name) != after.files.get(*name))
        .filter(|name| covers.iter().any(|c| covers_path(c, name)))
        .cloned()
        .collect()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `12 min ago`
pub fn ago(unix: u64) -> String {
    let secs = now().saturating_sub(unix);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

/// Fails unless `planned` (the plan job's keys, as JSON by stage) equals `here`: a job that
/// saves or looks up records under keys the plan did not compute would skip on a guess.
pub fn check_planned(planned: &str, here: &BTreeMap<String, String>) -> Result<()> {
    let planned: BTreeMap<String, String> = serde_json::from_str(planned).with_context(|| {
        format!(
            "--planned takes the plan job's `keys` output (JSON by stage), not `{}`",
            crate::artifacts::short(planned, 60)
        )
    })?;
    let stages: BTreeSet<&String> = planned.keys().chain(here.keys()).collect();
    let differ: Vec<String> = stages
        .into_iter()
        .filter(|s| planned.get(*s) != here.get(*s))
        .map(|s| {
            let show = |k: Option<&String>| -> String {
                k.map_or("none".into(), |k| {
                    crate::artifacts::short(k, 12).to_string()
                })
            };
            format!(
                "{s} (plan {}, here {})",
                show(planned.get(s)),
                show(here.get(s))
            )
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "this job's keys differ from the plan job's for the same commit: {}. Something this job \
         adds (a variable, a file, a tool) is in a key; compare `cargo xtask keys --json` in \
         both jobs, and declare it passed or fixed in ci-engine/src/environment.rs (or, when \
         only this repository has it, in xtask/src/project.rs)",
        differ.join(", ")
    )
}

/// The table `cargo xtask keys` prints.
pub fn table(keys: &[StageKey]) -> String {
    let mut out = String::from("stage            key           files  covers\n");
    for k in keys {
        out.push_str(&format!(
            "{:16} {:12}  {:5}  {}{}\n",
            k.stage,
            crate::artifacts::short(&k.key, 12),
            k.files,
            k.covers.join(", "),
            if k.cacheable { "" } else { "  (always runs)" }
        ));
    }
    out
}

/// Keys of every stage, in graph order, each with what this machine would run for it.
pub fn all(ctx: &Context) -> Result<Vec<StageKey>> {
    let mut keys = Keys::new(ctx)?;
    PIPELINE
        .stages
        .iter()
        .map(|stage| {
            let mut key = keys.key(stage)?;
            key.here = stage
                .ci_args()
                .and_then(|args| realized(ctx, stage, &args))
                .ok();
            Ok(key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::git;

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
        Keys::new(&ctx).unwrap(); // let cargo write its lock file first
        git(&ctx.root, &["add", "-A"]);
        ctx
    }

    fn keys(ctx: &Context) -> BTreeMap<String, String> {
        all(ctx)
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
        let files = crate::artifacts::listed_files(&ctx, &[]).unwrap();
        let packages = workspace_packages(&ctx).unwrap();
        let keys = Keys {
            files: BTreeMap::new(),
            packages,
            rustc: String::new(),
            env: String::new(),
            plans: BTreeMap::new(),
            memo: BTreeMap::new(),
        };
        let unclaimed = unclaimed(files.iter(), |stage| keys.covered(stage));
        assert!(
            unclaimed.is_empty(),
            "no stage declares these as inputs: add them to a stage's inputs in pipeline.rs, or to \
             keys::UNCLAIMED if they affect nothing: {unclaimed:?}"
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
        let listed: BTreeSet<String> = crate::workflows::caches::XTASK_BIN_SOURCES
            .iter()
            .filter(|s| s.ends_with("/**"))
            .map(|s| s.to_string())
            .collect();
        assert_eq!(dirs, listed);
    }

    #[test]
    fn what_a_stage_runs_is_part_of_its_key() {
        let ctx = scratch("plans");
        let key =
            |keys: &mut Keys, name: &str| keys.key(PIPELINE.stage(name).unwrap()).unwrap().key;
        let mut before = Keys::new(&ctx).unwrap();
        let mut after = Keys::new(&ctx).unwrap();
        // As if the xtask code that plans python-lint had changed what it runs.
        after
            .plans
            .entry("python-lint")
            .and_modify(|p| p.push_str("\n$ mypy --strict"));
        assert_ne!(
            key(&mut before, "python-lint"),
            key(&mut after, "python-lint")
        );
        assert_eq!(key(&mut before, "test-unit"), key(&mut after, "test-unit"));
        assert!(
            before.plans["test-unit"].contains("nextest run"),
            "{}",
            before.plans["test-unit"]
        );
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

    #[test]
    fn the_hashed_environment_and_the_services_are_in_the_keys() {
        let ctx = scratch("env");
        let key =
            |keys: &mut Keys, name: &str| keys.key(PIPELINE.stage(name).unwrap()).unwrap().key;
        let mut before = Keys::new(&ctx).unwrap();
        let mut after = Keys::new(&ctx).unwrap();
        after
            .env
            .push_str("PYTHONPATH=/somewhere/shadowing/icechunk\n");
        for stage in PIPELINE.stages {
            assert_ne!(
                key(&mut before, stage.name),
                key(&mut after, stage.name),
                "{}",
                stage.name
            );
        }
        // What starts the servers reaches every stage that uses them.
        let base = keys(&ctx);
        for file in [
            "compose.yaml",
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
        let covered = Keys::new(&ctx).unwrap();
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
}
