//! The native backend, for machines without a Docker engine: moto's S3 server (PyPI) and
//! Azurite's blob service (npm), pinned, as processes on 127.0.0.1.

use super::actions::{
    CreateBucket, CreateContainer, RecordServices, Spawn, TrackServices, WaitReady, WriteLauncher,
};
use super::{BUCKET, Backend, CONTAINER, Ports, azure_endpoint, endpoints, services_dir};
use crate::tools::{AZURITE, MOTO};
use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::plan::Plan;
use ci_engine::servers::{CheckPortFree, Daemon};
use ci_engine::tools::Ensure;

/// Runs moto's S3 server with one write at a time, so conditional writes are atomic as on S3.
const MOTO_LAUNCHER: &str = include_str!("moto_atomic.py");

pub fn plan_up(ctx: &Context, ports: Ports, deadline_secs: u64) -> Plan {
    let dir = services_dir(ctx);
    // moto's own server, through a launcher that serializes its writes (see the file).
    let launcher = ctx.rel(&dir.join("moto_atomic.py"));
    let python = MOTO.venv_python(ctx);
    let moto = Daemon {
        name: "moto",
        cmd: Cmd::new(python.to_string_lossy()).arg(&launcher).args([
            "-H",
            "127.0.0.1",
            "-p",
            &ports.s3.to_string(),
        ]),
        log: ctx.rel(&dir.join("moto.log")),
        marker: "moto_atomic.py".to_string(),
    };
    let azurite = Daemon {
        name: "azurite",
        cmd: AZURITE.cmd(ctx).args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &ports.azure.to_string(),
            // Nothing persists between starts: no run reads what an earlier one stored.
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ]),
        log: ctx.rel(&dir.join("azurite.log")),
        marker: "azurite".to_string(),
    };
    let logs = [Some(moto.log.clone()), Some(azurite.log.clone())];
    let [s3, azure] = endpoints(ports, logs, deadline_secs);
    Plan::new()
        .note(
            "native backend (no Docker engine): moto's S3 server stands in for MinIO and does not \
             verify request signatures (its writes run one at a time, so that conditional writes \
             are atomic); Azurite runs from npm; both listen on 127.0.0.1",
        )
        .action(Ensure(MOTO))
        .action(Ensure(AZURITE))
        .action(CheckPortFree {
            port: ports.s3,
            variable: "XTASK_S3_PORT",
        })
        .action(CheckPortFree {
            port: ports.azure,
            variable: "XTASK_AZURE_PORT",
        })
        .action(TrackServices(Backend::Native))
        .action(WriteLauncher {
            path: launcher,
            text: MOTO_LAUNCHER,
        })
        .action(Spawn(moto))
        .action(Spawn(azurite))
        .action(WaitReady(s3.clone()))
        .action(WaitReady(azure))
        .action(CreateBucket {
            endpoint: s3.url.trim_end_matches('/').to_string(),
            bucket: BUCKET.into(),
        })
        .action(CreateContainer {
            endpoint: azure_endpoint(ports),
            container: CONTAINER.into(),
        })
        .action(RecordServices(Backend::Native))
}
