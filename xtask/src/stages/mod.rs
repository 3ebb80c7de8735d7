//! Stage plans, one module per area: each stage of the pipeline names its plan here (a build
//! stage's is the engine's `artifacts::build` of its artifact). Planning is pure; every check
//! that needs the world is a step of the plan.

pub mod clippy;
pub mod lints;
pub mod python;
pub mod repack;
pub mod rust;
pub mod services;
mod wheel_copies;

#[cfg(test)]
pub(crate) mod testing {
    //! Plans rendered the way `--dry-run` prints them.
    use crate::pipeline::PIPELINE;
    use ci_engine::context::Context;

    pub fn plan_lines(ctx: &Context, name: &str, args: &[&str]) -> Vec<String> {
        let stage = PIPELINE.stage(name).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let args = stage.parse_args(&args).unwrap();
        PIPELINE.plan(stage, ctx, &args).unwrap().lines()
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::{PIPELINE, WHEELS};
    use crate::tools::NEXTEST;
    use ci_engine::artifacts::Recipe;
    use ci_engine::context::Context;
    use ci_engine::graph::Services;

    /// The workflows cache the tools a stage declares; its plan must ensure exactly those.
    #[test]
    fn every_stage_declares_the_tools_its_plan_ensures() {
        let ctx = crate::testing::context();
        for stage in PIPELINE.stages {
            let args = stage.ci_args().unwrap();
            let mut ensured: Vec<String> = PIPELINE
                .plan(stage, &ctx, &args)
                .unwrap()
                .lines()
                .into_iter()
                .filter_map(|l| l.strip_prefix("- ensure ").map(str::to_string))
                .collect();
            ensured.dedup();
            let declared: Vec<String> = stage.tools.iter().map(ToString::to_string).collect();
            assert_eq!(ensured, declared, "{}", stage.name);
        }
    }

    #[test]
    fn stages_that_require_services_check_them() {
        let ctx = crate::testing::context();
        for stage in PIPELINE
            .stages
            .iter()
            .filter(|s| s.services == Services::Requires)
        {
            let args = stage.ci_args().unwrap();
            let lines = PIPELINE.plan(stage, &ctx, &args).unwrap().lines();
            assert!(
                lines.iter().any(|l| l.contains("services.env")),
                "{}: {lines:?}",
                stage.name
            );
        }
    }

    #[test]
    fn the_recipe_ignores_where_the_artifact_and_the_tools_live() {
        let a = crate::testing::context();
        let b = Context::new(
            &crate::project::PROJECT,
            "/repo".into(),
            "/elsewhere/target".into(),
            "/other-tools".into(),
            [],
        )
        .with_facts(vec![], false, &[]);
        assert_ne!(
            NEXTEST.program(&a),
            NEXTEST.program(&b),
            "one finds nextest on PATH, the other in its tools"
        );
        // `cargo xtask` runs xtask with cargo's path in $CARGO; xtask's binary run directly
        // finds cargo on PATH (as the jobs that restore the plan job's xtask do).
        let c = Context::new(
            &crate::project::PROJECT,
            "/repo".into(),
            "/repo/target".into(),
            "/other-tools".into(),
            [(
                "CARGO".to_string(),
                "/toolchains/1.95.0/bin/cargo".to_string(),
            )],
        )
        .with_facts(
            vec![],
            false,
            &[("cargo-nextest", crate::tools::NEXTEST_VERSION)],
        );
        for artifact in PIPELINE.artifacts() {
            assert_eq!(Recipe::of(&a, artifact).text, Recipe::of(&b, artifact).text);
            assert_eq!(Recipe::of(&a, artifact).text, Recipe::of(&c, artifact).text);
        }
        if cfg!(unix) {
            assert_eq!(
                Recipe::of(&a, &WHEELS).text,
                "<tools>/maturin-1.16.0/bin/maturin build --locked --manifest-path \
                 icechunk-python/Cargo.toml --profile ci --out <artifact dir>"
            );
        }
    }
}
