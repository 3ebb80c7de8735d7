//! A second project, described with the engine alone: the workspace in `second_project/` (a
//! Rust crate and a Python module) with five stages of its own, one of which builds an
//! artifact (the module, zipped) that another tests. Its `ci` passes, then skips every stage
//! when nothing changed, reruns exactly what an edit reaches, fails a stage an edit breaks, and
//! skips it again once the edit is undone; its keys cover what each stage reads; its GitHub
//! workflows are generated from its job table; `compare` measures its jobs with and without
//! sharing.
//!
//! This is how another repository adopts the engine (docs/ci.md, "Adopting the engine"): a
//! [`Project`], a [`Pipeline`] of [`Stage`]s, each with its plan, and `run::run`; a [`Layout`]
//! (its job table) for `workflows::write`; a [`Benchmark`] for `compare`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ci_engine::artifacts;
use ci_engine::cli::{self, Cli, Command, ProjectCommand};
use ci_engine::cmd::Cmd;
use ci_engine::compare::{self, Benchmark, Options, Scenario, Source};
use ci_engine::context::{Context, Project};
use ci_engine::environment::NO_RULES;
use ci_engine::graph::{Artifact, Inputs, Pipeline, Selection, Stage};
use ci_engine::jobs::{Entry, Generation, Job, Layout, Os, Pin, Trigger, Workflow, rule};
use ci_engine::keys;
use ci_engine::output::Output;
use ci_engine::plan::Plan;
use ci_engine::process;
use ci_engine::report::{Report, Status};
use ci_engine::run::{self, Invocation, RunOptions};
use ci_engine::workflows;

/// What the engine must know of the project: where its tools are kept, its Pythons, the
/// variables it adds to the declared environment.
static PROJECT: Project = Project {
    name: "greet-xtask",
    pythons: &["3.11", "3.12", "3.13"],
    environment: &NO_RULES,
};

/// What the Rust stages read: the crate (and what it depends on) and the workspace's manifest
/// and lock file; the toolchain is an input.
const RUST: Inputs = Inputs {
    packages: &["greet"],
    paths: &["Cargo.toml", "Cargo.lock"],
    toolchain: true,
    cacheable: true,
};

/// The Python module, zipped: what `test-python` tests.
static ZIP: Artifact = Artifact {
    name: "greet-zip",
    producer: "package-python",
    dir: "zip",
    sources: &["python"],
    copies: None,
    build: |ctx, zip| {
        let file = artifacts::dir(ctx, zip).join("greet.zip");
        vec![
            python(ctx)
                .args(["-m", "zipfile", "-c"])
                .arg(ctx.rel(&file))
                .arg("python/greet.py"),
        ]
    },
    tools: &[],
    prepare: Plan::new,
    python: true,
    compressed: true,
};

/// What the Python tests read besides the zipped module.
const TESTS: Inputs = Inputs {
    packages: &[],
    paths: &["tests"],
    toolchain: false,
    cacheable: true,
};

/// The project's pipeline: adding a stage is a row here.
static PIPELINE: Pipeline = Pipeline {
    stages: &[
        Stage::new("test-rust", "cargo test of the crate", RUST, |_, ctx, _| {
            Ok(Plan::new().run(cargo(ctx, "test")))
        }),
        Stage::new("doc-rust", "the crate's docs build", RUST, |_, ctx, _| {
            Ok(Plan::new().run(cargo(ctx, "doc").arg("--no-deps")))
        }),
        Stage::new(
            "lint-python",
            "every Python file of the module and its tests parses",
            Inputs {
                paths: &["python", "tests"],
                ..TESTS
            },
            |_, ctx, _| Ok(Plan::new().run(python(ctx).args(["-c", PARSES, "python", "tests"]))),
        ),
        Stage {
            produces: &[&ZIP],
            ..Stage::new(
                "package-python",
                "zip the module, with a manifest",
                Inputs {
                    paths: ZIP.sources,
                    cacheable: false,
                    ..TESTS
                },
                |_, ctx, _| artifacts::build(ctx, &ZIP),
            )
        },
        Stage {
            consumes: &[&ZIP],
            ..Stage::new(
                "test-python",
                "unittest over the zipped module",
                TESTS,
                |_, ctx, _| {
                    let zip = artifacts::dir(ctx, &ZIP).join("greet.zip");
                    let tests = python(ctx)
                        .args(["-m", "unittest", "discover", "-s", "tests"])
                        .env("PYTHONPATH", ctx.rel(&zip));
                    Ok(artifacts::using(ctx, &[], &ZIP).run(tests))
                },
            )
        },
    ],
    unclaimed: &[".gitignore"],
    explained: &[],
    pin_files: &[],
    servers: None,
};

