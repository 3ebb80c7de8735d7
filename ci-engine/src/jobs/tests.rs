//! A small layout: a pipeline whose build job (a lint, then a package) is called by the main
//! workflow, whose test job downloads the package and tests every interpreter; and a called
//! workflow, called by no one here, whose job's stages are each switched by its caller.

use super::*;
use crate::graph::testing::{artifact, reads, stage};
use crate::graph::{Inputs, Schedule};
use crate::jobs::rule;

const PYTHON: Flag = Flag {
    name: "--python",
    value: Some("VERSIONS"),
    help: "the interpreters",
    check: Some(|value| {
        if value.split(',').all(|v| v.starts_with("3.")) {
            Ok(value)
        } else {
            anyhow::bail!("only Python 3")
        }
    }),
};

static PACKAGE: Artifact = artifact("package", "build", &["src"]);

const PIPELINE_BASE: Pipeline = Pipeline {
    stages: &[],
    unclaimed: &[],
    explained: &[],
    pin_files: &[],
    servers: None,
};

pub(crate) static PIPELINE: Pipeline = Pipeline {
    stages: &[
        stage("lint"),
        Stage {
            produces: &[&PACKAGE],
            inputs: Inputs {
                cacheable: false,
                ..reads(&["src"])
            },
            ..stage("build")
        },
        Stage {
            consumes: &[&PACKAGE],
            flags: &[PYTHON],
            ..stage("test")
        },
        Stage {
            schedule: Schedule::Scheduled,
            ..stage("nightly")
        },
    ],
    unclaimed: &[],
    explained: &[],
    pin_files: &[],
    servers: None,
};

const SWITCHES: &[&str] = &["lint", "build"];
const CHECKS: &[&str] = &["lint", "test"];

static PROJECT: Project = Project {
    name: "example-xtask",
    pythons: &["3.8", "3.9", "3.10"],
    environment: &crate::environment::NO_RULES,
};

const GENERATION: Generation = Generation {
    table: "xtask/src/jobs.rs",
    toolchain_action: Pin {
        action: "example/toolchain",
        sha: "0000000000000000000000000000000000000000",
        release: "1.0.0",
    },
    installed_by_action: &[],
    servers_in_containers: false,
    python_dependencies: &["requirements.txt"],
    xtask_sources: &["xtask/**", "Cargo.lock"],
};

pub(crate) static LAYOUT: Layout = Layout {
    pipeline: &PIPELINE,
    project: &PROJECT,
    python_flag: Some(&PYTHON),
    workflows: |layout| {
        vec![
            Workflow {
                layout,
                file: "ci.yaml",
                name: "CI",
                about: "",
                trigger: Trigger::Pipeline,
                entries: vec![
                    Entry::Call {
                        key: "package",
                        file: "build.yaml",
                        stages: SWITCHES,
                    },
                    Entry::Job(Job {
                        pythons: Pythons::Every,
                        ..Job::new("test", Os::Linux, &["test"], 10)
                    }),
                    Entry::Job(Job::new("test-macos", Os::Macos, &["build", "test"], 10)),
                    Entry::Conclusion,
                ],
            },
            Workflow {
                layout,
                file: "build.yaml",
                name: "build",
                about: "",
                trigger: Trigger::Called { switches: SWITCHES },
                entries: vec![Entry::Job(Job::new("build", Os::Linux, SWITCHES, 10))],
            },
            Workflow {
                layout,
                file: "checks.yaml",
                name: "checks",
                about: "",
                trigger: Trigger::Called { switches: CHECKS },
                entries: vec![Entry::Job(Job::new("check", Os::Linux, CHECKS, 10))],
            },
            nightly(layout),
        ]
    },
    generation: GENERATION,
};

/// The workflow that runs the scheduled stage.
fn nightly(layout: &'static Layout) -> Workflow {
    Workflow {
        layout,
        file: "nightly.yaml",
        name: "nightly",
        about: "",
        trigger: Trigger::Nightly {
            cron: "0 3 * * *",
            label: "nightly",
        },
        entries: vec![Entry::Job(Job::new("nightly", Os::Linux, &["nightly"], 10))],
    }
}

fn instance(name: &str) -> Instance {
    LAYOUT
        .instances("ci.yaml")
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no job {name}"))
}

#[test]
fn a_job_waits_for_the_job_of_its_platform_that_builds_what_it_consumes() {
    assert_eq!(instance("test").needs, ["package / build"]);
    assert!(instance("test-macos").needs.is_empty(), "it builds its own");
    assert_eq!(LAYOUT.entry_needs("ci.yaml", "test"), ["package"]);
    assert_eq!(LAYOUT.produced(&instance("package / build")), [&PACKAGE]);
    assert_eq!(LAYOUT.consumed(&instance("test")), [&PACKAGE]);
    assert!(LAYOUT.instances("missing.yaml").is_empty());
}

