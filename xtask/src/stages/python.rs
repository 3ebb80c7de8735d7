//! The Python stages: build-wheels (the one abi3 wheel), python-lint, python-test and upstream.
//! Every stage after build-wheels installs that wheel into a fresh uv venv and never builds.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::artifacts;
use crate::context::{Context, Interpreter, PYTHON_VERSIONS};
use crate::exec;
use crate::graph::{Artifact, StageArgs};
use crate::plan::{Action, Cmd, Plan};
use crate::services;
use crate::tools::{self, Tool};

const PACKAGE_DIR: &str = "icechunk-python";
const DISTRIBUTION: &str = "icechunk";
const LINT_REQUIREMENTS: &str = "icechunk-python/requirements/lint.txt";
const TEST_REQUIREMENTS: &str = "icechunk-python/requirements/test.txt";
const UPSTREAM_REQUIREMENTS: &str = "icechunk-python/requirements/upstream.txt";
/// Where upstream takes pre-releases from unless `--index-url` says otherwise.
pub const NIGHTLY_INDEX: &str = "https://pypi.anaconda.org/scientific-python-nightly-wheels/simple";

pub fn maturin_command(ctx: &Context) -> Cmd {
    Tool::Maturin
        .cmd(ctx)
        .args([
            "build",
            "--manifest-path",
            "icechunk-python/Cargo.toml",
            "--profile",
        ])
        .arg(super::rust::PROFILE)
        .arg("--out")
        .arg(ctx.rel(&artifacts::dir(ctx, Artifact::Wheels)))
}

pub fn build_wheels(ctx: &Context, _args: &StageArgs) -> Result<Plan> {
    super::build(ctx, Artifact::Wheels, &[Tool::Maturin])
}

/// A fresh venv with `install` (requirements) and then the built wheel, offline.
/// Returns the plan and the venv's python.
fn venv_with_wheel(
    ctx: &Context,
    name: &str,
    python: &Path,
    install: Vec<String>,
) -> (Plan, PathBuf) {
    let venv = ctx.rel(&ctx.venvs_dir().join(name));
    let venv_python = venv.join("bin/python");
    let plan = Plan::new()
        .run(
            tools::uv(ctx)
                .arg("venv")
                .arg(&venv)
                .arg("--clear")
                .arg("--python")
                .arg(python),
        )
        .run(
            tools::uv(ctx)
                .args(["pip", "install", "--python"])
                .arg(&venv_python)
                .args(install),
        )
        .run(
            tools::uv(ctx)
                .args(["pip", "install", "--python"])
                .arg(&venv_python)
                .args(["--no-index", "--find-links"])
                .arg(ctx.rel(&artifacts::dir(ctx, Artifact::Wheels)))
                .arg(DISTRIBUTION),
        );
    (plan, venv_python)
}

