//! A CI engine for a repository's `cargo xtask`: what to run as data, one executor, processes
//! that see only a declared environment, reports of failed tests and of the run, and the small
//! readers and writers around them. It names no project: a project describes itself with a
//! [`context::Project`] and builds its stages on these parts (see docs/ci.md, "The engine").
//!
//! Layers, each importing only the ones before it: [`cmd`], [`output`], [`environment`] (the
//! variables a command may see), [`process`] (the one way to start processes), [`context`]
//! (the workspace, the project and what the machine has); [`plan`] (what to run, as data) and
//! [`exec`] (runs plans, knows no stage); [`tools`] (pinned tools found or installed);
//! [`flags`] and [`graph`] (a pipeline's stages and artifacts, as data, and every lookup over
//! them), [`jobs`] (the workflows' jobs over those stages, and the plan job's rule),
//! [`files`] (a workspace's files and their digests), [`artifacts`] (manifests and staleness)
//! and [`keys`] (content keys and pass records); [`junit`] (failed tests from JUnit XML) and
//! [`report`] (the end-of-run table); [`workflows`] (a layout's GitHub workflows, generated)
//! and [`docs`] (a layout's tables for a project's docs);
//! [`audit`] (what the stages read, traced, against their keys) and [`run`] (runs a pipeline's
//! stages, reusing and recording passes); [`servers`] (servers started in the background, and
//! stopped); [`cli`] (a project's `cargo xtask` command line) and [`compare`] (a project's
//! jobs measured with and without sharing, one of its commands).
//! Beside them, needing at most [`cmd`]: [`yaml`]
//! (the workflows' writer), [`strace`] (which files a traced command read) and [`http`] (a
//! loopback client).

pub mod artifacts;
pub mod audit;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod context;
pub mod docs;
pub mod environment;
pub mod exec;
pub mod files;
pub mod flags;
pub mod graph;
pub mod http;
pub mod jobs;
pub mod junit;
pub mod keys;
pub mod output;
pub mod plan;
pub mod process;
pub mod report;
pub mod run;
pub mod servers;
pub mod strace;
pub mod tools;
pub mod workflows;
pub mod yaml;