#[test]
fn a_lint_before_a_shared_build_reports_its_outcome() {
    let build = LAYOUT.workflow("build.yaml").unwrap();
    let job = build.jobs().next().unwrap();
    assert!(job.shares(&LAYOUT, &PACKAGE));
    let reported: Vec<&str> = job
        .reported_outcomes(&LAYOUT)
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(reported, ["lint"]);
    let ci = LAYOUT.workflow("ci.yaml").unwrap();
    let macos = ci.jobs().find(|j| j.key == "test-macos").unwrap();
    assert!(!macos.shares(&LAYOUT, &PACKAGE), "nobody downloads it");
    assert!(macos.reported_outcomes(&LAYOUT).is_empty());
}

#[test]
fn a_job_of_every_interpreter_passes_them_to_the_stages_that_take_them() {
    let calls = instance("test").calls;
    assert_eq!(calls[0].1.to_args(), ["--python", "3.8,3.9,3.10"]);
    let ci = LAYOUT.workflow("ci.yaml").unwrap();
    let versions: Vec<_> = ci.jobs().map(|j| j.python_versions(&LAYOUT)).collect();
    assert_eq!(versions[0], ["3.8", "3.9", "3.10"]);
    assert_eq!(versions[1], ["3.8"]);
    assert!(instance("test-macos").calls[1].1.to_args().is_empty());
}

#[test]
fn a_caller_runs_only_the_switches_it_turns_on() {
    let calls: Vec<String> = instance("package / build")
        .calls
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(calls, SWITCHES);
    assert!(instance_of(
        "package / build",
        LAYOUT
            .workflow("build.yaml")
            .unwrap()
            .jobs()
            .next()
            .unwrap()
    ));
    assert_eq!(outcome_output("lint"), "outcome-lint");
}

#[test]
fn the_plan_runs_a_build_when_a_job_that_downloads_it_runs() {
    let ci = LAYOUT.workflow("ci.yaml").unwrap();
    assert!(rule::gated(&ci));
    assert!(!rule::gated(&LAYOUT.workflow("build.yaml").unwrap()));
    let stage = |name| PIPELINE.stage(name).unwrap();
    assert_eq!(rule::runs(stage("lint")), rule::Runs::WhenKeyChanged);
    assert_eq!(rule::runs(stage("build")), rule::Runs::ForConsumers);
    let records: Vec<(&str, &str)> = rule::records(&ci)
        .into_iter()
        .map(|(e, s)| (e, s.name))
        .collect();
    assert_eq!(
        records,
        [
            ("package", "lint"),
            ("test", "test"),
            ("test-macos", "test")
        ]
    );
    // The package builds for `test`, its one download (test-macos builds its own).
    let none_passed = |_: &str, _: &str| false;
    let all_passed = |_: &str, _: &str| true;
    let test_passed = |entry: &str, stage: &str| (entry, stage) == ("test", "test");
    let build = stage("build");
    assert_eq!(
        rule::stage_runs(&ci, "package", build, &none_passed),
        Some(true)
    );
    assert_eq!(
        rule::stage_runs(&ci, "package", build, &all_passed),
        Some(false)
    );
    assert_eq!(
        rule::stage_runs(&ci, "package", build, &test_passed),
        Some(false),
        "its one consumer is skipped"
    );
    assert_eq!(
        rule::stage_runs(&ci, "package", stage("lint"), &test_passed),
        Some(true)
    );
    // The rendered condition is the same rule.
    assert_eq!(
        rule::stage_condition(&ci, "package", build),
        ["steps.pass-test-test.outputs.cache-hit != 'true'"]
    );
    assert_eq!(
        rule::conclusion_needs(&ci),
        ["plan", "package", "test", "test-macos"]
    );
    assert!(rule::runs_without_needs(&ci).is_empty());
    // An entry runs whole; a switched stage of a called workflow runs by its own rule.
    assert!(rule::entry_runs(&ci, "package", &test_passed));
    assert!(rule::step_runs(&ci, "package", stage("lint"), &test_passed));
    assert!(!rule::step_runs(&ci, "package", build, &test_passed));
    assert!(!rule::entry_runs(&ci, "test", &test_passed));
    assert!(
        rule::step_runs(&ci, "test-macos", build, &test_passed),
        "it runs with its test"
    );
}

