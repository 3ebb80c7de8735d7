//! The lookups over a small pipeline of four stages: a lint, a build, the servers, a test.

use super::*;
use crate::flags::Flag;
use crate::graph::Servers;
use crate::graph::testing::{artifact, reads, stage};

const QUICK: Flag = Flag {
    name: "--quick",
    value: None,
    help: "fewer cases",
    check: None,
};

static PACKAGE: Artifact = artifact("package", "build", &["src"]);

static PIPELINE: Pipeline = Pipeline {
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
            services: Services::Starts,
            ..stage("up")
        },
        Stage {
            consumes: &[&PACKAGE],
            services: Services::Requires,
            flags: &[QUICK],
            ci_args: &["--quick"],
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
    servers: Some(Servers {
        stop_command: "down",
        stop: |_| Ok(()),
        env_file: |ctx| ctx.xtask_dir().join("servers.env"),
    }),
};

fn selected(only: Option<&[&str]>, skip: &[&str], scheduled: bool) -> Vec<&'static str> {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let selection = Selection {
        only: only.map(names),
        skip: names(skip),
        scheduled,
    };
    let stages = selection.resolve(&PIPELINE).unwrap();
    stages.iter().map(|s| s.name).collect()
}

#[test]
fn the_pipeline_is_well_formed_and_its_needs_follow_from_its_stages() {
    PIPELINE.check().unwrap();
    let needs = |name: &str| PIPELINE.needs(PIPELINE.stage(name).unwrap());
    assert_eq!(needs("test"), ["build", "up"]);
    assert!(needs("build").is_empty());
    assert_eq!(PIPELINE.artifacts(), [&PACKAGE]);
    assert_eq!(PIPELINE.producer(&PACKAGE).name, "build");
    assert!(
        PIPELINE
            .stage("test")
            .unwrap()
            .ci_args()
            .unwrap()
            .has(&QUICK)
    );
}

/// A pipeline of `stages` and nothing else.
const fn alone(stages: &'static [Stage]) -> Pipeline {
    Pipeline {
        stages,
        unclaimed: &[],
        explained: &[],
        pin_files: &[],
        servers: None,
    }
}

#[test]
fn a_malformed_pipeline_is_named() {
    static LATE: Pipeline = alone(&[
        Stage {
            consumes: &[&PACKAGE],
            ..stage("test")
        },
        Stage {
            produces: &[&PACKAGE],
            ..stage("build")
        },
    ]);
    let err = LATE.check().unwrap_err().to_string();
    assert!(
        err.contains("`test` needs `build`, which is declared later"),
        "{err}"
    );
    static ORPHAN: Pipeline = alone(&[Stage {
        produces: &[&PACKAGE],
        ..stage("make")
    }]);
    let err = ORPHAN.check().unwrap_err().to_string();
    assert!(err.contains("names `build` as its producer"), "{err}");
    static CACHED_BUILD: Pipeline = alone(&[Stage {
        produces: &[&PACKAGE],
        ..stage("build")
    }]);
    let err = CACHED_BUILD.check().unwrap_err().to_string();
    assert!(
        err.contains("`build` builds an artifact, so it must not be cacheable"),
        "{err}"
    );
    static UNDESCRIBED: Pipeline = alone(&[Stage {
        services: Services::Starts,
        ..stage("up")
    }]);
    let err = UNDESCRIBED.check().unwrap_err().to_string();
    assert!(err.contains("the pipeline does not describe them"), "{err}");
}

#[test]
fn selection_filters_and_keeps_graph_order() {
    assert_eq!(selected(None, &[], false), ["lint", "build", "up", "test"]);
    assert!(selected(None, &[], true).contains(&"nightly"));
    assert_eq!(
        selected(Some(&["test", "build"]), &[], false),
        ["build", "test"]
    );
    assert_eq!(selected(None, &["test"], false), ["lint", "build"]);
    assert_eq!(selected(Some(&["up"]), &[], false), ["up"]);
}

#[test]
fn unknown_stages_and_empty_selections_list_the_stages() {
    let err = PIPELINE.stage("everything").unwrap_err().to_string();
    assert!(err.contains("unknown stage `everything`"), "{err}");
    assert!(err.contains("lint, build, up, test, nightly"), "{err}");
    let empty = Selection {
        only: Some(Vec::new()),
        ..Selection::default()
    };
    let err = empty.resolve(&PIPELINE).unwrap_err().to_string();
    assert!(err.contains("no stage to run"), "{err}");
    let bad = Selection {
        skip: vec!["nope".into()],
        ..Selection::default()
    };
    assert!(
        bad.resolve(&PIPELINE)
            .unwrap_err()
            .to_string()
            .contains("lint")
    );
}

#[test]
fn the_list_and_a_stage_s_help_say_what_it_needs_and_uses() {
    let list = help::list(&PIPELINE, "ci, list");
    assert!(list.contains("  test     \n"), "{list}");
    assert!(list.contains("needs build, up; consumes package"), "{list}");
    assert!(list.contains("scheduled pipeline only"), "{list}");
    assert!(list.contains("Other commands: ci, list."), "{list}");
    let test = help::stage(&PIPELINE, PIPELINE.stage("test").unwrap());
    assert!(test.contains("--quick"), "{test}");
    assert!(
        test.contains("Needs: build, up\nConsumes: package\n"),
        "{test}"
    );
    assert!(test.contains("In `cargo xtask ci`: test --quick"), "{test}");
}
