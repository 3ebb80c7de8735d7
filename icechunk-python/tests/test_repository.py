"""Repositories, branches, tags, history and sessions, and the exception each misuse raises."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import icechunk
from icechunk import Repository, Storage


def write(session: icechunk.Session, key: str, value: bytes) -> None:
    # Session awaitables are created inside a running event loop.
    async def set_value() -> None:
        await session.set(key, value)

    asyncio.run(set_value())


def commit_value(repo: Repository, branch: str, key: str, value: bytes, message: str) -> str:
    session = repo.writable_session(branch)
    write(session, key, value)
    return session.commit(message)


def dirty(session: icechunk.Session) -> bool:
    # A function, not the property: mypy would keep a narrowed property across calls.
    return session.has_uncommitted_changes


def read(session: icechunk.Session, key: str) -> bytes | None:
    async def get() -> bytes | None:
        return await session.get(key)

    return asyncio.run(get())


def test_create_open_and_missing_repository(tmp_path: Path) -> None:
    storage = Storage.local(tmp_path / "repo")
    with pytest.raises(icechunk.RepositoryNotFoundError) as missing:
        Repository.open(storage)
    assert missing.value.location.startswith("file://")
    assert str(tmp_path) in str(missing.value)

    repo = Repository.create(storage)
    with pytest.raises(icechunk.RepositoryExistsError):
        Repository.create(storage)
    commit_value(repo, "main", "zarr.json", b"{}", "first")

    # Another Storage on the same directory sees the same repository.
    again = Repository.open(Storage.local(tmp_path / "repo"))
    assert [i.message for i in again.ancestry()] == ["first", "Repository initialized"]
    assert Repository.open_or_create(storage).list_branches() == ["main"]
    fresh = Repository.open_or_create(Storage.local(tmp_path / "other"))
    assert fresh.list_branches() == ["main"]


def test_memory_storage_is_shared_by_its_repositories() -> None:
    storage = Storage.memory()
    repo = Repository.create(storage)
    assert Repository.open(storage).list_branches() == ["main"]
    assert Repository.open(repo.storage).list_branches() == ["main"]
    # Each Storage.memory() is a new, empty store.
    with pytest.raises(icechunk.RepositoryNotFoundError):
        Repository.open(Storage.memory())
    assert repr(storage) == "Storage('memory://')"
    assert storage.location == "memory://"


def test_storage_configuration_errors() -> None:
    with pytest.raises(icechunk.InvalidConfigError, match="unsupported URL scheme"):
        Storage.from_url("gs://bucket/prefix")
    with pytest.raises(icechunk.InvalidConfigError, match="unknown option") as bad:
        Storage.from_url("s3://bucket/prefix", {"acces_key_id": "x"})
    assert "access_key_id" in bad.value.reason
    with pytest.raises(icechunk.InvalidConfigError):
        Storage.s3("bad/bucket", "prefix")
    with pytest.raises(icechunk.InvalidConfigError):
        Storage.from_url("s3://bucket/p", {"allow_http": "maybe"})
    assert Storage.from_url("memory://named").location == "memory://named"
    # Prefixes are encoded so any prefix survives: the same location by URL and by arguments.
    by_args = Storage.s3("bucket", "a b/%41/", region="us-east-1")
    by_url = Storage.from_url("s3://bucket/a%20b/%2541", {"region": "us-east-1"})
    assert by_args.location == by_url.location == "s3://bucket/a b/%41"
    azure = Storage.azure("container", "some/prefix", use_emulator=True)
    assert azure.location == "az://container/some/prefix"


def test_branches(repo: Repository) -> None:
    initial = repo.lookup_branch("main")
    first = commit_value(repo, "main", "a", b"1", "first")
    repo.create_branch("dev", initial)
    assert repo.list_branches() == ["dev", "main"]
    assert repo.lookup_branch("dev") == initial

    dev_commit = commit_value(repo, "dev", "b", b"2", "on dev")
    assert repo.lookup_branch("dev") == dev_commit
    assert read(repo.readonly_session(branch="dev"), "a") is None
    assert read(repo.readonly_session(branch="dev"), "b") == b"2"
    assert read(repo.readonly_session(branch="main"), "a") == b"1"

    with pytest.raises(icechunk.BranchExistsError) as exists:
        repo.create_branch("dev", first)
    assert exists.value.branch == "dev"
    with pytest.raises(icechunk.BranchNotFoundError) as missing:
        repo.writable_session("nope")
    assert missing.value.branch == "nope"
    with pytest.raises(icechunk.BranchNotFoundError):
        repo.readonly_session(branch="nope")
    with pytest.raises(icechunk.BranchNotFoundError):
        repo.lookup_branch("nope")
    with pytest.raises(icechunk.InvalidRefNameError) as bad_name:
        repo.create_branch("no spaces", first)
    assert bad_name.value.name == "no spaces"
    with pytest.raises(icechunk.SnapshotNotFoundError):
        repo.create_branch("ghost", "0" * 20)
    with pytest.raises(icechunk.InvalidSnapshotIdError) as bad_id:
        repo.create_branch("ghost", "not-an-id")
    assert bad_id.value.input == "not-an-id"

    # reset_branch is a compare-and-swap.
    repo.reset_branch("dev", first)
    assert repo.lookup_branch("dev") == first
    with pytest.raises(icechunk.ConflictError) as conflict:
        repo.reset_branch("dev", initial, expected_current=dev_commit)
    assert conflict.value.branch == "dev"
    assert conflict.value.expected_parent == dev_commit
    assert conflict.value.actual_parent == first
    repo.reset_branch("dev", initial, expected_current=first)
    assert repo.lookup_branch("dev") == initial

    repo.delete_branch("dev")
    assert repo.list_branches() == ["main"]
    with pytest.raises(icechunk.BranchNotFoundError):
        repo.delete_branch("dev")
    with pytest.raises(icechunk.ProtectedBranchError) as protected:
        repo.delete_branch("main")
    assert protected.value.branch == "main"


def test_tags(repo: Repository) -> None:
    first = commit_value(repo, "main", "k", b"v1", "first")
    second = commit_value(repo, "main", "k", b"v2", "second")
    repo.create_tag("v1", first)
    repo.create_tag("v2", second)
    assert repo.list_tags() == ["v1", "v2"]
    assert repo.lookup_tag("v1") == first
    assert read(repo.readonly_session(tag="v1"), "k") == b"v1"
    assert read(repo.readonly_session(tag="v2"), "k") == b"v2"
    assert repo.ancestry(tag="v1")[0].id == first

    with pytest.raises(icechunk.TagExistsError) as exists:
        repo.create_tag("v1", second)
    assert exists.value.tag == "v1"
    repo.delete_tag("v1")
    assert repo.list_tags() == ["v2"]
    with pytest.raises(icechunk.TagNotFoundError) as missing:
        repo.lookup_tag("v1")
    assert missing.value.tag == "v1"
    with pytest.raises(icechunk.TagNotFoundError):
        repo.readonly_session(tag="v1")
    with pytest.raises(icechunk.TagDeletedError):
        repo.create_tag("v1", second)
    with pytest.raises(icechunk.TagNotFoundError):
        repo.lookup_tag("never")


def test_ancestry(repo: Repository) -> None:
    before = datetime.datetime.now(datetime.UTC)
    ids = [commit_value(repo, "main", "k", str(i).encode(), f"commit {i}") for i in range(3)]
    history = repo.ancestry()
    assert [i.message for i in history] == [
        "commit 2",
        "commit 1",
        "commit 0",
        "Repository initialized",
    ]
    assert [i.id for i in history[:3]] == ids[::-1]
    for child, parent in itertools.pairwise(history):
        assert child.parent_id == parent.id
        assert child.written_at >= parent.written_at
    assert history[-1].parent_id is None
    newest = history[0]
    assert newest.written_at.tzinfo is not None
    assert newest.written_at.utcoffset() == datetime.timedelta(0)
    assert newest.written_at >= before - datetime.timedelta(seconds=5)
    assert isinstance(newest, icechunk.SnapshotInfo)
    assert newest == repo.ancestry(branch="main")[0]
    assert newest != history[1]
    assert newest.id in repr(newest)
    assert [i.id for i in repo.ancestry(snapshot_id=ids[0])] == [ids[0], history[-1].id]
    with pytest.raises(ValueError, match="at most one"):
        repo.ancestry(branch="main", tag="x")


def test_sessions_and_discard(repo: Repository) -> None:
    session = repo.writable_session("main")
    assert not session.read_only
    assert session.branch == "main"
    assert not dirty(session)
    with pytest.raises(icechunk.NoChangesToCommitError):
        session.commit("nothing")

    async def edit() -> None:
        await session.set("a/zarr.json", b"{}")
        await session.set("a/c/0", bytes(range(256)) * 8)
        await session.set("b", bytearray(b"bytes-like"))
        assert await session.exists("a/c/0")
        assert await session.get("a/c/0", 2, 5) == bytes([2, 3, 4])
        assert await session.get("a/c/0", suffix=3) == bytes([253, 254, 255])
        assert await session.get("b", 5) == b"-like"
        assert await session.list() == ["a/c/0", "a/zarr.json", "b"]
        assert await session.list_prefix("a/") == ["a/c/0", "a/zarr.json"]
        assert await session.list_dir("") == ["a", "b"]
        assert await session.list_dir("a") == ["c", "zarr.json"]
        with pytest.raises(ValueError, match="not both"):
            await session.get("b", 1, suffix=1)

    asyncio.run(edit())
    assert dirty(session)
    session.discard_changes()
    assert not dirty(session)
    assert read(session, "b") is None

    write(session, "kept", b"yes")
    first = session.commit("kept")
    assert session.snapshot_id == first
    assert "main" in repr(session)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(session)


def test_read_only_session_refuses_writes(repo: Repository) -> None:
    commit_value(repo, "main", "k", b"v", "first")
    session = repo.readonly_session()
    assert session.read_only
    assert session.branch is None
    assert "read-only" in repr(session)

    async def try_writes() -> None:
        with pytest.raises(icechunk.ReadOnlySessionError):
            await session.set("k", b"other")
        with pytest.raises(icechunk.ReadOnlySessionError):
            await session.delete("k")

    asyncio.run(try_writes())
    with pytest.raises(icechunk.ReadOnlySessionError):
        session.commit("nope")
    assert read(session, "k") == b"v"
    # Its Zarr store is read-only too, with the error Zarr expects.
    store = session.store
    assert store.read_only
    with pytest.raises(ValueError, match="read-only"):
        session.store.with_read_only(False)


@pytest.mark.parametrize(
    "key",
    ["", "/a", "a/", "a//b", "./a", "a/../b", "a\nb", "a\x00b"],
)
def test_invalid_keys(repo: Repository, key: str) -> None:
    session = repo.writable_session("main")

    async def use() -> None:
        with pytest.raises(icechunk.InvalidKeyError) as err:
            await session.set(key, b"x")
        assert err.value.key == key
        assert err.value.reason
        with pytest.raises(icechunk.InvalidKeyError):
            await session.get(key)
        with pytest.raises(icechunk.InvalidKeyError):
            await session.delete(key)
        with pytest.raises(icechunk.InvalidKeyError):
            await session.exists(key)

    asyncio.run(use())
    assert not dirty(session)


def test_exception_hierarchy() -> None:
    for name in icechunk.__all__:
        obj = getattr(icechunk, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, icechunk.IcechunkError)
            assert obj.__module__ == "icechunk"
            assert obj.__doc__
    assert not issubclass(icechunk.IcechunkError, icechunk.ConflictError)


def test_corruption_is_reported(tmp_path: Path) -> None:
    storage = Storage.local(tmp_path / "repo")
    repo = Repository.create(storage)
    big = bytes(range(256)) * 8
    commit_value(repo, "main", "big", big, "big value")
    chunks = list((tmp_path / "repo" / "chunks").iterdir())
    assert len(chunks) == 1
    data = bytearray(chunks[0].read_bytes())
    data[-1] ^= 0xFF
    chunks[0].write_bytes(bytes(data))
    with pytest.raises(icechunk.CorruptedError) as err:
        read(repo.readonly_session(), "big")
    assert "chunks/" in err.value.object


def test_newer_format_is_refused(tmp_path: Path) -> None:
    storage = Storage.local(tmp_path / "repo")
    Repository.create(storage)
    marker = tmp_path / "repo" / "repo"
    data = bytearray(marker.read_bytes())
    # The object header's format version: a little-endian u16 at bytes 8..10 (FORMAT.md).
    version = int.from_bytes(data[8:10], "little")
    data[8:10] = (version + 1).to_bytes(2, "little")
    marker.write_bytes(bytes(data))
    with pytest.raises(icechunk.UnsupportedFormatVersionError) as err:
        Repository.open(storage)
    assert err.value.found == version + 1
    assert err.value.supported == version
    assert err.value.object.endswith("/repo")


def test_unreachable_server_is_a_storage_error() -> None:
    storage = Storage.s3(
        "bucket",
        "prefix",
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
        allow_http=True,
        max_retries=0,
        retry_timeout_secs=1,
    )
    with pytest.raises(icechunk.StorageError) as err:
        Repository.open(storage)
    assert err.value.operation == "reading"
    assert err.value.path == "s3://bucket/prefix/repo"


def read_in_worker(session: icechunk.Session, key: str) -> bytes | None:
    """Runs in a worker process: the session arrives pickled."""
    return read(session, key)


def test_a_process_pool_reads_a_repository_in_parallel(tmp_path: Path) -> None:
    repo = Repository.create(Storage.local(tmp_path / "repo"))
    session = repo.writable_session("main")
    for i in range(8):
        write(session, f"k{i}", f"v{i}".encode())
    session.commit("eight keys")
    readonly = repo.readonly_session()
    # spawn, not fork: the parent runs tokio's threads, which a fork does not carry over.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        values = list(pool.map(read_in_worker, [readonly] * 8, [f"k{i}" for i in range(8)]))
    assert values == [f"v{i}".encode() for i in range(8)]


def test_read_only_sessions_and_storage_pickle(tmp_path: Path) -> None:
    storage = Storage.local(tmp_path / "repo")
    repo = Repository.create(storage)
    first = commit_value(repo, "main", "k", b"v1", "first")
    commit_value(repo, "main", "k", b"v2", "second")

    again = pickle.loads(pickle.dumps(storage))
    assert again.location == storage.location
    assert Repository.open(again).lookup_branch("main") != first

    session = repo.readonly_session(snapshot_id=first)
    copy = pickle.loads(pickle.dumps(session))
    assert copy.read_only and copy.snapshot_id == first
    assert read(copy, "k") == b"v1"
    # A session on a branch pickles as the snapshot it reads, not the moving branch.
    on_main = repo.readonly_session()
    commit_value(repo, "main", "k", b"v3", "third")
    assert read(pickle.loads(pickle.dumps(on_main)), "k") == b"v2"
    store = pickle.loads(pickle.dumps(session.store))
    assert store.read_only and store.session.snapshot_id == first

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(repo.writable_session("main"))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(repo.writable_session("main").store)
    memory = Repository.create(Storage.memory())
    with pytest.raises(TypeError, match="in-memory storage"):
        pickle.dumps(memory.readonly_session())
    with pytest.raises(TypeError, match="in-memory storage"):
        pickle.dumps(memory.storage)


async def test_commit_async() -> None:
    repo = Repository.create(Storage.memory())
    session = repo.writable_session("main")
    await session.set("k", b"v")
    snapshot = await session.commit_async("awaited")
    assert session.snapshot_id == snapshot == repo.lookup_branch("main")
    with pytest.raises(icechunk.NoChangesToCommitError):
        await session.commit_async("nothing")
    other = repo.writable_session("main")
    late = repo.writable_session("main")
    await other.set("k", b"other")
    await other.commit_async("other")
    await late.set("k", b"late")
    with pytest.raises(icechunk.ConflictError):
        await late.commit_async("late")
