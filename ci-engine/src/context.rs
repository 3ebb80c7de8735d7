//! What a run knows about its surroundings: the workspace, where things go, the environment,
//! and facts probed from the machine (interpreters, a Docker engine, tools on PATH).
//!
//! Probes run at most once and lazily; tests set them up front so plans are deterministic.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context as _, Result};

use crate::cmd::Cmd;
use crate::{environment, process};

/// What the engine must know of a project before it plans anything.
#[derive(Debug)]
pub struct Project {
    /// Names the directory of the pinned tools: `~/.cache/<name>/tools`.
    pub name: &'static str,
    /// The CPython minor versions a run looks for, in order (the first is the default). Content
    /// keys plan with every one of them.
    pub pythons: &'static [&'static str],
    /// The variables the project adds to the declared environment.
    pub environment: &'static environment::Rules,
}

/// A CPython interpreter found on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// The minor version, `3.10` say.
    pub version: String,
    /// The real executable (pyenv shims resolved).
    pub path: PathBuf,
}

#[derive(Debug)]
pub struct Context {
    pub project: &'static Project,
    /// The workspace root; every relative path in a plan is relative to it.
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// Where pinned tools are installed (kept between runs).
    pub tools_dir: PathBuf,
    /// `CI=true` (or `1`), or GitHub Actions: artifacts must come from an earlier job, never be
    /// built implicitly.
    pub ci: bool,
    /// `GITHUB_ACTIONS=true`: groups, annotations, step summary, `$GITHUB_ENV`.
    pub github_actions: bool,
    /// `$CARGO` when xtask runs under cargo (the cargo of the toolchain that runs it), else
    /// `cargo` from PATH.
    pub cargo: String,
    /// Made by [`Context::for_keys`]: a plan says what every machine could run (both services
    /// backends, say) instead of resolving it for this one.
    pub for_keys: bool,
    interpreters: OnceCell<Vec<Interpreter>>,
    docker_engine: OnceCell<bool>,
    /// Program → the version of it on PATH (none when it is not there).
    /// Shared with the contexts [`Context::with_target_dir`] derives: a program is probed once.
    on_path: Rc<RefCell<BTreeMap<String, Option<String>>>>,
    /// Set by [`Context::with_facts`]: a program it did not list is not on PATH (no probe).
    probes_fixed: bool,
}

impl Context {
    /// The context of the workspace that contains the current directory, the project's
    /// environment rules declared for the process.
    pub fn discover(project: &'static Project) -> Result<Context> {
        environment::declare(project.environment)?;
        let metadata = cargo_metadata::MetadataCommand::new()
            .no_deps()
            .exec()
            .context("`cargo metadata` failed: run xtask from inside the workspace")?;
        let root = metadata.workspace_root.into_std_path_buf();
        let target_dir = metadata.target_directory.into_std_path_buf();
        Ok(Context::new(
            project,
            root,
            target_dir,
            tools_dir_from_env(project),
            std::env::vars(),
        ))
    }

