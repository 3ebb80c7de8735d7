//! The wheel's copies of the Python sources: which sources maturin copies in and under which
//! member names, the script that lists and repacks wheels (Python's standard library only), and
//! the version of these rules.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::graph::Artifact;
use ci_engine::process;

/// The kinds of file xtask copies in as maturin does (anything else in the package makes the
/// build run maturin).
const COPIED_SUFFIXES: &[&str] = &[".py", ".pyi"];
const COPIED_NAMES: &[&str] = &["py.typed"];

/// Lists and repacks wheels with Python's standard library.
const SCRIPT: &str = include_str!("repack_wheel.py");

#[derive(Debug, Deserialize)]
pub(super) struct Member {
    pub(super) name: String,
    pub(super) sha256: String,
    pub(super) mode: u32,
}

/// The version of the rules that decide what is copied and how: a hash of the repack, of this
/// file, of the script and of the engine's file rules they apply (which files git lists, which
/// are executable, their digests), so that a compiled part recorded under other rules is not
/// reused.
pub(super) fn repacker() -> String {
    let mut hasher = Sha256::new();
    hasher.update(include_str!("repack.rs"));
    hasher.update([0]);
    hasher.update(include_str!("wheel_copies.rs"));
    hasher.update([0]);
    hasher.update(include_str!("../../../ci-engine/src/files.rs"));
    hasher.update([0]);
    hasher.update(SCRIPT);
    ci_engine::files::hex(&hasher.finalize())
}

/// The command that runs the script, written under xtask's directory.
pub(super) fn script(ctx: &Context, python: &Path) -> Result<Cmd> {
    let path = ctx.xtask_dir().join("repack_wheel.py");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(SCRIPT) {
        std::fs::create_dir_all(ctx.xtask_dir())?;
        std::fs::write(&path, SCRIPT)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(Cmd::new(python.to_string_lossy()).arg(ctx.rel(&path)))
}

pub(super) fn list(ctx: &Context, python: &Path, wheel: &Path) -> Result<Vec<Member>> {
    let out = process::capture(
        &script(ctx, python)?.arg("list").arg(ctx.rel(wheel)),
        &ctx.root,
    )
    .with_context(|| format!("could not list the members of {}", wheel.display()))?;
    serde_json::from_str(&out)
        .with_context(|| format!("could not read the members of {}", wheel.display()))
}

/// That every copy is a member, byte for byte, as a regular file.
pub(super) fn verify(
    ctx: &Context,
    members: &[Member],
    copies: &[(String, String)],
) -> std::result::Result<(), String> {
    for (member, path) in copies {
        let source =
            ci_engine::files::sha256_file(&ctx.root.join(path)).map_err(|e| e.to_string())?;
        match members.iter().find(|m| &m.name == member) {
            Some(m) if m.sha256 == source.0 && m.mode == 0o100644 => {}
            Some(_) => return Err(format!("{member} is not a copy of {path}")),
            None => return Err(format!("the wheel has no {member}, though {path} exists")),
        }
    }
    Ok(())
}

/// The Python sources as the wheel's members copy them (member name, source path), or why the
/// sources are not plain files that git lists.
pub(super) fn copied(
    ctx: &Context,
    artifact: &Artifact,
) -> std::result::Result<Vec<(String, String)>, String> {
    let Some(dir) = artifact.copies.as_ref().map(|c| c.dir) else {
        return Err(format!("{} copies no sources", artifact.name));
    };
    let listed = ci_engine::files::listed_files(ctx, &[dir]).map_err(|e| e.to_string())?;
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
        } else if meta.is_file() && !ci_engine::files::executable(&meta) {
            files.push(slashed);
        } else {
            return Err(format!("{slashed} is not a plain file"));
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::pipeline::WHEELS;
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
        copied(ctx, &WHEELS)
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
