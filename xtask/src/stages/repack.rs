//! Rebuilding the wheel without compiling: when only the Python package's sources changed since
//! the wheel that is there was built, its compiled part (the extension module and the
//! dist-info, which come from every other source) is kept and the Python files are copied in
//! anew, as maturin copies them.
//!
//! Sound by observation: after every maturin build, [`RecordCompiledPart`] checks that each
//! Python source is a member of the wheel byte for byte under its path in the package, and
//! records which members those are; only a wheel with that record is repacked, and only while
//! the package holds plain files git lists (anything else, such as an ignored file maturin
//! might copy, makes the build run maturin).

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use super::wheel_copies::{copied, list, repacker, script, verify};
use ci_engine::artifacts::{self, CompiledPart, Manifest, Recipe};
use ci_engine::context::Context;
use ci_engine::graph::Artifact;
use ci_engine::output::Tone;
use ci_engine::plan::{Action, Outcome, Plan, Runner};
use ci_engine::process;

/// What the wheel's build does before maturin ([`Repack`]); the interpreter that runs the
/// repacking script is required.
pub fn before_build(ctx: &Context, artifact: &'static Artifact) -> Result<Plan> {
    let python = super::python::required_interpreter(ctx)?.path.clone();
    Ok(Plan::new().action(Repack {
        recipe: Recipe::of(ctx, artifact),
        python,
    }))
}

/// What the wheel's build does after maturin ([`RecordCompiledPart`]).
pub fn after_build(ctx: &Context, artifact: &'static Artifact) -> Result<Plan> {
    let python = super::python::required_interpreter(ctx)?.path.clone();
    Ok(Plan::new().action(RecordCompiledPart { artifact, python }))
}

/// The first step of building the wheel after the check that it is current: repack the wheel
/// that is there when only its Python files are out of date, and then stop.
#[derive(Debug)]
pub struct Repack {
    pub recipe: Recipe,
    /// The interpreter that runs the script.
    pub python: PathBuf,
}

impl fmt::Display for Repack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The rules' version is part of the plan, so of the key: a change of them reruns
        // what uses the wheel.
        write!(
            f,
            "stop here after repacking {} with the Python sources when nothing else changed \
             since it was built (its manifest; repacking rules {})",
            self.recipe.artifact.name,
            ci_engine::files::short(&repacker(), 12)
        )
    }
}

impl Action for Repack {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let ctx = runner.ctx();
        let artifact = self.recipe.artifact;
        let Some(manifest) = artifacts::read_manifest(ctx, artifact)? else {
            return Ok(Outcome::Continue);
        };
        let started = artifacts::Sources::of(ctx, artifact)?;
        let (wheel, copies) = match reusable(ctx, artifact, &manifest, &self.recipe.text, &started)?
        {
            Ok(found) => found,
            Err(why) => {
                runner.out().say(
                    Tone::Dim,
                    &format!("# not repacking {}: {why}", artifact.name),
                );
                return Ok(Outcome::Continue);
            }
        };
        let dir = artifacts::dir(ctx, artifact);
        let old = dir.join(&wheel);
        // Beside the directory, not in it: nothing but the artifact is uploaded.
        let new = ctx.xtask_dir().join(format!("{wheel}.repacked"));
        let spec_file = ctx.xtask_dir().join("repack-spec.json");
        let spec = serde_json::json!({
            "drop": manifest.compiled_part.as_ref().map(|p| &p.copied),
            "add": copies,
        });
        std::fs::write(&spec_file, spec.to_string())
            .with_context(|| format!("could not write {}", spec_file.display()))?;
        let repacked = process::capture(
            &script(ctx, &self.python)?
                .arg("repack")
                .arg(ctx.rel(&old))
                .arg(ctx.rel(&new))
                .arg(ctx.rel(&spec_file)),
            &ctx.root,
        );
        if let Err(e) = repacked {
            let _ = std::fs::remove_file(&new);
            return Err(e.context(format!("could not repack {}", old.display())));
        }
        // No manifest while the wheel is replaced: if what follows fails, the next build finds
        // none and builds anew.
        std::fs::remove_file(dir.join(artifacts::MANIFEST))
            .with_context(|| format!("could not remove the manifest of {}", artifact.name))?;
        std::fs::rename(&new, &old)
            .with_context(|| format!("could not replace {}", old.display()))?;
        let mut rebuilt =
            artifacts::write_manifest(ctx, artifact, &self.recipe.text, Some(&started.hash))?;
        rebuilt.compiled_part = manifest.compiled_part.map(|part| CompiledPart {
            copied: copies.into_iter().map(|(member, _)| member).collect(),
            ..part
        });
        artifacts::save_manifest(ctx, artifact, &rebuilt)?;
        Ok(Outcome::Done(format!(
            "{} repacked: nothing but the Python package changed since its compiled part was \
             built, so the Python files were copied in and maturin did not run",
            artifact.name
        )))
    }
}

/// The last step of a maturin build: record which members copy the Python sources, when each
/// is a byte-for-byte copy, so that a later build may repack the wheel.
#[derive(Debug)]
pub struct RecordCompiledPart {
    pub artifact: &'static Artifact,
    pub python: PathBuf,
}

