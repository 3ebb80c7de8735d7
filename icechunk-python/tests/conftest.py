"""Shared test configuration.

Hypothesis keeps its example database (and every other file it writes) in
``icechunk-python/.hypothesis/``, computed from this file's location, so the directory is the
same whether pytest runs from the workspace root (as ``cargo xtask python-test`` does) or from
``icechunk-python/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

import icechunk

PACKAGE_DIR = Path(__file__).resolve().parent.parent
HYPOTHESIS_DIR = PACKAGE_DIR / ".hypothesis"

set_hypothesis_home_dir(HYPOTHESIS_DIR)
settings.register_profile(
    "icechunk",
    database=DirectoryBasedExampleDatabase(HYPOTHESIS_DIR / "examples"),
    # Modest example counts keep the whole suite well under a minute per interpreter.
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("icechunk")


@pytest.fixture
def repo() -> icechunk.Repository:
    """A new repository in memory."""
    return icechunk.Repository.create(icechunk.Storage.memory())
