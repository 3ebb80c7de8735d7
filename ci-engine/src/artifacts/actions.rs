//! The steps of build and test plans that concern an artifact: skip a build whose artifact is
//! current, empty its directory, write its manifest, and check it before a stage uses it.

use std::fmt;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

use super::{Asker, Freshness, Sources, dir, freshness, recipe, require, short, write_manifest};
use crate::context::Context;
use crate::graph::Artifact;
use crate::output::Tone;
use crate::plan::{Action, Outcome, Runner};

/// The build commands of an artifact, as its manifest records them (see [`recipe`]).
#[derive(Clone, Debug)]
pub struct Recipe {
    pub artifact: &'static Artifact,
    pub text: String,
}

impl Recipe {
    /// What the manifest of `artifact` must record to be current: its build commands here.
    pub fn of(ctx: &Context, artifact: &'static Artifact) -> Recipe {
        Recipe {
            artifact,
            text: recipe(ctx, artifact, &(artifact.build)(ctx, artifact)),
        }
    }
}

/// The first step of a build: when the artifact already matches the sources, nothing else of
/// the plan runs.
#[derive(Debug)]
pub struct SkipIfCurrent(pub Recipe);

impl fmt::Display for SkipIfCurrent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stop here when {} already matches the sources (its manifest)",
            self.0.artifact.name
        )
    }
}

impl Action for SkipIfCurrent {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let Recipe { artifact, text } = &self.0;
        match freshness(runner.ctx(), artifact, text, Asker::Build)? {
            Freshness::Current(manifest) => Ok(Outcome::Done(format!(
                "{} is up to date (built from commit {}, sources unchanged): nothing to build",
                artifact.name,
                short(&manifest.commit, 10)
            ))),
            Freshness::Stale(why) => {
                runner
                    .out()
                    .say(Tone::Dim, &format!("# rebuilding {}: {why}", artifact.name));
                Ok(Outcome::Continue)
            }
            Freshness::Missing => Ok(Outcome::Continue),
        }
    }
}

/// The hash of an artifact's sources when its build began: taken by [`ResetDir`], checked by
/// [`WriteManifest`], so that a build the tree changed under is never recorded as current.
#[derive(Clone, Debug, Default)]
pub struct BuildStart(Arc<Mutex<Option<String>>>);

impl BuildStart {
    fn set(&self, hash: String) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash);
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Empty an artifact's directory before building it, so no stale file survives, and note the
/// sources' hash the build starts from.
#[derive(Debug)]
pub struct ResetDir(pub &'static Artifact, pub BuildStart);

impl fmt::Display for ResetDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "empty the directory of {}", self.0.name)
    }
}

impl Action for ResetDir {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        self.1.set(Sources::of(runner.ctx(), self.0)?.hash);
        let dir = dir(runner.ctx(), self.0);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("could not empty {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(Outcome::Continue)
    }
}

/// Record what was just built (commit, sources hash, rustc, recipe, file hashes), when the
/// sources are still those the build started from.
#[derive(Debug)]
pub struct WriteManifest(pub Recipe, pub BuildStart);

impl fmt::Display for WriteManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write the manifest of {}", self.0.artifact.name)
    }
}

impl Action for WriteManifest {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let started = self.1.get();
        let manifest = write_manifest(
            runner.ctx(),
            self.0.artifact,
            &self.0.text,
            started.as_deref(),
        )?;
        let files: Vec<String> = manifest
            .files
            .iter()
            .map(|f| format!("{} ({} bytes)", f.name, f.bytes))
            .collect();
        runner.out().say(
            Tone::Good,
            &format!("{}: {}", self.0.artifact.name, files.join(", ")),
        );
        Ok(Outcome::Continue)
    }
}

/// Check an artifact before a stage uses it: it must exist, match the sources and match its
/// manifest byte for byte. Locally `cargo xtask` runs the producer stage first (which does
/// nothing when the artifact is current); in CI a missing artifact means the download failed.
#[derive(Debug)]
pub struct Require(pub Recipe);

impl fmt::Display for Require {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check that {} exists and matches the sources",
            self.0.artifact.name
        )
    }
}

impl Action for Require {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let line = require(runner.ctx(), &self.0)?;
        runner.out().say(Tone::Dim, &line);
        Ok(Outcome::Continue)
    }
}
