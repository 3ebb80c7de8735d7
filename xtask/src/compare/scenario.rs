//! The situations `cargo xtask compare --scenario` measures: a first run from empty target
//! directories (`cold`) or from restored dependency caches (`warm`), and one small edit after a
//! passing run (`rust-change`, `python-change`, `docs-change`), which the shared pipeline
//! answers by skipping the jobs whose content keys did not change.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Cold,
    Warm,
    RustChange,
    PythonChange,
    DocsChange,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Cold,
        Scenario::Warm,
        Scenario::RustChange,
        Scenario::PythonChange,
        Scenario::DocsChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::Warm => "warm",
            Scenario::RustChange => "rust-change",
            Scenario::PythonChange => "python-change",
            Scenario::DocsChange => "docs-change",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Scenario::Cold => "every job starts from an empty target directory",
            Scenario::Warm => {
                "every job starts with its dependencies compiled (a restored Rust cache), \
                 the workspace crates not"
            }
            Scenario::RustChange => "warm, after a one-line edit in icechunk/src",
            Scenario::PythonChange => "warm, after a one-line edit in icechunk-python/python",
            Scenario::DocsChange => "warm, after a one-line edit in docs/",
        }
    }

    /// `all`, or a comma-separated list of scenario names.
    pub fn parse_list(text: &str) -> Result<Vec<Scenario>> {
        if text == "all" {
            return Ok(Scenario::ALL.to_vec());
        }
        let mut list = Vec::new();
        for name in text.split(',').map(str::trim) {
            let Some(found) = Scenario::ALL.iter().find(|s| s.name() == name) else {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                bail!(
                    "unknown scenario `{name}`; the scenarios are: {}, or all",
                    names.join(", ")
                );
            };
            if !list.contains(found) {
                list.push(*found);
            }
        }
        list.sort();
        Ok(list)
    }

    /// Jobs start with their dependencies compiled, as a restored rust-cache gives them.
    pub fn warm(self) -> bool {
        self != Scenario::Cold
    }

    /// The edit made after a passing run: (file, line appended to it).
    pub fn edit(self) -> Option<(&'static str, &'static str)> {
        match self {
            Scenario::Cold | Scenario::Warm => None,
            Scenario::RustChange => Some(("icechunk/src/lib.rs", "// compare: rust-change\n")),
            Scenario::PythonChange => Some((
                "icechunk-python/python/icechunk/__init__.py",
                "# compare: python-change\n",
            )),
            Scenario::DocsChange => Some(("docs/performance.md", "\ncompare: docs-change\n")),
        }
    }
}

/// An edit of one file of the working tree, undone when dropped (also after a failure).
pub struct AppliedEdit {
    path: PathBuf,
    original: Vec<u8>,
}

impl AppliedEdit {
    pub fn apply(root: &Path, file: &str, line: &str) -> Result<AppliedEdit> {
        let path = root.join(file);
        let original =
            std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        let mut edited = original.clone();
        edited.extend_from_slice(line.as_bytes());
        std::fs::write(&path, edited)
            .with_context(|| format!("could not edit {}", path.display()))?;
        Ok(AppliedEdit { path, original })
    }
}

impl Drop for AppliedEdit {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, &self.original) {
            eprintln!(
                "error: could not undo compare's edit of {}: {e}; restore it with `git checkout -- {}`",
                self.path.display(),
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_parsed_from_a_list_or_all() {
        assert_eq!(
            Scenario::parse_list("docs-change,cold").unwrap(),
            [Scenario::Cold, Scenario::DocsChange]
        );
        assert_eq!(Scenario::parse_list("all").unwrap().len(), 5);
        let err = Scenario::parse_list("hot").unwrap_err().to_string();
        assert!(err.contains("cold, warm, rust-change"), "{err}");
    }

    #[test]
    fn every_edited_file_exists_and_an_edit_is_undone() {
        let root = crate::testing::checkout();
        for scenario in Scenario::ALL {
            if let Some((file, _)) = scenario.edit() {
                assert!(root.join(file).is_file(), "{file}");
            }
        }
        let dir = std::env::temp_dir().join(format!("xtask-edit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.md"), "text\n").unwrap();
        {
            let _edit = AppliedEdit::apply(&dir, "f.md", "more\n").unwrap();
            assert_eq!(
                std::fs::read_to_string(dir.join("f.md")).unwrap(),
                "text\nmore\n"
            );
        }
        assert_eq!(std::fs::read_to_string(dir.join("f.md")).unwrap(), "text\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
