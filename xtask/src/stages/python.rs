//! The Python stages: build-wheels (the one abi3 wheel), python-lint, python-test and upstream.
//! Every stage after build-wheels installs that wheel into a fresh uv venv and never builds.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::flags::{INDEX_URL, PYTHON, SERVICES_FULL};
use crate::pins::PYTHON_VERSIONS;
use crate::services;
use crate::tools::MATURIN;
use ci_engine::artifacts;
use ci_engine::cmd::Cmd;
use ci_engine::context::{Context, Interpreter};
use ci_engine::flags::StageArgs;
use ci_engine::graph::Artifact;
use ci_engine::junit::{TestRun, TestRuns};
use ci_engine::output::Tone;
use ci_engine::plan::{Action, Outcome, Plan, Runner};
use ci_engine::process;
use ci_engine::tools::{self, UV};

const PACKAGE_DIR: &str = "icechunk-python";
/// The null device, where mypy writes no cache.
const NO_CACHE: &str = if cfg!(windows) { "nul" } else { "/dev/null" };
const DISTRIBUTION: &str = "icechunk";
const LINT_REQUIREMENTS: &str = "icechunk-python/requirements/lint.txt";
const TEST_REQUIREMENTS: &str = "icechunk-python/requirements/test.txt";
const UPSTREAM_REQUIREMENTS: &str = "icechunk-python/requirements/upstream.txt";
/// Where upstream takes pre-releases from unless `--index-url` says otherwise.
pub const NIGHTLY_INDEX: &str = "https://pypi.anaconda.org/scientific-python-nightly-wheels/simple";

/// maturin's build of the wheel into the directory of `wheels`.
pub fn maturin_command(ctx: &Context, wheels: &Artifact) -> Cmd {
    MATURIN
        .cmd(ctx)
        .args([
            "build",
            "--locked",
            "--manifest-path",
            "icechunk-python/Cargo.toml",
            "--profile",
        ])
        .arg(super::rust::PROFILE)
        .arg("--out")
        .arg(ctx.rel(&artifacts::dir(ctx, wheels)))
}

/// A fresh venv: created, given its requirements, then the built wheel, offline.
struct Venv {
    create: Cmd,
    requirements: Cmd,
    wheel: Cmd,
    /// The venv's interpreter.
    python: PathBuf,
}

impl Venv {
    fn new(
        ctx: &Context,
        name: &str,
        python: &Path,
        install: Vec<String>,
        wheels: &Artifact,
    ) -> Venv {
        let venv = ctx.rel(&ctx.venvs_dir().join(name));
        let venv_python = venv.join("bin/python");
        let pip = || {
            tools::uv(ctx)
                .args(["pip", "install", "--python"])
                .arg(&venv_python)
        };
        Venv {
            create: tools::uv(ctx)
                .arg("venv")
                .arg(&venv)
                .arg("--clear")
                .arg("--python")
                .arg(python),
            requirements: pip().args(install),
            wheel: pip()
                .args(["--no-index", "--find-links"])
                .arg(ctx.rel(&artifacts::dir(ctx, wheels)))
                .arg(DISTRIBUTION),
            python: venv_python,
        }
    }

    fn plan(self) -> (Plan, PathBuf) {
        let plan = Plan::new()
            .run(self.create)
            .run(self.requirements)
            .run(self.wheel);
        (plan, self.python)
    }
}

/// The interpreter for single-venv stages: the required 3.11.
pub(super) fn required_interpreter(ctx: &Context) -> Result<&Interpreter> {
    match ctx.interpreters().first() {
        Some(i) if i.version == PYTHON_VERSIONS[0] => Ok(i),
        _ => bail!(
            "CPython {} is required but `python{}` was not found on PATH nor in pyenv. Install \
             it (it is the Python this project promises on every machine) and try again.",
            PYTHON_VERSIONS[0],
            PYTHON_VERSIONS[0]
        ),
    }
}

/// pytest in a venv, its failures annotated from the JUnit report it writes as `name`
/// (xunit1, the family that records each test's file and line).
fn pytest(ctx: &Context, python: &Path, name: &str, extra: &[&str]) -> TestRun {
    let report = ctx.rel(&ctx.xtask_dir().join("junit").join(format!("{name}.xml")));
    TestRun {
        cmd: Cmd::new(python.to_string_lossy())
            .args(["-m", "pytest", "icechunk-python/tests"])
            .args(extra)
            // No cache: what failed last time must not decide what runs now (and the
            // interpreters' suites run at once).
            .args(["-p", "no:cacheprovider"])
            .args(["-o", "junit_family=xunit1", "--junitxml"])
            .arg(&report),
        report,
        title: format!("Python tests ({name})"),
        // pytest names files relative to its rootdir, the package's directory.
        path_prefix: "icechunk-python/",
    }
}

