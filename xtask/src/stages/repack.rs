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
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::artifacts::{self, CompiledPart, Manifest, Recipe};
use crate::graph::Artifact;
use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::output::Tone;
use ci_engine::plan::{Action, Outcome, Runner};
use ci_engine::process;

/// Lists and repacks wheels with Python's standard library.
const SCRIPT: &str = include_str!("repack_wheel.py");
/// The kinds of file xtask copies in as maturin does (anything else in the package makes the
/// build run maturin).
const COPIED_SUFFIXES: &[&str] = &[".py", ".pyi"];
const COPIED_NAMES: &[&str] = &["py.typed"];

/// The first step of building the wheel after [`artifacts::SkipIfCurrent`]: repack the wheel
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
            self.recipe.artifact.name(),
            artifacts::short(&repacker(), 12)
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
        let (wheel, copies) = match reusable(ctx, &manifest, &self.recipe.text, &started)? {
            Ok(found) => found,
            Err(why) => {
                runner.out().say(
                    Tone::Dim,
                    &format!("# not repacking {}: {why}", artifact.name()),
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
            .with_context(|| format!("could not remove the manifest of {}", artifact.name()))?;
        std::fs::rename(&new, &old)
            .with_context(|| format!("could not replace {}", old.display()))?;
        let mut rebuilt =
            artifacts::write_manifest(ctx, artifact, &self.recipe.text, Some(&started.hash))?;
        rebuilt.compiled_part = manifest.compiled_part.map(|part| CompiledPart {
            copied: copies.into_iter().map(|(member, _)| member).collect(),
            ..part
        });
        artifacts::save_manifest(ctx, &rebuilt)?;
        Ok(Outcome::Done(format!(
            "{} repacked: nothing but the Python package changed since its compiled part was \
             built, so the Python files were copied in and maturin did not run",
            artifact.name()
        )))
    }
}

/// The last step of a maturin build: record which members copy the Python sources, when each
/// is a byte-for-byte copy, so that a later build may repack the wheel.
#[derive(Debug)]
pub struct RecordCompiledPart {
    pub artifact: Artifact,
    pub python: PathBuf,
}

impl fmt::Display for RecordCompiledPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record which members of {} copy the Python sources",
            self.artifact.name()
        )
    }
}

