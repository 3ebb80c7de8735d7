//! Build artifacts and their manifests.
//!
//! A manifest records what an artifact was built from: the commit, whether the sources had
//! uncommitted changes, a hash of the sources' contents, the rustc version, the build recipe
//! (the exact commands) and the sha256 of every file. An artifact is current when the sources,
//! recipe and settings hash the same today, and for its build ([`Asker::Build`]) rustc too; the
//! commit is recorded for people, so committing an unchanged tree does not force a rebuild.

mod actions;
mod fresh;
mod plans;

pub use actions::Recipe;
pub(crate) use actions::{BuildStart, Require, ResetDir, SkipIfCurrent, WriteManifest};
pub(crate) use fresh::require;
pub use fresh::{Asker, Freshness, built_otherwise, freshness};
pub use plans::{build, using};

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::files::{entry_digest, hex, listed_files, sha256_file, short};
use crate::graph::Artifact;
use crate::process;

pub const MANIFEST: &str = "manifest.json";

/// Where an artifact's files live.
pub fn dir(ctx: &Context, artifact: &Artifact) -> PathBuf {
    ctx.artifacts_dir().join(artifact.dir)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The artifact's name (a manifest of another artifact is stale).
    pub artifact: String,
    pub commit: String,
    pub dirty: bool,
    pub source_hash: String,
    pub rustc: String,
    pub recipe: String,
    /// The hashed variables of the declared environment it was built with (`NAME=value`
    /// lines): a build made under other settings is not current.
    #[serde(default)]
    pub env: String,
    pub files: Vec<FileDigest>,
    pub built_at_unix: u64,
    /// For an artifact with [`Artifact::copies`]: what a later build may reuse when
    /// only those sources change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled_part: Option<CompiledPart>,
}

/// The part of an artifact that was compiled, apart from the members that are byte-for-byte
/// copies of its [`Artifact::copies`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledPart {
    /// The hash of the artifact's sources other than the copied ones, as [`Sources`] hashes.
    pub source_hash: String,
    /// The members that copy a source file, by their name in the artifact.
    pub copied: Vec<String>,
    /// The version of the rules that recorded it (a part recorded under others is not reused).
    #[serde(default)]
    pub repacker: String,
}

/// The state of the sources now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    pub commit: String,
    pub dirty: bool,
    pub hash: String,
    /// For an artifact with [`Artifact::copies`], the hash of its other sources, from
    /// the same reading of the tree as `hash`.
    pub compiled_hash: Option<String>,
}

impl Sources {
    pub fn of(ctx: &Context, artifact: &Artifact) -> Result<Sources> {
        let specs = artifact.sources;
        let git = |args: &[&str]| {
            process::capture(&Cmd::new("git").args(args).args(specs), &ctx.root)
                .context("manifests need git to list the sources: is this a git checkout?")
        };
        let commit = process::capture(&Cmd::new("git").args(["rev-parse", "HEAD"]), &ctx.root)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "none".to_string());
        let mut digests = Vec::new();
        for file in listed_files(ctx, specs)? {
            let digest = entry_digest(&ctx.root, &file)?;
            digests.push((file, digest));
        }
        let copied = artifact.copies.as_ref().map(|c| format!("{}/", c.dir));
        let compiled_hash = copied
            .map(|dir| hash_digests(digests.iter().filter(|(file, _)| !file.starts_with(&dir))));
        let status = git(&["status", "--porcelain", "--untracked-files=normal", "--"])?;
        Ok(Sources {
            commit,
            dirty: !status.trim().is_empty(),
            hash: hash_digests(digests.iter()),
            compiled_hash,
        })
    }

    fn describe(&self) -> String {
        let commit = short(&self.commit, 10);
        let dirty = if self.dirty {
            " with uncommitted changes"
        } else {
            ""
        };
        format!("commit {commit}{dirty} (sources {})", short(&self.hash, 12))
    }
}

