//! The docker backend's plan, checked against a fake `docker` first on PATH that records the
//! arguments xtask sends (no Docker engine runs here; everything else is real).

#![cfg(unix)] // they start processes the Unix way (a shell script, SIGINT)

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;

const FAKE_DOCKER: &str = r#"#!/bin/sh
echo "$*" >> "$XTASK_FAKE_DOCKER_LOG"
case "$1" in
  info) echo "99.0.0-fake" ;;
esac
exit 0
"#;

struct Fake {
    dir: std::path::PathBuf,
}

impl Fake {
    fn new(name: &str) -> Fake {
        let dir = scratch(name);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let docker = dir.join("bin/docker");
        std::fs::write(&docker, FAKE_DOCKER).unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir }
    }

    /// Run xtask in the real workspace with the fake docker, an isolated target directory, and
    /// ports where nothing answers.
    fn xtask(&self, args: &[&str]) -> std::process::Output {
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let (s3_port, azure_port) = free_ports();
        let mut cmd = xtask(&workspace_root(), args);
        cmd.env("PATH", path)
            .env("XTASK_FAKE_DOCKER_LOG", self.dir.join("docker.log"))
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            .env("XTASK_READY_TIMEOUT", "1")
            .env("XTASK_S3_PORT", s3_port.to_string())
            .env("XTASK_AZURE_PORT", azure_port.to_string());
        run(cmd)
    }

    /// The docker calls recorded since the last call, and forget them.
    fn calls(&self) -> Vec<String> {
        let log = self.dir.join("docker.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const COMPOSE: &str = "compose --file compose.yaml --project-name icechunk-xtask";

#[test]
fn docker_up_composes_the_servers_and_docker_down_takes_exactly_them_down() {
    let fake = Fake::new("docker-fake");

    // compose up with --wait (it pulls missing images itself); the fake serves nothing, so the
    // readiness check fails, with a message that says so.
    let first = fake.xtask(&["docker-up", "--backend", "docker"]);
    assert!(!first.status.success());
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("did not answer in time"), "{stderr}");
    let calls = fake.calls();
    assert_eq!(calls[0], "info --format {{.ServerVersion}}");
    assert_eq!(
        calls[1..],
        [format!("{COMPOSE} up --detach --wait --wait-timeout 1")]
    );

    // What docker-up started is recorded, so docker-down brings the project down.
    let down = fake.xtask(&["docker-down"]);
    assert!(down.status.success());
    assert_eq!(
        fake.calls(),
        [format!("{COMPOSE} down --volumes --remove-orphans")]
    );
    let again = fake.xtask(&["docker-down"]);
    assert!(again.status.success());
    assert!(fake.calls().is_empty(), "nothing recorded: nothing to stop");
}

#[test]
fn ci_takes_the_services_down_even_when_bringing_them_up_failed() {
    let fake = Fake::new("docker-fake-ci");
    let output = fake.xtask(&["ci", "--only", "docker-up"]);
    assert_eq!(output.status.code(), Some(1));
    let calls = fake.calls();
    assert_eq!(
        calls.last().unwrap(),
        &format!("{COMPOSE} down --volumes --remove-orphans"),
        "{calls:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stage docker-up failed"), "{stderr}");
}
