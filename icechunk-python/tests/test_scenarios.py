"""The end-to-end scenarios (see scenarios.py) on memory and local-directory storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import scenarios

import icechunk


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> icechunk.Storage:
    if request.param == "memory":
        return icechunk.Storage.memory()
    return icechunk.Storage.local(tmp_path / "repo")


def test_zarr_round_trip(storage: icechunk.Storage) -> None:
    scenarios.zarr_round_trip(storage)


def test_racing_commits(storage: icechunk.Storage) -> None:
    scenarios.racing_commits(storage)


def test_many_writers(storage: icechunk.Storage) -> None:
    scenarios.many_writers(storage)
