//! The steps of the services' plans, each carried out by the function of `services` that owns
//! the state file, the servers and their endpoints.

use std::fmt;

use anyhow::{Context as _, Result};

use super::{
    Backend, Daemon, Endpoint, Ports, create_bucket, create_container, healthy, read_state, record,
    require, spawn, stop, track, wait_ready,
};
use ci_engine::output::Tone;
use ci_engine::plan::{Action, Outcome, Runner};

/// Reuse servers an earlier docker-up left running when they answer on the same ports (the
/// rest of the plan is then not needed); stop recorded ones that do not.
#[derive(Debug)]
pub struct ReuseOrReset {
    pub ports: Ports,
}

impl fmt::Display for ReuseOrReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "reuse servers an earlier docker-up started when they answer on these ports (then \
             stop here); stop recorded ones that do not",
        )
    }
}

impl Action for ReuseOrReset {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let Some(state) = read_state(runner.ctx())? else {
            return Ok(Outcome::Continue);
        };
        if state.ports == Some(self.ports) && healthy(&state) {
            let backend = state.backend.unwrap_or(Backend::Native);
            record(runner, backend)?;
            return Ok(Outcome::Done(format!(
                "services are already up ({backend}) and answer: reusing them"
            )));
        }
        runner.out().say(
            Tone::Dim,
            "# services recorded by an earlier docker-up are not healthy: stopping them first",
        );
        stop(runner)?;
        Ok(Outcome::Continue)
    }
}

/// Record in the state file which backend is starting, before anything starts, so a failure
/// half-way can still be cleaned up.
#[derive(Debug)]
pub struct TrackServices(pub Backend);

impl fmt::Display for TrackServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record the {} backend in the services state file",
            self.0
        )
    }
}

impl Action for TrackServices {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        track(runner.ctx(), self.0)?;
        Ok(Outcome::Continue)
    }
}

/// Start a server in the background; it outlives this process until docker-down.
#[derive(Debug)]
pub struct Spawn(pub Daemon);

impl fmt::Display for Spawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(
            f,
            "start {} in the background, log {}: {}",
            d.name,
            d.log.display(),
            d.cmd
        )
    }
}

impl Action for Spawn {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        spawn(runner, &self.0)?;
        Ok(Outcome::Continue)
    }
}

/// Wait until the endpoint answers HTTP, or fail with the tail of its log.
#[derive(Debug)]
pub struct WaitReady(pub Endpoint);

impl fmt::Display for WaitReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        write!(
            f,
            "wait up to {}s for {} at {}",
            e.deadline_secs, e.name, e.url
        )
    }
}

impl Action for WaitReady {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        wait_ready(runner.ctx(), &self.0)?;
        Ok(Outcome::Continue)
    }
}

/// Create the S3 bucket (moto accepts unauthenticated requests).
#[derive(Debug)]
pub struct CreateBucket {
    pub endpoint: String,
    pub bucket: String,
}

impl fmt::Display for CreateBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "create bucket {} at {}", self.bucket, self.endpoint)
    }
}

impl Action for CreateBucket {
    fn perform(&self, _runner: &mut dyn Runner) -> Result<Outcome> {
        create_bucket(&self.endpoint, &self.bucket)?;
        Ok(Outcome::Continue)
    }
}

/// Create the Azure container with a SharedKey-signed request.
#[derive(Debug)]
pub struct CreateContainer {
    pub endpoint: String,
    pub container: String,
}

impl fmt::Display for CreateContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "create container {} at {} (SharedKey-signed)",
            self.container, self.endpoint
        )
    }
}

impl Action for CreateContainer {
    fn perform(&self, _runner: &mut dyn Runner) -> Result<Outcome> {
        create_container(&self.endpoint, &self.container)?;
        Ok(Outcome::Continue)
    }
}

/// Write endpoints and credentials to services.env (and `$GITHUB_ENV`) and record what was
/// started in the state file.
#[derive(Debug)]
pub struct RecordServices(pub Backend);

impl fmt::Display for RecordServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write target/xtask/services.env (and $GITHUB_ENV) and the {} state file",
            self.0
        )
    }
}

impl Action for RecordServices {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        record(runner, self.0)?;
        Ok(Outcome::Continue)
    }
}

/// Stop exactly what the state file says docker-up started, then remove it.
#[derive(Debug)]
pub struct StopServices;

impl fmt::Display for StopServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "stop what the services state file records (`docker compose down` for the docker \
             backend, the processes for the native one)",
        )
    }
}

impl Action for StopServices {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        stop(runner)?;
        Ok(Outcome::Continue)
    }
}

/// Check that `target/xtask/services.env` exists and its servers answer.
#[derive(Debug)]
pub struct RequireServices;

impl fmt::Display for RequireServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("check target/xtask/services.env and that its servers answer")
    }
}

impl Action for RequireServices {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        require(runner.ctx())?;
        Ok(Outcome::Continue)
    }
}

/// Write a server's launcher script (kept in xtask's source, written where the server's log
/// goes, so a server can start from any workspace).
#[derive(Debug)]
pub struct WriteLauncher {
    pub path: std::path::PathBuf,
    pub text: &'static str,
}

impl fmt::Display for WriteLauncher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write {}", self.path.display())
    }
}

impl Action for WriteLauncher {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let path = runner.ctx().root.join(&self.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, self.text)
            .with_context(|| format!("could not write {}", path.display()))?;
        Ok(Outcome::Continue)
    }
}
