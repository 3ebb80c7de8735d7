//! Clippy in the build: the workspace's own crates are compiled by `clippy-driver` (rustc with
//! clippy's lints; `cargo clippy` uses it the same way, as `RUSTC_WORKSPACE_WRAPPER`), so a
//! build of the test binaries is also their lint, and lint-rust's build — every target, in
//! build mode — leaves the dependencies and test binaries the nextest archive needs. Locally
//! the archive after lint-rust compiles nothing; `cargo clippy` would have compiled every
//! dependency a second time, in check mode. Warnings do not fail a build (the archive is not
//! held back by a lint): lint-rust reads them from cargo's JSON messages, which cargo replays
//! for crates it does not recompile, and fails on any.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use ci_engine::cmd::Cmd;
use ci_engine::context::Context;
use ci_engine::output::{Tone, annotation};
use ci_engine::plan::{Action, Outcome, Runner};

/// `cmd` with the workspace's crates compiled by clippy-driver.
pub fn linted(ctx: &Context, cmd: Cmd) -> Cmd {
    cmd.env("RUSTC_WORKSPACE_WRAPPER", driver(ctx))
}

/// The clippy-driver of the toolchain that runs cargo.
fn driver(ctx: &Context) -> String {
    let name = format!("clippy-driver{}", std::env::consts::EXE_SUFFIX);
    match Path::new(&ctx.cargo).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name).to_string_lossy().into_owned(),
        _ => name,
    }
}

/// Before a linted build: clippy-driver is there, or how to get it.
#[derive(Debug)]
pub struct RequireDriver;

impl fmt::Display for RequireDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("check that clippy-driver is installed beside cargo")
    }
}

impl Action for RequireDriver {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let driver = driver(runner.ctx());
        let found = if Path::new(&driver).components().count() > 1 {
            Path::new(&driver).is_file()
        } else {
            ci_engine::process::capture(&Cmd::new(&driver).arg("--version"), &runner.ctx().root)
                .is_ok()
        };
        if !found {
            bail!(
                "{driver} is missing: the workspace's crates are compiled by clippy-driver. \
                 Install it with `rustup component add clippy`"
            );
        }
        Ok(Outcome::Continue)
    }
}

/// lint-rust's build: every target of the workspace, compiled with clippy, cargo's JSON
/// messages to `messages`.
pub fn lint_build(ctx: &Context, profile: &str) -> LintBuild {
    let messages = ctx.xtask_dir().join("lint-rust.jsonl");
    let cmd = linted(
        ctx,
        ctx.cargo().args([
            "build",
            "--locked",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--profile",
            profile,
            "--message-format",
            "json",
        ]),
    )
    .stdout(ctx.rel(&messages));
    LintBuild {
        cmd,
        messages: ctx.rel(&messages),
    }
}

/// Run the linted build, then show every warning and error it reported for the workspace's
/// crates, and fail on any (lint-rust denies warnings, as `cargo clippy -- -D warnings` would).
#[derive(Debug)]
pub struct LintBuild {
    cmd: Cmd,
    messages: PathBuf,
}

impl fmt::Display for LintBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run `{}`, then show each warning and error it reported and fail on any",
            self.cmd
        )
    }
}

impl Action for LintBuild {
    fn perform(&self, runner: &mut dyn Runner) -> Result<Outcome> {
        let built = runner.run(&self.cmd);
        let path = runner.ctx().root.join(&self.messages);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("could not read cargo's messages in {}", path.display()));
        let diagnostics = match (text, &built) {
            (Ok(text), _) => diagnostics(&text),
            // The build failed before it wrote anything: its error is the one to show.
            (Err(_), Err(_)) => Vec::new(),
            (Err(e), Ok(())) => return Err(e),
        };
        for d in &diagnostics {
            runner.out().say(Tone::Bold, d.rendered.trim_end());
        }
        if runner.ctx().github_actions {
            // GitHub shows 10 error annotations a step; the stage's own is one.
            for d in diagnostics.iter().filter(|d| d.file.is_some()).take(9) {
                eprintln!("{}", d.annotation());
            }
        }
        built.with_context(|| {
            format!(
                "the build failed{}",
                if diagnostics.is_empty() {
                    String::new()
                } else {
                    " (its errors are above)".to_string()
                }
            )
        })?;
        if !diagnostics.is_empty() {
            bail!(
                "{} warning(s) in the workspace's crates (above); lint-rust denies warnings",
                diagnostics.len()
            );
        }
        Ok(Outcome::Continue)
    }
}

