//! The Python exception hierarchy and the mapping from [`icechunk::Error`].
//!
//! Every exception derives from `IcechunkError`; each variant of the Rust error has its own
//! subclass, and the fields of the variant are set as attributes of the exception (for
//! example `ConflictError.expected_parent`).

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyTypeInfo, create_exception};

create_exception!(
    icechunk,
    IcechunkError,
    PyException,
    "Base class of every error raised by icechunk."
);
create_exception!(
    icechunk,
    InvalidConfigError,
    IcechunkError,
    "The storage URL or one of its options is invalid."
);
create_exception!(
    icechunk,
    RepositoryExistsError,
    IcechunkError,
    "A repository already exists where one was to be created."
);
create_exception!(
    icechunk,
    RepositoryNotFoundError,
    IcechunkError,
    "No repository exists at this location."
);
create_exception!(
    icechunk,
    BranchNotFoundError,
    IcechunkError,
    "The branch does not exist (attribute `branch`)."
);
create_exception!(
    icechunk,
    BranchExistsError,
    IcechunkError,
    "A branch with this name already exists (attribute `branch`)."
);
create_exception!(
    icechunk,
    ProtectedBranchError,
    IcechunkError,
    "The branch cannot be deleted: `main` is protected (attribute `branch`)."
);
create_exception!(
    icechunk,
    TagNotFoundError,
    IcechunkError,
    "The tag does not exist or was deleted (attribute `tag`)."
);
create_exception!(
    icechunk,
    TagExistsError,
    IcechunkError,
    "A tag with this name already exists; tags never move (attribute `tag`)."
);
create_exception!(
    icechunk,
    TagDeletedError,
    IcechunkError,
    "The tag was deleted and its name can never be used again (attribute `tag`)."
);
create_exception!(
    icechunk,
    SnapshotNotFoundError,
    IcechunkError,
    "No snapshot with this id exists (attribute `snapshot_id`)."
);
create_exception!(
    icechunk,
    InvalidKeyError,
    IcechunkError,
    "The key is not a valid store key (attributes `key`, `reason`)."
);
create_exception!(
    icechunk,
    InvalidRefNameError,
    IcechunkError,
    "The branch or tag name is not valid (attributes `name`, `reason`)."
);
create_exception!(
    icechunk,
    InvalidSnapshotIdError,
    IcechunkError,
    "The text is not a valid snapshot id (attributes `input`, `reason`)."
);
create_exception!(
    icechunk,
    ReadOnlySessionError,
    IcechunkError,
    "A change was attempted through a read-only session."
);
create_exception!(
    icechunk,
    NoChangesToCommitError,
    IcechunkError,
    "A commit was attempted with no uncommitted changes."
);
create_exception!(
    icechunk,
    ConflictError,
    IcechunkError,
    "The branch moved since the session last saw it: nothing of the commit became visible \
     (attributes `branch`, `expected_parent`, `actual_parent`)."
);
create_exception!(
    icechunk,
    UnsupportedFormatVersionError,
    IcechunkError,
    "An object was written by a newer version of icechunk \
     (attributes `object`, `found`, `supported`)."
);
create_exception!(
    icechunk,
    CorruptedError,
    IcechunkError,
    "An object of the repository could not be decoded (attributes `object`, `reason`)."
);
create_exception!(
    icechunk,
    OutcomeUnknownError,
    IcechunkError,
    "A write's reply was lost and checking whether it took effect failed too: it may or may \
     not have been applied (attributes `operation`, `check`: how to find out)."
);
create_exception!(
    icechunk,
    StorageError,
    IcechunkError,
    "The object store failed: network, server or permissions (attributes `operation`, `path`)."
);

/// Adds every exception type to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($name:ident),* $(,)?) => {
            $( m.add(stringify!($name), m.py().get_type::<$name>())?; )*
        };
    }
    add!(
        IcechunkError,
        InvalidConfigError,
        RepositoryExistsError,
        RepositoryNotFoundError,
        BranchNotFoundError,
        BranchExistsError,
        ProtectedBranchError,
        TagNotFoundError,
        TagExistsError,
        TagDeletedError,
        SnapshotNotFoundError,
        InvalidKeyError,
        InvalidRefNameError,
        InvalidSnapshotIdError,
        ReadOnlySessionError,
        NoChangesToCommitError,
        ConflictError,
        UnsupportedFormatVersionError,
        CorruptedError,
        OutcomeUnknownError,
        StorageError,
    );
    Ok(())
}

/// An attribute value of an exception.
enum Attr {
    Str(String),
    OptStr(Option<String>),
    Int(u64),
}

