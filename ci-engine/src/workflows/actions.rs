//! The GitHub actions the generated workflows use, each at a full commit SHA with the release
//! it is. A project pins its toolchain's action itself ([`crate::jobs::Generation`]).

use crate::jobs::Pin;

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
/// install-action: a release whose manifest knows the pinned tools it installs (older ones
/// fall back to cargo-binstall).
pub const INSTALL_ACTION: Pin = Pin {
    action: "taiki-e/install-action",
    sha: "91ddec75689c4c78665b598d188dc821c5a43e5c",
    release: "v2.85.9",
};

/// Every action above, for the docs and the tests.
pub const ACTIONS: [Pin; 8] = [
    CHECKOUT,
    SETUP_PYTHON,
    CACHE_RESTORE,
    CACHE_SAVE,
    UPLOAD_ARTIFACT,
    DOWNLOAD_ARTIFACT,
    RUST_CACHE,
    INSTALL_ACTION,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shas_are_full_commits() {
        for pin in ACTIONS {
            assert_eq!(pin.sha.len(), 40, "{}", pin.action);
            assert!(
                pin.sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                pin.action
            );
        }
    }
}