pub fn lint(ctx: &Context, wheels: &'static Artifact) -> Result<Plan> {
    let python = required_interpreter(ctx)?;
    let (venv_plan, venv_python) = Venv::new(
        ctx,
        "lint",
        &python.path,
        vec!["-r".into(), LINT_REQUIREMENTS.into()],
        wheels,
    )
    .plan();
    let bin = |tool: &str| {
        venv_python
            .with_file_name(tool)
            .to_string_lossy()
            .into_owned()
    };
    Ok(artifacts::using(ctx, &[UV], wheels)
        .extend(venv_plan)
        // Without their caches: a lint reads the sources, never what an earlier run left.
        .run(Cmd::new(bin("ruff")).args(["check", "--no-cache", PACKAGE_DIR]))
        .run(Cmd::new(bin("ruff")).args(["format", "--check", "--no-cache", PACKAGE_DIR]))
        .run(
            Cmd::new(bin("mypy"))
                .args(["--config-file", "icechunk-python/pyproject.toml"])
                // No cache, read or written: mypy checks the sources, never an earlier run's
                // state.
                .args(["--no-incremental", "--cache-dir", NO_CACHE])
                .args(["icechunk-python/python", "icechunk-python/tests"]),
        ))
}

pub fn test(ctx: &Context, args: &StageArgs, wheels: &'static Artifact) -> Result<Plan> {
    let asked = args.list(&PYTHON);
    let versions: Vec<&str> = if !asked.is_empty() {
        asked.iter().map(String::as_str).collect()
    } else {
        required_interpreter(ctx)?;
        PYTHON_VERSIONS.to_vec()
    };
    let mut plan = artifacts::using(ctx, &[UV], wheels);
    if args.has(&SERVICES_FULL) {
        plan = plan.action(services::require_step());
    }
    let mut runs = Vec::new();
    for version in versions {
        let Some(python) = ctx.interpreters().iter().find(|i| i.version == version) else {
            if !asked.is_empty() {
                bail!("--python {version}: `python{version}` was not found on PATH nor in pyenv");
            }
            plan = plan.note(format!(
                "CPython {version} not found on PATH nor in pyenv: not tested"
            ));
            continue;
        };
        let (venv_plan, venv_python) = Venv::new(
            ctx,
            &format!("test-{version}"),
            &python.path,
            vec!["-r".into(), TEST_REQUIREMENTS.into()],
            wheels,
        )
        .plan();
        let name = format!("test-{version}");
        let run = if args.has(&SERVICES_FULL) {
            let mut run = pytest(ctx, &venv_python, &name, &[]);
            run.cmd = run.cmd.env_file(ctx.rel(&services::env_path(ctx)));
            run
        } else {
            pytest(ctx, &venv_python, &name, &["-m", "not services"])
        };
        plan = plan
            .note(format!("CPython {version}: {}", python.path.display()))
            .extend(venv_plan);
        runs.push(run);
    }
    // Every interpreter's suite at once: one set of servers serves them all (each test uses a
    // prefix of its own), and the stage takes about as long as its slowest suite.
    Ok(match runs.len() {
        0 => plan,
        1 => plan.action(runs.remove(0)),
        _ => plan.action(TestRuns(runs)),
    })
}

/// Install upstream's pre-releases from the extra index when it answers; when it does not,
/// fail on GitHub Actions (the scheduled run exists to test nightly builds) and elsewhere warn
/// loudly and take the pre-releases from the default index (PyPI).
#[derive(Debug)]
struct InstallPreReleases {
    index: String,
    /// Fetches the index's page of zarr with the interpreter, which speaks HTTPS.
    probe: Cmd,
    from_index: Cmd,
    fallback: Cmd,
}

impl fmt::Display for InstallPreReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "when {} answers ({}): {}; otherwise fail on GitHub Actions, elsewhere warn and: {}",
            self.index,
            self.probe.command_line(),
            self.from_index,
            self.fallback
        )
    }
}

impl Action for InstallPreReleases {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let ctx = runner.ctx();
        if process::capture(&self.probe, &ctx.root).is_ok() {
            runner
                .out()
                .say(Tone::Dim, &format!("# {} answers", self.index));
            runner.run(&self.from_index)?;
            return Ok(Outcome::Continue);
        }
        if ctx.github_actions {
            bail!(
                "the upstream index {} cannot be reached: the scheduled upstream run tests nightly \
                 builds and fails without them (locally it falls back to PyPI pre-releases)",
                self.index
            );
        }
        runner.warn(&format!(
            "the upstream index {} cannot be reached from here: falling back to pre-releases from \
             the default index (PyPI). These results do not cover nightly builds.",
            self.index
        ));
        runner.run(&self.fallback)?;
        Ok(Outcome::Continue)
    }
}

