//! Servers a stage starts in the background for the stages after it: each a [`Daemon`]
//! (its command, its log, a marker of its command line), started as a [`Process`] that
//! outlives `cargo xtask` until it is stopped, and an [`Endpoint`] that answers HTTP once it is
//! up. A project keeps the processes it started in its own state file and stops exactly
//! those: a recycled pid whose command line lacks the marker is never signalled.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::output::Tone;
use crate::plan::{Action, Outcome, Runner};
use crate::{http, process};

/// A server to start in the background.
#[derive(Clone, Debug, PartialEq)]
pub struct Daemon {
    pub name: &'static str,
    pub cmd: Cmd,
    /// Its output, relative to the workspace.
    pub log: PathBuf,
    /// A string of its command line that identifies it (guards against recycled pids).
    pub marker: String,
}

/// A server that was started: what stops it, and the log it writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub name: String,
    pub pid: u32,
    pub marker: String,
    #[serde(default)]
    pub log: Option<PathBuf>,
}

impl Process {
    /// Whether it still runs (its pid runs a command line with its marker).
    pub fn alive(&self) -> bool {
        process::process_matches(self.pid, &self.marker)
    }
}

/// An HTTP endpoint to wait for.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub name: &'static str,
    pub url: String,
    pub deadline_secs: u64,
    /// Where to look when it does not come up.
    pub log: Option<PathBuf>,
}

/// Starts `daemon` in the background, echoing its command and log; the caller records the
/// process it returns before anything else can fail.
pub fn start(runner: &mut dyn Runner, daemon: &Daemon) -> Result<Process> {
    let ctx = runner.ctx();
    runner.out().say(
        Tone::Bold,
        &format!(
            "$ {} &   (log: {})",
            daemon.cmd,
            ctx.rel(&daemon.log).display()
        ),
    );
    let pid = process::spawn_daemon(&daemon.cmd, &ctx.root, &ctx.root.join(&daemon.log))?;
    Ok(Process {
        name: daemon.name.to_string(),
        pid,
        marker: daemon.marker.clone(),
        log: Some(daemon.log.clone()),
    })
}

/// Whether `url` answers HTTP (any status) within two seconds.
pub fn answers(url: &str) -> bool {
    http::request("GET", url, &[], Duration::from_secs(2)).is_ok()
}

/// What to say when a server does not come up: how to change the deadline, and where to
/// look when the endpoint has no log of its own.
#[derive(Clone, Copy, Debug)]
pub struct Hints<'a> {
    pub deadline: &'a str,
    pub no_log: &'a str,
}

/// Waits until `endpoint` answers. Fails at its deadline, or as soon as the process of
/// `started` that writes the endpoint's log has exited, with the log's last lines.
pub fn wait_ready(
    ctx: &Context,
    endpoint: &Endpoint,
    started: &[Process],
    hints: Hints<'_>,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(endpoint.deadline_secs);
    let writer = started
        .iter()
        .find(|p| endpoint.log.is_some() && p.log == endpoint.log);
    loop {
        if answers(&endpoint.url) {
            return Ok(());
        }
        // A server that already died will not come up: say so now, not at the deadline.
        let dead = writer.is_some_and(|p| !p.alive());
        if dead || Instant::now() >= deadline {
            let why = if dead {
                "exited"
            } else {
                "did not answer in time"
            };
            let tail = match &endpoint.log {
                Some(log) => log_tail(&ctx.root.join(log)),
                None => format!("\n{}", hints.no_log),
            };
            bail!(
                "{} at {} {why} (waited up to {}s; {}).{tail}",
                endpoint.name,
                endpoint.url,
                endpoint.deadline_secs,
                hints.deadline
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The last 20 lines of a log, introduced.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("\nLast lines of {}:\n{tail}", path.display())
}

/// Stops each of `started` that still runs (TERM, then KILL after ten seconds), and fails
/// naming those that would not stop.
pub fn stop(runner: &mut dyn Runner, started: &[Process]) -> Result<()> {
    let mut failures = Vec::new();
    for process in started.iter().filter(|p| p.alive()) {
        runner.out().say(
            Tone::Dim,
            &format!("# stopping {} (pid {})", process.name, process.pid),
        );
        if let Err(e) = process::stop_daemon(process.pid, Duration::from_secs(10)) {
            failures.push(format!("{}: {e}", process.name));
        }
    }
    if !failures.is_empty() {
        bail!("could not stop every server: {}", failures.join("; "));
    }
    Ok(())
}

/// Fails unless nothing listens on `port` (a server is never attached to by accident); the
/// error names `variable`, which chooses another.
pub fn check_port_free(port: u16, variable: &str) -> Result<()> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {port} is already in use by a process that xtask did not start. Stop it, \
             or choose another port with {variable}=<port>."
        ),
        Err(e) => Err(e).with_context(|| format!("could not check port {port}")),
    }
}

/// Fail unless nothing listens on the port (never attach to a foreign server).
#[derive(Debug)]
pub struct CheckPortFree {
    pub port: u16,
    pub variable: &'static str,
}

impl fmt::Display for CheckPortFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check that port {} is free (change it with {})",
            self.port, self.variable
        )
    }
}

impl Action for CheckPortFree {
    fn perform(&self, _runner: &mut dyn Runner) -> Result<Outcome> {
        check_port_free(self.port, self.variable)?;
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_a_clear_error_naming_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_port_free(port, "EXAMPLE_PORT")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("port {port} is already in use")),
            "{err}"
        );
        assert!(err.contains("EXAMPLE_PORT"), "{err}");
    }

    #[test]
    fn a_process_that_is_gone_is_not_alive_and_stopping_it_does_nothing() {
        let gone = Process {
            name: "gone".into(),
            pid: u32::MAX - 1,
            marker: "never-a-command-line".into(),
            log: None,
        };
        assert!(!gone.alive());
        let ctx = crate::context::testing::context_at(std::env::temp_dir());
        let mut runner = crate::plan::testing::Recorder::new(&ctx);
        stop(&mut runner, &[gone]).unwrap();
        assert!(runner.ran.is_empty());
    }

    #[test]
    fn a_log_tail_is_its_last_twenty_lines() {
        let path = std::env::temp_dir().join(format!("ci-engine-log-{}", std::process::id()));
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path);
        assert!(
            tail.contains("line 11\n") && tail.ends_with("line 30"),
            "{tail}"
        );
        assert!(!tail.contains("line 10\n"), "{tail}");
        std::fs::remove_file(&path).unwrap();
    }
}