impl fmt::Display for RecordCompiledPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record which members of {} copy the Python sources",
            self.artifact.name
        )
    }
}

impl Action for RecordCompiledPart {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let ctx = runner.ctx();
        let Some(mut manifest) = artifacts::read_manifest(ctx, self.artifact)? else {
            bail!("{} has no manifest after its build", self.artifact.name);
        };
        let wheel = the_wheel(&manifest)?;
        let members = list(
            ctx,
            &self.python,
            &artifacts::dir(ctx, self.artifact).join(wheel),
        )?;
        // The hash of the other sources must be of the tree the manifest records (the one its
        // build began from): both come from one reading of the tree.
        let now = artifacts::Sources::of(ctx, self.artifact)?;
        let recorded = match now.compiled_hash {
            Some(compiled) if now.hash == manifest.source_hash => copied(ctx, self.artifact)
                .and_then(|copies| verify(ctx, &members, &copies).map(|()| (compiled, copies))),
            _ => Err("its sources changed since it was built".to_string()),
        };
        match recorded {
            Ok((source_hash, copies)) => {
                manifest.compiled_part = Some(CompiledPart {
                    source_hash,
                    repacker: repacker(),
                    copied: copies.into_iter().map(|(member, _)| member).collect(),
                });
                artifacts::save_manifest(ctx, self.artifact, &manifest)?;
            }
            Err(why) => runner.out().say(
                Tone::Dim,
                &format!(
                    "# the next build of {} will not repack it: {why}",
                    self.artifact.name
                ),
            ),
        }
        Ok(Outcome::Continue)
    }
}

/// The wheel's file name and the Python files to copy in (member, source path), or why the
/// wheel there cannot be repacked.
type Reusable = std::result::Result<(String, Vec<(String, String)>), String>;

fn reusable(
    ctx: &Context,
    artifact: &Artifact,
    manifest: &Manifest,
    recipe: &str,
    sources: &artifacts::Sources,
) -> Result<Reusable> {
    let Some(part) = &manifest.compiled_part else {
        return Ok(Err(
            "its manifest records no compiled part to reuse".to_string()
        ));
    };
    if part.repacker != repacker() {
        return Ok(Err(
            "its compiled part was recorded under other repacking rules".to_string(),
        ));
    }
    let wheel = match the_wheel(manifest) {
        Ok(wheel) => wheel.to_string(),
        Err(e) => return Ok(Err(e.to_string())),
    };
    if !matches!(artifacts::altered_file(ctx, artifact, manifest), Ok(None)) {
        return Ok(Err(format!("{wheel} does not match its manifest")));
    }
    if let Some(why) = artifacts::built_otherwise(ctx, manifest, recipe, artifacts::Asker::Build)? {
        return Ok(Err(why));
    }
    if sources.compiled_hash.as_ref() != Some(&part.source_hash) {
        return Ok(Err(
            "sources other than the Python package changed since it was built".to_string(),
        ));
    }
    let copies = match copied(ctx, artifact) {
        Ok(copies) => copies,
        Err(why) => return Ok(Err(why)),
    };
    if let Some(why) = outside_packages(&part.copied, &copies) {
        return Ok(Err(why));
    }
    Ok(Ok((wheel, copies)))
}

/// maturin copies the package's directories, not every file beside them, and a build without
/// one fails: the copies must lie in exactly the directories the last maturin build was seen
/// to copy (why not, when they do not).
fn outside_packages(copied: &[String], copies: &[(String, String)]) -> Option<String> {
    let top = |member: &str| member.split_once('/').map(|(dir, _)| dir.to_string());
    let packages: BTreeSet<String> = copied.iter().filter_map(|m| top(m)).collect();
    if let Some((_, path)) = copies
        .iter()
        .find(|(member, _)| top(member).is_none_or(|dir| !packages.contains(&dir)))
    {
        return Some(format!(
            "{path} is outside the package directories the last maturin build copied"
        ));
    }
    let now: BTreeSet<String> = copies.iter().filter_map(|(m, _)| top(m)).collect();
    packages
        .difference(&now)
        .next()
        .map(|gone| format!("the package directory {gone} the last maturin build copied is gone"))
}

/// The one wheel a manifest lists.
fn the_wheel(manifest: &Manifest) -> Result<&str> {
    match manifest.files.as_slice() {
        [file] if file.name.ends_with(".whl") => Ok(&file.name),
        _ => bail!("its manifest lists other files than one wheel"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn only_files_of_a_package_maturin_copied_are_copied() {
        let copied = ["icechunk/__init__.py".to_string()];
        let copy = |m: &str| (m.to_string(), format!("icechunk-python/python/{m}"));
        assert_eq!(
            outside_packages(&copied, &[copy("icechunk/sub/new.py")]),
            None
        );
        let why = outside_packages(&copied, &[]).unwrap();
        assert!(why.contains("the package directory icechunk"), "{why}");
        for outside in ["beside.py", "other/__init__.py"] {
            let why = outside_packages(&copied, &[copy("icechunk/__init__.py"), copy(outside)]);
            assert!(
                why.unwrap()
                    .contains(&format!("python/{outside} is outside"))
            );
        }
    }
}