/// sha256 over every file's path and its [`entry_digest`].
fn hash_digests<'a>(digests: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut hasher = Sha256::new();
    for (file, digest) in digests {
        hasher.update(file.as_bytes());
        hasher.update([0]);
        hasher.update(digest.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

pub fn rustc_version(ctx: &Context) -> Result<String> {
    let out = process::capture(&Cmd::new("rustc").arg("-vV"), &ctx.root)?;
    let release = out.lines().next().unwrap_or_default();
    let host = out
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("unknown");
    Ok(format!("{release} ({host})"))
}

/// The exact build commands, which must match for an artifact to be current. Where the artifact
/// and the tools live is not part of it (a test job may use another target directory than the
/// build job; the tools' versions are in their paths), so those are written as placeholders,
/// a pinned cargo subcommand of the artifact's tools is `cargo <subcommand>` whether it came
/// from PATH or the tools directory ([`Tool::recipe_alias`](crate::tools::Tool::recipe_alias)), and
/// cargo and clippy-driver are named without the toolchain's directory (`cargo xtask` gives
/// cargo's path, xtask's binary run directly finds `cargo` on PATH; which toolchain it is, is
/// the manifest's rustc).
pub fn recipe(ctx: &Context, artifact: &Artifact, commands: &[Cmd]) -> String {
    let artifact_dir = ctx.rel(&dir(ctx, artifact)).display().to_string();
    let tools_dir = ctx.tools_dir.display().to_string();
    let aliases: Vec<(String, String)> = artifact
        .tools
        .iter()
        .filter_map(|t| t.recipe_alias(ctx))
        .collect();
    let toolchain_dir = match std::path::Path::new(&ctx.cargo).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            Some(format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR))
        }
        _ => None,
    };
    commands
        .iter()
        .map(|cmd| {
            // As `--dry-run` prints it: with the variables the command sets.
            let line = cmd.to_string();
            let line = match &toolchain_dir {
                Some(dir) => line.replace(dir.as_str(), ""),
                None => line,
            };
            let line = aliases.iter().fold(line, |line, (installed, alias)| {
                line.replace(installed, alias)
            });
            line.replace(&artifact_dir, "<artifact dir>")
                .replace(&tools_dir, "<tools>")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn read_manifest(ctx: &Context, artifact: &Artifact) -> Result<Option<Manifest>> {
    let path = dir(ctx, artifact).join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let manifest = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid manifest; rebuild with `cargo xtask {}`",
            path.display(),
            artifact.producer
        )
    })?;
    Ok(Some(manifest))
}

/// Hash the files just built and write the manifest next to them. `started` is the sources'
/// hash when the build began: when the sources hash otherwise now, they changed while it ran,
/// and what it built may be either tree, so no manifest is written and it is an error.
pub fn write_manifest(
    ctx: &Context,
    artifact: &Artifact,
    recipe: &str,
    started: Option<&str>,
) -> Result<Manifest> {
    let dir = dir(ctx, artifact);
    let sources = Sources::of(ctx, artifact)?;
    if let Some(started) = started.filter(|s| *s != sources.hash) {
        bail!(
            "the sources of {} changed while it was built (sources {} when it began, {} now), \
             so it may have been built from either: it is not recorded as current. Run `cargo \
             xtask {}` again.",
            artifact.name,
            short(started, 12),
            short(&sources.hash, 12),
            artifact.producer
        );
    }
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("{} was not created by the build", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == MANIFEST || !entry.file_type()?.is_file() {
            continue;
        }
        let (sha256, bytes) = sha256_file(&entry.path())?;
        files.push(FileDigest {
            name,
            sha256,
            bytes,
        });
    }
    if files.is_empty() {
        bail!("the build left no files in {}", dir.display());
    }
    let manifest = Manifest {
        artifact: artifact.name.to_string(),
        commit: sources.commit,
        dirty: sources.dirty,
        source_hash: sources.hash,
        rustc: rustc_version(ctx)?,
        recipe: recipe.to_string(),
        env: crate::environment::settings(&ctx.root),
        files,
        built_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        compiled_part: None,
    };
    save_manifest(ctx, artifact, &manifest)?;
    Ok(manifest)
}

/// The first file of an artifact whose bytes no longer match its manifest, with its sha256 now.
pub fn altered_file<'m>(
    ctx: &Context,
    artifact: &Artifact,
    manifest: &'m Manifest,
) -> Result<Option<(&'m FileDigest, String)>> {
    for file in &manifest.files {
        let (sha256, _) = sha256_file(&dir(ctx, artifact).join(&file.name))?;
        if sha256 != file.sha256 {
            return Ok(Some((file, sha256)));
        }
    }
    Ok(None)
}

