//! The stage graph: every CI stage declared once, as data.
//!
//! A stage has a name, a line of help, the stages it needs, the artifacts it produces and
//! consumes, the flags it accepts, and the function that turns it into a [`Plan`]. Everything
//! else — `cargo xtask list`, `cargo xtask <stage> --help`, the order `cargo xtask ci` runs in,
//! the workflow drift check and the docs table — is derived from [`STAGES`].

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::plan::Plan;
use crate::stages;

/// Something a stage leaves behind for later stages (and later workflow jobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Artifact {
    /// The nextest archive of every Rust test binary, with its manifest.
    RustTests,
    /// The abi3 wheel of icechunk-python, with its manifest.
    Wheels,
    /// Running S3 and Azure servers, described by `target/xtask/services.env`.
    Services,
}

impl Artifact {
    pub const ALL: [Artifact; 3] = [Artifact::RustTests, Artifact::Wheels, Artifact::Services];

    /// The name used in docs and, with the platform appended, for workflow artifacts.
    pub fn name(self) -> &'static str {
        match self {
            Artifact::RustTests => "rust-artifacts",
            Artifact::Wheels => "python-wheels",
            Artifact::Services => "services",
        }
    }

    /// Whether the artifact is files that a workflow can upload and another job download.
    /// Services are processes: every job that needs them starts its own.
    pub fn is_transferable(self) -> bool {
        !matches!(self, Artifact::Services)
    }

    /// The one stage that produces this artifact.
    pub fn producer(self) -> &'static Stage {
        STAGES
            .iter()
            .find(|s| s.produces.contains(&self))
            .unwrap_or_else(|| unreachable!("every artifact has a producer (checked by a test)"))
    }
}

/// When `cargo xtask ci` runs a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// On every pipeline run (pull requests, pushes, `cargo xtask ci`).
    EveryRun,
    /// Only in the scheduled pipeline (`cargo xtask ci --scheduled`).
    Scheduled,
}

/// A flag a stage accepts.
#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    /// The value's placeholder, or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// One CI stage.
pub struct Stage {
    pub name: &'static str,
    pub help: &'static str,
    /// A longer explanation for `cargo xtask <stage> --help`.
    pub about: &'static str,
    pub needs: &'static [&'static str],
    pub produces: &'static [Artifact],
    pub consumes: &'static [Artifact],
    pub flags: &'static [Flag],
    /// The flags `cargo xtask ci` runs this stage with.
    pub ci_args: &'static [&'static str],
    pub schedule: Schedule,
    pub plan: fn(&Context, &StageArgs) -> Result<Plan>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Parsed values of a stage's flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageArgs {
    /// `--partition hash:M/N` for the test stages.
    pub partition: Option<String>,
    /// `--backend auto|docker|native` for docker-up.
    pub backend: Option<String>,
    /// `--full` for python-test: add the tests that need services.
    pub full: bool,
    /// `--python X.Y` for python-test: test this interpreter only (a workflow matrix entry).
    pub python: Option<String>,
    /// `--index-url URL` for upstream.
    pub index_url: Option<String>,
}

impl StageArgs {
    /// The flags `cargo xtask ci` runs `stage` with.
    pub fn for_ci(stage: &Stage) -> Result<StageArgs> {
        let args: Vec<String> = stage.ci_args.iter().map(|a| a.to_string()).collect();
        StageArgs::parse(stage, &args)
    }

