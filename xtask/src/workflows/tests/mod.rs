//! Tests of the workflows generated from this repository's layout: the files are current, the
//! plan job's rule as rendered, the conclusion.

mod conclusion;
mod generated;
mod plan;
