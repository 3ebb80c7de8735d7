//! Stage plans, one module per area, and the internal actions plans ask for.

pub mod lints;
pub mod python;
pub mod rust;
pub mod services;

use anyhow::{Context as _, Result};

use crate::artifacts::{self, Freshness};
use crate::context::Context;
use crate::exec::Executor;
use crate::graph::Artifact;
use crate::output::Tone;
use crate::plan::{Action, Cmd, Plan};
use crate::tools::Tool;

/// How a stage that uses a built artifact begins: the tool that runs it, then the artifact,
/// checked against the sources (and, locally, built when missing).
fn using(tool: Tool, artifact: Artifact) -> Plan {
    Plan::new()
        .ensure(tool)
        .action(Action::RequireArtifact(artifact))
}

/// The commands that build an artifact (also its manifest's recipe).
pub fn build_commands(ctx: &Context, artifact: Artifact) -> Vec<Cmd> {
    match artifact {
        Artifact::RustTests => vec![rust::archive_command(ctx)],
        Artifact::Wheels => vec![python::maturin_command(ctx)],
        Artifact::Services => vec![],
    }
}

/// The plan of a build stage: nothing when the artifact already matches the sources, else
/// the tools, a clean directory, the build, and the manifest.
fn build(ctx: &Context, artifact: Artifact, tools: &[Tool]) -> Result<Plan> {
    let mut plan = Plan::new();
    match artifacts::freshness(ctx, artifact)? {
        Freshness::Current(manifest) => {
            return Ok(plan.note(format!(
                "{} is up to date (built from commit {}, sources unchanged): nothing to build",
                artifact.name(),
                artifacts::short(&manifest.commit, 10)
            )));
        }
        Freshness::Stale(why) => plan = plan.note(format!("rebuilding {}: {why}", artifact.name())),
        Freshness::Missing => {}
    }
    for tool in tools {
        plan = plan.ensure(*tool);
    }
    plan = plan.action(Action::ResetDir(artifact));
    for cmd in build_commands(ctx, artifact) {
        plan = plan.run(cmd);
    }
    Ok(plan.action(Action::WriteManifest(artifact)))
}

/// Carry out one internal action of a plan.
pub fn perform(exec: &mut Executor<'_>, action: &Action) -> Result<()> {
    use crate::services as svc;
    let ctx = exec.ctx;
    match action {
        Action::RequireArtifact(artifact) => artifacts::require(exec, *artifact),
        Action::ResetDir(artifact) => {
            let dir = artifacts::dir(ctx, *artifact);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("could not empty {}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("could not create {}", dir.display()))
        }
        Action::WriteManifest(artifact) => {
            let manifest = artifacts::write_manifest(ctx, *artifact)?;
            let files: Vec<String> = manifest
                .files
                .iter()
                .map(|f| format!("{} ({} bytes)", f.name, f.bytes))
                .collect();
            exec.out.say(
                Tone::Good,
                &format!("{}: {}", artifact.name(), files.join(", ")),
            );
            Ok(())
        }
        Action::RequireServices => svc::require(ctx),
        Action::CheckPortFree { port, variable } => svc::check_port_free(*port, variable),
        Action::TrackServices(backend) => svc::track(ctx, *backend),
        Action::Spawn(daemon) => svc::spawn(exec, daemon),
        Action::WaitReady(endpoint) => svc::wait_ready(ctx, endpoint),
        Action::CreateBucket { endpoint, bucket } => svc::create_bucket(endpoint, bucket),
        Action::CreateContainer {
            endpoint,
            container,
        } => svc::create_container(endpoint, container),
        Action::RecordServices(backend) => svc::record(exec, *backend),
        Action::StopServices => svc::stop(exec),
        Action::CheckWorkflows => {
            let checked = crate::workflows::check(ctx)?;
            exec.out.say(Tone::Good, &checked);
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Plans rendered the way `--dry-run` prints them.
    use crate::context::Context;
    use crate::graph::{StageArgs, stage};

    pub fn plan_lines(ctx: &Context, name: &str, args: &[&str]) -> Vec<String> {
        let stage = stage(name).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let args = StageArgs::parse(stage, &args).unwrap();
        (stage.plan)(ctx, &args).unwrap().lines()
    }
}