    /// Parse `args` against the flags `stage` accepts.
    pub fn parse(stage: &Stage, args: &[String]) -> Result<StageArgs> {
        let mut parsed = StageArgs::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let Some(flag) = stage.flags.iter().find(|f| f.name == name) else {
                bail!(
                    "unknown argument `{arg}` for stage `{}`; it accepts: {}",
                    stage.name,
                    describe_flags(stage)
                );
            };
            let value = match (flag.value, inline) {
                (None, None) => None,
                (None, Some(_)) => bail!("`{}` takes no value", flag.name),
                (Some(_), Some(v)) => Some(v),
                (Some(placeholder), None) => match iter.next() {
                    Some(v) => Some(v.clone()),
                    None => bail!("`{}` needs a value: {} {placeholder}", flag.name, flag.name),
                },
            };
            match flag.name {
                "--partition" => parsed.partition = value.map(check_partition).transpose()?,
                "--backend" => parsed.backend = value.map(check_backend).transpose()?,
                "--full" => parsed.full = true,
                "--python" => parsed.python = value.map(check_python).transpose()?,
                "--index-url" => parsed.index_url = value,
                other => unreachable!("flag {other} is declared but not parsed"),
            }
        }
        Ok(parsed)
    }

    /// The arguments that reproduce these values, in flag order.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = &self.partition {
            args.extend(["--partition".to_string(), p.clone()]);
        }
        if let Some(b) = &self.backend {
            args.extend(["--backend".to_string(), b.clone()]);
        }
        if self.full {
            args.push("--full".to_string());
        }
        if let Some(p) = &self.python {
            args.extend(["--python".to_string(), p.clone()]);
        }
        if let Some(u) = &self.index_url {
            args.extend(["--index-url".to_string(), u.clone()]);
        }
        args
    }
}

fn describe_flags(stage: &Stage) -> String {
    let mut names: Vec<String> = stage
        .flags
        .iter()
        .map(|f| match f.value {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        })
        .collect();
    names.extend(["--dry-run".to_string(), "--help".to_string()]);
    names.join(", ")
}

