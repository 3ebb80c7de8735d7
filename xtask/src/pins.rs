//! Every pin, written once: the toolchain, cargo-nextest, the Python versions and each GitHub
//! action's full commit SHA with the release it is. The workflows, the stages and the docs all
//! read them from here.

/// The Rust toolchain of every job (the workspace's `rust-version` is the same release).
pub const TOOLCHAIN: &str = "1.95.0";

/// cargo-nextest, installed by `taiki-e/install-action` in CI and by xtask elsewhere.
pub const NEXTEST_VERSION: &str = "0.9.143";

/// The Python minor versions the test stage looks for; the first one is required.
pub const PYTHON_VERSIONS: [&str; 3] = ["3.11", "3.12", "3.13"];

/// A GitHub action at a full commit SHA, with the release that SHA is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    pub action: &'static str,
    pub sha: &'static str,
    pub release: &'static str,
}

impl Pin {
    /// `owner/repo[/path]@sha`
    pub fn uses(&self) -> String {
        format!("{}@{}", self.action, self.sha)
    }
}

// Checked in fetched copies of each repository (`git rev-parse <tag>^{commit}`); every one of
// them runs on Node 24 or is a composite action.
pub const CHECKOUT: Pin = Pin {
    action: "actions/checkout",
    sha: "d23441a48e516b6c34aea4fa41551a30e30af803",
    release: "v6.1.0",
};
pub const SETUP_PYTHON: Pin = Pin {
    action: "actions/setup-python",
    sha: "ece7cb06caefa5fff74198d8649806c4678c61a1",
    release: "v6.3.0",
};
pub const CACHE_RESTORE: Pin = Pin {
    action: "actions/cache/restore",
    sha: "27d5ce7f107fe9357f9df03efb73ab90386fccae",
    release: "v5.0.5",
};
pub const CACHE_SAVE: Pin = Pin {
    action: "actions/cache/save",
    sha: "27d5ce7f107fe9357f9df03efb73ab90386fccae",
    release: "v5.0.5",
};
pub const UPLOAD_ARTIFACT: Pin = Pin {
    action: "actions/upload-artifact",
    sha: "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
    release: "v7.0.0",
};
pub const DOWNLOAD_ARTIFACT: Pin = Pin {
    action: "actions/download-artifact",
    sha: "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",
    release: "v8.0.1",
};
pub const RUST_CACHE: Pin = Pin {
    action: "Swatinem/rust-cache",
    sha: "6323deb102c322ba6fcbdcafc7e3dddab59af2b6",
    release: "v2.9.2",
};
/// The branch of dtolnay/rust-toolchain named after the toolchain (it has no releases).
pub const RUST_TOOLCHAIN: Pin = Pin {
    action: "dtolnay/rust-toolchain",
    sha: "e081816240890017053eacbb1bdf337761dc5582",
    release: "1.95.0",
};
/// The first release whose manifest knows cargo-nextest 0.9.143 (older ones fall back to
/// cargo-binstall).
pub const INSTALL_ACTION: Pin = Pin {
    action: "taiki-e/install-action",
    sha: "91ddec75689c4c78665b598d188dc821c5a43e5c",
    release: "v2.85.9",
};

/// Every pinned action, for the docs and the tests.
#[cfg(test)]
pub const ACTIONS: [Pin; 9] = [
    CHECKOUT,
    SETUP_PYTHON,
    CACHE_RESTORE,
    CACHE_SAVE,
    UPLOAD_ARTIFACT,
    DOWNLOAD_ARTIFACT,
    RUST_CACHE,
    RUST_TOOLCHAIN,
    INSTALL_ACTION,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shas_are_full_commits_and_the_toolchain_branch_matches() {
        for pin in ACTIONS {
            assert_eq!(pin.sha.len(), 40, "{}", pin.action);
            assert!(
                pin.sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                pin.action
            );
        }
        assert_eq!(RUST_TOOLCHAIN.release, TOOLCHAIN);
        let manifest =
            std::fs::read_to_string(crate::testing::checkout().join("Cargo.toml")).unwrap();
        let minor = TOOLCHAIN.rsplit_once('.').map(|(m, _)| m).unwrap();
        assert!(
            manifest.contains(&format!("rust-version = \"{minor}\"")),
            "Cargo.toml's rust-version is the pinned toolchain"
        );
    }
}
