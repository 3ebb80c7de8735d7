//! Pinned tools: found where they already are, or installed into the tools directory.
//!
//! Every tool has one pinned version and one installer that works from package registries
//! alone (crates.io, PyPI, npm). Installs go to `<tools dir>/<name>-<version>/` and are marked
//! complete only when they succeed, so a broken install is retried, never half-used. A project
//! declares its tools as [`Tool`] values; uv, which installs the PyPI ones, is [`UV`].

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::output::Tone;
use crate::plan::{Action, Outcome, Runner};
use crate::process;

/// A pinned tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
    pub installer: Installer,
    /// The executable, relative to the install directory.
    pub exe: &'static str,
    /// The command that prints the version of the tool's program on PATH (`<name> <version>`),
    /// when that program at the pinned version is used as is instead of an install.
    pub on_path: Option<&'static [&'static str]>,
    /// The cargo subcommand it provides, if any (`nextest`): it runs as `cargo <subcommand>`
    /// when the pinned version is on PATH and as `<program> <subcommand>` when installed, and
    /// either way it runs the Rust toolchain.
    pub cargo_subcommand: Option<&'static str>,
}

/// How a tool gets installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Installer {
    /// `cargo install <crate>@<version> --locked --root <dir>`.
    Cargo(&'static str),
    /// A venv made by the project's first CPython found (else `python3`) with the package
    /// pip-installed (bootstraps uv).
    Pip(&'static str),
    /// A venv made by uv with the requirement installed by uv ([`UV`] first).
    Uv(&'static str),
    /// `npm install --prefix <dir> <package>@<version>`.
    Npm(&'static str),
}

/// uv, which installs every [`Installer::Uv`] tool and makes the venvs.
pub const UV: Tool = Tool {
    name: "uv",
    version: "0.13.9",
    installer: Installer::Pip("uv"),
    exe: "bin/uv",
    on_path: None,
    cargo_subcommand: None,
};

impl Tool {
    /// Where it comes from and how it is installed, for the docs.
    pub fn source(self) -> String {
        let (registry, package, how) = match self.installer {
            Installer::Cargo(p) => ("crates.io", p, Some("cargo install")),
            Installer::Pip(p) => ("PyPI", p, Some("pip, in a venv of the first CPython found")),
            Installer::Uv(p) => ("PyPI", p, Some("uv, in its own venv")),
            Installer::Npm(p) => ("npm", p, None),
        };
        let notes: Vec<&str> = how
            .into_iter()
            .chain(self.on_path.map(|_| "or already on PATH"))
            .collect();
        if notes.is_empty() {
            format!("{registry} `{package}`")
        } else {
            format!("{registry} `{package}` ({})", notes.join("; "))
        }
    }

    /// This tool and, for those uv installs, uv first.
    pub fn with_installer(self) -> Vec<Tool> {
        match self.installer {
            Installer::Uv(_) => vec![UV, self],
            _ => vec![self],
        }
    }

    /// Whether installing it needs a CPython (its venv is made from one).
    pub fn needs_python(self) -> bool {
        matches!(self.installer, Installer::Pip(_) | Installer::Uv(_))
    }

    /// Where this tool lives when xtask installs it.
    pub fn install_dir(self, ctx: &Context) -> PathBuf {
        ctx.tools_dir
            .join(format!("{}-{}", self.name, self.version))
    }

    /// The program to run: the one on PATH when it is the pinned version (see
    /// [`Tool::on_path`]), else the one in the tools directory.
    pub fn program(self, ctx: &Context) -> PathBuf {
        match self.on_path {
            Some(probe) if ctx.version_on_path(probe).as_deref() == Some(self.version) => {
                PathBuf::from(probe[0])
            }
            _ => self.installed_program(ctx),
        }
    }

    /// Whether the program on PATH is used (see [`Tool::on_path`]).
    pub fn used_from_path(self, ctx: &Context) -> bool {
        self.program(ctx) != self.installed_program(ctx)
    }

    /// The interpreter of the venv a PyPI tool is installed into (pip or uv).
    pub fn venv_python(self, ctx: &Context) -> PathBuf {
        self.install_dir(ctx).join("bin/python")
    }

    /// Where xtask installs the tool's program.
    pub fn installed_program(self, ctx: &Context) -> PathBuf {
        self.install_dir(ctx).join(self.exe)
    }

    /// A command that runs the tool: node scripts go through `node`, and a cargo subcommand
    /// on PATH through cargo.
    pub fn cmd(self, ctx: &Context) -> Cmd {
        let program = self.program(ctx);
        match (self.installer, self.cargo_subcommand) {
            (_, Some(sub)) if self.used_from_path(ctx) => ctx.cargo().arg(sub),
            (_, Some(sub)) => Cmd::new(program.to_string_lossy()).arg(sub),
            (Installer::Npm(_), None) => Cmd::new("node").arg(program),
            _ => Cmd::new(program.to_string_lossy()),
        }
    }

    /// Whether it runs the Rust toolchain (a cargo subcommand does): a stage using it depends
    /// on the toolchain even when it compiles nothing.
    pub fn uses_toolchain(self) -> bool {
        self.cargo_subcommand.is_some()
    }

    /// How a recipe names the command that runs it, wherever it was found: a cargo subcommand
    /// installed in the tools directory is written as cargo runs it from PATH.
    pub fn recipe_alias(self, ctx: &Context) -> Option<(String, String)> {
        let sub = self.cargo_subcommand?;
        Some((
            format!("{} {sub}", self.installed_program(ctx).display()),
            format!("cargo {sub}"),
        ))
    }

    fn marker(self, ctx: &Context) -> PathBuf {
        self.install_dir(ctx).join(".xtask-installed")
    }

    /// What its install is made from: the pinned version and the installer with its package
    /// (a content key has it, and an install of another spec is not this tool).
    pub fn install_spec(self) -> String {
        format!("{} {:?}", self.version, self.installer)
    }

    /// Installed means it runs: the marker of a finished install of this spec (an install
    /// directory is named for the version alone, so a changed package or installer installs
    /// anew), the program, and for tools in a venv an interpreter that still starts (a cached
    /// venv whose base Python was replaced by a newer patch release does not, and is installed
    /// again).
    fn installed(self, ctx: &Context) -> bool {
        if self.used_from_path(ctx) {
            return true;
        }
        let marked = std::fs::read_to_string(self.marker(ctx));
        if marked.ok().as_deref() != Some(self.install_spec().as_str())
            || !self.installed_program(ctx).is_file()
        {
            return false;
        }
        match self.installer {
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
        let dir = self.install_dir(ctx);
        let pinned = format!("{}=={}", spec_package(self.installer), self.version);
        match self.installer {
            Installer::Cargo(krate) => vec![
                ctx.cargo()
                    .args([
                        "install",
                        &format!("{krate}@{}", self.version),
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
                    .arg(format!("{package}@{}", self.version)),
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
        write!(f, "{} {}", self.name, self.version)
    }
}

/// A uv command that never downloads a Python (uv would fetch builds from GitHub).
pub fn uv(ctx: &Context) -> Cmd {
    Cmd::new(UV.program(ctx).to_string_lossy()).env("UV_PYTHON_DOWNLOADS", "never")
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
    if matches!(tool.installer, Installer::Uv(_)) {
        ensure(runner, UV)?;
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
        .join(format!(".{}-{}.lock", tool.name, tool.version));
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
    std::fs::write(tool.marker(runner.ctx()), tool.install_spec())
        .with_context(|| format!("could not mark {tool} as installed"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOL: Tool = Tool {
        name: "lint",
        version: "1.0.0",
        installer: Installer::Npm("lint"),
        exe: "bin/lint.js",
        on_path: None,
        cargo_subcommand: None,
    };

    #[test]
    fn an_install_of_another_spec_is_not_this_tool() {
        let root = std::env::temp_dir().join(format!("ci-engine-tools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let ctx = Context::new(
            &crate::context::testing::EXAMPLE,
            root.clone(),
            root.join("target"),
            root.join("tools"),
            [],
        )
        .with_facts(Vec::new(), false, &[]);
        let program = TOOL.installed_program(&ctx);
        std::fs::create_dir_all(program.parent().unwrap()).unwrap();
        std::fs::write(&program, "").unwrap();
        assert!(
            !TOOL.installed(&ctx),
            "no marker: the install did not finish"
        );
        std::fs::write(TOOL.marker(&ctx), TOOL.install_spec()).unwrap();
        assert!(TOOL.installed(&ctx));
        let other = Tool {
            installer: Installer::Npm("@other/lint"),
            ..TOOL
        };
        assert_eq!(other.install_dir(&ctx), TOOL.install_dir(&ctx));
        assert!(
            !other.installed(&ctx),
            "another package under the same version"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