/// A warning or error as cargo reported it.
#[derive(Debug, PartialEq)]
struct Diagnostic {
    level: String,
    message: String,
    rendered: String,
    file: Option<String>,
    line: Option<u64>,
}

impl Diagnostic {
    /// The GitHub annotation of the diagnostic.
    fn annotation(&self) -> String {
        let level = if self.level == "error" {
            "error"
        } else {
            "warning"
        };
        annotation(
            level,
            self.file.as_deref(),
            self.line,
            &self.message,
            &self.rendered,
        )
    }
}

/// The warnings and errors among cargo's JSON messages, each once (a crate's lib and its unit
/// tests report the same ones). Dependencies' lints are capped by cargo, so every one is the
/// workspace's own.
fn diagnostics(messages: &str) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    for line in messages.lines().filter(|l| l.starts_with('{')) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if value["reason"] != "compiler-message" {
            continue;
        }
        let message = &value["message"];
        let level = message["level"].as_str().unwrap_or_default();
        let text = message["message"].as_str().unwrap_or_default();
        // rustc's own tallies ("2 warnings emitted", "aborting due to …") are not findings.
        let tally = text.ends_with("emitted") || text.starts_with("aborting due to");
        if !matches!(level, "warning" | "error") || tally {
            continue;
        }
        let primary = message["spans"]
            .as_array()
            .and_then(|spans| spans.iter().find(|s| s["is_primary"] == true));
        let diagnostic = Diagnostic {
            level: level.to_string(),
            message: text.to_string(),
            rendered: message["rendered"].as_str().unwrap_or_default().to_string(),
            file: primary
                .and_then(|s| s["file_name"].as_str())
                .map(str::to_string),
            line: primary.and_then(|s| s["line_start"].as_u64()),
        };
        if !out.contains(&diagnostic) {
            out.push(diagnostic);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from the linted build with a needless `return` added to icechunk's lib (its lib
    // and its unit tests both report it), trimmed.
    const MESSAGES: &str = concat!(
        r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#libc@0.2.191","fresh":true}"#,
        "\n",
        r#"{"reason":"compiler-message","package_id":"path+file:///repo/icechunk#0.1.0","target":{"kind":["lib"]},"message":{"level":"warning","message":"unneeded `return` statement","rendered":"warning: unneeded `return` statement\n --> icechunk/src/lib.rs:40:29\n","spans":[{"file_name":"icechunk/src/lib.rs","line_start":40,"is_primary":true}]}}"#,
        "\n",
        r#"{"reason":"compiler-message","package_id":"path+file:///repo/icechunk#0.1.0","target":{"kind":["lib"]},"message":{"level":"warning","message":"unneeded `return` statement","rendered":"warning: unneeded `return` statement\n --> icechunk/src/lib.rs:40:29\n","spans":[{"file_name":"icechunk/src/lib.rs","line_start":40,"is_primary":true}]}}"#,
        "\n",
        r#"{"reason":"compiler-message","package_id":"path+file:///repo/icechunk#0.1.0","target":{"kind":["lib"]},"message":{"level":"note","message":"a note","rendered":"note","spans":[]}}"#,
        "\n",
        r#"{"reason":"compiler-message","package_id":"path+file:///repo/icechunk#0.1.0","target":{"kind":["lib"]},"message":{"level":"warning","message":"1 warning emitted","rendered":"warning: 1 warning emitted","spans":[]}}"#,
        "\n",
        r#"{"reason":"build-finished","success":true}"#,
        "\n",
    );

    #[test]
    fn each_warning_counts_once_and_notes_do_not_count() {
        let found = diagnostics(MESSAGES);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].file.as_deref(), Some("icechunk/src/lib.rs"));
        assert_eq!(found[0].line, Some(40));
        assert!(
            found[0]
                .annotation()
                .starts_with("::warning file=icechunk/src/lib.rs,line=40,title=unneeded `return` statement::warning: unneeded"),
            "{}",
            found[0].annotation()
        );
        assert!(diagnostics("not json\n{\"reason\":\"build-finished\"}").is_empty());
    }
}
