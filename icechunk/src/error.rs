//! The crate's single error type, [`Error`], and its [`Result`] alias.
//!
//! Every fallible operation in this crate returns [`Result`]. Errors that come
//! from the object store (network failures, authentication problems, server
//! errors) are wrapped in [`Error::Storage`], which names the operation and the
//! object path involved; every other variant describes a condition of the
//! repository itself.

use crate::format::SnapshotId;

/// A specialized `Result` whose error type is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage URL or one of its options is invalid.
    #[error("invalid storage configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with the configuration.
        reason: String,
    },

    /// [`crate::Repository::create`] found an existing repository.
    #[error("a repository already exists at {location}")]
    RepositoryExists {
        /// Where the repository was to be created.
        location: String,
    },

    /// [`crate::Repository::open`] found no repository.
    #[error("no repository found at {location}")]
    RepositoryNotFound {
        /// Where the repository was looked for.
        location: String,
    },

    /// The named branch does not exist.
    #[error("branch `{branch}` does not exist")]
    BranchNotFound {
        /// The branch name.
        branch: String,
    },

    /// A branch with this name already exists.
    #[error("branch `{branch}` already exists")]
    BranchExists {
        /// The branch name.
        branch: String,
    },

    /// The branch may not be deleted (the `main` branch is protected).
    #[error("branch `{branch}` is protected and cannot be deleted")]
    ProtectedBranch {
        /// The branch name.
        branch: String,
    },

    /// The named tag does not exist (or was deleted).
    #[error("tag `{tag}` does not exist")]
    TagNotFound {
        /// The tag name.
        tag: String,
    },

    /// A tag with this name already exists. Tags are immutable.
    #[error("tag `{tag}` already exists; tags cannot be moved")]
    TagExists {
        /// The tag name.
        tag: String,
    },

    /// A tag with this name existed and was deleted; tag names are never reused.
    #[error("tag `{tag}` was deleted and its name cannot be reused")]
    TagDeleted {
        /// The tag name.
        tag: String,
    },

    /// No snapshot with this id exists in the repository.
    #[error("snapshot {id} does not exist")]
    SnapshotNotFound {
        /// The snapshot id.
        id: SnapshotId,
    },

    /// The key is not a valid store key.
    #[error("invalid key `{key}`: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The branch or tag name is not valid.
    #[error("invalid branch or tag name `{name}`: {reason}")]
    InvalidRefName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The text is not a valid snapshot id.
    #[error("invalid snapshot id `{input}`: {reason}")]
    InvalidSnapshotId {
        /// The rejected text.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A write was attempted through a read-only session.
    #[error("this session is read-only; open a writable session on a branch to make changes")]
    ReadOnlySession,

    /// A commit was attempted with no uncommitted changes.
    #[error("there are no changes to commit")]
    NoChangesToCommit,

    /// The branch moved since the session (or the caller) last saw it.
    #[error(
        "conflict on branch `{branch}`: expected its tip to be snapshot {expected_parent}, but it {}",
        match actual_parent {
            Some(id) => format!("is snapshot {id}"),
            None => "no longer exists".to_string(),
        }
    )]
    Conflict {
        /// The branch whose update was refused.
        branch: String,
        /// The snapshot the caller expected the branch to point to.
        expected_parent: SnapshotId,
        /// The snapshot the branch points to now, `None` if the branch was deleted.
        actual_parent: Option<SnapshotId>,
    },

    /// An object was written by a newer version of this library.
    #[error(
        "object `{object}` uses format version {found}, but this library only supports versions up to {supported}; upgrade icechunk to read it"
    )]
    UnsupportedFormatVersion {
        /// The object's path.
        object: String,
        /// The version found in the object's header.
        found: u16,
        /// The newest version this library understands.
        supported: u16,
    },

    /// An object could not be decoded.
    #[error("object `{object}` is corrupted: {reason}")]
    Corrupted {
        /// The object's path.
        object: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A write was sent but its reply was lost (a timeout, a dropped
    /// connection, a server error), and reading back whether it took effect
    /// failed too. The change may or may not have been applied: `check` says
    /// how to find out. Retrying without checking may apply it twice.
    #[error("the outcome of {operation} is unknown: {source}; {check}")]
    OutcomeUnknown {
        /// What was being done, e.g. "the commit of snapshot X to branch `main`".
        operation: String,
        /// How to find out whether it was applied.
        check: String,
        /// The last error met while writing or checking.
        #[source]
        source: Box<Error>,
    },

    /// The object store reported an error (network, server, permissions, ...).
    #[error("storage error while {operation} `{path}`: {source}")]
    Storage {
        /// What was being done, e.g. "reading" or "writing".
        operation: &'static str,
        /// The object path (or prefix) involved.
        path: String,
        /// The underlying object store error.
        #[source]
        source: object_store::Error,
    },
}

impl Error {
    pub(crate) fn storage(
        operation: &'static str,
        path: impl Into<String>,
        source: object_store::Error,
    ) -> Self {
        Error::Storage {
            operation,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn outcome_unknown(
        operation: impl Into<String>,
        check: impl Into<String>,
        source: Error,
    ) -> Self {
        Error::OutcomeUnknown {
            operation: operation.into(),
            check: check.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn corrupted(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupted {
            object: object.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_names_both_parents() {
        let a: SnapshotId = "0000000000000000000G".parse().unwrap();
        let b: SnapshotId = "00000000000000000010".parse().unwrap();
        let msg = Error::Conflict {
            branch: "main".into(),
            expected_parent: a.clone(),
            actual_parent: Some(b.clone()),
        }
        .to_string();
        assert!(
            msg.contains(&a.to_string()) && msg.contains(&b.to_string()),
            "{msg}"
        );
        let msg = Error::Conflict {
            branch: "main".into(),
            expected_parent: a,
            actual_parent: None,
        }
        .to_string();
        assert!(msg.contains("no longer exists"), "{msg}");
    }

    #[test]
    fn outcome_unknown_says_what_and_how_to_check() {
        let cause = Error::corrupted("memory://x/refs/branch.main", "cause");
        let err =
            Error::outcome_unknown("the commit of snapshot X", "look at branch `main`", cause);
        let msg = err.to_string();
        for part in [
            "the commit of snapshot X",
            "unknown",
            "cause",
            "look at branch `main`",
        ] {
            assert!(msg.contains(part), "{part} missing from {msg}");
        }
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn error_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
