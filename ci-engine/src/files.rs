//! The files of a workspace as git lists them, and their digests: what content keys and
//! artifact manifests hash.

use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::process;

/// The files git tracks or would add under `specs` (all of them when empty), sorted.
pub fn listed_files(ctx: &Context, specs: &[&str]) -> Result<Vec<String>> {
    let listed = process::capture(
        &Cmd::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
            ])
            .args(specs),
        &ctx.root,
    )
    .context("listing the sources needs git: is this a git checkout?")?;
    let mut files: Vec<String> = listed
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    files.sort_unstable();
    files.dedup();
    Ok(files)
}

/// What git would record of the tree entry `name`, as text: a file's content hash and whether
/// it is executable, where a symbolic link points (never followed: it may point at a directory
/// or nowhere), `deleted` for a listed file that is gone, `directory` for a submodule's
/// checkout. Every tree git can hold has one.
pub fn entry_digest(root: &Path, name: &str) -> Result<String> {
    let path = root.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok("deleted".to_string()),
        Err(e) => return Err(e).with_context(|| format!("could not read {name}")),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&path).with_context(|| format!("could not read {name}"))?;
        return Ok(format!("symlink {}", target.to_string_lossy()));
    }
    if meta.is_dir() {
        return Ok("directory".to_string());
    }
    let bytes = std::fs::read(&path).with_context(|| format!("could not read {name}"))?;
    Ok(format!(
        "{}{}",
        hex(&Sha256::digest(&bytes)),
        if executable(&meta) { " executable" } else { "" }
    ))
}

/// Whether a file may be executed (its owner, group or others may).
#[cfg(unix)]
pub fn executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub fn executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// The sha256 of a file, and its size.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((hex(&hasher.finalize()), bytes))
}

/// Bytes as lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first `chars` characters of a commit or hash read from a manifest (which may hold
/// anything).
pub fn short(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_never_cuts_a_character() {
        assert_eq!(short("0123456789abcdef", 10), "0123456789");
        assert_eq!(short("abc", 10), "abc");
        assert_eq!(short("ééééééééééé", 10), "éééééééééé");
    }
}
