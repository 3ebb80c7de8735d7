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

use crate::cmd::Cmd;
use crate::context::Context;
use crate::files::{entry_digest, hex, listed_files, short};
use crate::flags::StageArgs;
use crate::graph::{Pipeline, Stage};
use crate::process;

/// The workspace's packages: name → its directory relative to the root and the workspace
/// packages it depends on.
pub type Packages = BTreeMap<String, (String, Vec<String>)>;

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
    pipeline: &'static Pipeline,
    /// Every file git tracks or would add, with its content hash.
    files: BTreeMap<String, String>,
    packages: Packages,
    rustc: String,
    /// The hashed variables of the declared environment and cargo's configuration outside the
    /// workspace ([`crate::environment::settings`]).
    env: String,
    /// What each stage runs with its ci flags: its plan, as `--dry-run` prints it for
    /// [`Context::for_keys`], so a change in the xtask code behind a stage changes its key and
    /// other xtask changes do not.
    plans: BTreeMap<&'static str, String>,
    memo: BTreeMap<&'static str, StageKey>,
}

impl Keys {
    /// The keys of `pipeline`'s stages in the tree of `ctx` as it is now.
    pub fn new(ctx: &Context, pipeline: &'static Pipeline) -> Result<Keys> {
        let mut files = BTreeMap::new();
        for name in listed_files(ctx, &[])? {
            let digest = entry_digest(&ctx.root, &name)?;
            files.insert(name, digest);
        }
        let for_keys = ctx.for_keys();
        let mut plans = BTreeMap::new();
        for stage in pipeline.stages {
            let plan = stage
                .ci_args()
                .and_then(|args| pipeline.plan(stage, &for_keys, &args))
                .with_context(|| format!("the plan of {} cannot be made", stage.name))?;
            plans.insert(stage.name, plan.lines().join("\n"));
        }
        Ok(Keys {
            pipeline,
            files,
            packages: workspace_packages(ctx)?,
            rustc: process::capture(&Cmd::new("rustc").arg("-vV"), &ctx.root)?,
            env: crate::environment::settings(&ctx.root),
            plans,
            memo: BTreeMap::new(),
        })
    }

    /// Every path a stage's key covers (package directories and declared paths).
    pub fn covered(&self, stage: &Stage) -> Vec<String> {
        covered(&self.packages, stage)
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
        for tool in stage.pinned_tools() {
            field("tool", &tool.install_spec());
        }
        // A stage that runs the toolchain depends on it, whether it compiles the workspace or
        // its tests do (a test runner that runs through cargo).
        if stage.uses_toolchain() {
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
            consumed.push(self.key(self.pipeline.producer(artifact))?.key);
        }
        // The servers are an input: what starts them (its files, plan, pins and backend).
        for starter in self.pipeline.service_starters(stage) {
            consumed.push(self.key(starter)?.key);
        }
        let mut hasher = hasher;
        for key in consumed {
            hasher.update(key.as_bytes());
        }
        let key = StageKey {
            stage: stage.name.to_string(),
            key: hex(&hasher.finalize()),
            covers,
            files,
            cacheable: stage.inputs.cacheable,
            here: None,
        };
        self.memo.insert(stage.name, key.clone());
        Ok(key)
    }

    /// The files no stage's own inputs cover, the whole-tree linters aside, and the pipeline
    /// does not list ([`Pipeline::unclaimed`]).
    pub fn unclaimed(&self) -> Vec<String> {
        unclaimed(self.pipeline, self.files.keys(), |stage| {
            self.covered(stage)
        })
    }
}

/// The files among `files` that no stage's own inputs (`covered`) cover, the whole-tree
/// linters aside, and that the pipeline does not list as affecting no stage
/// ([`Pipeline::unclaimed`]). They count in every key, so a new file nobody declared makes
/// every stage run; a project's test keeps the list empty.
fn unclaimed<'a>(
    pipeline: &Pipeline,
    files: impl Iterator<Item = &'a String>,
    covered: impl Fn(&Stage) -> Vec<String>,
) -> Vec<String> {
    let covered: Vec<String> = pipeline
        .stages
        .iter()
        .flat_map(covered)
        .filter(|c| c != ".")
        .collect();
    files
        .filter(|f| !covered.iter().any(|c| covers_path(c, f)))
        .filter(|f| !pipeline.unclaimed.iter().any(|u| covers_path(u, f)))
        .cloned()
        .collect()
}

