//! S3 and Azure servers for the full tests, with Docker or without.
//!
//! `docker-up` starts them — from compose.yaml when a Docker engine answers, natively (moto and
//! Azurite) when not — and writes what the tests receive, the same either way, to
//! `target/xtask/services.env`. What it started is recorded in a state file so that
//! `docker-down` (and `cargo xtask ci`'s teardown) stops exactly that.

mod actions;
mod azure;
mod docker;
mod native;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use ci_engine::cmd::parse_env;
use ci_engine::context::Context;
use ci_engine::http;
use ci_engine::output::Tone;
use ci_engine::plan::{Plan, Runner};
use ci_engine::servers::{self, Daemon, Endpoint, Process};

pub const BUCKET: &str = "testbucket";
pub const CONTAINER: &str = "testcontainer";
pub const REGION: &str = "us-east-1";
/// Credentials of the S3 server (MinIO's root user in compose.yaml; moto accepts any).
pub const S3_ACCESS_KEY: &str = "icechunk";
pub const S3_SECRET_KEY: &str = "icechunk-secret";
/// Azurite's well-known development account.
pub const AZURE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Docker,
    Native,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Docker => "docker",
            Backend::Native => "native",
        })
    }
}

/// The host ports, `XTASK_S3_PORT` and `XTASK_AZURE_PORT` (defaults 9000 and 10000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub s3: u16,
    pub azure: u16,
}

impl Ports {
    pub fn from_env() -> Result<Ports> {
        let port = |name: &str, default: u16| -> Result<u16> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .with_context(|| format!("{name}={v} is not a port number")),
                Err(_) => Ok(default),
            }
        };
        Ok(Ports {
            s3: port("XTASK_S3_PORT", 9000)?,
            azure: port("XTASK_AZURE_PORT", 10000)?,
        })
    }
}

/// What docker-up started, so docker-down can stop exactly that.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub backend: Option<Backend>,
    pub ports: Option<Ports>,
    #[serde(default)]
    pub processes: Vec<Process>,
    /// The compose project, for the docker backend.
    pub compose_project: Option<String>,
    /// docker-up finished (servers ready, bucket and container created, env written).
    #[serde(default)]
    pub ready: bool,
}

fn services_dir(ctx: &Context) -> PathBuf {
    ctx.xtask_dir().join("services")
}

fn state_path(ctx: &Context) -> PathBuf {
    services_dir(ctx).join("state.json")
}

/// The file the tests read.
pub fn env_path(ctx: &Context) -> PathBuf {
    ctx.xtask_dir().join("services.env")
}