/// Builds an exception of type `T` with `message` and the given attributes.
fn build<T: PyTypeInfo>(py: Python<'_>, message: String, attrs: Vec<(&str, Attr)>) -> PyErr {
    let err = PyErr::from_type(py.get_type::<T>(), message);
    let value = err.value(py);
    for (name, attr) in attrs {
        let set = match attr {
            Attr::Str(s) => value.setattr(name, s),
            Attr::OptStr(s) => value.setattr(name, s),
            Attr::Int(i) => value.setattr(name, i),
        };
        if let Err(e) = set {
            return e;
        }
    }
    err
}

/// Converts an icechunk error into the matching Python exception.
pub(crate) fn to_pyerr(error: icechunk::Error) -> PyErr {
    Python::attach(|py| convert(py, error))
}

fn convert(py: Python<'_>, error: icechunk::Error) -> PyErr {
    use icechunk::Error as E;
    let message = error.to_string();
    match error {
        E::InvalidConfig { reason } => {
            build::<InvalidConfigError>(py, message, vec![("reason", Attr::Str(reason))])
        }
        E::RepositoryExists { location } => {
            build::<RepositoryExistsError>(py, message, vec![("location", Attr::Str(location))])
        }
        E::RepositoryNotFound { location } => {
            build::<RepositoryNotFoundError>(py, message, vec![("location", Attr::Str(location))])
        }
        E::BranchNotFound { branch } => {
            build::<BranchNotFoundError>(py, message, vec![("branch", Attr::Str(branch))])
        }
        E::BranchExists { branch } => {
            build::<BranchExistsError>(py, message, vec![("branch", Attr::Str(branch))])
        }
        E::ProtectedBranch { branch } => {
            build::<ProtectedBranchError>(py, message, vec![("branch", Attr::Str(branch))])
        }
        E::TagNotFound { tag } => {
            build::<TagNotFoundError>(py, message, vec![("tag", Attr::Str(tag))])
        }
        E::TagExists { tag } => build::<TagExistsError>(py, message, vec![("tag", Attr::Str(tag))]),
        E::TagDeleted { tag } => {
            build::<TagDeletedError>(py, message, vec![("tag", Attr::Str(tag))])
        }
        E::SnapshotNotFound { id } => build::<SnapshotNotFoundError>(
            py,
            message,
            vec![("snapshot_id", Attr::Str(id.to_string()))],
        ),
        E::InvalidKey { key, reason } => build::<InvalidKeyError>(
            py,
            message,
            vec![("key", Attr::Str(key)), ("reason", Attr::Str(reason))],
        ),
        E::InvalidRefName { name, reason } => build::<InvalidRefNameError>(
            py,
            message,
            vec![("name", Attr::Str(name)), ("reason", Attr::Str(reason))],
        ),
        E::InvalidSnapshotId { input, reason } => build::<InvalidSnapshotIdError>(
            py,
            message,
            vec![("input", Attr::Str(input)), ("reason", Attr::Str(reason))],
        ),
        E::ReadOnlySession => build::<ReadOnlySessionError>(py, message, vec![]),
        E::NoChangesToCommit => build::<NoChangesToCommitError>(py, message, vec![]),
        E::Conflict {
            branch,
            expected_parent,
            actual_parent,
        } => build::<ConflictError>(
            py,
            message,
            vec![
                ("branch", Attr::Str(branch)),
                ("expected_parent", Attr::Str(expected_parent.to_string())),
                (
                    "actual_parent",
                    Attr::OptStr(actual_parent.map(|id| id.to_string())),
                ),
            ],
        ),
        E::UnsupportedFormatVersion {
            object,
            found,
            supported,
        } => build::<UnsupportedFormatVersionError>(
            py,
            message,
            vec![
                ("object", Attr::Str(object)),
                ("found", Attr::Int(found.into())),
                ("supported", Attr::Int(supported.into())),
            ],
        ),
        E::Corrupted { object, reason } => build::<CorruptedError>(
            py,
            message,
            vec![("object", Attr::Str(object)), ("reason", Attr::Str(reason))],
        ),
        E::OutcomeUnknown {
            operation, check, ..
        } => build::<OutcomeUnknownError>(
            py,
            message,
            vec![
                ("operation", Attr::Str(operation)),
                ("check", Attr::Str(check)),
            ],
        ),
        E::Storage {
            operation, path, ..
        } => build::<StorageError>(
            py,
            message,
            vec![
                ("operation", Attr::Str(operation.to_string())),
                ("path", Attr::Str(path)),
            ],
        ),
        // `icechunk::Error` is non-exhaustive: a variant added later is still an
        // IcechunkError with its message.
        _ => build::<IcechunkError>(py, message, vec![]),
    }
}
