"""Model-based tests: ``IcechunkStore`` behaves like Zarr's ``MemoryStore`` under random
operations, and every committed snapshot keeps reading back as it was committed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import hypothesis.strategies as st
import pytest
from hypothesis import note, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import MemoryStore
from zarr.testing.stateful import ZarrHierarchyStateMachine, ZarrStoreStateMachine
from zarr.testing.strategies import keys as zarr_keys

import icechunk
from icechunk import IcechunkStore, Repository, Storage

T = TypeVar("T")

# A small name space, so keys collide, nest and share prefixes often; plus Zarr's own key
# strategy now and then. Values cross the 512-byte limit between inline values and chunks.
NAMES = ("a", "b", "ab", "c", "0", "zarr.json")
small_keys = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
any_keys = small_keys | zarr_keys(max_num_nodes=3)
values = st.binary(max_size=40) | st.binary(min_size=500, max_size=1100)
prefixes = st.sampled_from(["", "a", "a/", "ab", "a/b", "a/b/", "c/", "zarr", "z"]) | small_keys
byte_requests: st.SearchStrategy[ByteRequest | None] = st.one_of(
    st.none(),
    st.builds(RangeByteRequest, st.integers(0, 1200), st.integers(0, 1200)),
    st.builds(OffsetByteRequest, st.integers(0, 1200)),
    st.builds(SuffixByteRequest, st.integers(0, 1200)),
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on Zarr's event loop thread."""
    return sync(coro)


async def collect(items: AsyncIterator[str]) -> list[str]:
    return sorted([item async for item in items])


async def session_get(session: icechunk.Session, key: str) -> bytes | None:
    # Session awaitables must be created inside the running loop.
    return await session.get(key)


def buf(data: bytes) -> Buffer:
    return cpu.Buffer.from_bytes(data)