/// The interpreter for single-venv stages: the required 3.11.
fn required_interpreter(ctx: &Context) -> Result<&Interpreter> {
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

fn pytest(python: &Path) -> Cmd {
    Cmd::new(python.to_string_lossy()).args(["-m", "pytest", "icechunk-python/tests"])
}

pub fn lint(ctx: &Context, _args: &StageArgs) -> Result<Plan> {
    let python = required_interpreter(ctx)?;
    let (venv_plan, venv_python) = venv_with_wheel(
        ctx,
        "lint",
        &python.path,
        vec!["-r".into(), LINT_REQUIREMENTS.into()],
    );
    let bin = |tool: &str| {
        venv_python
            .with_file_name(tool)
            .to_string_lossy()
            .into_owned()
    };
    Ok(super::using(Tool::Uv, Artifact::Wheels)
        .extend(venv_plan)
        .run(Cmd::new(bin("ruff")).args(["check", PACKAGE_DIR]))
        .run(Cmd::new(bin("ruff")).args(["format", "--check", PACKAGE_DIR]))
        .run(
            Cmd::new(bin("mypy"))
                .args(["--config-file", "icechunk-python/pyproject.toml"])
                .args(["icechunk-python/python", "icechunk-python/tests"])
                .env(
                    "MYPY_CACHE_DIR",
                    ctx.rel(&ctx.xtask_dir().join("mypy-cache")),
                ),
        ))
}

pub fn test(ctx: &Context, args: &StageArgs) -> Result<Plan> {
    let versions: Vec<&str> = match &args.python {
        Some(only) => vec![only.as_str()],
        None => {
            required_interpreter(ctx)?;
            PYTHON_VERSIONS.to_vec()
        }
    };
    let mut plan = super::using(Tool::Uv, Artifact::Wheels);
    if args.full {
        plan = plan.action(Action::RequireServices);
    }
    for version in versions {
        let Some(python) = ctx.interpreters().iter().find(|i| i.version == version) else {
            if args.python.is_some() {
                bail!("--python {version}: `python{version}` was not found on PATH nor in pyenv");
            }
            plan = plan.note(format!(
                "CPython {version} not found on PATH nor in pyenv: not tested"
            ));
            continue;
        };
        let (venv_plan, venv_python) = venv_with_wheel(
            ctx,
            &format!("test-{version}"),
            &python.path,
            vec!["-r".into(), TEST_REQUIREMENTS.into()],
        );
        let run = if args.full {
            pytest(&venv_python).env_file(ctx.rel(&services::env_path(ctx)))
        } else {
            pytest(&venv_python).args(["-m", "not services"])
        };
        plan = plan
            .note(format!("CPython {version}: {}", python.path.display()))
            .extend(venv_plan)
            .run(run);
    }
    Ok(plan)
}

/// Whether a simple index answers (probed with the interpreter, which speaks HTTPS).
fn index_reachable(python: &Path, index: &str) -> bool {
    let probe = Cmd::new(python.to_string_lossy()).args([
        "-c",
        "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)",
        &format!("{}/zarr/", index.trim_end_matches('/')),
    ]);
    exec::capture(&probe, Path::new(".")).is_ok()
}

pub fn upstream(ctx: &Context, args: &StageArgs) -> Result<Plan> {
    let python = ctx.interpreters().last().map(|i| i.path.clone());
    let python = match python {
        Some(p) => p,
        None => required_interpreter(ctx)?.path.clone(),
    };
    let index = args
        .index_url
        .clone()
        .unwrap_or_else(|| NIGHTLY_INDEX.to_string());
    let mut install: Vec<String> = [
        "--prerelease",
        "allow",
        "--resolution",
        "highest",
        "--upgrade",
    ]
    .map(String::from)
    .to_vec();
    let mut plan = super::using(Tool::Uv, Artifact::Wheels);
    if index_reachable(&python, &index) {
        install.extend([
            "--extra-index-url".into(),
            index,
            "--index-strategy".into(),
            "unsafe-best-match".into(),
        ]);
    } else {
        plan = plan.warn(format!(
            "the upstream index {index} cannot be reached from here: falling back to pre-releases \
             from the default index (PyPI). These results do not cover nightly builds."
        ));
    }
    install.extend(["-r".into(), UPSTREAM_REQUIREMENTS.into()]);
    let (venv_plan, venv_python) = venv_with_wheel(ctx, "upstream", &python, install);
    Ok(plan
        .extend(venv_plan)
        .run(Cmd::new(venv_python.to_string_lossy()).args([
            "-c",
            "import hypothesis, numpy, zarr; print(f\"resolved: zarr {zarr.__version__}, numpy \
             {numpy.__version__}, hypothesis {hypothesis.__version__}\")",
        ]))
        .run(pytest(&venv_python).args(["-m", "not services"])))
}

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use crate::context::testing::context;
    use crate::stages::testing::plan_lines;

    const VENV: &str = "UV_PYTHON_DOWNLOADS=never /tools/uv-0.13.9/bin/uv";

    #[test]
    fn build_wheels_plan() {
        assert_eq!(
            plan_lines(&context(), "build-wheels", &[]),
            [
                "- ensure maturin 1.16.0",
                "- empty the directory of python-wheels",
                "$ /tools/maturin-1.16.0/bin/maturin build --manifest-path \
                 icechunk-python/Cargo.toml --profile ci --out target/xtask/artifacts/wheels",
                "- write the manifest of python-wheels",
            ]
        );
    }

    #[test]
    fn python_lint_plan_installs_the_wheel_offline() {
        assert_eq!(
            plan_lines(&context(), "python-lint", &[]),
            [
                "- ensure uv 0.13.9".to_string(),
                "- check that python-wheels exists and matches the sources (locally: build it \
                 when missing)"
                    .into(),
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
                "$ target/xtask/venvs/lint/bin/ruff check icechunk-python".into(),
                "$ target/xtask/venvs/lint/bin/ruff format --check icechunk-python".into(),
                "$ MYPY_CACHE_DIR=target/xtask/mypy-cache target/xtask/venvs/lint/bin/mypy \
                 --config-file icechunk-python/pyproject.toml icechunk-python/python \
                 icechunk-python/tests"
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
            "$ env $(cat target/xtask/services.env) target/xtask/venvs/test-3.11/bin/python -m \
             pytest icechunk-python/tests"
        );
        assert_eq!(
            lines[8],
            "# CPython 3.12 not found on PATH nor in pyenv: not tested"
        );
        assert_eq!(lines[9], "# CPython 3.13: /py/3.13/bin/python3.13");
        assert_eq!(
            lines[10],
            format!(
                "$ {VENV} venv target/xtask/venvs/test-3.13 --clear --python /py/3.13/bin/python3.13"
            )
        );
        assert_eq!(lines.len(), 14);

        let quick = plan_lines(&context(), "python-test", &[]);
        assert!(quick.iter().all(|l| !l.contains("services.env")));
        assert_eq!(
            quick[6],
            "$ target/xtask/venvs/test-3.11/bin/python -m pytest icechunk-python/tests -m 'not services'"
        );
    }

    #[test]
    fn python_test_can_test_one_interpreter() {
        let lines = plan_lines(&context(), "python-test", &["--python", "3.13"]);
        assert!(lines.iter().all(|l| !l.contains("3.11")), "{lines:#?}");
        assert_eq!(lines[2], "# CPython 3.13: /py/3.13/bin/python3.13");
        let stage = crate::graph::stage("python-test").unwrap();
        let args = crate::graph::StageArgs {
            python: Some("3.12".into()),
            ..Default::default()
        };
        let err = (stage.plan)(&context(), &args).unwrap_err().to_string();
        assert!(err.contains("`python3.12` was not found"), "{err}");
    }

    #[test]
    fn python_test_requires_3_11() {
        let ctx = crate::context::Context::new(
            "/repo".into(),
            "/repo/target".into(),
            "/tools".into(),
            [],
        )
        .with_facts(vec![], false, None);
        let stage = crate::graph::stage("python-test").unwrap();
        let err = (stage.plan)(&ctx, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CPython 3.11 is required"), "{err}");
    }

    #[test]
    fn upstream_falls_back_loudly_when_the_index_is_unreachable() {
        let lines = plan_lines(
            &context(),
            "upstream",
            &["--index-url", "http://127.0.0.1:1/simple"],
        );
        assert!(
            lines[2]
                .starts_with("! the upstream index http://127.0.0.1:1/simple cannot be reached")
        );
        assert_eq!(
            lines[4],
            format!(
                "$ {VENV} pip install --python target/xtask/venvs/upstream/bin/python --prerelease \
                 allow --resolution highest --upgrade -r icechunk-python/requirements/upstream.txt"
            )
        );
        assert!(lines[6].contains("print(f\"resolved: zarr"), "{}", lines[6]);
        assert!(lines[7].ends_with("-m pytest icechunk-python/tests -m 'not services'"));
    }
}
