//! This repository's GitHub workflows: [`jobs`] is the job table (which workflow runs which
//! stages where); the engine's generator (`ci_engine::workflows`) turns it into YAML with every
//! step a stage needs. `cargo xtask workflows` writes `.github/workflows/`; lint-workflows (and
//! a test, which also rewrites stale files, as rust-analyzer's codegen does) fails when the
//! files differ.

pub mod jobs;
#[cfg(test)]
mod tests;