fn check_partition(value: String) -> Result<String> {
    let valid = value
        .strip_prefix("hash:")
        .or_else(|| value.strip_prefix("count:"))
        .and_then(|mn| mn.split_once('/'))
        .and_then(|(m, n)| Some((m.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        .is_some_and(|(m, n)| m >= 1 && m <= n);
    if !valid {
        bail!("invalid partition `{value}`: expected hash:M/N or count:M/N with 1 <= M <= N");
    }
    Ok(value)
}

fn check_python(value: String) -> Result<String> {
    if !crate::context::PYTHON_VERSIONS.contains(&value.as_str()) {
        bail!(
            "invalid Python version `{value}`: expected one of {}",
            crate::context::PYTHON_VERSIONS.join(", ")
        );
    }
    Ok(value)
}

fn check_backend(value: String) -> Result<String> {
    match value.as_str() {
        "auto" | "docker" | "native" => Ok(value),
        _ => bail!("invalid backend `{value}`: expected auto, docker or native"),
    }
}

const PARTITION: Flag = Flag {
    name: "--partition",
    value: Some("hash:M/N"),
    help: "run one shard of the tests (passed to nextest), so CI can spread them over runners",
};

/// Every stage, in an order where each stage comes after the stages it needs.
pub static STAGES: &[Stage] = &[
    Stage {
        name: "lint-rust",
        help: "cargo fmt --check and clippy over the workspace, warnings denied",
        about: "Checks formatting of every crate and runs clippy over the whole workspace and all \
                targets with every feature, in the `ci` profile, denying warnings.",
        needs: &[],
        produces: &[],
        consumes: &[],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::rust::lint,
    },
    Stage {
        name: "lint-workflows",
        help: "zizmor, actionlint and the xtask drift check over .github/workflows",
        about: "Runs zizmor (offline) and actionlint over the GitHub workflows, then checks that \
                every `run:` step is a known `cargo xtask` command and that each job's `needs:` \
                agree with the stage graph.",
        needs: &[],
        produces: &[],
        consumes: &[],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::lints::workflows,
    },
    Stage {
        name: "codespell",
        help: "spell-check the sources and docs (codespell, pinned)",
        about: "Runs codespell over the repository with the settings in `.codespellrc`.",
        needs: &[],
        produces: &[],
        consumes: &[],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::lints::codespell,
    },
    Stage {
        name: "build-artifacts",
        help: "compile every Rust test once into a nextest archive, with a manifest",
        about: "Builds every test binary of the workspace exactly once (`cargo nextest archive`, \
                `ci` profile, all features) into target/xtask/artifacts/rust/, and writes a \
                manifest: commit, dirty flag, hash of the sources, rustc version, archive sha256. \
                Does nothing when the manifest already matches the sources.",
        needs: &[],
        produces: &[Artifact::RustTests],
        consumes: &[],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::rust::build_artifacts,
    },
    Stage {
        name: "test-unit",
        help: "run the unit tests from the archive (compiles nothing)",
        about: "Runs every test that needs no service from the nextest archive. Refuses an \
                archive built from other sources. Locally, a missing archive is built first; in \
                CI a missing archive is an error (a test job never compiles).",
        needs: &["build-artifacts"],
        produces: &[],
        consumes: &[Artifact::RustTests],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::rust::test_unit,
    },
    Stage {
        name: "docker-up",
        help: "start the S3 and Azure servers (Docker, or natively without an engine)",
        about: "Starts an S3 server and Azurite: with Docker (compose.yaml, images cached as one \
                tarball) when an engine answers, natively otherwise (moto and Azurite on \
                127.0.0.1). Creates the bucket and the container and writes the endpoints to \
                target/xtask/services.env (and $GITHUB_ENV). Reuses servers that are already up.",
        needs: &[],
        produces: &[Artifact::Services],
        consumes: &[],
        flags: &[Flag {
            name: "--backend",
            value: Some("auto|docker|native"),
            help: "where the servers run (default: $XTASK_SERVICES_BACKEND, else auto: docker \
                   when an engine answers)",
        }],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::services::up,
    },
    Stage {
        name: "test-full",
        help: "run every test from the archive, integration tests included, against the services",
        about: "Runs all tests of the nextest archive, including the integration tests against \
                the S3 and Azure endpoints that docker-up wrote to target/xtask/services.env.",
        needs: &["build-artifacts", "docker-up"],
        produces: &[],
        consumes: &[Artifact::RustTests, Artifact::Services],
        flags: &[PARTITION],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::rust::test_full,
    },
    Stage {
        name: "build-wheels",
        help: "build the one abi3 wheel of icechunk-python, with a manifest",
        about: "Builds the abi3 wheel once with maturin (`ci` profile, workspace target directory, \
                so dependencies compiled by build-artifacts are reused) into \
                target/xtask/artifacts/wheels/, with a manifest like the Rust archive's. Does \
                nothing when the manifest already matches the sources.",
        needs: &[],
        produces: &[Artifact::Wheels],
        consumes: &[],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::python::build_wheels,
    },
    Stage {
        name: "python-lint",
        help: "ruff check, ruff format --check and mypy --strict, with the wheel installed",
        about: "Creates a venv with the pinned lint requirements and the built wheel (never \
                building it), then runs ruff and mypy over the package and its tests.",
        needs: &["build-wheels"],
        produces: &[],
        consumes: &[Artifact::Wheels],
        flags: &[],
        ci_args: &[],
        schedule: Schedule::EveryRun,
        plan: stages::python::lint,
    },
    Stage {
        name: "python-test",
        help: "pytest on every Python interpreter found, each in a fresh venv with the wheel",
        about: "For each CPython found (3.11 required, 3.12 and 3.13 when present): a fresh uv \
                venv, the pinned test requirements and the built wheel (--no-index, never \
                building), then pytest. With --full, the tests marked `services` run too, \
                against target/xtask/services.env.",
        needs: &["build-wheels", "docker-up"],
        produces: &[],
        consumes: &[Artifact::Wheels, Artifact::Services],
        flags: &[
            Flag {
                name: "--full",
                value: None,
                help: "also run the tests that need the S3 and Azure services",
            },
            Flag {
                name: "--python",
                value: Some("X.Y"),
                help: "test this interpreter only (one entry of a workflow matrix)",
            },
        ],
        ci_args: &["--full"],
        schedule: Schedule::EveryRun,
        plan: stages::python::test,
    },
    Stage {
        name: "upstream",
        help: "the Python tests against the newest pre-releases of zarr, numpy and friends",
        about: "A fresh venv with the built wheel and the newest pre-releases of the Python \
                dependencies (highest resolution) from the configured index (default: the \
                scientific-python nightly wheels). When that index cannot be reached it says so \
                loudly and falls back to PyPI. Prints the resolved versions, then runs pytest.",
        needs: &["build-wheels"],
        produces: &[],
        consumes: &[Artifact::Wheels],
        flags: &[Flag {
            name: "--index-url",
            value: Some("URL"),
            help: "the extra index to take pre-releases from",
        }],
        ci_args: &[],
        schedule: Schedule::Scheduled,
        plan: stages::python::upstream,
    },
];

/// The stage called `name`, or an error that lists every stage.
pub fn stage(name: &str) -> Result<&'static Stage> {
    STAGES.iter().find(|s| s.name == name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown stage `{name}`; the stages are: {}",
            stage_names().join(", ")
        )
    })
}

