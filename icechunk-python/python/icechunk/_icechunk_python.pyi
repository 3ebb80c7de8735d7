"""Typed stub of the Rust extension module ``icechunk._icechunk_python``."""

import builtins
import datetime
import os
from collections.abc import Awaitable, Mapping
from typing import Final, final

from icechunk.store import IcechunkStore

__version__: Final[str]

@final
class Storage:
    """Where a repository lives: memory, a local directory, S3 or Azure Blob Storage.

    Every repository opened on one ``Storage`` shares its objects.
    """

    @staticmethod
    def memory() -> Storage:
        """A new, empty in-memory store."""

    @staticmethod
    def local(path: str | os.PathLike[str]) -> Storage:
        """A local directory (created if missing)."""

    @staticmethod
    def s3(
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        allow_http: bool = False,
        max_retries: int | None = None,
        retry_timeout_secs: float | None = None,
    ) -> Storage:
        """Amazon S3 or an S3-compatible server (path-style requests when ``endpoint`` is
        given). Settings not given come from the usual ``AWS_*`` environment variables."""

    @staticmethod
    def azure(
        container: str,
        prefix: str = "",
        *,
        account: str | None = None,
        access_key: str | None = None,
        endpoint: str | None = None,
        use_emulator: bool = False,
        allow_http: bool = False,
        max_retries: int | None = None,
        retry_timeout_secs: float | None = None,
    ) -> Storage:
        """Azure Blob Storage; ``use_emulator=True`` targets Azurite with its development
        account (``endpoint`` such as ``http://127.0.0.1:10000/devstoreaccount1``). Settings
        not given come from the usual ``AZURE_*`` environment variables."""

    @staticmethod
    def from_url(url: str, options: Mapping[str, str] | None = None) -> Storage:
        """``memory://``, ``file:///abs/path``, ``s3://bucket/prefix`` or
        ``az://container/prefix`` with string options (see the Rust crate's
        ``StorageConfig::from_url``)."""

    @property
    def location(self) -> str:
        """The location as a URL, for messages."""
    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Pickles as ``Storage.from_url(url, options)`` with the options as given
        (credentials included). Memory storage raises ``TypeError``: its objects exist
        only in this process."""

@final
class SnapshotInfo:
    """One snapshot of the history, as reported by ``Repository.ancestry``."""

    @property
    def id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def message(self) -> str: ...
    @property
    def written_at(self) -> datetime.datetime:
        """When the snapshot was written (timezone-aware, UTC)."""

    def __hash__(self) -> int: ...

@final
class Repository:
    """A repository: immutable snapshots plus the branches and tags pointing to them.

    Methods block (with the GIL released) until storage answers.
    """

    @staticmethod
    def create(storage: Storage) -> Repository:
        """Creates a repository with a ``main`` branch; ``RepositoryExistsError`` if one
        exists."""

    @staticmethod
    def open(storage: Storage) -> Repository:
        """Opens a repository; ``RepositoryNotFoundError`` if there is none."""

    @staticmethod
    def open_or_create(storage: Storage) -> Repository:
        """Opens the repository, creating it first if there is none."""

    @property
    def storage(self) -> Storage: ...
    def readonly_session(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> Session:
        """A read-only session on a branch tip, a tag or a snapshot id (at most one;
        default: branch ``main``)."""

    def writable_session(self, branch: str) -> Session:
        """A session that records changes and commits them to ``branch``."""

    def ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> list[SnapshotInfo]:
        """The history of a version, newest first, ending with the repository's first
        snapshot (default: branch ``main``)."""

    def create_branch(self, name: str, snapshot_id: str) -> None: ...
    def list_branches(self) -> list[str]: ...
    def lookup_branch(self, name: str) -> str: ...
    def delete_branch(self, name: str) -> None: ...
    def reset_branch(
        self, name: str, snapshot_id: str, *, expected_current: str | None = None
    ) -> None:
        """Points a branch to another snapshot (compare-and-swap; ``ConflictError`` if the
        branch moved or does not point to ``expected_current``)."""

    def create_tag(self, name: str, snapshot_id: str) -> None: ...
    def list_tags(self) -> list[str]: ...
    def lookup_tag(self, name: str) -> str: ...
    def delete_tag(self, name: str) -> None: ...

@final
class Session:
    """A view of one version of the store. Writable sessions also hold uncommitted changes
    and commit them to their branch.

    The key/value methods (``get``, ``set``, ``delete``, ``exists``, ``list``,
    ``list_prefix``, ``list_dir``) start their work on icechunk's I/O runtime at once and
    return an ``asyncio`` future: call them inside a running event loop (``await
    session.get(key)`` in a coroutine). Awaiting never blocks the loop. The other methods
    block, with the GIL released.
    """

    @property
    def read_only(self) -> bool: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def snapshot_id(self) -> str:
        """The snapshot this session reads (after a commit, the new one)."""

    @property
    def has_uncommitted_changes(self) -> bool: ...
    @property
    def store(self) -> IcechunkStore:
        """The Zarr store over this session."""

    def discard_changes(self) -> None: ...
    def commit(self, message: str) -> str:
        """Commits the changes and returns the new snapshot id. ``ConflictError`` if the
        branch moved: nothing becomes visible and the changes are kept.
        ``OutcomeUnknownError`` if the reply to the branch update was lost and could not
        be checked: calling ``commit`` again on this session settles it first and returns
        the earlier snapshot id if it was applied, so nothing is committed twice."""

    def commit_async(self, message: str) -> Awaitable[str]:
        """``commit`` as an awaitable that does not block the event loop (same errors)."""

    def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        *,
        suffix: int | None = None,
    ) -> Awaitable[bytes | None]:
        """The value of ``key`` or ``None``; ``start``/``end`` select ``value[start:end]``,
        ``suffix`` the last ``suffix`` bytes. A range reads only those bytes of a
        large value from storage."""

    def set(self, key: str, value: bytes | bytearray) -> Awaitable[None]:
        """Sets a value; one larger than 512 bytes is uploaded at once (as a chunk that
        only a commit makes reachable), so uncommitted changes do not fill memory."""

    def delete(self, key: str) -> Awaitable[None]: ...
    def exists(self, key: str) -> Awaitable[bool]: ...
    def list(self) -> Awaitable[builtins.list[str]]: ...
    def list_prefix(self, prefix: str) -> Awaitable[builtins.list[str]]: ...
    def list_dir(self, prefix: str = "") -> Awaitable[builtins.list[str]]: ...
    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """A read-only session pickles as its storage and snapshot id, and reopens that
        snapshot when unpickled. Writable sessions (uncommitted changes live in memory)
        and sessions on memory storage raise ``TypeError``."""

class IcechunkError(Exception):
    """Base class of every error raised by icechunk."""

class InvalidConfigError(IcechunkError):
    reason: str

class RepositoryExistsError(IcechunkError):
    location: str

class RepositoryNotFoundError(IcechunkError):
    location: str

class BranchNotFoundError(IcechunkError):
    branch: str

class BranchExistsError(IcechunkError):
    branch: str

class ProtectedBranchError(IcechunkError):
    branch: str

class TagNotFoundError(IcechunkError):
    tag: str

class TagExistsError(IcechunkError):
    tag: str

class TagDeletedError(IcechunkError):
    tag: str

class SnapshotNotFoundError(IcechunkError):
    snapshot_id: str

class InvalidKeyError(IcechunkError):
    key: str
    reason: str

class InvalidRefNameError(IcechunkError):
    name: str
    reason: str

class InvalidSnapshotIdError(IcechunkError):
    input: str
    reason: str

class ReadOnlySessionError(IcechunkError): ...
class NoChangesToCommitError(IcechunkError): ...

class ConflictError(IcechunkError):
    """The branch moved since the session last saw it; nothing of the commit is visible."""

    branch: str
    expected_parent: str
    actual_parent: str | None

class UnsupportedFormatVersionError(IcechunkError):
    object: str
    found: int
    supported: int

class CorruptedError(IcechunkError):
    object: str
    reason: str

class OutcomeUnknownError(IcechunkError):
    """A write's reply was lost and reading back whether it took effect failed too.

    It may or may not have been applied; ``check`` says how to find out. Calling
    ``Session.commit`` again on the same session settles an unknown commit first.
    """

    operation: str
    check: str

class StorageError(IcechunkError):
    operation: str
    path: str
