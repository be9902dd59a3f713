"""Fixtures of the ingest tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.stack import Stack, make_stack


@pytest.fixture
def stack(database_url: str, broker_url: str, site: str, tmp_path: Path) -> Iterator[Stack]:
    """Ingest's pipeline with the alarm stages of the plant in ``tests.alerts.helpers``, not started."""
    yield from make_stack(database_url, broker_url, site, tmp_path)