    /// A context from explicit parts (tests use this).
    pub fn new(
        project: &'static Project,
        root: PathBuf,
        target_dir: PathBuf,
        tools_dir: PathBuf,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Context {
        let mut ci = false;
        let mut github_actions = false;
        let mut cargo = "cargo".to_string();
        for (key, value) in env {
            match key.as_str() {
                "CI" => ci = value == "true" || value == "1",
                "GITHUB_ACTIONS" => github_actions = value == "true",
                "CARGO" if !value.is_empty() => cargo = value,
                _ => {}
            }
        }
        Context {
            project,
            root,
            target_dir,
            tools_dir,
            ci: ci || github_actions,
            github_actions,
            cargo,
            for_keys: false,
            interpreters: OnceCell::new(),
            docker_engine: OnceCell::new(),
            on_path: Rc::default(),
            probes_fixed: false,
        }
    }

    /// A cargo command (callers pass `--locked` wherever cargo resolves dependencies).
    pub fn cargo(&self) -> Cmd {
        Cmd::new(&self.cargo)
    }

    /// `target/xtask`: everything xtask writes.
    pub fn xtask_dir(&self) -> PathBuf {
        self.target_dir.join("xtask")
    }

    pub fn artifacts_dir(&self) -> PathBuf {
        self.xtask_dir().join("artifacts")
    }

    pub fn venvs_dir(&self) -> PathBuf {
        self.xtask_dir().join("venvs")
    }

    pub fn report_path(&self) -> PathBuf {
        self.xtask_dir().join("report.json")
    }

    /// What `audit` found: each stage's reads against its key.
    pub fn audit_path(&self) -> PathBuf {
        self.xtask_dir().join("audit.json")
    }

    /// `compare`'s jobs, each in a directory of its own; its report is `compare.json` and
    /// `compare.md` beside it.
    pub fn compare_dir(&self) -> PathBuf {
        self.xtask_dir().join("compare")
    }

    /// `target/xtask/keys.json`: every stage's key, as `cargo xtask keys` last wrote them.
    pub fn keys_file(&self) -> PathBuf {
        self.xtask_dir().join("keys.json")
    }

    /// xtask's own binary as `cargo xtask` builds it (the dev profile).
    pub fn xtask_binary(&self) -> PathBuf {
        self.target_dir.join("debug").join("xtask")
    }

    /// `path` relative to the workspace root when it is inside it (how plans show paths).
    pub fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// The CPython interpreters found, in the order of the project's [`Project::pythons`].
    pub fn interpreters(&self) -> &[Interpreter] {
        self.interpreters
            .get_or_init(|| probe_interpreters(self.project.pythons))
    }

    /// Whether a Docker engine answers (not just a client on PATH).
    pub fn docker_engine(&self) -> bool {
        *self.docker_engine.get_or_init(|| {
            let cmd = Cmd::new("docker").args(["info", "--format", "{{.ServerVersion}}"]);
            process::capture(&cmd, &self.root).is_ok_and(|v| !v.trim().is_empty())
        })
    }

    /// The version of the program on PATH that `probe` (the program and its arguments) asks,
    /// if it answers: the second word of what it prints (`cargo-nextest 0.9.143 (…)`). The
    /// answer is kept by program: one program has one version, whichever probe asks.
    pub fn version_on_path(&self, probe: &[&str]) -> Option<String> {
        let (program, args) = probe.split_first()?;
        if let Some(known) = self.on_path.borrow().get(*program) {
            return known.clone();
        }
        if self.probes_fixed {
            return None;
        }
        let cmd = Cmd::new(*program).args(args.iter().copied());
        let version = process::capture(&cmd, &self.root)
            .ok()
            .and_then(|out| out.split_whitespace().nth(1).map(str::to_string));
        self.on_path
            .borrow_mut()
            .insert(program.to_string(), version.clone());
        version
    }

    /// Fix the probed facts (tests, and the keys' context): the interpreters, whether a Docker
    /// engine answers, and the programs on PATH with their versions (any other is not there).
    pub fn with_facts(
        mut self,
        interpreters: Vec<Interpreter>,
        docker_engine: bool,
        on_path: &[(&str, &str)],
    ) -> Context {
        let _ = self.interpreters.set(interpreters);
        let _ = self.docker_engine.set(docker_engine);
        self.on_path.borrow_mut().extend(
            on_path
                .iter()
                .map(|(program, version)| (program.to_string(), Some(version.to_string()))),
        );
        self.probes_fixed = true;
        self
    }

    /// The paths of a GitHub runner's checkout, as the workflows name them: relative to the
    /// checkout, the target directory at cargo's default place, the tools where
    /// `tools_dir_from_env` puts them on a runner (no `XTASK_TOOLS_DIR`, no
    /// `XDG_CACHE_HOME`). Render them with [`slashed`].
    pub fn on_runner(project: &'static Project) -> Context {
        let tools = tools_under(PathBuf::from("~/.cache"), project);
        Context::new(
            project,
            PathBuf::new(),
            PathBuf::from(DEFAULT_TARGET),
            tools,
            std::iter::empty(),
        )
    }

    /// The context content keys plan with: this workspace and its flags, but nothing this
    /// machine happens to have — every interpreter of [`Project::pythons`] by its bare name, no
    /// Docker engine, the pinned tools under `<tools>`, `cargo` from PATH, the target
    /// directory at its default place — so a key is the same on every machine and a stage's
    /// plan can always be made.
    pub fn for_keys(&self) -> Context {
        let ctx = Context {
            project: self.project,
            root: self.root.clone(),
            target_dir: self.root.join(DEFAULT_TARGET),
            tools_dir: PathBuf::from("<tools>"),
            ci: self.ci,
            github_actions: self.github_actions,
            cargo: "cargo".to_string(),
            for_keys: true,
            interpreters: OnceCell::new(),
            docker_engine: OnceCell::new(),
            on_path: Rc::default(),
            probes_fixed: false,
        };
        let interpreters = self
            .project
            .pythons
            .iter()
            .map(|version| Interpreter {
                version: version.to_string(),
                path: PathBuf::from(format!("python{version}")),
            })
            .collect();
        ctx.with_facts(interpreters, false, &[])
    }

    /// The same context with another target directory (compare's per-job builds), sharing the
    /// facts probed.
    pub fn with_target_dir(&self, target_dir: PathBuf) -> Context {
        let ctx = Context {
            project: self.project,
            root: self.root.clone(),
            target_dir,
            tools_dir: self.tools_dir.clone(),
            ci: self.ci,
            github_actions: self.github_actions,
            cargo: self.cargo.clone(),
            for_keys: self.for_keys,
            interpreters: OnceCell::new(),
            docker_engine: OnceCell::new(),
            on_path: Rc::clone(&self.on_path),
            probes_fixed: self.probes_fixed,
        };
        let _ = ctx.interpreters.set(self.interpreters().to_vec());
        let _ = ctx.docker_engine.set(self.docker_engine());
        ctx
    }
}

/// cargo's target directory when nothing moves it.
const DEFAULT_TARGET: &str = "target";
/// Where the pinned tools live under a cache directory: `<cache>/<project>/tools`.
fn tools_under(cache: PathBuf, project: &Project) -> PathBuf {
    cache.join(project.name).join("tools")
}

/// A relative path with `/` between its parts, whatever the platform (the workflows' paths).
pub fn slashed(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// `XTASK_TOOLS_DIR`, else `$XDG_CACHE_HOME/<project>/tools`, else `~/.cache/<project>/tools`.
fn tools_dir_from_env(project: &Project) -> PathBuf {
    if let Some(dir) = std::env::var_os("XTASK_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| std::env::temp_dir().join("cache"));
    tools_under(cache, project)
}

/// `python3.X` from PATH, else the newest pyenv install of 3.X (pyenv users keep versions
/// installed but off PATH).
/// Probed in parallel: pyenv's shims take a fifth of a second each.
fn probe_interpreters(pythons: &[&str]) -> Vec<Interpreter> {
    std::thread::scope(|scope| {
        let probes: Vec<_> = pythons
            .iter()
            .map(|version| {
                scope.spawn(move || {
                    let on_path = PathBuf::from(format!("python{version}"));
                    std::iter::once(on_path)
                        .chain(pyenv_candidate(version))
                        .find_map(|program| probe_cpython(&program))
                        .map(|path| Interpreter {
                            version: version.to_string(),
                            path,
                        })
                })
            })
            .collect();
        probes
            .into_iter()
            .filter_map(|p| p.join().ok().flatten())
            .collect()
    })
}

/// The real executable behind `program`, if it is CPython.
fn probe_cpython(program: &Path) -> Option<PathBuf> {
    let cmd = Cmd::new(program.to_string_lossy()).args([
        "-c",
        "import sys; print(sys.implementation.name, sys.executable)",
    ]);
    let out = process::capture(&cmd, Path::new(".")).ok()?;
    let (implementation, executable) = out.trim().split_once(' ')?;
    (implementation == "cpython" && !executable.is_empty()).then(|| PathBuf::from(executable))
}

fn pyenv_candidate(version: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))?;
    let prefix = format!("{version}.");
    let patch = |name: &str| {
        name.strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
    };
    let newest = std::fs::read_dir(root.join("versions"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| patch(name).is_some())
        .max_by_key(|name| patch(name))?;
    Some(
        root.join("versions")
            .join(newest)
            .join("bin")
            .join(format!("python{version}")),
    )
}

#[cfg(test)]
pub mod testing {
    //! A context for the engine's own tests, of a project that names nothing.
    use super::*;

    pub static EXAMPLE: Project = Project {
        name: "example-xtask",
        pythons: &[],
        environment: &environment::NO_RULES,
    };

    /// A context whose root is a real directory (for tests that run commands).
    pub fn context_at(root: PathBuf) -> Context {
        let target = root.join("target");
        Context::new(&EXAMPLE, root, target, "/tools".into(), std::iter::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_names_the_paths_a_local_run_uses_relative_to_its_checkout() {
        let runner = Context::on_runner(&testing::EXAMPLE);
        assert_eq!(slashed(&runner.keys_file()), "target/xtask/keys.json");
        assert_eq!(slashed(&runner.xtask_binary()), "target/debug/xtask");
        assert_eq!(slashed(&runner.tools_dir), "~/.cache/example-xtask/tools");
        // The same parts as a machine's own default, under its cache directory.
        let local = tools_dir_from_env(&testing::EXAMPLE);
        if std::env::var_os("XTASK_TOOLS_DIR").is_none() {
            assert!(
                local.ends_with("example-xtask/tools"),
                "{}",
                local.display()
            );
        }
    }
}