/// A layout of [`PIPELINE`] (for `project`) whose pipeline workflow holds `entries` (and a
/// nightly one runs the scheduled stage).
macro_rules! layout_of {
    ($entries:expr) => {
        layout_of!($entries, &PROJECT)
    };
    ($entries:expr, $project:expr) => {{
        static BAD: Layout = Layout {
            project: $project,
            workflows: |layout| {
                vec![
                    Workflow {
                        layout,
                        file: "bad.yaml",
                        name: "bad",
                        about: "",
                        trigger: Trigger::Pipeline,
                        entries: $entries,
                    },
                    nightly(layout),
                ]
            },
            ..LAYOUT_BASE
        };
        &BAD
    }};
}

const LAYOUT_BASE: Layout = Layout {
    pipeline: &PIPELINE,
    project: &PROJECT,
    python_flag: Some(&PYTHON),
    workflows: |_| Vec::new(),
    generation: GENERATION,
};

#[test]
fn a_stage_no_job_names_gets_a_job_of_its_own() {
    let lint_only = layout_of!(vec![
        Entry::Job(Job::new("j", Os::Linux, &["lint"], 1)),
        Entry::Conclusion
    ]);
    lint_only.check().unwrap();
    let instances = lint_only.instances("bad.yaml");
    let jobs: Vec<(&str, &[String], Vec<&str>)> = instances
        .iter()
        .map(|i| {
            let calls = i.calls.iter().map(|(c, _)| c.as_str()).collect();
            (i.name.as_str(), i.needs.as_slice(), calls)
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("j", &[][..], vec!["lint"]),
            ("build", &[][..], vec!["build"]),
            ("test", &["build".to_string()][..], vec!["test"]),
        ],
        "the scheduled stage gets none"
    );
    let entries = &lint_only.workflow("bad.yaml").unwrap().entries;
    assert!(matches!(entries.last(), Some(Entry::Conclusion)));
    assert!(
        lint_only
            .workflow("bad.yaml")
            .unwrap()
            .jobs()
            .all(|j| j.key == "j" || j.timeout_minutes == OWN_JOB_MINUTES)
    );
}

#[test]
fn a_job_that_needs_the_servers_starts_them_and_a_scheduled_stage_has_a_job() {
    static SERVED: Pipeline = Pipeline {
        stages: &[
            Stage {
                services: Services::Starts,
                ..stage("up")
            },
            Stage {
                services: Services::Requires,
                ..stage("it")
            },
        ],
        ..PIPELINE_BASE
    };
    /// The one pipeline workflow, `a.yaml`, of `jobs`.
    fn a_yaml(layout: &'static Layout, jobs: &[Job]) -> Vec<Workflow> {
        vec![Workflow {
            layout,
            file: "a.yaml",
            name: "a",
            about: "",
            trigger: Trigger::Pipeline,
            entries: jobs.iter().cloned().map(Entry::Job).collect(),
        }]
    }
    static APART: Layout = Layout {
        pipeline: &SERVED,
        workflows: |layout| {
            let up = Job::new("j", Os::Linux, &["up"], 1);
            a_yaml(layout, &[up, Job::new("k", Os::Linux, &["it"], 1)])
        },
        ..LAYOUT_BASE
    };
    let err = APART.check().unwrap_err().to_string();
    assert!(
        err.contains(
            "a.yaml: job `k` runs `it`, which needs the servers, and starts none: \
             name `it` in a job that runs up"
        ),
        "{err}"
    );
    // Placed in no job, it would get a job of its own without the servers: named the same.
    static UNPLACED: Layout = Layout {
        pipeline: &SERVED,
        workflows: |layout| a_yaml(layout, &[Job::new("j", Os::Linux, &["up"], 1)]),
        ..LAYOUT_BASE
    };
    let err = UNPLACED.check().unwrap_err().to_string();
    assert!(
        err.contains("job `it` runs `it`, which needs the servers"),
        "{err}"
    );
    // A scheduled stage gets no job of its own: one must name it.
    static UNSCHEDULED: Layout = Layout {
        workflows: |layout| {
            let mut all = (LAYOUT.workflows)(layout);
            all.retain(|w| w.file != "nightly.yaml");
            all
        },
        ..LAYOUT_BASE
    };
    let err = UNSCHEDULED.check().unwrap_err().to_string();
    assert!(
        err.contains(
            "no job runs the scheduled stage `nightly`: name it in a job of a nightly workflow"
        ),
        "{err}"
    );
}

