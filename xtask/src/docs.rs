//! docs/ci.md's generated tables, derived from the stage graph, the job table and the pins
//! (`ci_engine::docs`): a stale section is rewritten, then the test fails (commit the result).

use crate::pins;
use crate::pipeline::{LAYOUT, PIPELINE};
use ci_engine::docs::{actions_table, ensure_section, jobs_table, stage_table, tools_table};

#[test]
fn the_generated_tables_in_docs_ci_md_are_current() {
    let path = crate::testing::checkout().join("docs/ci.md");
    for (name, expected) in [
        ("stages", stage_table(&LAYOUT)),
        ("jobs", jobs_table(&LAYOUT)),
        ("tools", tools_table(&PIPELINE)),
        ("actions", actions_table(&pins::actions())),
    ] {
        let rewritten = ensure_section(&path, "xtask/src/docs.rs", name, &expected).unwrap();
        assert!(
            !rewritten,
            "docs/ci.md's {name} table was out of date and has been rewritten: commit it"
        );
    }
}
