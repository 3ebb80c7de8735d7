//! The plans around an artifact: its build, and how a stage that uses it begins.

use anyhow::Result;

use super::{BuildStart, Recipe, Require, ResetDir, SkipIfCurrent, WriteManifest};
use crate::context::Context;
use crate::graph::Artifact;
use crate::plan::Plan;
use crate::tools::{Ensure, Tool};

/// The plan of an artifact's build: nothing more when it already matches the sources, or (for
/// an artifact that copies some sources) when repacking it with them is enough; else its tools
/// and what else its commands need, a clean directory, the build, and the manifest.
pub fn build(ctx: &Context, artifact: &'static Artifact) -> Result<Plan> {
    let recipe = Recipe::of(ctx, artifact);
    let mut plan = Plan::new().action(SkipIfCurrent(recipe.clone()));
    if let Some(copies) = &artifact.copies {
        plan = plan.extend((copies.repack)(ctx, artifact)?);
    }
    for tool in artifact.tools {
        plan = plan.action(Ensure(*tool));
    }
    let start = BuildStart::default();
    plan = plan
        .extend((artifact.prepare)())
        .action(ResetDir(artifact, start.clone()));
    for cmd in (artifact.build)(ctx, artifact) {
        plan = plan.run(cmd);
    }
    plan = plan.action(WriteManifest(recipe, start));
    if let Some(copies) = &artifact.copies {
        plan = plan.extend((copies.record)(ctx, artifact)?);
    }
    Ok(plan)
}

/// How a stage that uses a built artifact begins: the pinned tools that run it, then the
/// artifact, checked against the sources.
pub fn using(ctx: &Context, tools: &[Tool], artifact: &'static Artifact) -> Plan {
    let mut plan = Plan::new();
    for tool in tools {
        plan = plan.action(Ensure(*tool));
    }
    plan.action(Require(Recipe::of(ctx, artifact)))
}
