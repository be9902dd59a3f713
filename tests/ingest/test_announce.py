"""Ingest announces committed batches on readings_committed (one NOTIFY per batch, delivered only on commit)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from core import channels
from ingest.writer import announce

pytestmark = pytest.mark.db


def test_a_batch_is_announced_on_commit_only(database_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as listener, psycopg.connect(database_url) as writer:
        listener.execute(f"LISTEN {channels.READINGS}")
        announce(writer, "rolled-back", [(now, 5, 1.0, 0)])
        writer.rollback()
        announce(writer, "committed", [(now, p, 1.0, 0) for p in (3, 4, 5, 9)])
        writer.commit()
        notes = list(listener.notifies(timeout=10, stop_after=1))
    payload = notes[0].payload
    assert '"batch":"committed"' in payload and channels.changed_points(payload) == {3, 4, 5, 9}
