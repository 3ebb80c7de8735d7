//! The repository's CI, encoded once in Rust: every stage is a `cargo xtask` command, the
//! GitHub workflows are thin calls to them, and `cargo xtask ci` runs them all locally.
//!
//! What to run is data ([`graph`] declares the stages, each turns into a [`plan::Plan`]);
//! running it is [`exec`]'s job alone. The areas a plan touches each have one module:
//! [`artifacts`] (manifests and staleness), [`tools`] (pinned tools), [`services`] (S3 and
//! Azure servers), [`workflows`] (the drift check), [`report`] (the end-of-run table).

pub mod artifacts;
pub mod ci;
pub mod cli;
pub mod compare;
pub mod context;
pub mod docs;
pub mod exec;
pub mod graph;
pub mod output;
pub mod plan;
pub mod report;
pub mod services;
pub mod stages;
pub mod tools;
pub mod workflows;
