//! The services stage (docker-up) and the docker-down command, as plans.

use anyhow::Result;

use crate::flags::BACKEND;
use crate::services;
use ci_engine::context::Context;
use ci_engine::exec::Executor;
use ci_engine::flags::StageArgs;
use ci_engine::plan::Plan;

pub fn up(ctx: &Context, args: &StageArgs) -> Result<Plan> {
    services::plan_up(ctx, args.value(&BACKEND))
}

/// docker-down: stop what docker-up started. It runs even after Ctrl-C (it is how a run
/// finishes), for `cargo xtask docker-down`, at the end of `ci` and after each compare job.
pub fn take_down(exec: &mut Executor<'_>) -> Result<()> {
    exec.finishing = true;
    exec.run_plan(&services::plan_down())
}

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use crate::flags::BACKEND;
    use crate::pipeline::PIPELINE;
    use crate::stages::testing::plan_lines;
    use crate::testing::context;

    #[test]
    fn docker_up_without_an_engine_plans_the_native_backend() {
        let lines = plan_lines(&context(), "docker-up", &[]);
        assert!(
            lines[0].starts_with("- reuse servers an earlier docker-up started"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("# native backend (no Docker engine)"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("does not verify request signatures"));
        assert_eq!(
            &lines[2..],
            [
                "- ensure moto 5.2.5",
                "- ensure azurite 3.37.0",
                "- check that port 9000 is free (change it with XTASK_S3_PORT)",
                "- check that port 10000 is free (change it with XTASK_AZURE_PORT)",
                "- record the native backend in the services state file",
                "- write target/xtask/services/moto_atomic.py",
                "- start moto in the background, log target/xtask/services/moto.log: \
                 /tools/moto-5.2.5/bin/python target/xtask/services/moto_atomic.py -H 127.0.0.1 \
                 -p 9000",
                "- start azurite in the background, log target/xtask/services/azurite.log: \
                 node /tools/azurite-3.37.0/node_modules/azurite/dist/src/blob/main.js --blobHost \
                 127.0.0.1 --blobPort 10000 --inMemoryPersistence --skipApiVersionCheck --loose \
                 --disableTelemetry",
                "- wait up to 60s for the S3 server at http://127.0.0.1:9000/",
                "- wait up to 60s for Azurite at http://127.0.0.1:10000/devstoreaccount1?comp=list",
                "- create bucket testbucket at http://127.0.0.1:9000",
                "- create container testcontainer at http://127.0.0.1:10000/devstoreaccount1 \
                 (SharedKey-signed)",
                "- write target/xtask/services.env (and $GITHUB_ENV) and the native state file",
            ]
        );
    }

    #[test]
    fn asking_for_docker_without_an_engine_is_a_clear_error() {
        let stage = PIPELINE.stage("docker-up").unwrap();
        let args = ci_engine::flags::StageArgs::default().with(&BACKEND, Some("docker".into()));
        let err = PIPELINE
            .plan(stage, &context(), &args)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Docker engine answers"), "{err}");
        assert!(err.contains("--backend native"), "{err}");
    }
}