pub fn stage_names() -> Vec<&'static str> {
    STAGES.iter().map(|s| s.name).collect()
}

/// Which stages `cargo xtask ci` runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub only: Option<Vec<String>>,
    pub skip: Vec<String>,
    pub scheduled: bool,
}

impl Selection {
    /// The selected stages, in graph order. A stage that only brings services up is left out
    /// when no other selected stage uses them, unless `--only` names it.
    pub fn resolve(&self) -> Result<Vec<&'static Stage>> {
        for name in self.only.iter().flatten().chain(&self.skip) {
            stage(name)?;
        }
        let named = |s: &Stage| self.only.iter().flatten().any(|n| n == s.name);
        let selected: Vec<&'static Stage> = STAGES
            .iter()
            .filter(|s| match &self.only {
                Some(_) => named(s),
                None => self.scheduled || s.schedule == Schedule::EveryRun,
            })
            .filter(|s| !self.skip.iter().any(|n| n == s.name))
            .collect();
        let services_used = selected
            .iter()
            .any(|s| s.consumes.contains(&Artifact::Services));
        let stages: Vec<_> = selected
            .iter()
            .copied()
            .filter(|s| s.produces != [Artifact::Services] || services_used || named(s))
            .collect();
        if stages.is_empty() {
            bail!(
                "this selection leaves no stage to run; the stages are: {}",
                stage_names().join(", ")
            );
        }
        Ok(stages)
    }
}

/// A text rendering of the graph, for `cargo xtask list`.
pub fn render_list() -> String {
    let width = STAGES.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::from("Stages, in the order `cargo xtask ci` runs them:\n\n");
    for s in STAGES {
        out.push_str(&format!("  {:width$}  {}\n", s.name, s.help));
        let mut facts = Vec::new();
        if !s.needs.is_empty() {
            facts.push(format!("needs {}", s.needs.join(", ")));
        }
        if !s.consumes.is_empty() {
            facts.push(format!("consumes {}", artifact_names(s.consumes)));
        }
        if !s.produces.is_empty() {
            facts.push(format!("produces {}", artifact_names(s.produces)));
        }
        if s.schedule == Schedule::Scheduled {
            facts.push("scheduled pipeline only (ci --scheduled)".to_string());
        }
        if !facts.is_empty() {
            out.push_str(&format!("  {:width$}    {}\n", "", facts.join("; ")));
        }
    }
    out.push_str(
        "\nOther commands: ci, docker-down, compare, list. `cargo xtask <command> --help` explains one.\n",
    );
    out
}

