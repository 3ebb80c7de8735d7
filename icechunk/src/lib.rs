//! icechunk: a transactional, version-controlled key/value store for Zarr data on object
//! storage. [`Repository`] creates or opens a repository, manages branches and tags and starts
//! [`Session`]s; [`Storage`] says where it lives; every failure is an [`Error`]. README.md has
//! an example and FORMAT.md the object layout.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod error;
pub mod format;
mod refs;
pub mod repository;
mod resolve;
pub mod session;
mod snapshot;
pub mod storage;

pub use error::{Error, Result};
pub use format::SnapshotId;
pub use repository::{Repository, SnapshotInfo, VersionRef};
pub use session::{ByteRange, Session};
pub use storage::{Storage, StorageConfig};
