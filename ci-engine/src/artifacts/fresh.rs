//! Whether an artifact on disk is current: for its build (would building now make it?) and for a
//! stage that uses it (was it built from these sources, by these commands, under these
//! settings?), and the check a stage makes before it uses one.

use anyhow::{Result, bail};

use super::{Manifest, Recipe, Sources, altered_file, dir, read_manifest, rustc_version, short};
use crate::context::Context;
use crate::graph::Artifact;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freshness {
    Missing,
    Stale(String),
    Current(Box<Manifest>),
}

/// Who asks whether an artifact is current, which decides whether the toolchain is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asker {
    /// Its build: would building now make it? Sources, toolchain, commands and settings.
    Build,
    /// A stage that uses it: was it built from these sources, by these commands, under these
    /// settings, and — except in a GitHub Actions job — by this toolchain? In a workflow job
    /// the artifact is the one this run's build job downloaded to it, after that job compared
    /// the toolchain (`ci --skip` of the build never happens there), so a job that only uses
    /// artifacts needs no Rust toolchain. Locally the toolchain is there and compared, as a
    /// pass recorded after `ci --skip <its build>` must not cover an older compiler's build.
    User,
}

/// Whether the artifact on disk matches the sources, recipe and settings of today, and for its
/// build the toolchain too.
pub fn freshness(
    ctx: &Context,
    artifact: &'static Artifact,
    recipe: &str,
    asker: Asker,
) -> Result<Freshness> {
    let Some(manifest) = read_manifest(ctx, artifact)? else {
        return Ok(Freshness::Missing);
    };
    if manifest.artifact != artifact.name {
        return Ok(Freshness::Stale(format!(
            "its manifest is of `{}`",
            manifest.artifact
        )));
    }
    let dir = dir(ctx, artifact);
    for file in &manifest.files {
        let size = std::fs::metadata(dir.join(&file.name))
            .map(|m| m.len())
            .ok();
        if size != Some(file.bytes) {
            return Ok(Freshness::Stale(format!(
                "{} is missing or has the wrong size",
                dir.join(&file.name).display()
            )));
        }
    }
    let now = Sources::of(ctx, artifact)?;
    let built = Sources {
        commit: manifest.commit.clone(),
        dirty: manifest.dirty,
        hash: manifest.source_hash.clone(),
        compiled_hash: None,
    };
    if built.hash != now.hash {
        return Ok(Freshness::Stale(format!(
            "it was built from {}, but the tree is now at {}",
            built.describe(),
            now.describe()
        )));
    }
    Ok(match built_otherwise(ctx, &manifest, recipe, asker)? {
        Some(why) => Freshness::Stale(why),
        None => Freshness::Current(Box::new(manifest)),
    })
}

/// How an artifact was built otherwise than it would be now, apart from its sources: by
/// another toolchain (asked by its build only), other commands or under other settings; `None`
/// when alike.
pub fn built_otherwise(
    ctx: &Context,
    manifest: &Manifest,
    recipe: &str,
    asker: Asker,
) -> Result<Option<String>> {
    if asker == Asker::Build || !ctx.github_actions {
        let rustc = rustc_version(ctx)?;
        if manifest.rustc != rustc {
            return Ok(Some(format!(
                "it was built by {}, but the toolchain is now {rustc}",
                manifest.rustc
            )));
        }
    }
    if manifest.recipe != recipe {
        return Ok(Some("its build commands have changed since".to_string()));
    }
    let env = crate::environment::settings(&ctx.root);
    if manifest.env != env {
        return Ok(Some(format!(
            "it was built with other settings ({}), which change what is built",
            env_difference(&manifest.env, &env)
        )));
    }
    Ok(None)
}

/// The variables whose values differ between two `NAME=value` listings, each as `NAME` with
/// its value then and now.
fn env_difference(then: &str, now: &str) -> String {
    let parse = |text: &str| -> std::collections::BTreeMap<String, String> {
        crate::cmd::parse_env(text).into_iter().collect()
    };
    let (then, now) = (parse(then), parse(now));
    let mut names: Vec<&String> = then.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    let unset = String::from("unset");
    names
        .into_iter()
        .filter(|n| then.get(*n) != now.get(*n))
        .map(|n| {
            format!(
                "{n}: {} then, {} now",
                then.get(n).unwrap_or(&unset),
                now.get(n).unwrap_or(&unset)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Verify an artifact for [`Require`]; returns the line that says which one is used.
pub(crate) fn require(ctx: &Context, recipe: &Recipe) -> Result<String> {
    let artifact = recipe.artifact;
    let producer = artifact.producer;
    let location = ctx.rel(&dir(ctx, artifact));
    match freshness(ctx, artifact, &recipe.text, Asker::User)? {
        Freshness::Current(manifest) => {
            if let Some((file, sha256)) = altered_file(ctx, artifact, &manifest)? {
                bail!(
                    "{}/{} does not match its manifest (sha256 {sha256}, expected {}): it was \
                     modified or truncated. Rebuild it with `cargo xtask {producer}`.",
                    location.display(),
                    file.name,
                    file.sha256
                );
            }
            Ok(format!(
                "# using {} from {} (commit {})",
                artifact.name,
                location.display(),
                short(&manifest.commit, 10)
            ))
        }
        Freshness::Stale(why) if ctx.ci => bail!(
            "{} in {} is stale: {why}. In CI a test job never compiles: the downloaded artifact \
             was built from other sources or settings than this job has; rerun the build job \
             ({producer}) for this commit.",
            artifact.name,
            location.display()
        ),
        Freshness::Stale(why) => bail!(
            "{} in {} is stale: {why}. Rebuild it with `cargo xtask {producer}`.",
            artifact.name,
            location.display()
        ),
        Freshness::Missing if ctx.ci => bail!(
            "{} is missing from {}. In CI a test job never compiles: download the `{}` artifact \
             of this platform from the build job first (or run `cargo xtask {producer}`).",
            artifact.name,
            location.display(),
            artifact.name
        ),
        Freshness::Missing => bail!(
            "{} is missing from {}: build it with `cargo xtask {producer}`.",
            artifact.name,
            location.display()
        ),
    }
}
