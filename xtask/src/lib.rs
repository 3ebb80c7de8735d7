//! The repository's CI, encoded once in Rust: every stage is a `cargo xtask` command, the
//! GitHub workflows are generated from the same model, and `cargo xtask ci` runs them all
//! locally.
//!
//! It is built on the `ci_engine` crate (commands, plans and their executor, the declared
//! environment, processes, the context, failed-test and run reports), which names no project;
//! [`project`] is what the engine must know of this one.
//!
//! The model of a pipeline (stages, artifacts, flags and every lookup), artifacts' manifests,
//! content keys, running stages and the audit, the job model and the workflow generator, and
//! the command line, and the benchmark `compare` runs are the engine's (`ci_engine::graph`,
//! `artifacts`, `keys`, `run`, `audit`, `jobs`, `workflows`, `cli`, `compare`); this crate
//! declares its values.
//!
//! Layers, each importing only the ones before it (and the engine): [`project`], [`pins`],
//! [`flags`]; the areas a plan touches — [`tools`] and [`services`], each owning its actions —
//! and [`workflows`] (the job table, which the engine's generator renders); [`stages`] (the
//! plans); [`pipeline`] (this repository's stages, each with its plan, and [`pipeline::LAYOUT`],
//! its CI layout); and on top [`benchmark`] (what `compare` measures: the workflows, the
//! scenarios and the setup's prices) and [`cli`] (the `Cli` the engine's command line runs:
//! the layout, the usage text and `compare`).
//!
//! To add a stage: declare it in [`pipeline::PIPELINE`] (what it produces, consumes, requires,
//! reads, which tools it uses, and its plan, a function of [`stages`] given the artifacts it
//! uses), and run `cargo xtask workflows`: on GitHub it runs in a Linux job of its own in the
//! CI workflow, named after it, waiting for the jobs that build what it consumes. Name it in a
//! job of `workflows/jobs.rs` only to share that job (its runner, its setup, its services).
//! To add or move a job: edit the job table in `workflows/jobs.rs`, run `cargo xtask
//! workflows` and commit the YAML; `needs:`, setup steps, caches and artifact transfers follow
//! from the stages. To add an artifact: a row in [`pipeline`] (name, producer,
//! directory, sources, copied sources, its build commands from [`stages`] and what they need),
//! named in what its producer produces and its consumers consume.

pub(crate) mod benchmark;
pub mod cli;
#[cfg(test)]
mod docs;
pub(crate) mod flags;
#[cfg(test)]
mod keys;
pub(crate) mod pins;
pub(crate) mod pipeline;
pub(crate) mod project;
pub(crate) mod services;
pub(crate) mod stages;
#[cfg(test)]
mod testing;
pub(crate) mod tools;
pub(crate) mod workflows;
