"""The Zarr v3 store over an icechunk session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

if TYPE_CHECKING:
    from icechunk._icechunk_python import Session

__all__ = ["IcechunkStore"]


def _range_arguments(
    byte_range: ByteRequest | None,
) -> tuple[int | None, int | None, int | None]:
    """``(start, end, suffix)`` for ``Session.get``; ranges past the end are clipped."""
    if byte_range is None:
        return None, None, None
    if isinstance(byte_range, RangeByteRequest):
        if byte_range.start < 0 or byte_range.end < 0:
            raise ValueError(f"byte range bounds cannot be negative, got {byte_range}")
        return byte_range.start, byte_range.end, None
    if isinstance(byte_range, OffsetByteRequest):
        if byte_range.offset < 0:
            raise ValueError(f"byte range offset cannot be negative, got {byte_range}")
        return byte_range.offset, None, None
    if isinstance(byte_range, SuffixByteRequest):
        if byte_range.suffix < 0:
            raise ValueError(f"byte range suffix cannot be negative, got {byte_range}")
        return None, None, byte_range.suffix
    raise TypeError(f"Unexpected byte_range, got {byte_range!r}.")


class IcechunkStore(Store):
    """A Zarr v3 store reading and writing one icechunk session.

    Get one with ``session.store``. Writes go to the session's uncommitted changes and
    become a snapshot with ``session.commit(message)``; reads see those changes. A store over
    a read-only session (or opened with ``read_only=True``) refuses writes with the
    ``ValueError`` Zarr expects.

    Parameters
    ----------
    session
        The session to read and write.
    read_only
        ``None`` (the default) follows the session. ``True`` gives a read-only view of a
        writable session; ``False`` requires a writable session.
    """

    supports_writes: bool = True
    supports_deletes: bool = True
    supports_listing: bool = True

    _session: Session

    def __init__(self, session: Session, *, read_only: bool | None = None) -> None:
        if read_only is None:
            read_only = session.read_only
        elif not read_only and session.read_only:
            raise ValueError(
                "cannot open a writable store on a read-only session; "
                "use Repository.writable_session(branch)"
            )
        super().__init__(read_only=read_only)
        self._session = session

    @property
    def session(self) -> Session:
        """The session this store reads and writes."""
        return self._session

    def with_read_only(self, read_only: bool = False) -> IcechunkStore:
        """A new (not yet open) store over the same session with another read-only setting."""
        return type(self)(self._session, read_only=read_only)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IcechunkStore)
            and other._session is self._session
            and other.read_only == self.read_only
        )

    def __hash__(self) -> int:
        return hash((id(self._session), self.read_only))

    def __repr__(self) -> str:
        return f"IcechunkStore({self._session!r}, read_only={self.read_only})"

    def __str__(self) -> str:
        return f"icechunk://{self._session!r}"

    def __reduce__(self) -> tuple[type[IcechunkStore], tuple[Session]]:
        """A store over a read-only session pickles as that session (see ``Session``);
        a writable session's uncommitted changes live in memory and cannot be pickled."""
        if not self._session.read_only:
            raise TypeError(
                "an IcechunkStore over a writable session cannot be pickled: the session "
                "holds uncommitted changes in memory"
            )
        return (type(self), (self._session,))

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """The value of ``key`` (or the requested part of it), ``None`` if absent."""
        if prototype is None:
            prototype = default_buffer_prototype()
        start, end, suffix = _range_arguments(byte_range)
        data = await self._session.get(key, start, end, suffix=suffix)
        if data is None:
            return None
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """The requested parts of several values, concurrently, in the order asked."""
        return list(
            await asyncio.gather(*(self.get(key, prototype, rng) for key, rng in key_ranges))
        )

    async def exists(self, key: str) -> bool:
        """Whether ``key`` has a value."""
        return await self._session.exists(key)

    async def set(self, key: str, value: Buffer) -> None:
        """Sets ``key`` to ``value`` in the session's uncommitted changes."""
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(
                f"IcechunkStore.set(): `value` must be a Buffer instance, not {type(value)}"
            )
        await self._session.set(key, value.to_bytes())

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        """Sets ``key`` only if it has no value yet."""
        self._check_writable()
        if not await self._session.exists(key):
            await self.set(key, value)

    async def delete(self, key: str) -> None:
        """Deletes ``key``; deleting an absent key does nothing."""
        self._check_writable()
        await self._session.delete(key)

    async def delete_dir(self, prefix: str) -> None:
        """Deletes every key under the directory ``prefix`` (``""`` is everything)."""
        self._check_writable()
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys = await self._session.list_prefix(prefix)
        await asyncio.gather(*(self._session.delete(key) for key in keys))

    async def list(self) -> AsyncIterator[str]:
        """Every key, sorted."""
        for key in await self._session.list():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with ``prefix`` (a plain string prefix), sorted."""
        for key in await self._session.list_prefix(prefix):
            yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """The names directly inside the directory ``prefix``, sorted."""
        for name in await self._session.list_dir(prefix):
            yield name
