//! The docker backend: `docker compose up --wait` on compose.yaml (which pulls the images it
//! lacks), then the Azure container. Images are not cached as a tarball: see docs/ci.md.

use super::actions::{CreateContainer, RecordServices, TrackServices, WaitReady};
use super::{Backend, CONTAINER, Ports, azure_endpoint, endpoints};
use ci_engine::cmd::Cmd;
use ci_engine::plan::Plan;

pub const PROJECT: &str = "icechunk-xtask";
const COMPOSE_FILE: &str = "compose.yaml";

fn compose(project: &str) -> Cmd {
    Cmd::new("docker").args(["compose", "--file", COMPOSE_FILE, "--project-name", project])
}

pub fn plan_up(ports: Ports, deadline_secs: u64) -> Plan {
    let [s3, azure] = endpoints(ports, [None, None], deadline_secs);
    Plan::new()
        .note("docker backend: the servers of compose.yaml, images pulled when missing")
        .action(TrackServices(Backend::Docker))
        .run(
            compose(PROJECT)
                .args(["up", "--detach", "--wait", "--wait-timeout"])
                .arg(deadline_secs.to_string())
                .env("XTASK_S3_PORT", ports.s3.to_string())
                .env("XTASK_AZURE_PORT", ports.azure.to_string()),
        )
        .action(WaitReady(s3))
        .action(WaitReady(azure))
        .action(CreateContainer {
            endpoint: azure_endpoint(ports),
            container: CONTAINER.into(),
        })
        .action(RecordServices(Backend::Docker))
}

pub fn down_command(project: &str) -> Cmd {
    compose(project).args(["down", "--volumes", "--remove-orphans"])
}
