//! Every pin of this repository, written once: the toolchain (and the action that installs it),
//! cargo-nextest and the Python versions. The GitHub actions the workflows use are pinned in
//! the engine (`ci_engine::workflows::actions`). The workflows, the stages and the docs all read
//! them from here.

use ci_engine::jobs::Pin;

/// The Rust toolchain of every job (the workspace's `rust-version` is the same release).
pub const TOOLCHAIN: &str = "1.95.0";

/// cargo-nextest, installed by `taiki-e/install-action` in CI and by xtask elsewhere.
pub const NEXTEST_VERSION: &str = "0.9.143";

/// The Python minor versions the test stage looks for; the first one is required.
pub const PYTHON_VERSIONS: [&str; 3] = ["3.11", "3.12", "3.13"];

/// The branch of dtolnay/rust-toolchain named after the toolchain (it has no releases).
pub const RUST_TOOLCHAIN: Pin = Pin {
    action: "dtolnay/rust-toolchain",
    sha: "e081816240890017053eacbb1bdf337761dc5582",
    release: TOOLCHAIN,
};

/// Every pinned action: the engine's, then the toolchain's.
#[cfg(test)]
pub fn actions() -> Vec<Pin> {
    let mut all = ci_engine::workflows::actions::ACTIONS.to_vec();
    all.push(RUST_TOOLCHAIN);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shas_are_full_commits_and_the_workspace_uses_the_toolchain() {
        assert_eq!(RUST_TOOLCHAIN.sha.len(), 40);
        let manifest =
            std::fs::read_to_string(crate::testing::checkout().join("Cargo.toml")).unwrap();
        let minor = TOOLCHAIN.rsplit_once('.').map(|(m, _)| m).unwrap();
        assert!(
            manifest.contains(&format!("rust-version = \"{minor}\"")),
            "Cargo.toml's rust-version is the pinned toolchain"
        );
    }
}
