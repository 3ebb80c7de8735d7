//! Tests of the workflows generated from this repository's layout: the files are current and
//! the plan job's rule as rendered.

mod generated;
mod plan;