/// The project's CI on GitHub: one workflow whose jobs are the Rust checks, the zip, and the
/// Python checks of the zip (which wait for it). Its plan job skips what passed on main.
static LAYOUT: Layout = Layout {
    pipeline: &PIPELINE,
    project: &PROJECT,
    python_flag: None,
    workflows: |layout| {
        vec![Workflow {
            layout,
            file: "ci.yaml",
            name: "CI",
            about: "The crate's tests and docs, the module zipped once, its lint and its tests.",
            trigger: Trigger::Pipeline,
            entries: vec![
                Entry::Job(Job::new("rust", Os::Linux, &["test-rust", "doc-rust"], 20)),
                Entry::Job(Job::new("zip", Os::Linux, &["package-python"], 10)),
                Entry::Job(Job::new(
                    "python",
                    Os::Linux,
                    &["lint-python", "test-python"],
                    10,
                )),
                Entry::Conclusion,
            ],
        }]
    },
    generation: Generation {
        table: "xtask/src/main.rs",
        toolchain_action: Pin {
            action: "dtolnay/rust-toolchain",
            sha: "e081816240890017053eacbb1bdf337761dc5582",
            release: "1.95.0",
        },
        installed_by_action: &[],
        servers_in_containers: false,
        python_dependencies: &[],
        xtask_sources: &["xtask/**", "Cargo.toml", "Cargo.lock"],
    },
};

/// What its `compare` measures: its one workflow's jobs from empty target directories, and
/// after an edit of the module; no setup step was measured, so each is priced alike.
static BENCHMARK: Benchmark = Benchmark {
    layout: &LAYOUT,
    scenarios: &[
        Scenario {
            name: "cold",
            about: "every job starts from an empty target directory",
            warm: false,
            edit: None,
        },
        Scenario {
            name: "python-change",
            about: "warm, after an edit of the module",
            warm: true,
            edit: Some(("python/greet.py", "\n# compare: python-change\n")),
        },
    ],
    runner_start: (5.0, Source::Estimate("not measured")),
    price: |_| (1.0, Source::Estimate("not measured")),
    prices_from: "the second project's test",
    wheel_build: None,
    test_archive: None,
    profile: "dev",
};

/// Its `cargo xtask`: the engine's commands over its layout, and `compare` (a `main` would call
/// `cli::main(&CLI)`).
static CLI: Cli = Cli {
    layout: &LAYOUT,
    usage: "cargo xtask ci | <stage> | keys | workflows | compare | list",
    commands: &[ProjectCommand {
        name: "compare",
        parse: |args, dry_run| Ok(Box::new(Options::parse(&BENCHMARK, args, dry_run)?)),
    }],
};

/// `cargo <command>` of the locked workspace, building into the context's target directory
/// whatever `CARGO_TARGET_DIR` says.
fn cargo(ctx: &Context, command: &str) -> Cmd {
    ctx.cargo()
        .args([command, "--locked", "--offline", "--target-dir"])
        .arg(ctx.rel(&ctx.target_dir))
}

/// Parses every `.py` file under the directories it is given, failing on the first that does
/// not.
const PARSES: &str = "import ast, pathlib, sys; [ast.parse(p.read_text(), str(p)) \
                      for d in sys.argv[1:] for p in sorted(pathlib.Path(d).rglob('*.py'))]";

/// The project's first CPython found (`python3` when there is none, which fails plainly),
/// never writing bytecode into the checkout (that would change the tree under the keys). A
/// pass counts only where the same interpreter would run it (its path is in the plan).
fn python(ctx: &Context) -> Cmd {
    let program = match ctx.interpreters().first() {
        Some(found) => found.path.to_string_lossy().into_owned(),
        None => "python3".to_string(),
    };
    Cmd::new(program).arg("-B")
}

/// A scratch checkout of the fixture, removed when the test ends, passed or failed.
struct Checkout(PathBuf);

