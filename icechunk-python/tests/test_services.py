"""The end-to-end scenarios against real object stores: S3 (moto) and Azure Blob Storage
(Azurite). Marked ``services``: ``cargo xtask python-test --full`` runs them with the servers'
settings from ``cargo xtask docker-up``. A missing setting or server fails these tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import scenarios
from services import azure_storage, s3_storage, unique_prefix

import icechunk

pytestmark = pytest.mark.services

BACKENDS: dict[str, Callable[[str | None], icechunk.Storage]] = {
    "s3": s3_storage,
    "azure": azure_storage,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Callable[[str | None], icechunk.Storage]:
    return BACKENDS[request.param]


def test_zarr_round_trip(backend: Callable[[str | None], icechunk.Storage]) -> None:
    scenarios.zarr_round_trip(backend(None))


def test_racing_commits(backend: Callable[[str | None], icechunk.Storage]) -> None:
    scenarios.racing_commits(backend(None))


def test_many_writers(backend: Callable[[str | None], icechunk.Storage]) -> None:
    scenarios.many_writers(backend(None), writers=3)


def test_same_prefix_is_the_same_repository(
    backend: Callable[[str | None], icechunk.Storage],
) -> None:
    """Two Storage values on one prefix (with characters that need encoding in a URL) see the
    same repository; another prefix does not."""
    prefix = f"{unique_prefix()}/with space %41"
    repo = icechunk.Repository.create(backend(prefix))
    session = repo.writable_session("main")

    async def write() -> None:
        await session.set("zarr.json", b'{"zarr_format":3,"node_type":"group"}')

    asyncio.run(write())
    snapshot = session.commit("one")
    again = icechunk.Repository.open(backend(prefix))
    assert again.lookup_branch("main") == snapshot
    assert prefix in again.storage.location
    with pytest.raises(icechunk.RepositoryNotFoundError):
        icechunk.Repository.open(backend(f"{prefix}-other"))
    with pytest.raises(icechunk.RepositoryExistsError):
        icechunk.Repository.create(backend(prefix))