class StoreVersusMemoryStore(RuleBasedStateMachine):
    """Random writes, deletes, reads, listings, commits, discards and fresh sessions on an
    ``IcechunkStore`` and a ``MemoryStore``; after every step both hold the same keys and
    values. Each commit's content is remembered and read back from its snapshot at random."""

    snapshots = Bundle("snapshots")

    def __init__(self) -> None:
        super().__init__()
        self.repo = Repository.create(Storage.memory())
        self.session = self.repo.writable_session("main")
        self.store: IcechunkStore = self.session.store
        self.model = MemoryStore()
        # What the last commit holds, and the changes since (None = deletion), with the
        # session's rules: deleting a key the base does not have cancels a pending set.
        self.committed: dict[str, bytes] = {}
        self.pending: dict[str, bytes | None] = {}
        self.contents: dict[str, dict[str, bytes]] = {}
        self.prototype = default_buffer_prototype()

    @initialize(target=snapshots)
    def initial_snapshot(self) -> str:
        snapshot = self.session.snapshot_id
        self.contents[snapshot] = {}
        return snapshot

    def model_dict(self) -> dict[str, bytes]:
        async def read_all() -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for key in await collect(self.model.list()):
                value = await self.model.get(key, self.prototype)
                assert value is not None
                out[key] = value.to_bytes()
            return out

        return run(read_all())

    def reset_model(self) -> None:
        self.model = MemoryStore({key: buf(value) for key, value in self.committed.items()})
        self.pending.clear()

    def record_delete(self, key: str) -> None:
        if key in self.committed:
            self.pending[key] = None
        else:
            self.pending.pop(key, None)

    @rule(key=any_keys, value=values)
    def set(self, key: str, value: bytes) -> None:
        run(self.store.set(key, buf(value)))
        run(self.model.set(key, buf(value)))
        self.pending[key] = value

    @rule(key=any_keys, value=values)
    def set_if_not_exists(self, key: str, value: bytes) -> None:
        existed = run(self.model.exists(key))
        run(self.store.set_if_not_exists(key, buf(value)))
        run(self.model.set_if_not_exists(key, buf(value)))
        if not existed:
            self.pending[key] = value

    @precondition(lambda self: bool(self.model._store_dict))
    @rule(data=st.data())
    def delete_existing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model._store_dict)))
        run(self.store.delete(key))
        run(self.model.delete(key))
        self.record_delete(key)

    @rule(key=any_keys)
    def delete_any(self, key: str) -> None:
        run(self.store.delete(key))
        run(self.model.delete(key))
        self.record_delete(key)

    @rule(prefix=prefixes)
    def delete_dir(self, prefix: str) -> None:
        directory = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        doomed = [k for k in self.model._store_dict if k.startswith(directory)]
        run(self.store.delete_dir(prefix))
        run(self.model.delete_dir(prefix))
        for key in doomed:
            self.record_delete(key)

    def expected_part(self, key: str, byte_range: ByteRequest | None) -> bytes | None:
        """The model's answer. MemoryStore slices with Python indices, which for a suffix
        longer than the value counts from the end twice; the documented meaning ("up to the
        last n bytes", as in HTTP) is the whole value, which is what icechunk returns."""
        value = self.model._store_dict.get(key)
        if value is None:
            return None
        data = value.to_bytes()
        if isinstance(byte_range, SuffixByteRequest):
            return data[max(len(data) - byte_range.suffix, 0) :]
        part = run(self.model.get(key, self.prototype, byte_range))
        assert part is not None
        return part.to_bytes()

    @rule(key=any_keys, byte_range=byte_requests)
    def get(self, key: str, byte_range: ByteRequest | None) -> None:
        ours = run(self.store.get(key, self.prototype, byte_range))
        assert (ours.to_bytes() if ours is not None else None) == self.expected_part(
            key, byte_range
        )

    @precondition(lambda self: bool(self.model._store_dict))
    @rule(data=st.data())
    def get_partial_values(self, data: st.DataObject) -> None:
        existing = st.sampled_from(sorted(self.model._store_dict))
        requests = data.draw(st.lists(st.tuples(existing | any_keys, byte_requests), max_size=5))
        ours = run(self.store.get_partial_values(self.prototype, requests))
        assert [b.to_bytes() if b is not None else None for b in ours] == [
            self.expected_part(key, byte_range) for key, byte_range in requests
        ]

    @rule(key=any_keys)
    def exists(self, key: str) -> None:
        assert run(self.store.exists(key)) == run(self.model.exists(key))

    @rule(prefix=prefixes)
    def listings(self, prefix: str) -> None:
        assert run(collect(self.store.list_prefix(prefix))) == run(
            collect(self.model.list_prefix(prefix))
        )
        assert run(collect(self.store.list_dir(prefix))) == run(
            collect(self.model.list_dir(prefix))
        )
        assert run(self.store.is_empty(prefix)) == run(self.model.is_empty(prefix))

    @rule(target=snapshots, message=st.text(max_size=20))
    def commit(self, message: str) -> str:
        if not self.pending:
            try:
                self.session.commit(message)
            except icechunk.NoChangesToCommitError:
                pass
            else:
                raise AssertionError("a commit without changes succeeded")
            return self.session.snapshot_id
        snapshot = self.session.commit(message)
        note(f"committed {snapshot}")
        self.committed = self.model_dict()
        self.pending.clear()
        self.contents[snapshot] = dict(self.committed)
        assert self.repo.ancestry()[0].message == message
        return snapshot

    @rule()
    def discard(self) -> None:
        self.session.discard_changes()
        self.reset_model()

    @rule(read_only=st.booleans())
    def fresh_session(self, read_only: bool) -> None:
        """A new session on the branch: uncommitted changes are gone."""
        self.session = self.repo.writable_session("main")
        self.store = self.session.store
        self.reset_model()
        if read_only:
            view = self.repo.readonly_session(branch="main").store
            assert run(collect(view.list())) == sorted(self.committed)

    @rule(snapshot=snapshots)
    def read_old_snapshot(self, snapshot: str) -> None:
        expected = self.contents[snapshot]
        old = self.repo.readonly_session(snapshot_id=snapshot)
        assert old.snapshot_id == snapshot
        store = old.store
        assert run(collect(store.list())) == sorted(expected)
        for key, value in expected.items():
            got = run(store.get(key, self.prototype))
            assert got is not None and got.to_bytes() == value

    @invariant()
    def same_content(self) -> None:
        expected = self.model_dict()
        assert run(collect(self.store.list())) == sorted(expected)
        for key, value in expected.items():
            got = run(session_get(self.session, key))
            assert got == value, key

    @invariant()
    def uncommitted_changes_tracked(self) -> None:
        assert self.session.has_uncommitted_changes == bool(self.pending)


TestStoreVersusMemoryStore = StoreVersusMemoryStore.TestCase
TestStoreVersusMemoryStore.settings = settings(max_examples=75, stateful_step_count=40)


class ZarrStoreMachine(ZarrStoreStateMachine):
    """Zarr's own store state machine (``zarr.testing.stateful``) on an ``IcechunkStore``."""

    def __init__(self) -> None:
        session = Repository.create(Storage.memory()).writable_session("main")
        super().__init__(session.store)


TestZarrStoreMachine = ZarrStoreMachine.TestCase
TestZarrStoreMachine.settings = settings(max_examples=30, stateful_step_count=25)


class ZarrHierarchyMachine(ZarrHierarchyStateMachine):
    """Zarr's group/array hierarchy state machine on an ``IcechunkStore``."""

    def __init__(self) -> None:
        session = Repository.create(Storage.memory()).writable_session("main")
        super().__init__(session.store)


TestZarrHierarchyMachine = pytest.mark.filterwarnings(
    # Zarr warns about its own data types that have no Zarr v3 specification yet.
    "ignore:The data type .* does not have a Zarr V3 specification"
)(ZarrHierarchyMachine.TestCase)
TestZarrHierarchyMachine.settings = settings(max_examples=15, stateful_step_count=15)