pub fn artifact_names(artifacts: &[Artifact]) -> String {
    artifacts
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `--help` text of one stage.
pub fn render_help(stage: &Stage) -> String {
    let mut out = format!(
        "cargo xtask {} — {}\n\n{}\n",
        stage.name,
        stage.help,
        wrap(stage.about)
    );
    out.push_str("\nOptions:\n");
    for f in stage.flags {
        let name = match f.value {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        };
        out.push_str(&format!("  {name:28} {}\n", f.help));
    }
    out.push_str(&format!(
        "  {:28} {}\n",
        "--dry-run", "print the plan; run nothing but read-only probes"
    ));
    out.push_str(&format!("  {:28} {}\n", "--help", "this text"));
    if !stage.needs.is_empty() {
        out.push_str(&format!("\nNeeds: {}\n", stage.needs.join(", ")));
    }
    if !stage.consumes.is_empty() {
        out.push_str(&format!("Consumes: {}\n", artifact_names(stage.consumes)));
    }
    if !stage.produces.is_empty() {
        out.push_str(&format!("Produces: {}\n", artifact_names(stage.produces)));
    }
    if !stage.ci_args.is_empty() {
        out.push_str(&format!(
            "In `cargo xtask ci`: {} {}\n",
            stage.name,
            stage.ci_args.join(" ")
        ));
    }
    out
}

fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() + 1 > 90 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = stage_names();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate stage names");
    }

    #[test]
    fn every_need_exists_and_comes_earlier() {
        // Declaration order is the run order, so it must be a topological order; that also
        // proves the graph acyclic.
        for (i, s) in STAGES.iter().enumerate() {
            for need in s.needs {
                let pos = STAGES.iter().position(|t| t.name == *need);
                let pos = pos.unwrap_or_else(|| panic!("{} needs unknown stage {need}", s.name));
                assert!(pos < i, "{} needs {need}, which is declared later", s.name);
            }
        }
    }

    #[test]
    fn every_consumed_artifact_comes_from_a_needed_stage() {
        for s in STAGES {
            for artifact in s.consumes {
                let producer = artifact.producer();
                assert!(
                    s.needs.contains(&producer.name),
                    "{} consumes {} but does not need its producer {}",
                    s.name,
                    artifact.name(),
                    producer.name
                );
            }
        }
    }

    #[test]
    fn every_artifact_has_exactly_one_producer() {
        for artifact in Artifact::ALL {
            let producers = STAGES
                .iter()
                .filter(|s| s.produces.contains(&artifact))
                .count();
            assert_eq!(
                producers,
                1,
                "{} has {producers} producers",
                artifact.name()
            );
        }
    }

    #[test]
    fn ci_args_parse_against_the_stage_flags() {
        for s in STAGES {
            let args: Vec<String> = s.ci_args.iter().map(|a| a.to_string()).collect();
            let parsed = StageArgs::parse(s, &args).unwrap();
            assert_eq!(
                parsed.to_args(),
                args,
                "{} ci args do not round-trip",
                s.name
            );
        }
    }

    /// The stages a `ci` selection runs: `--only`, `--skip`, `--scheduled`.
    fn selected(only: Option<&[&str]>, skip: &[&str], scheduled: bool) -> Vec<&'static str> {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection {
            only: only.map(names),
            skip: names(skip),
            scheduled,
        }
        .resolve()
        .unwrap()
        .iter()
        .map(|s| s.name)
        .collect()
    }

    #[test]
    fn selection_filters_and_keeps_graph_order() {
        let all = selected(None, &[], false);
        assert!(!all.contains(&"upstream"), "upstream is scheduled only");
        assert!(selected(None, &[], true).contains(&"upstream"));

        let only = selected(Some(&["test-unit", "build-artifacts"]), &[], false);
        assert_eq!(only, ["build-artifacts", "test-unit"]);

        let no_service_users = selected(None, &["test-full", "python-test"], false);
        assert!(
            !no_service_users.contains(&"docker-up"),
            "{no_service_users:?}"
        );
        assert_eq!(selected(Some(&["docker-up"]), &[], false), ["docker-up"]);
        assert_eq!(
            selected(Some(&["docker-up", "test-full"]), &[], false),
            ["docker-up", "test-full"]
        );
        assert!(all.contains(&"docker-up"));

        assert!(!selected(None, &["lint-rust"], false).contains(&"lint-rust"));
    }

    #[test]
    fn unknown_stage_lists_the_valid_ones() {
        let err = stage("test-everything").unwrap_err().to_string();
        assert!(err.contains("unknown stage `test-everything`"), "{err}");
        for name in stage_names() {
            assert!(err.contains(name), "{err} should list {name}");
        }
        let empty = Selection {
            only: Some(Vec::new()),
            ..Selection::default()
        };
        let err = empty.resolve().unwrap_err().to_string();
        assert!(err.contains("no stage to run"), "{err}");
        let bad = Selection {
            skip: vec!["nope".into()],
            ..Selection::default()
        };
        assert!(bad.resolve().unwrap_err().to_string().contains("lint-rust"));
    }

    #[test]
    fn stage_flags_are_checked() {
        let test_unit = stage("test-unit").unwrap();
        let ok = StageArgs::parse(test_unit, &["--partition".into(), "hash:1/3".into()]).unwrap();
        assert_eq!(ok.partition.as_deref(), Some("hash:1/3"));
        let inline = StageArgs::parse(test_unit, &["--partition=hash:2/3".into()]).unwrap();
        assert_eq!(inline.partition.as_deref(), Some("hash:2/3"));
        let err = StageArgs::parse(test_unit, &["--full".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--partition hash:M/N"), "{err}");
        let err = StageArgs::parse(test_unit, &["--partition".into(), "hash:4/3".into()]);
        assert!(err.unwrap_err().to_string().contains("invalid partition"));
        let err = StageArgs::parse(test_unit, &["--partition".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a value"), "{err}");
    }
}