pub fn upstream(ctx: &Context, args: &StageArgs, wheels: &'static Artifact) -> Result<Plan> {
    let python = match ctx.interpreters().last() {
        Some(i) => i.path.clone(),
        None => required_interpreter(ctx)?.path.clone(),
    };
    let index = args.value(&INDEX_URL).unwrap_or(NIGHTLY_INDEX).to_string();
    let pre_releases: Vec<String> = [
        "--prerelease",
        "allow",
        "--resolution",
        "highest",
        "--upgrade",
        "-r",
        UPSTREAM_REQUIREMENTS,
    ]
    .map(String::from)
    .to_vec();
    let venv = Venv::new(ctx, "upstream", &python, pre_releases, wheels);
    let install = InstallPreReleases {
        probe: Cmd::new(python.to_string_lossy()).args([
            "-c",
            "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)",
            &format!("{}/zarr/", index.trim_end_matches('/')),
        ]),
        from_index: venv.requirements.clone().args([
            "--extra-index-url",
            &index,
            "--index-strategy",
            "unsafe-best-match",
        ]),
        fallback: venv.requirements,
        index,
    };
    let venv_python = venv.python;
    Ok(artifacts::using(ctx, &[UV], wheels)
        .run(venv.create)
        .action(install)
        .run(venv.wheel)
        .run(Cmd::new(venv_python.to_string_lossy()).args([
            "-c",
            "import hypothesis, numpy, zarr; print(f\"resolved: zarr {zarr.__version__}, numpy \
             {numpy.__version__}, hypothesis {hypothesis.__version__}\")",
        ]))
        .action(pytest(
            ctx,
            &venv_python,
            "upstream",
            &["-m", "not services"],
        )))
}

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use crate::flags::{INDEX_URL, PYTHON};
    use crate::pipeline::PIPELINE;
    use crate::stages::testing::plan_lines;
    use crate::testing::context;

    const VENV: &str = "UV_PYTHON_DOWNLOADS=never /tools/uv-0.13.9/bin/uv";

    #[test]
    fn build_wheels_plan() {
        assert_eq!(
            plan_lines(&context(), "build-wheels", &[]),
            [
                "- stop here when python-wheels already matches the sources (its manifest)",
                &format!(
                    "- stop here after repacking python-wheels with the Python sources when \
                     nothing else changed since it was built (its manifest; repacking rules {})",
                    &super::super::wheel_copies::repacker()[..12]
                ),
                "- ensure maturin 1.16.0",
                "- empty the directory of python-wheels",
                "$ /tools/maturin-1.16.0/bin/maturin build --locked --manifest-path \
                 icechunk-python/Cargo.toml --profile ci --out target/xtask/artifacts/wheels",
                "- write the manifest of python-wheels",
                "- record which members of python-wheels copy the Python sources",
            ]
        );
    }

    #[test]
    fn python_lint_plan_installs_the_wheel_offline() {
        assert_eq!(
            plan_lines(&context(), "python-lint", &[]),
            [
                "- ensure uv 0.13.9".to_string(),
                "- check that python-wheels exists and matches the sources".into(),
                format!(
                    "$ {VENV} venv target/xtask/venvs/lint --clear --python /py/3.11/bin/python3.11"
                ),
                format!(
                    "$ {VENV} pip install --python target/xtask/venvs/lint/bin/python -r \
                     icechunk-python/requirements/lint.txt"
                ),
                format!(
                    "$ {VENV} pip install --python target/xtask/venvs/lint/bin/python --no-index \
                     --find-links target/xtask/artifacts/wheels icechunk"
                ),
                "$ target/xtask/venvs/lint/bin/ruff check --no-cache icechunk-python".into(),
                "$ target/xtask/venvs/lint/bin/ruff format --check --no-cache icechunk-python"
                    .into(),
                "$ target/xtask/venvs/lint/bin/mypy --config-file \
                 icechunk-python/pyproject.toml --no-incremental --cache-dir /dev/null \
                 icechunk-python/python icechunk-python/tests"
                    .into(),
            ]
        );
    }

    #[test]
    fn python_test_plan_has_one_fresh_venv_per_interpreter() {
        let lines = plan_lines(&context(), "python-test", &["--full"]);
        assert_eq!(
            lines[2],
            "- check target/xtask/services.env and that its servers answer"
        );
        assert_eq!(lines[3], "# CPython 3.11: /py/3.11/bin/python3.11");
        assert_eq!(
            lines[7],
            "# CPython 3.12 not found on PATH nor in pyenv: not tested"
        );
        assert_eq!(lines[8], "# CPython 3.13: /py/3.13/bin/python3.13");
        assert_eq!(
            lines[9],
            format!(
                "$ {VENV} venv target/xtask/venvs/test-3.13 --clear --python /py/3.13/bin/python3.13"
            )
        );
        // Every venv first, then the suites at once.
        assert_eq!(
            lines[12],
            "- at once:\n    - run `env $(cat target/xtask/services.env) \
             target/xtask/venvs/test-3.11/bin/python -m pytest icechunk-python/tests -p \
             no:cacheprovider -o junit_family=xunit1 --junitxml \
             target/xtask/junit/test-3.11.xml`; on GitHub Actions annotate its failed tests from \
             target/xtask/junit/test-3.11.xml\n    - run `env $(cat target/xtask/services.env) \
             target/xtask/venvs/test-3.13/bin/python -m pytest icechunk-python/tests -p \
             no:cacheprovider -o junit_family=xunit1 --junitxml \
             target/xtask/junit/test-3.13.xml`; on GitHub Actions annotate its failed tests from \
             target/xtask/junit/test-3.13.xml"
        );
        assert_eq!(lines.len(), 13);

        let quick = plan_lines(&context(), "python-test", &["--python", "3.11"]);
        assert!(quick.iter().all(|l| !l.contains("services.env")));
        assert_eq!(
            quick[6],
            "- run `target/xtask/venvs/test-3.11/bin/python -m pytest icechunk-python/tests -m \
             'not services' -p no:cacheprovider -o \
             junit_family=xunit1 --junitxml target/xtask/junit/test-3.11.xml`; on GitHub Actions \
             annotate its failed tests from target/xtask/junit/test-3.11.xml"
        );
    }

    #[test]
    fn python_test_can_test_one_interpreter() {
        let lines = plan_lines(&context(), "python-test", &["--python", "3.13"]);
        assert!(lines.iter().all(|l| !l.contains("3.11")), "{lines:#?}");
        assert_eq!(lines[2], "# CPython 3.13: /py/3.13/bin/python3.13");
        let stage = PIPELINE.stage("python-test").unwrap();
        let args = ci_engine::flags::StageArgs::default().with(&PYTHON, Some("3.12".into()));
        let err = PIPELINE
            .plan(stage, &context(), &args)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`python3.12` was not found"), "{err}");
        // One job for every interpreter: each listed one is tested, in the order given.
        let lines = plan_lines(&context(), "python-test", &["--python", "3.11,3.13"]);
        let tested: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("# CPython"))
            .collect();
        assert_eq!(tested.len(), 2, "{lines:#?}");
        assert!(
            tested[0].contains("3.11") && tested[1].contains("3.13"),
            "{tested:?}"
        );
    }

    #[test]
    fn python_test_requires_3_11() {
        let ctx = ci_engine::context::Context::new(
            &crate::project::PROJECT,
            "/repo".into(),
            "/repo/target".into(),
            "/tools".into(),
            [],
        )
        .with_facts(vec![], false, &[]);
        let stage = PIPELINE.stage("python-test").unwrap();
        let err = PIPELINE
            .plan(stage, &ctx, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CPython 3.11 is required"), "{err}");
    }

    #[test]
    fn upstream_falls_back_loudly_when_the_index_is_unreachable() {
        let ctx = context();
        let stage = PIPELINE.stage("upstream").unwrap();
        let args = ci_engine::flags::StageArgs::default()
            .with(&INDEX_URL, Some("http://127.0.0.1:1/simple".into()));
        let plan = PIPELINE.plan(stage, &ctx, &args).unwrap();
        let lines = plan.lines();
        assert!(
            lines[3].starts_with("- when http://127.0.0.1:1/simple answers"),
            "{}",
            lines[3]
        );
        assert!(lines[5].contains("print(f\"resolved: zarr"), "{}", lines[5]);
        assert!(
            lines[6].contains("-m pytest icechunk-python/tests -m 'not services'"),
            "{}",
            lines[6]
        );

        // Carry out the install step alone: the index does not answer.
        let ci_engine::plan::Step::Do(install) = &plan.steps[3] else {
            panic!("{}", lines[3]);
        };
        let mut runner = ci_engine::plan::testing::Recorder::new(&ctx);
        install.perform(&mut runner).unwrap();
        assert!(
            runner.warnings[0].contains("cannot be reached"),
            "{runner:?}"
        );
        assert_eq!(
            runner.ran,
            [format!(
                "{VENV} pip install --python target/xtask/venvs/upstream/bin/python --prerelease \
                 allow --resolution highest --upgrade -r icechunk-python/requirements/upstream.txt"
            )]
        );
        let on_github = crate::testing::context_with_env(&[("GITHUB_ACTIONS", "true")]);
        let mut runner = ci_engine::plan::testing::Recorder::new(&on_github);
        let err = install.perform(&mut runner).unwrap_err().to_string();
        assert!(err.contains("fails without them"), "{err}");
        assert!(runner.ran.is_empty());
    }
}
