"""Fixtures for detector tests: where the shared public benchmark data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import shared_data_dir

#: The shared data folder beside the repository (ARCHITECTURE.md: ``../shared/data``) or ``EHS_SHARED_DATA``.
SHARED_DATA = shared_data_dir()


def _folder(name: str) -> Path:
    path = SHARED_DATA / name
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA} (set EHS_SHARED_DATA)")
    assert path.is_dir(), f"{path} is missing although {SHARED_DATA} exists"
    return path


@pytest.fixture(scope="session")
def nab_root() -> Path:
    return _folder("nab")


@pytest.fixture(scope="session")
def skab_root() -> Path:
    return _folder("skab")


@pytest.fixture(scope="session")
def pyod_benchmark_root() -> Path:
    return _folder("pyod-benchmark")
