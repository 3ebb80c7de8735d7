//! The situations `compare --scenario` measures, as a project's [`super::Benchmark`] lists them:
//! a first run from empty target directories or from restored dependency caches, or one small
//! edit after a passing run, which the shared pipeline answers by skipping the jobs whose
//! content keys did not change.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// One situation.
#[derive(Debug, PartialEq, Eq)]
pub struct Scenario {
    /// `cold`, `rust-change`: what `--scenario` takes.
    pub name: &'static str,
    /// What it is, as the report says it.
    pub about: &'static str,
    /// Jobs start with their dependencies compiled, as a restored rust-cache gives them.
    pub warm: bool,
    /// The edit made after a passing run: (file, line appended to it).
    pub edit: Option<(&'static str, &'static str)>,
}

/// `all`, or a comma-separated list of the names of `scenarios`; in their order.
pub fn parse_list(scenarios: &'static [Scenario], text: &str) -> Result<Vec<&'static Scenario>> {
    if text == "all" {
        return Ok(scenarios.iter().collect());
    }
    let mut list = Vec::new();
    for name in text.split(',').map(str::trim) {
        let Some(found) = scenarios.iter().find(|s| s.name == name) else {
            let names: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
            bail!(
                "unknown scenario `{name}`; the scenarios are: {}, or all",
                names.join(", ")
            );
        };
        if !list.contains(&found) {
            list.push(found);
        }
    }
    list.sort_by_key(|s| scenarios.iter().position(|t| std::ptr::eq(t, *s)));
    Ok(list)
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

    static SCENARIOS: [Scenario; 3] = [
        Scenario {
            name: "cold",
            about: "from nothing",
            warm: false,
            edit: None,
        },
        Scenario {
            name: "warm",
            about: "from caches",
            warm: true,
            edit: None,
        },
        Scenario {
            name: "docs-change",
            about: "after an edit",
            warm: true,
            edit: Some(("README.md", "\nedit\n")),
        },
    ];

    #[test]
    fn scenarios_are_parsed_from_a_list_or_all_in_their_order() {
        let names = |list: Vec<&Scenario>| list.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(parse_list(&SCENARIOS, "docs-change,cold,cold").unwrap()),
            ["cold", "docs-change"]
        );
        assert_eq!(parse_list(&SCENARIOS, "all").unwrap().len(), 3);
        let err = parse_list(&SCENARIOS, "hot").unwrap_err().to_string();
        assert!(err.contains("cold, warm, docs-change, or all"), "{err}");
    }

    #[test]
    fn an_edit_is_undone() {
        let dir = std::env::temp_dir().join(format!("ci-engine-edit-{}", std::process::id()));
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