#[test]
fn a_malformed_layout_is_named() {
    LAYOUT.check().unwrap();
    let err = |layout: &'static Layout| layout.check().unwrap_err().to_string();
    let unknown = layout_of!(vec![Entry::Job(Job::new(
        "j",
        Os::Linux,
        &["lint", "nope"],
        1
    ))]);
    assert!(
        err(unknown).contains("runs the unknown stage `nope`"),
        "{}",
        err(unknown)
    );
    static ELSEWHERE: Layout = Layout {
        workflows: |layout| {
            let one = |file, trigger, stages| Workflow {
                layout,
                file,
                name: file,
                about: "",
                trigger,
                entries: vec![Entry::Job(Job::new(file, Os::Linux, stages, 1))],
            };
            vec![
                one("a.yaml", Trigger::Pipeline, &["lint", "test"]),
                one(
                    "b.yaml",
                    Trigger::Nightly {
                        cron: "0 0 * * *",
                        label: "b",
                    },
                    &["build"],
                ),
            ]
        },
        ..LAYOUT_BASE
    };
    assert!(
        err(&ELSEWHERE).contains("a.yaml: no job runs `build`, which `ci` runs on every run"),
        "{}",
        err(&ELSEWHERE)
    );
    let order = layout_of!(vec![Entry::Job(Job::new(
        "j",
        Os::Linux,
        &["test", "lint"],
        1
    ))]);
    assert!(
        err(order).contains("runs `lint` out of the pipeline's order"),
        "{}",
        err(order)
    );
    let twice = layout_of!(vec![
        Entry::Job(Job::new("j", Os::Linux, &["lint", "build", "test"], 1)),
        Entry::Job(Job::new("j", Os::Macos, &["lint"], 1)),
    ]);
    assert!(
        err(twice).contains("two checks are called `j`"),
        "{}",
        err(twice)
    );
    static ACROSS: Layout = Layout {
        workflows: |layout| {
            let one = |file, trigger| Workflow {
                layout,
                file,
                name: file,
                about: "",
                trigger,
                entries: vec![Entry::Job(Job::new(
                    "j",
                    Os::Linux,
                    &["lint", "build", "test"],
                    1,
                ))],
            };
            vec![
                one("a.yaml", Trigger::Pipeline),
                one(
                    "b.yaml",
                    Trigger::Nightly {
                        cron: "0 0 * * *",
                        label: "b",
                    },
                ),
                nightly(layout),
            ]
        },
        ..LAYOUT_BASE
    };
    assert!(
        err(&ACROSS).contains("two checks are called `j` (a.yaml and b.yaml)"),
        "{}",
        err(&ACROSS)
    );
    let call = layout_of!(vec![Entry::Call {
        key: "c",
        file: "bad.yaml",
        stages: &[],
    }]);
    assert!(err(call).contains("not a called workflow"), "{}", err(call));
    static OLD: Project = Project {
        pythons: &["2.7"],
        ..PROJECT
    };
    let flags = layout_of!(
        vec![Entry::Job(Job {
            pythons: Pythons::Every,
            ..Job::new("j", Os::Linux, &["test"], 1)
        })],
        &OLD
    );
    assert!(
        err(flags).contains("job `j` runs `test --python 2.7`: only Python 3"),
        "{}",
        err(flags)
    );

    static A: Artifact = artifact("a", "make-a", &["src"]);
    static B: Artifact = artifact("b", "make-b", &["src"]);
    static CROSSED: Pipeline = Pipeline {
        stages: &[
            Stage {
                produces: &[&A],
                inputs: Inputs {
                    cacheable: false,
                    ..reads(&["src"])
                },
                ..stage("make-a")
            },
            Stage {
                produces: &[&B],
                inputs: Inputs {
                    cacheable: false,
                    ..reads(&["src"])
                },
                ..stage("make-b")
            },
            Stage {
                consumes: &[&A],
                ..stage("use-a")
            },
            Stage {
                consumes: &[&B],
                ..stage("use-b")
            },
        ],
        ..PIPELINE_BASE
    };
    static CYCLE: Layout = Layout {
        pipeline: &CROSSED,
        workflows: |layout| {
            vec![Workflow {
                layout,
                file: "cycle.yaml",
                name: "cycle",
                about: "",
                trigger: Trigger::Pipeline,
                entries: vec![
                    Entry::Job(Job::new("x", Os::Linux, &["make-a", "use-b"], 1)),
                    Entry::Job(Job::new("y", Os::Linux, &["make-b", "use-a"], 1)),
                ],
            }]
        },
        ..LAYOUT_BASE
    };
    assert!(
        err(&CYCLE).contains("`x` waits for itself"),
        "{}",
        err(&CYCLE)
    );
    // The rule itself ends: x builds A when y runs, which is when either test's record is
    // missing (y also builds what x's test downloads).
    let workflow = CYCLE.workflow("cycle.yaml").unwrap();
    let terms = rule::stage_condition(&workflow, "x", CROSSED.stage("make-a").unwrap());
    assert_eq!(
        terms,
        [
            "steps.pass-x-use-b.outputs.cache-hit != 'true'",
            "steps.pass-y-use-a.outputs.cache-hit != 'true'"
        ]
    );
}
