"""``IcechunkStore`` against Zarr's own store test suite, plus icechunk specifics."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.abc.store import (
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
    SupportsDeleteSync,
    SupportsGetSync,
    SupportsSetSync,
)
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.testing.store import StoreTests

import icechunk
from icechunk import IcechunkStore, Repository, Storage


class TestIcechunkStore(StoreTests[IcechunkStore, cpu.Buffer]):
    """Zarr's conformance tests for stores (``zarr.testing.store.StoreTests``)."""

    store_cls = IcechunkStore
    buffer_cls = cpu.Buffer

    async def set(self, store: IcechunkStore, key: str, value: Buffer) -> None:
        # Through the session, bypassing the store's own methods.
        await store.session.set(key, value.to_bytes())

    async def get(self, store: IcechunkStore, key: str) -> cpu.Buffer:
        data = await store.session.get(key)
        assert data is not None
        return self.buffer_cls.from_bytes(data)

    @pytest.fixture
    def store_kwargs(self) -> dict[str, Any]:
        repo = Repository.create(Storage.memory())
        return {"session": repo.writable_session("main")}

    def test_store_repr(self, store: IcechunkStore) -> None:
        assert repr(store).startswith("IcechunkStore(<Session on memory:// branch 'main'>")

    def test_store_supports_writes(self, store: IcechunkStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: IcechunkStore) -> None:
        assert store.supports_listing

    async def test_serializable_store(self, store: IcechunkStore) -> None:
        # A session's uncommitted changes live in memory: stores are not picklable.
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(store)


@pytest.fixture
def session() -> icechunk.Session:
    return Repository.create(Storage.memory()).writable_session("main")


def test_store_offers_no_blocking_io(session: icechunk.Session) -> None:
    # Zarr calls get_sync/set_sync/delete_sync from its event loop when a store has them;
    # icechunk's I/O is remote, so the store offers only the awaitable methods (Zarr's
    # StoreTests skip their sync-IO tests for this reason).
    store = session.store
    assert not isinstance(store, SupportsGetSync | SupportsSetSync | SupportsDeleteSync)


def test_store_is_a_zarr_store(session: icechunk.Session) -> None:
    store = session.store
    assert isinstance(store, Store)
    assert store.session is session
    assert store == session.store
    assert hash(store) == hash(session.store)
    assert store != store.with_read_only(True)
    assert not store.read_only
    assert str(store).startswith("icechunk://")


@pytest.mark.parametrize(
    ("byte_range", "expected"),
    [
        (None, b"0123456789"),
        (RangeByteRequest(2, 5), b"234"),
        (RangeByteRequest(8, 100), b"89"),
        (RangeByteRequest(5, 5), b""),
        (RangeByteRequest(5, 2), b""),
        (RangeByteRequest(20, 30), b""),
        (OffsetByteRequest(7), b"789"),
        (OffsetByteRequest(50), b""),
        (SuffixByteRequest(3), b"789"),
        (SuffixByteRequest(0), b""),
        (SuffixByteRequest(10), b"0123456789"),
    ],
)
async def test_byte_ranges_match_memory_store(
    session: icechunk.Session,
    byte_range: RangeByteRequest | OffsetByteRequest | SuffixByteRequest | None,
    expected: bytes,
) -> None:
    store = session.store
    memory = zarr.storage.MemoryStore()
    for s in (store, memory):
        await s.set("k", cpu.Buffer.from_bytes(b"0123456789"))
    prototype = default_buffer_prototype()
    ours = await store.get("k", prototype, byte_range)
    theirs = await memory.get("k", prototype, byte_range)
    assert ours is not None and theirs is not None
    assert ours.to_bytes() == theirs.to_bytes() == expected


async def test_suffix_longer_than_the_value_is_the_whole_value(
    session: icechunk.Session,
) -> None:
    # "Up to the last n bytes" (HTTP's bytes=-n). Zarr's MemoryStore slices with Python
    # indices instead and returns value[len - n:], which wraps around for 10 < n < 20.
    store = session.store
    await store.set("k", cpu.Buffer.from_bytes(b"0123456789"))
    for n in (11, 15, 50):
        got = await store.get("k", default_buffer_prototype(), SuffixByteRequest(n))
        assert got is not None and got.to_bytes() == b"0123456789"


async def test_negative_byte_ranges_are_rejected(session: icechunk.Session) -> None:
    store = session.store
    await store.set("k", cpu.Buffer.from_bytes(b"0123456789"))
    for bad in (RangeByteRequest(-1, 3), OffsetByteRequest(-2), SuffixByteRequest(-1)):
        with pytest.raises(ValueError, match="negative"):
            await store.get("k", default_buffer_prototype(), bad)


async def test_store_set_type_and_key_errors(session: icechunk.Session) -> None:
    store = session.store
    with pytest.raises(TypeError, match="Buffer"):
        await store.set("k", b"raw bytes")  # type: ignore[arg-type]
    with pytest.raises(icechunk.InvalidKeyError):
        await store.set("/absolute", cpu.Buffer.from_bytes(b"x"))


async def test_read_only_store_over_writable_session(session: icechunk.Session) -> None:
    writer = session.store
    await writer.set("k", cpu.Buffer.from_bytes(b"v"))
    reader = writer.with_read_only(True)
    assert reader.read_only
    with pytest.raises(ValueError, match="read-only mode"):
        await reader.set("k", cpu.Buffer.from_bytes(b"w"))
    with pytest.raises(ValueError, match="read-only mode"):
        await reader.delete("k")
    value = await reader.get("k", default_buffer_prototype())
    assert value is not None and value.to_bytes() == b"v"


def test_zarr_refuses_writes_through_a_read_only_session() -> None:
    repo = Repository.create(Storage.memory())
    writer = repo.writable_session("main")
    array = zarr.create_array(store=writer.store, name="a", shape=(4,), dtype="uint8")
    array[:] = np.arange(4, dtype="uint8")
    writer.commit("a")

    reader = repo.readonly_session()
    opened = zarr.open_array(store=reader.store, path="a", mode="r")
    np.testing.assert_array_equal(opened[:], np.arange(4))
    with pytest.raises(ValueError, match="read-only"):
        zarr.create_array(store=reader.store, name="b", shape=(4,), dtype="uint8")
    assert not reader.has_uncommitted_changes


def test_uncommitted_zarr_writes_are_visible_then_discarded(session: icechunk.Session) -> None:
    array = zarr.create_array(store=session.store, name="a", shape=(8,), dtype="int16")
    array[:] = 7
    assert session.has_uncommitted_changes
    np.testing.assert_array_equal(
        zarr.open_array(store=session.store, path="a", mode="r")[:], np.full(8, 7)
    )
    session.discard_changes()
    with pytest.raises(FileNotFoundError):
        zarr.open_array(store=session.store, path="a", mode="r")