/// Every path `stage`'s key covers: the directories of its packages and of every workspace
/// package they depend on (`packages` as [`workspace_packages`] reads them), its declared
/// paths, and the sources of what it produces (each once).
fn covered(packages: &Packages, stage: &Stage) -> Vec<String> {
    let mut todo: Vec<String> = stage
        .inputs
        .packages
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut seen = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some((dir, deps)) = packages.get(&name) {
            dirs.insert(dir.clone());
            todo.extend(deps.iter().cloned());
        }
    }
    let mut covered: Vec<String> = dirs.into_iter().collect();
    let sources = stage.produces.iter().flat_map(|a| a.sources);
    for path in stage.inputs.paths.iter().chain(sources) {
        if !covered.iter().any(|c| c == path) {
            covered.push(path.to_string());
        }
    }
    covered
}

/// The files among `files` (names only: none is read) that no stage of `pipeline` claims and
/// the pipeline does not list as affecting no stage (see [`Keys::unclaimed`]).
pub fn unclaimed_among(
    ctx: &Context,
    pipeline: &Pipeline,
    files: &[String],
) -> Result<Vec<String>> {
    let packages = workspace_packages(ctx)?;
    Ok(unclaimed(pipeline, files.iter(), |stage| {
        covered(&packages, stage)
    }))
}

/// Whether the pathspec `spec` (a file or a directory, `.` for everything) covers `file`.
pub fn covers_path(spec: &str, file: &str) -> bool {
    spec == "."
        || file == spec
        || file
            .strip_prefix(spec.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The workspace's packages: name → (directory relative to the root, the workspace packages it
/// depends on), from `cargo metadata` run in `ctx`'s root.
pub fn workspace_packages(ctx: &Context) -> Result<Packages> {
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
    // Relative to the workspace root as cargo spells it, which may be another spelling of
    // `ctx.root` (macOS's temporary directory is a link to /private/var).
    let root = metadata.workspace_root.as_std_path();
    let mut packages = BTreeMap::new();
    for package in &metadata.packages {
        let dir = package
            .manifest_path
            .parent()
            .map(|d| d.as_std_path().to_path_buf())
            .unwrap_or_default();
        let dir = dir.strip_prefix(root).unwrap_or(&dir);
        let dir = dir.to_string_lossy().replace('\\', "/");
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
    pipeline: &'static Pipeline,
    stage: &Stage,
    args: &StageArgs,
) -> Result<String> {
    let mut hasher = Sha256::new();
    for line in pipeline.plan(stage, ctx, args)?.lines() {
        hasher.update(line.as_bytes());
        hasher.update([0]);
    }
    for starter in pipeline.service_starters(stage) {
        for line in pipeline.plan(starter, ctx, &starter.ci_args()?)?.lines() {
            hasher.update(line.as_bytes());
            hasher.update([0]);
        }
    }
    Ok(hex(&hasher.finalize()))
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
            short(planned, 60)
        )
    })?;
    let stages: BTreeSet<&String> = planned.keys().chain(here.keys()).collect();
    let differ: Vec<String> = stages
        .into_iter()
        .filter(|s| planned.get(*s) != here.get(*s))
        .map(|s| {
            let show = |k: Option<&String>| -> String {
                k.map_or("none".into(), |k| short(k, 12).to_string())
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
         both jobs, and declare it passed or fixed in the engine's environment rules \
         (`ci_engine::environment`) or, when only this project has it, in its own",
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
            short(&k.key, 12),
            k.files,
            k.covers.join(", "),
            if k.cacheable { "" } else { "  (always runs)" }
        ));
    }
    out
}

/// Keys of every stage of `pipeline`, in graph order, each with what this machine would run
/// for it.
pub fn all(ctx: &Context, pipeline: &'static Pipeline) -> Result<Vec<StageKey>> {
    let mut keys = Keys::new(ctx, pipeline)?;
    pipeline
        .stages
        .iter()
        .map(|stage| {
            let mut key = keys.key(stage)?;
            key.here = stage
                .ci_args()
                .and_then(|args| realized(ctx, pipeline, stage, &args))
                .ok();
            Ok(key)
        })
        .collect()
}

#[cfg(test)]
mod tests;
