//! What the engine must know of this repository before it plans anything: the name its
//! pinned tools are kept under, the Pythons it tests with and the variables it adds to the
//! declared environment.

use ci_engine::context::Project;
use ci_engine::environment::Rules;

use crate::pins::PYTHON_VERSIONS;

/// What the services write to their env file (dropped from the outer environment: commands
/// that use the services read them from there).
pub const SERVICE_PREFIX: &str = "ICECHUNK_TEST_";

/// Hashed: the knobs of the test runners and suites (nextest, proptest, pytest, hypothesis,
/// mypy, ruff), of icechunk, zarr and numpy, of the object stores and their clients, and of
/// the wheel's build (PyO3, maturin).
static ENVIRONMENT: Rules = Rules {
    // How long docker-up waits for the servers (services/mod.rs).
    passed: &["XTASK_READY_TIMEOUT"],
    hashed_prefixes: &[
        "NEXTEST_",
        "PROPTEST_",
        "ICECHUNK_",
        "PYTEST_",
        "HYPOTHESIS_",
        "MYPY",
        "RUFF_",
        "ZARR_",
        "NUMPY_",
        "AWS_",
        "AZURE_",
        "AZURITE_",
        "PYO3_",
        "MATURIN_",
        "OBJECT_STORE_",
    ],
    dropped_prefixes: &[SERVICE_PREFIX],
};

pub static PROJECT: Project = Project {
    name: "icechunk-xtask",
    pythons: &PYTHON_VERSIONS,
    environment: &ENVIRONMENT,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PIPELINE;
    use ci_engine::environment::{Kind, kind};

    #[test]
    fn the_suites_knobs_are_hashed_and_what_the_services_write_is_dropped() {
        for name in [
            "PROPTEST_CASES",
            "NEXTEST_RETRIES",
            "ICECHUNK_FAULT_SEED",
            "PYTEST_ADDOPTS",
            "AWS_ENDPOINT_URL",
            "RUSTFLAGS",
        ] {
            assert_eq!(kind(&ENVIRONMENT, name), Kind::Hashed, "{name}");
        }
        assert_eq!(kind(&ENVIRONMENT, "AWS_CA_BUNDLE"), Kind::Passed);
        assert_eq!(kind(&ENVIRONMENT, "XTASK_READY_TIMEOUT"), Kind::Passed);
        assert_eq!(
            kind(&ENVIRONMENT, "ICECHUNK_TEST_S3_ENDPOINT"),
            Kind::Dropped
        );
    }

    /// What names this repository: its packages (the root manifest's members but the engine
    /// and xtask), the services of compose.yaml and their stand-ins, the stages, the artifacts
    /// and the Pythons.
    fn repository_names(root: &std::path::Path) -> Vec<String> {
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let members = manifest
            .lines()
            .find_map(|l| l.strip_prefix("members = "))
            .expect("the root manifest lists its members on one line");
        let mut names: Vec<String> = members
            .trim_matches(['[', ']'])
            .split(',')
            .map(|m| m.trim().trim_matches('"').to_string())
            .filter(|m| m != "ci-engine" && m != "xtask")
            .collect();
        let compose = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
        names.extend(compose.lines().filter_map(|l| {
            let service = l.strip_prefix("  ")?.strip_suffix(':')?;
            (!service.starts_with(' ')).then(|| service.to_string())
        }));
        names.push("moto".into());
        names.extend(PIPELINE.stages.iter().map(|s| s.name.to_string()));
        names.extend(PIPELINE.artifacts().iter().map(|a| a.name.to_string()));
        names.extend(PYTHON_VERSIONS.iter().map(|v| v.to_string()));
        names.push(SERVICE_PREFIX.to_string());
        names.push(PROJECT.name.to_string());
        names
    }

    /// Whether `text` has `name` as a word of its own (`already` does not name `ready`); a
    /// prefix (`NAME_`) anywhere.
    fn names_word(text: &str, name: &str) -> bool {
        let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            name.ends_with('_') || !before.is_some_and(part) && !after.is_some_and(part)
        })
    }

    #[test]
    fn the_engine_names_nothing_of_this_repository() {
        assert!(names_word("binary_id(icechunk::x)", "icechunk"));
        assert!(!names_word("it is already done", "ready"));
        let root = &crate::testing::checkout();
        let names = repository_names(root);
        for expected in [
            "icechunk-python",
            "minio",
            "azurite",
            "test-full",
            "python-wheels",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        // The files git lists (what is built, never a build's output). The second project is
        // another project's description on the engine: it names its own stages and Pythons.
        let ctx = crate::testing::context_at(root.clone());
        let files = ci_engine::files::listed_files(&ctx, &["ci-engine"]).unwrap();
        let engine = files
            .iter()
            .filter(|f| !f.starts_with("ci-engine/tests/second_project"));
        let mut found = Vec::new();
        for file in engine {
            let text = std::fs::read_to_string(root.join(file))
                .unwrap()
                .to_lowercase();
            for name in &names {
                if names_word(&text, &name.to_lowercase()) {
                    found.push(format!("{file}: {name}"));
                }
            }
        }
        assert!(
            found.is_empty(),
            "the engine names the repository:\n{}",
            found.join("\n")
        );
    }

    /// The archive's tests run in another checkout than the one that built them (the test
    /// jobs download it): a path fixed at compile time names a directory that is not there.
    #[test]
    fn tests_find_the_checkout_at_run_time() {
        let root = &crate::testing::checkout();
        let fixed = ["env", "!(\"CARGO_MANIFEST_DIR\")"].concat();
        let found: Vec<String> = crate::testing::files_under(
            root,
            &[
                "xtask/src",
                "xtask/tests",
                "ci-engine/src",
                "ci-engine/tests",
            ],
        )
        .into_iter()
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|t| t.contains(&fixed)))
        .map(|path| path.strip_prefix(root).unwrap().display().to_string())
        .collect();
        assert!(
            found.is_empty(),
            "read CARGO_MANIFEST_DIR with std::env::var in: {found:?}"
        );
    }
}
