"""Fixtures for detector tests: where the shared public benchmark data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The shared data folder sits beside the repository (ARCHITECTURE.md: ``../shared/data``).
SHARED_DATA = Path(os.environ.get("EHS_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


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
