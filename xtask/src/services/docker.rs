//! The docker backend: compose.yaml's images cached as one `docker save` tarball keyed by a hash
//! of compose.yaml, then `docker compose up --wait`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use super::{Backend, CONTAINER, Ports, azure_endpoint, endpoints};
use crate::artifacts::hex;
use crate::context::Context;
use crate::plan::{Action, Cmd, Plan};

pub const PROJECT: &str = "icechunk-xtask";
const COMPOSE_FILE: &str = "compose.yaml";

/// `XTASK_DOCKER_CACHE` (the workflows set it to the directory they cache), or `docker_cache`
/// in the system's temporary directory.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XTASK_DOCKER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("docker_cache"))
}

/// The first 16 hex digits of compose.yaml's sha256.
pub fn cache_key(compose: &str) -> String {
    hex(&Sha256::digest(compose.as_bytes()))[..16].to_string()
}

/// Every image compose.yaml names, sorted.
pub fn images(compose: &str) -> Result<Vec<String>> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(compose).context("compose.yaml is not valid YAML")?;
    let services = doc
        .get("services")
        .and_then(|s| s.as_mapping())
        .context("compose.yaml has no `services` mapping")?;
    let mut images: Vec<String> = services
        .values()
        .filter_map(|s| s.get("image").and_then(|i| i.as_str()).map(str::to_string))
        .collect();
    images.sort_unstable();
    images.dedup();
    Ok(images)
}

fn compose(project: &str) -> Cmd {
    Cmd::new("docker").args(["compose", "--file", COMPOSE_FILE, "--project-name", project])
}

pub fn plan_up(ctx: &Context, ports: Ports, deadline_secs: u64) -> Result<Plan> {
    let path = ctx.root.join(COMPOSE_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("the docker backend needs {}", path.display()))?;
    let images = images(&text)?;
    let dir = cache_dir();
    let tarball = dir.join(format!("images-{}.tar", cache_key(&text)));
    let mut plan = Plan::new().note(format!(
        "docker backend: images of compose.yaml cached in {} (XTASK_DOCKER_CACHE changes the directory)",
        tarball.display()
    ));
    plan = if tarball.is_file() {
        plan.run(Cmd::new("docker").args(["load", "--input"]).arg(&tarball))
    } else {
        plan.run(compose(PROJECT).arg("pull"))
            .run(Cmd::new("mkdir").arg("-p").arg(&dir))
            .run(
                Cmd::new("docker")
                    .args(["save", "--output"])
                    .arg(&tarball)
                    .args(&images),
            )
    };
    let [s3, azure] = endpoints(ports, [None, None], deadline_secs);
    Ok(plan
        .action(Action::TrackServices(Backend::Docker))
        .run(
            compose(PROJECT)
                .args(["up", "--detach", "--wait", "--wait-timeout"])
                .arg(deadline_secs.to_string())
                .env("XTASK_S3_PORT", ports.s3.to_string())
                .env("XTASK_AZURE_PORT", ports.azure.to_string()),
        )
        .action(Action::WaitReady(s3))
        .action(Action::WaitReady(azure))
        .action(Action::CreateContainer {
            endpoint: azure_endpoint(ports),
            container: CONTAINER.into(),
        })
        .action(Action::RecordServices(Backend::Docker)))
}

pub fn down_command(project: &str) -> Cmd {
    compose(project).args(["down", "--volumes", "--remove-orphans"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPOSE: &str = "services:\n  s3:\n    image: quay.io/minio/minio:RELEASE.X\n  \
                           init:\n    image: quay.io/minio/mc:RELEASE.Y\n  again:\n    \
                           image: quay.io/minio/minio:RELEASE.X\n  built:\n    build: .\n";

    #[test]
    fn images_are_listed_once_each() {
        assert_eq!(
            images(COMPOSE).unwrap(),
            [
                "quay.io/minio/mc:RELEASE.Y",
                "quay.io/minio/minio:RELEASE.X"
            ]
        );
        assert!(images("just: text").is_err());
    }

    #[test]
    fn the_cache_key_follows_compose_yaml() {
        assert_eq!(cache_key(COMPOSE).len(), 16);
        assert_eq!(cache_key(COMPOSE), cache_key(COMPOSE));
        assert_ne!(
            cache_key(COMPOSE),
            cache_key(&format!("{COMPOSE}# edited\n"))
        );
    }
}
