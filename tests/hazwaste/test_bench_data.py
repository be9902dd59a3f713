"""The benchmark's generated ledger is a valid ledger (batch codes, chains, container states), at a small size."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from benchmarks.hazwaste import load, measure
from hazwaste import ledger

pytestmark = pytest.mark.db


def test_generated_ledger_is_consistent_and_measurable(database_url: str) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        loaded = load(conn, 2000, now)
        assert loaded["records"] >= 2000
        # every step names the batch before it, and the container's state is its last step
        broken = conn.execute("""SELECT count(*) FROM hw_ledger l JOIN hw_ledger p ON p.batch_code = l.source_batch
                                 AND p.container_id <> l.container_id""").fetchone()[0]
        assert broken == 0
        mismatched = conn.execute("""SELECT count(*) FROM hw_container c WHERE c.last_batch <> (
                                     SELECT batch_code FROM hw_ledger l WHERE l.container_id = c.id
                                     ORDER BY at DESC LIMIT 1)""").fetchone()[0]
        assert mismatched == 0
        cid = conn.execute("SELECT id FROM hw_container WHERE stage = 'storage_in' LIMIT 1").fetchone()[0]
        # the loaded containers take the next step through the ordinary ledger function
        row = ledger.record(conn=conn, container_id=cid, stage="storage_out", at=now, handler="a", recorded_by="t")
        assert row["batch_code"].startswith("HWCK20260601")
    figures = measure(database_url, loaded["site"], loaded["containers"], 0.0, now)
    assert figures["lookups"] >= 200 and figures["declarations"] >= 10
    assert 0 < figures["lookup_p50_ms"] <= figures["lookup_p95_ms"]