impl std::ops::Deref for Checkout {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixture's directory, found at run time: an archive's tests run in another checkout than
/// the one that built them.
fn fixture() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
    Path::new(&manifest).join("tests/second_project")
}

/// The fixture copied into a fresh git checkout.
fn checkout(name: &str) -> Checkout {
    let fixture = fixture();
    let root = std::env::temp_dir().join(format!("ci-engine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // Removed whatever fails from here on.
    let root = Checkout(root);
    copy(&fixture, &root);
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--no-verify",
            "-qm",
            "fixture",
        ],
    ] {
        process::capture(&Cmd::new("git").args(args), &root).unwrap();
    }
    root
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A local run's context (not CI: passes are reused and recorded) in `root`, with the cargo
/// that runs this test.
fn context(root: &Path) -> Context {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    Context::new(
        &PROJECT,
        root.to_path_buf(),
        root.join("target"),
        root.join("target/tools"),
        [("CARGO".to_string(), cargo)],
    )
}

/// `ci`: every stage, reusing what passed.
fn ci(ctx: &Context) -> Report {
    let invocations: Vec<Invocation> = Selection::default()
        .resolve(&PIPELINE)
        .unwrap()
        .into_iter()
        .map(|stage| Invocation::for_ci(stage).unwrap())
        .collect();
    let opts = RunOptions {
        command: "ci".into(),
        keep_going: true,
        dry_run: false,
        teardown_services: true,
        reuse_passes: true,
        audit: false,
    };
    run::run(
        ctx,
        &PIPELINE,
        &Output::from_env(false),
        &invocations,
        &opts,
    )
    .unwrap()
}

fn statuses(report: &Report) -> BTreeMap<String, Status> {
    report
        .stages
        .iter()
        .map(|s| (s.stage.clone(), s.status))
        .collect()
}

/// The stages of `report` with `status`, in pipeline order.
fn with(report: &Report, status: Status) -> Vec<&str> {
    report
        .stages
        .iter()
        .filter(|s| s.status == status)
        .map(|s| s.stage.as_str())
        .collect()
}

fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no `{from}`");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[test]
fn the_pipeline_and_its_layout_are_well_formed() {
    PIPELINE.check().unwrap();
    LAYOUT.check().unwrap();
}

#[cfg(unix)]
#[test]
fn its_ci_passes_then_skips_then_reruns_what_an_edit_reaches() {
    let root = checkout("second-project");
    let ctx = context(&root);
    assert!(
        !ctx.interpreters().is_empty(),
        "the second project's Python stages need a CPython {} on PATH",
        PROJECT.pythons.join(", ")
    );
    let checks = ["test-rust", "doc-rust", "lint-python", "test-python"];

    let first = ci(&ctx);
    assert_eq!(
        with(&first, Status::Passed),
        [
            "test-rust",
            "doc-rust",
            "lint-python",
            "package-python",
            "test-python"
        ],
        "{:?}",
        statuses(&first)
    );
    assert!(artifacts::dir(&ctx, &ZIP).join("greet.zip").is_file());

    // Nothing changed: every check is skipped, saying when its inputs passed; the build runs
    // and finds its artifact current.
    let again = ci(&ctx);
    assert_eq!(
        with(&again, Status::Cached),
        checks,
        "{:?}",
        statuses(&again)
    );
    assert_eq!(with(&again, Status::Passed), ["package-python"]);
    assert!(
        again.stages[0].notes[0].starts_with("cached: passed"),
        "{:?}",
        again.stages[0].notes
    );

    // A docstring: the module is zipped again and the Python stages run again; the Rust ones
    // are reused.
    edit(&root, "python/greet.py", "The greeting for", "Greets");
    let python = ci(&ctx);
    assert_eq!(
        with(&python, Status::Passed),
        ["lint-python", "package-python", "test-python"]
    );
    assert_eq!(with(&python, Status::Cached), ["test-rust", "doc-rust"]);

    // A comment in the crate: the Rust stages run again.
    edit(
        &root,
        "greet/src/lib.rs",
        "/// The greeting",
        "/// Greets: the greeting",
    );
    let rust = ci(&ctx);
    assert_eq!(
        with(&rust, Status::Passed),
        ["test-rust", "doc-rust", "package-python"]
    );
    assert_eq!(with(&rust, Status::Cached), ["lint-python", "test-python"]);

    // An edit that breaks the module fails its tests: no pass of the old tree stands in.
    edit(&root, "python/greet.py", "Hello,", "Goodbye,");
    let broken = ci(&ctx);
    assert_eq!(with(&broken, Status::Failed), ["test-python"]);
    edit(&root, "python/greet.py", "Goodbye,", "Hello,");
    // A file that does not parse fails the lint too.
    edit(
        &root,
        "tests/test_greet.py",
        "import unittest",
        "import unittest(",
    );
    let unparsable = ci(&ctx);
    assert_eq!(
        with(&unparsable, Status::Failed),
        ["lint-python", "test-python"]
    );
    edit(
        &root,
        "tests/test_greet.py",
        "import unittest(",
        "import unittest",
    );
    // Undone, the tree is one that passed: its keys are found again.
    let undone = ci(&ctx);
    assert_eq!(
        with(&undone, Status::Cached),
        checks,
        "{:?}",
        statuses(&undone)
    );
}

#[test]
fn its_workflows_are_generated_from_its_job_table() {
    let root = checkout("second-project-workflows");
    let written = workflows::write(&LAYOUT, &root).unwrap();
    assert_eq!(written, [".github/workflows/ci.yaml is missing"]);
    assert!(workflows::stale(&LAYOUT, &root).unwrap().is_empty());
    let text = std::fs::read_to_string(root.join(".github/workflows/ci.yaml")).unwrap();
    assert!(
        text.starts_with("# Generated from xtask/src/main.rs"),
        "{text}"
    );
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let jobs: Vec<&str> = doc["jobs"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(jobs, ["plan", "rust", "zip", "python", "ci-passed"]);
    // The Python job downloads the zip its producer uploads, and runs each stage with xtask.
    assert_eq!(LAYOUT.entry_needs("ci.yaml", "python"), ["zip"]);
    let steps = doc["jobs"]["python"]["steps"].as_sequence().unwrap();
    let download = steps
        .iter()
        .find(|s| s["with"]["name"].as_str() == Some("greet-zip-linux-x86_64"))
        .expect("the zip is downloaded");
    assert!(
        download["uses"]
            .as_str()
            .unwrap()
            .starts_with("actions/download-artifact@")
    );
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert_eq!(
        runs,
        [
            "target/debug/xtask lint-python",
            "target/debug/xtask test-python"
        ]
    );
    assert_eq!(
        doc["jobs"]["python"]["steps"][1]["with"]["python-version"].as_str(),
        Some("3.11"),
        "the project's first Python"
    );
    // The plan: the zip is built when the Python job runs, and that runs when its key changed.
    let ci = LAYOUT.workflow("ci.yaml").unwrap();
    assert_eq!(
        rule::runs_without_needs(&ci),
        [] as [(String, String); 0],
        "no job runs without the job that builds what it downloads"
    );
    let zip = PIPELINE.stage("package-python").unwrap();
    let passed = |entry: &str, stage: &str| (entry, stage) == ("python", "test-python");
    assert_eq!(
        rule::stage_runs(&ci, "zip", zip, &passed),
        Some(true),
        "its lint runs"
    );
    let all = |_: &str, _: &str| true;
    assert_eq!(rule::stage_runs(&ci, "zip", zip, &all), Some(false));
    // A hand edit is found, with the command that repairs it.
    let file = root.join(".github/workflows/ci.yaml");
    std::fs::write(
        &file,
        text.replace("timeout-minutes: 20", "timeout-minutes: 21"),
    )
    .unwrap();
    assert_eq!(
        workflows::stale(&LAYOUT, &root).unwrap(),
        [".github/workflows/ci.yaml differs"]
    );
}

#[test]
fn its_command_line_is_the_engines() {
    let parse = |line: &str| cli::parse(&CLI, line.split_whitespace().map(String::from).collect());
    assert!(matches!(
        parse("ci --only test-python").unwrap(),
        Command::Ci { .. }
    ));
    assert!(matches!(
        parse("doc-rust --dry-run").unwrap(),
        Command::Stage { dry_run: true, .. }
    ));
    let err = parse("test").unwrap_err().to_string();
    assert!(
        err.contains(
            "the stages are: test-rust, doc-rust, lint-python, package-python, test-python"
        ) && err.contains("other commands: ci, workflows, compare, list"),
        "{err}"
    );
    let Command::Help(text) = parse("package-python --help").unwrap() else {
        panic!("not help")
    };
    assert!(text.contains("zip the module"), "{text}");
    let compare = parse("compare --scenario all --dry-run").unwrap();
    assert!(compare.only_prints(), "{compare:?}");
    let err = parse("compare --scenario warm").unwrap_err().to_string();
    assert!(
        err.contains("the scenarios are: cold, python-change, or all"),
        "{err}"
    );
}

/// The jobs of a variant in `compare`'s report, by name, and whether each was skipped.
fn jobs_of(variant: &serde_json::Value) -> Vec<(String, bool)> {
    variant["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_string(),
                j["skipped"] == true,
            )
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn its_compare_runs_its_jobs_both_ways() {
    // Shared: the zip is built once and the Python job waits for it; per job: the Python job
    // zips the module itself and the zip's job has nothing left to do.
    let opts = Options {
        scenarios: BENCHMARK.scenarios.iter().collect(),
        ..Options::new(&BENCHMARK)
    };
    let variants = compare::jobs::plan(&opts).unwrap();
    let lines = |jobs: &[compare::jobs::Job]| -> Vec<String> {
        jobs.iter()
            .map(|j| format!("{}: {}", j.name, compare::jobs::call_lines(j).join("; ")))
            .collect()
    };
    assert_eq!(
        lines(&variants[0].1),
        [
            "rust: cargo xtask test-rust; cargo xtask doc-rust",
            "python: cargo xtask package-python; cargo xtask lint-python; \
             cargo xtask test-python"
        ]
    );
    assert_eq!(
        lines(&variants[1].1),
        [
            "rust: cargo xtask test-rust; cargo xtask doc-rust",
            "zip: cargo xtask package-python",
            "python: cargo xtask lint-python; cargo xtask test-python"
        ]
    );
    assert_eq!(variants[1].1[2].needs, ["zip"]);

    // Measured: both ways pass; after the edit the shared pipeline skips the Rust job.
    let root = checkout("second-project-compare");
    let ctx = context(&root);
    assert!(compare::run(&ctx, &Output::from_env(false), &opts).unwrap());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ctx.compare_dir().with_extension("json")).unwrap(),
    )
    .unwrap();
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    let change = &scenarios[1];
    assert_eq!(change["scenario"], "python-change");
    assert_eq!(
        change["changed_stages"],
        serde_json::json!(["lint-python", "package-python", "test-python"]),
        "the module's tests through the key of its zip"
    );
    let shared = &change["variants"][1];
    assert_eq!(shared["variant"], "shared");
    assert_eq!(
        jobs_of(shared),
        [
            ("plan".to_string(), false),
            ("rust".to_string(), true),
            ("zip".to_string(), false),
            ("python".to_string(), false)
        ]
    );
    assert!(
        scenarios[0]["variants"][0]["rustc_compiles"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        std::fs::read_to_string(root.join("python/greet.py")).unwrap(),
        std::fs::read_to_string(fixture().join("python/greet.py")).unwrap(),
        "the edit is undone"
    );
}

#[test]
fn its_keys_cover_what_each_stage_reads() {
    let root = checkout("second-project-keys");
    let ctx = context(&root);
    let keys = keys::all(&ctx, &PIPELINE).unwrap();
    let covers: BTreeMap<&str, Vec<&str>> = keys
        .iter()
        .map(|k| {
            (
                k.stage.as_str(),
                k.covers.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(covers["test-rust"], ["greet", "Cargo.toml", "Cargo.lock"]);
    assert_eq!(covers["lint-python"], ["python", "tests"]);
    assert_eq!(covers["package-python"], ["python"]);
    // The zipped module is an input of its tests through the key of its build.
    assert_eq!(covers["test-python"], ["tests"]);
    // Stages that read the same files but run other commands have other keys.
    assert_ne!(keys[0].key, keys[1].key);
    let files = ci_engine::files::listed_files(&ctx, &[]).unwrap();
    assert!(
        keys::unclaimed_among(&ctx, &PIPELINE, &files)
            .unwrap()
            .is_empty(),
        "every file of the fixture is some stage's input"
    );
}
