//! The repository's CI, encoded once in Rust: every stage is a `cargo xtask` command, the
//! GitHub workflows are thin calls to them, and `cargo xtask ci` runs them all locally.
//!
//! What to run is data ([`graph`] declares the stages, each turns into a [`plan::Plan`]);
//! running it is [`exec`]'s job alone. The areas a plan touches each have one module:
//! [`artifacts`] (manifests and staleness), [`tools`] (pinned tools), [`services`] (S3 and
//! Azure servers), [`workflows`] (the drift check), [`report`] (the end-of-run table).

pub(crate) mod artifacts;
pub(crate) mod ci;
pub mod cli;
pub(crate) mod compare;
pub(crate) mod context;
#[cfg(test)]
mod docs;
pub(crate) mod exec;
pub(crate) mod graph;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod services;
pub(crate) mod stages;
pub(crate) mod tools;
pub(crate) mod workflows;
