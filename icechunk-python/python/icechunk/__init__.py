"""icechunk: a transactional, version-controlled store for Zarr data on object storage.

Open a :class:`Repository` on a :class:`Storage`, start a :class:`Session`, read and write
Zarr data through ``session.store`` and ``session.commit(message)`` it as a new snapshot.
Every error is an :class:`IcechunkError`.
"""

from icechunk._icechunk_python import (
    BranchExistsError,
    BranchNotFoundError,
    ConflictError,
    CorruptedError,
    IcechunkError,
    InvalidConfigError,
    InvalidKeyError,
    InvalidRefNameError,
    InvalidSnapshotIdError,
    NoChangesToCommitError,
    OutcomeUnknownError,
    ProtectedBranchError,
    ReadOnlySessionError,
    Repository,
    RepositoryExistsError,
    RepositoryNotFoundError,
    Session,
    SnapshotInfo,
    SnapshotNotFoundError,
    Storage,
    StorageError,
    TagDeletedError,
    TagExistsError,
    TagNotFoundError,
    UnsupportedFormatVersionError,
    __version__,
)
from icechunk.store import IcechunkStore

__all__ = [
    "BranchExistsError",
    "BranchNotFoundError",
    "ConflictError",
    "CorruptedError",
    "IcechunkError",
    "IcechunkStore",
    "InvalidConfigError",
    "InvalidKeyError",
    "InvalidRefNameError",
    "InvalidSnapshotIdError",
    "NoChangesToCommitError",
    "OutcomeUnknownError",
    "ProtectedBranchError",
    "ReadOnlySessionError",
    "Repository",
    "RepositoryExistsError",
    "RepositoryNotFoundError",
    "Session",
    "SnapshotInfo",
    "SnapshotNotFoundError",
    "Storage",
    "StorageError",
    "TagDeletedError",
    "TagExistsError",
    "TagNotFoundError",
    "UnsupportedFormatVersionError",
    "__version__",
]