impl Action for RecordCompiledPart {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let ctx = runner.ctx();
        let Some(mut manifest) = artifacts::read_manifest(ctx, self.artifact)? else {
            bail!("{} has no manifest after its build", self.artifact.name());
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
                artifacts::save_manifest(ctx, &manifest)?;
            }
            Err(why) => runner.out().say(
                Tone::Dim,
                &format!(
                    "# the next build of {} will not repack it: {why}",
                    self.artifact.name()
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
    if !matches!(artifacts::altered_file(ctx, manifest), Ok(None)) {
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
    let copies = match copied(ctx, manifest.artifact) {
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

/// The Python sources as the wheel's members copy them (member name, source path), or why the
/// sources are not plain files that git lists.
fn copied(ctx: &Context, artifact: Artifact) -> std::result::Result<Vec<(String, String)>, String> {
    let Some(dir) = artifact.copied_sources() else {
        return Err(format!("{} copies no sources", artifact.name()));
    };
    let listed = artifacts::listed_files(ctx, &[dir]).map_err(|e| e.to_string())?;
    let mut on_disk = Vec::new();
    walk(&ctx.root, Path::new(dir), &mut on_disk)?;
    on_disk.sort();
    if let Some(extra) = on_disk.iter().find(|f| !listed.contains(f)) {
        return Err(format!("{extra} is there but git does not list it"));
    }
    let mut copies = Vec::new();
    for file in listed {
        let name = file.rsplit('/').next().unwrap_or_default();
        let plain =
            COPIED_NAMES.contains(&name) || COPIED_SUFFIXES.iter().any(|s| name.ends_with(s));
        if !on_disk.contains(&file) {
            return Err(format!("{file} is listed by git but not there"));
        }
        if !plain {
            return Err(format!("{file} is not a plain Python file"));
        }
        let Some(member) = file.strip_prefix(dir).and_then(|m| m.strip_prefix('/')) else {
            return Err(format!("git listed {file} outside {dir}"));
        };
        copies.push((member.to_string(), file));
    }
    Ok(copies)
}

/// Every file under `dir` (relative to `root`), as slashed paths; symbolic links, executables
/// and anything else but regular files and directories are refused.
fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) -> std::result::Result<(), String> {
    let entries =
        std::fs::read_dir(root.join(dir)).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = dir.join(entry.file_name());
        let slashed = ci_engine::context::slashed(&path);
        let meta = std::fs::symlink_metadata(root.join(&path)).map_err(|e| e.to_string())?;
        if meta.is_dir() {
            walk(root, &path, files)?;
        } else if meta.is_file() && !artifacts::executable(&meta) {
            files.push(slashed);
        } else {
            return Err(format!("{slashed} is not a plain file"));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Member {
    name: String,
    sha256: String,
    mode: u32,
}

/// The version of the rules that decide what is copied and how: a hash of this file and the
/// script, so that a compiled part recorded under other rules is not reused.
pub(super) fn repacker() -> String {
    let mut hasher = Sha256::new();
    hasher.update(include_str!("repack.rs"));
    hasher.update([0]);
    hasher.update(SCRIPT);
    artifacts::hex(&hasher.finalize())
}

/// The command that runs the script, written under xtask's directory.
fn script(ctx: &Context, python: &Path) -> Result<Cmd> {
    let path = ctx.xtask_dir().join("repack_wheel.py");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(SCRIPT) {
        std::fs::create_dir_all(ctx.xtask_dir())?;
        std::fs::write(&path, SCRIPT)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(Cmd::new(python.to_string_lossy()).arg(ctx.rel(&path)))
}

fn list(ctx: &Context, python: &Path, wheel: &Path) -> Result<Vec<Member>> {
    let out = process::capture(
        &script(ctx, python)?.arg("list").arg(ctx.rel(wheel)),
        &ctx.root,
    )
    .with_context(|| format!("could not list the members of {}", wheel.display()))?;
    serde_json::from_str(&out)
        .with_context(|| format!("could not read the members of {}", wheel.display()))
}

/// That every copy is a member, byte for byte, as a regular file.
fn verify(
    ctx: &Context,
    members: &[Member],
    copies: &[(String, String)],
) -> std::result::Result<(), String> {
    for (member, path) in copies {
        let source = artifacts::sha256_file(&ctx.root.join(path)).map_err(|e| e.to_string())?;
        match members.iter().find(|m| &m.name == member) {
            Some(m) if m.sha256 == source.0 && m.mode == 0o100644 => {}
            Some(_) => return Err(format!("{member} is not a copy of {path}")),
            None => return Err(format!("the wheel has no {member}, though {path} exists")),
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::testing::{context_at, git};

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A git checkout with a Python package of three plain files.
    fn scratch(name: &str) -> Context {
        let root = std::env::temp_dir().join(format!("xtask-repack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(&root, ".gitignore", "__pycache__/\n");
        write(
            &root,
            "icechunk-python/python/icechunk/__init__.py",
            "one\n",
        );
        write(&root, "icechunk-python/python/icechunk/store.py", "two\n");
        write(&root, "icechunk-python/python/icechunk/py.typed", "");
        git(&root, &["init", "-q"]);
        git(&root, &["add", "."]);
        context_at(root)
    }

    fn copies(ctx: &Context) -> std::result::Result<Vec<(String, String)>, String> {
        copied(ctx, Artifact::Wheels)
    }

    #[test]
    fn the_copies_are_the_plain_files_git_lists() {
        let ctx = scratch("plain");
        let pair = |m: &str| {
            (
                format!("icechunk/{m}"),
                format!("icechunk-python/python/icechunk/{m}"),
            )
        };
        assert_eq!(
            copies(&ctx).unwrap(),
            [pair("__init__.py"), pair("py.typed"), pair("store.py")]
        );
        // A new file counts before it is committed or added: git lists it.
        write(
            &ctx.root,
            "icechunk-python/python/icechunk/new.py",
            "three\n",
        );
        assert_eq!(copies(&ctx).unwrap().len(), 4);
        std::fs::remove_dir_all(&ctx.root).unwrap();
    }

    #[test]
    fn anything_maturin_might_copy_otherwise_refuses_the_repack() {
        let ctx = scratch("refused");
        // An ignored file: maturin's rules for it are not git's.
        write(
            &ctx.root,
            "icechunk-python/python/icechunk/__pycache__/store.pyc",
            "x",
        );
        let why = copies(&ctx).unwrap_err();
        assert!(
            why.contains("__pycache__/store.pyc is there but git does not list it"),
            "{why}"
        );
        std::fs::remove_dir_all(ctx.root.join("icechunk-python/python/icechunk/__pycache__"))
            .unwrap();
        // A compiled module among the sources.
        write(&ctx.root, "icechunk-python/python/icechunk/fast.so", "x");
        let why = copies(&ctx).unwrap_err();
        assert!(why.contains("fast.so is not a plain Python file"), "{why}");
        std::fs::remove_file(ctx.root.join("icechunk-python/python/icechunk/fast.so")).unwrap();
        // An executable: maturin would keep its mode.
        let script = ctx.root.join("icechunk-python/python/icechunk/store.py");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let why = copies(&ctx).unwrap_err();
        assert!(why.contains("store.py is not a plain file"), "{why}");
        std::fs::remove_dir_all(&ctx.root).unwrap();
    }

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

    #[test]
    fn a_repacked_wheel_keeps_the_compiled_part_and_copies_the_sources_anew() {
        let ctx = scratch("wheel");
        let python = PathBuf::from("python3");
        // A wheel as maturin lays it out, with a stale copy and a copy whose source is gone.
        let old = ctx.root.join("old.whl");
        let make = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as w:
    for name, data in [("icechunk/__init__.py", "old\n"), ("icechunk/_ext.abi3.so", "\x7fELF"),
                       ("icechunk/gone.py", "gone\n"), ("icechunk-0.1.0.dist-info/METADATA", "m\n"),
                       ("icechunk-0.1.0.dist-info/RECORD", "stale\n")]:
        w.writestr(name, data)
"#;
        process::capture(&Cmd::new("python3").args(["-c", make]).arg(&old), &ctx.root).unwrap();
        let copies = copies(&ctx).unwrap();
        let spec = serde_json::json!({
            "drop": ["icechunk/__init__.py", "icechunk/gone.py"],
            "add": copies,
        });
        let new = ctx.root.join("new.whl");
        let spec_file = ctx.root.join("spec.json");
        std::fs::write(&spec_file, spec.to_string()).unwrap();
        process::capture(
            &script(&ctx, &python)
                .unwrap()
                .arg("repack")
                .arg(&old)
                .arg(&new)
                .arg(&spec_file),
            &ctx.root,
        )
        .unwrap();
        let members = list(&ctx, &python, &new).unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "icechunk/__init__.py",
                "icechunk/_ext.abi3.so",
                "icechunk/py.typed",
                "icechunk/store.py",
                "icechunk-0.1.0.dist-info/METADATA",
                "icechunk-0.1.0.dist-info/RECORD",
            ]
        );
        verify(&ctx, &members, &copies).unwrap();
        let before = list(&ctx, &python, &old).unwrap();
        let same = |name: &str| {
            let find = |ms: &[Member]| ms.iter().find(|m| m.name == name).map(|m| m.sha256.clone());
            find(&before) == find(&members)
        };
        assert!(same("icechunk/_ext.abi3.so") && same("icechunk-0.1.0.dist-info/METADATA"));
        // RECORD lists every other member with its hash, as installers check it.
        let record = process::capture(
            &Cmd::new("python3")
                .args(["-c", "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode(), end='')"])
                .arg(&new)
                .arg("icechunk-0.1.0.dist-info/RECORD"),
            &ctx.root,
        )
        .unwrap();
        assert_eq!(record.lines().count(), 6);
        assert!(record.contains("icechunk/__init__.py,sha256="));
        assert!(record.ends_with("icechunk-0.1.0.dist-info/RECORD,,\n"));
        // A stale copy is found.
        write(
            &ctx.root,
            "icechunk-python/python/icechunk/store.py",
            "edited\n",
        );
        let why = verify(&ctx, &members, &copies).unwrap_err();
        assert!(why.contains("icechunk/store.py is not a copy of"), "{why}");
        std::fs::remove_dir_all(&ctx.root).unwrap();
    }
}