fn read_state(ctx: &Context) -> Result<Option<State>> {
    match std::fs::read_to_string(state_path(ctx)) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is corrupt: remove it and stop leftover servers by hand",
                state_path(ctx).display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_state(ctx: &Context, state: &State) -> Result<()> {
    std::fs::create_dir_all(services_dir(ctx))?;
    std::fs::write(state_path(ctx), serde_json::to_string_pretty(state)? + "\n")?;
    Ok(())
}

/// What the tests receive: endpoints and credentials, identical for both backends.
pub fn test_env(backend: Backend, ports: Ports) -> Vec<(String, String)> {
    [
        ("ICECHUNK_TEST_SERVICES_BACKEND", backend.to_string()),
        (
            "ICECHUNK_TEST_S3_ENDPOINT",
            format!("http://127.0.0.1:{}", ports.s3),
        ),
        ("ICECHUNK_TEST_S3_BUCKET", BUCKET.to_string()),
        ("ICECHUNK_TEST_S3_REGION", REGION.to_string()),
        ("ICECHUNK_TEST_S3_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
        (
            "ICECHUNK_TEST_S3_SECRET_ACCESS_KEY",
            S3_SECRET_KEY.to_string(),
        ),
        ("ICECHUNK_TEST_AZURE_ENDPOINT", azure_endpoint(ports)),
        ("ICECHUNK_TEST_AZURE_ACCOUNT", AZURE_ACCOUNT.to_string()),
        ("ICECHUNK_TEST_AZURE_ACCESS_KEY", AZURE_KEY.to_string()),
        ("ICECHUNK_TEST_AZURE_CONTAINER", CONTAINER.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn azure_endpoint(ports: Ports) -> String {
    format!("http://127.0.0.1:{}/{AZURE_ACCOUNT}", ports.azure)
}

/// How long the servers may take to answer: `XTASK_READY_TIMEOUT` seconds (default 60).
fn ready_timeout() -> Result<u64> {
    match std::env::var("XTASK_READY_TIMEOUT") {
        Err(_) => Ok(60),
        Ok(value) => match value.trim().parse() {
            Ok(secs @ 1..=3600) => Ok(secs),
            _ => bail!("XTASK_READY_TIMEOUT={value}: expected whole seconds from 1 to 3600"),
        },
    }
}

fn endpoints(ports: Ports, logs: [Option<PathBuf>; 2], deadline_secs: u64) -> [Endpoint; 2] {
    let [s3_log, azure_log] = logs;
    [
        Endpoint {
            name: "the S3 server",
            url: format!("http://127.0.0.1:{}/", ports.s3),
            deadline_secs,
            log: s3_log,
        },
        Endpoint {
            name: "Azurite",
            url: format!("{}?comp=list", azure_endpoint(ports)),
            deadline_secs,
            log: azure_log,
        },
    ]
}

/// Whether every recorded server is alive and answers.
fn healthy(state: &State) -> bool {
    let Some(ports) = state.ports else {
        return false;
    };
    state.ready
        && state.processes.iter().all(|p| p.alive())
        && endpoints(ports, [None, None], 0)
            .iter()
            .all(|e| servers::answers(&e.url))
}

/// The plan of `cargo xtask docker-up [--backend ...]`. Which backend follows from the flag,
/// `XTASK_SERVICES_BACKEND` and whether the context found a Docker engine; whether servers are
/// already up is checked by the plan's first step.
pub fn plan_up(ctx: &Context, backend: Option<&str>) -> Result<Plan> {
    let ports = Ports::from_env()?;
    let from_env = std::env::var("XTASK_SERVICES_BACKEND").ok();
    let asked = backend.or(from_env.as_deref()).unwrap_or("auto");
    if ctx.for_keys {
        // A key covers what either backend would start and which one was asked for; which
        // one this machine resolves is recorded with a pass (`keys::realized`).
        let deadline_secs = ready_timeout()?;
        return Ok(Plan::new()
            .note(format!("services backend asked for: {asked}"))
            .extend(docker::plan_up(ports, deadline_secs))
            .extend(native::plan_up(ctx, ports, deadline_secs)));
    }
    let backend = match asked {
        "docker" if !ctx.docker_engine() => bail!(
            "--backend docker: no Docker engine answers (`docker info` failed). Start Docker, or \
             use --backend native (or auto)."
        ),
        "docker" => Backend::Docker,
        "native" => Backend::Native,
        "auto" if ctx.docker_engine() => Backend::Docker,
        "auto" => Backend::Native,
        other => bail!(
            "unknown services backend `{other}` (XTASK_SERVICES_BACKEND): expected auto, docker or native"
        ),
    };
    let deadline_secs = ready_timeout()?;
    let up = match backend {
        Backend::Docker => docker::plan_up(ports, deadline_secs),
        Backend::Native if !cfg!(unix) => bail!(
            "the native backend runs the servers as background processes, which xtask supports \
             on Linux and macOS only; use --backend docker"
        ),
        Backend::Native => native::plan_up(ctx, ports, deadline_secs),
    };
    Ok(Plan::new()
        .action(actions::ReuseOrReset { ports })
        .extend(up))
}

/// The plan of `cargo xtask docker-down`.
pub fn plan_down() -> Plan {
    Plan::new().action(actions::StopServices)
}

/// The step that stops the tests of a stage early when the services are not up.
pub fn require_step() -> actions::RequireServices {
    actions::RequireServices
}

/// Start tracking a backend before anything starts, so a failure half-way can be cleaned up.
fn track(ctx: &Context, backend: Backend) -> Result<()> {
    let compose_project = (backend == Backend::Docker).then(|| docker::PROJECT.to_string());
    let state = State {
        backend: Some(backend),
        ports: Some(Ports::from_env()?),
        compose_project,
        ..State::default()
    };
    write_state(ctx, &state)
}

/// Start `daemon` and record it at once, so that docker-down stops it whatever fails next.
fn spawn(runner: &mut dyn Runner, daemon: &Daemon) -> Result<()> {
    let started = servers::start(runner, daemon)?;
    let ctx = runner.ctx();
    let mut state = read_state(ctx)?.unwrap_or_default();
    state.processes.push(started);
    write_state(ctx, &state)
}

fn wait_ready(ctx: &Context, endpoint: &Endpoint) -> Result<()> {
    let state = read_state(ctx)?.unwrap_or_default();
    let compose_logs = format!(
        "The servers' logs: docker compose --project-name {} logs",
        docker::PROJECT
    );
    let hints = servers::Hints {
        deadline: "XTASK_READY_TIMEOUT changes the deadline",
        no_log: &compose_logs,
    };
    servers::wait_ready(ctx, endpoint, &state.processes, hints)
}

fn create_bucket(endpoint: &str, bucket: &str) -> Result<()> {
    let url = format!("{}/{bucket}", endpoint.trim_end_matches('/'));
    let response = http::request("PUT", &url, &[], Duration::from_secs(10))
        .with_context(|| format!("could not reach the S3 server at {endpoint}"))?;
    match response.status {
        200 | 409 => Ok(()),
        status => bail!(
            "creating bucket {bucket} at {endpoint} answered {status}: {}",
            response.body
        ),
    }
}

fn create_container(endpoint: &str, container: &str) -> Result<()> {
    azure::create_container(endpoint, AZURE_ACCOUNT, AZURE_KEY, container)
}

/// Write services.env (and `$GITHUB_ENV`), and mark the state ready.
fn record(runner: &mut dyn Runner, backend: Backend) -> Result<()> {
    let ctx = runner.ctx();
    let mut state = read_state(ctx)?.unwrap_or_default();
    let ports = match state.ports {
        Some(ports) => ports,
        None => Ports::from_env()?,
    };
    let vars = test_env(backend, ports);
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::create_dir_all(ctx.xtask_dir())?;
    std::fs::write(env_path(ctx), text)?;
    runner.out().export_env(&vars);
    state.backend = Some(backend);
    state.ports = Some(ports);
    state.ready = true;
    write_state(ctx, &state)?;
    runner.out().say(
        Tone::Good,
        &format!(
            "services up ({backend}): S3 at http://127.0.0.1:{}, Azure at {}; tests read {}",
            ports.s3,
            azure_endpoint(ports),
            ctx.rel(&env_path(ctx)).display()
        ),
    );
    Ok(())
}

/// Stop what the state file records (the compose project, then the processes), then forget it.
fn stop(runner: &mut dyn Runner) -> Result<()> {
    let Some(state) = read_state(runner.ctx())? else {
        runner.out().say(
            Tone::Dim,
            "# no services recorded by docker-up: nothing to stop",
        );
        return Ok(());
    };
    if let Some(project) = &state.compose_project {
        runner.run(&docker::down_command(project))?;
    }
    servers::stop(runner, &state.processes)?;
    let ctx = runner.ctx();
    for path in [state_path(ctx), env_path(ctx)] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("could not remove {}", path.display()));
            }
            _ => {}
        }
    }
    runner.out().say(Tone::Good, "services stopped");
    Ok(())
}

/// Before tests that need services: the env file exists and its servers answer.
fn require(ctx: &Context) -> Result<()> {
    let path = env_path(ctx);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        anyhow::anyhow!(
            "the services are not up ({} is missing). Start them with `cargo xtask docker-up`.",
            ctx.rel(&path).display()
        )
    })?;
    let vars = parse_env(&text);
    for (name, key, suffix) in [
        ("the S3 server", "ICECHUNK_TEST_S3_ENDPOINT", "/"),
        ("Azurite", "ICECHUNK_TEST_AZURE_ENDPOINT", "?comp=list"),
    ] {
        let endpoint = vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .with_context(|| {
                format!(
                    "{} has no {key}: run `cargo xtask docker-up` again",
                    path.display()
                )
            })?;
        if !servers::answers(&format!("{}{suffix}", endpoint.trim_end_matches('/'))) {
            bail!(
                "{name} at {endpoint} does not answer. Start the services with `cargo xtask \
                 docker-up` (or restart them: `cargo xtask docker-down && cargo xtask docker-up`)."
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::context;

    #[test]
    fn the_test_environment_is_the_same_contract_for_both_backends() {
        let ports = Ports {
            s3: 9000,
            azure: 10000,
        };
        let native = test_env(Backend::Native, ports);
        let docker = test_env(Backend::Docker, ports);
        assert_eq!(native.len(), docker.len());
        for ((kn, vn), (kd, vd)) in native.iter().zip(&docker).skip(1) {
            assert_eq!((kn, vn), (kd, vd), "only the backend name may differ");
        }
        assert!(native.contains(&(
            "ICECHUNK_TEST_S3_ENDPOINT".into(),
            "http://127.0.0.1:9000".into()
        )));
        assert!(native.contains(&(
            "ICECHUNK_TEST_AZURE_ENDPOINT".into(),
            "http://127.0.0.1:10000/devstoreaccount1".into()
        )));
    }

    #[test]
    fn env_files_parse() {
        let vars = parse_env("# services\nA=1\n\nB = two=2\nnot a pair\n");
        assert_eq!(
            vars,
            [("A".into(), "1".into()), ("B".into(), "two=2".into())]
        );
    }

    #[test]
    fn down_without_state_stops_nothing() {
        let ctx = crate::testing::context_at(std::env::temp_dir().join("xtask-no-state"));
        let mut runner = ci_engine::plan::testing::Recorder::new(&ctx);
        stop(&mut runner).unwrap();
        assert!(runner.ran.is_empty());
    }

    #[test]
    fn require_says_how_to_start_missing_services() {
        let err = require(&context()).unwrap_err().to_string();
        assert!(err.contains("cargo xtask docker-up"), "{err}");
    }
}