/// Write the manifest of `artifact` into its directory.
pub fn save_manifest(ctx: &Context, artifact: &Artifact, manifest: &Manifest) -> Result<()> {
    let path = dir(ctx, artifact).join(MANIFEST);
    std::fs::write(&path, serde_json::to_string_pretty(manifest)? + "\n")
        .with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    /// An archive of the scratch tree's one package.
    static RUST_TESTS: Artifact = Artifact {
        name: "archive",
        producer: "build",
        dir: "rust",
        sources: &["Cargo.toml", "Cargo.lock", ".cargo", "core"],
        copies: None,
        build: |_, _| Vec::new(),
        tools: &[],
        prepare: Plan::new,
        python: false,
        compressed: true,
    };
    const ARCHIVE: &str = "archive.tar";

    /// The recipe the scratch builds record.
    const RECIPE: &str = "build the archive";

    fn recipe() -> Recipe {
        Recipe {
            artifact: &RUST_TESTS,
            text: RECIPE.to_string(),
        }
    }

    /// A scratch git repository with a tiny source tree.
    struct Scratch {
        ctx: Context,
    }

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let root = std::env::temp_dir()
                .join(format!("ci-engine-artifacts-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("core/src")).unwrap();
            std::fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
            std::fs::write(root.join("core/src/lib.rs"), "pub fn a() {}\n").unwrap();
            std::fs::write(root.join("README.md"), "not a source\n").unwrap();
            let git = |args: &[&str]| {
                process::capture(
                    &Cmd::new("git")
                        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                        .args(args),
                    &root,
                )
                .unwrap();
            };
            git(&["init", "-q"]);
            git(&["add", "-A"]);
            git(&["commit", "-q", "-m", "init"]);
            let ctx = crate::context::testing::context_at(root);
            Scratch { ctx }
        }

        fn write(&self, file: &str, contents: &str) {
            std::fs::write(self.ctx.root.join(file), contents).unwrap();
        }

        /// Pretend the build ran: one archive file and its manifest.
        fn build(&self) -> Manifest {
            let dir = dir(&self.ctx, &RUST_TESTS);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(ARCHIVE), b"archive bytes").unwrap();
            write_manifest(&self.ctx, &RUST_TESTS, RECIPE, None).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.ctx.root);
        }
    }

    #[test]
    fn a_fresh_build_is_current_and_records_its_origin() {
        let s = Scratch::new("fresh");
        assert_eq!(
            freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap(),
            Freshness::Missing
        );
        let manifest = s.build();
        assert!(!manifest.dirty);
        assert_eq!(manifest.commit.len(), 40);
        assert!(manifest.rustc.starts_with("rustc "), "{}", manifest.rustc);
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].bytes, 13);
        assert!(matches!(
            freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap(),
            Freshness::Current(_)
        ));
    }

    #[test]
    fn editing_a_source_makes_it_stale_and_says_how_to_rebuild() {
        let s = Scratch::new("stale");
        s.build();
        s.write("README.md", "docs are not sources of the archive\n");
        assert!(matches!(
            freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap(),
            Freshness::Current(_)
        ));

        s.write("core/src/lib.rs", "pub fn b() {}\n");
        let Freshness::Stale(why) = freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap()
        else {
            panic!("an edited source must make the archive stale");
        };
        assert!(why.contains("with uncommitted changes"), "{why}");

        let ctx = &s.ctx;
        let err = require(ctx, &recipe()).unwrap_err().to_string();
        assert!(err.contains("is stale"), "{err}");
        assert!(err.contains("cargo xtask build"), "{err}");
    }

    #[test]
    fn a_workflow_job_that_uses_it_compares_no_toolchain() {
        let s = Scratch::new("toolchain");
        let mut manifest = s.build();
        manifest.rustc = "rustc 1.0.0 (a toolchain gone since)".to_string();
        save_manifest(&s.ctx, &RUST_TESTS, &manifest).unwrap();
        let Freshness::Stale(why) = freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap()
        else {
            panic!("its build must find an artifact of another toolchain stale");
        };
        assert!(why.contains("but the toolchain is now rustc "), "{why}");
        // Locally a stage that uses it compares the toolchain too (its build may have been
        // skipped); in a workflow job, which downloaded it from this run's build job, it runs no
        // rustc, so a job without a toolchain can check it.
        assert!(matches!(
            freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::User).unwrap(),
            Freshness::Stale(_)
        ));
        let in_a_job = Context::new(
            &crate::context::testing::EXAMPLE,
            s.ctx.root.clone(),
            s.ctx.target_dir.clone(),
            "/tools".into(),
            [("GITHUB_ACTIONS".to_string(), "true".to_string())],
        );
        assert!(matches!(
            freshness(&in_a_job, &RUST_TESTS, RECIPE, Asker::User).unwrap(),
            Freshness::Current(_)
        ));
        require(&in_a_job, &recipe()).unwrap();
    }

    #[test]
    fn a_build_the_sources_changed_under_is_not_recorded() {
        let s = Scratch::new("during");
        let started = Sources::of(&s.ctx, &RUST_TESTS).unwrap().hash;
        let dir = dir(&s.ctx, &RUST_TESTS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(ARCHIVE), b"archive bytes").unwrap();
        // Edited while the build ran: the archive may hold either version.
        s.write("core/src/lib.rs", "pub fn edited() {}\n");
        let err = write_manifest(&s.ctx, &RUST_TESTS, RECIPE, Some(&started))
            .unwrap_err()
            .to_string();
        assert!(err.contains("changed while it was built"), "{err}");
        assert!(err.contains("cargo xtask build"), "{err}");
        assert_eq!(
            freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap(),
            Freshness::Missing
        );
        // Unchanged since it began: recorded.
        let now = Sources::of(&s.ctx, &RUST_TESTS).unwrap().hash;
        write_manifest(&s.ctx, &RUST_TESTS, RECIPE, Some(&now)).unwrap();
    }

    #[test]
    fn a_new_untracked_source_file_makes_it_stale() {
        let s = Scratch::new("untracked");
        s.build();
        s.write("core/src/new.rs", "pub fn c() {}\n");
        assert!(matches!(
            freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap(),
            Freshness::Stale(_)
        ));
    }

    #[test]
    fn a_tampered_archive_is_refused() {
        let s = Scratch::new("tampered");
        s.build();
        std::fs::write(dir(&s.ctx, &RUST_TESTS).join(ARCHIVE), b"ARCHIVE BYTES").unwrap();
        let err = require(&s.ctx, &recipe()).unwrap_err().to_string();
        assert!(err.contains("does not match its manifest"), "{err}");
    }

    #[test]
    fn in_ci_a_missing_archive_is_an_error_not_a_build() {
        let s = Scratch::new("ci-missing");
        let ctx = Context::new(
            &crate::context::testing::EXAMPLE,
            s.ctx.root.clone(),
            s.ctx.target_dir.clone(),
            "/tools".into(),
            [("CI".to_string(), "true".to_string())],
        );
        let err = require(&ctx, &recipe()).unwrap_err().to_string();
        assert!(err.contains("In CI a test job never compiles"), "{err}");
        assert!(
            err.contains("download the `archive` artifact of this platform"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_manifest_is_a_clear_error() {
        let s = Scratch::new("corrupt");
        let dir = dir(&s.ctx, &RUST_TESTS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(MANIFEST), "{ not json").unwrap();
        let err = freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid manifest"), "{err}");
    }

    #[test]
    fn the_manifest_of_another_artifact_is_stale() {
        let s = Scratch::new("other");
        let mut manifest = s.build();
        manifest.artifact = "wheel".to_string();
        save_manifest(&s.ctx, &RUST_TESTS, &manifest).unwrap();
        let Freshness::Stale(why) = freshness(&s.ctx, &RUST_TESTS, RECIPE, Asker::Build).unwrap()
        else {
            panic!("the manifest of another artifact counted as current")
        };
        assert!(why.contains("its manifest is of `wheel`"), "{why}");
    }
}
