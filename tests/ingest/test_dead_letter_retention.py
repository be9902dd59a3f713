"""Dead letters are kept, but not without bound: old rows go, rows beyond the cap per topic and UTC day and beyond
the total cap go, and what the caps removed is counted per day and reason (never silently), in any session time
zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.deadletters import prune_dead_letters
from ingest.settings import IngestSettings

pytestmark = pytest.mark.db

NOW = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # 08:30 in Asia/Shanghai: the UTC day differs from local


def _letters(conn: psycopg.Connection, topic: str, n: int, at: datetime, reason: str = "unknown_device") -> None:
    conn.execute(
        "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason) "
        "SELECT %s + i * interval '1 ms', %s, '\\x00', 1, %s FROM generate_series(1, %s) i",
        (at, topic, reason, n),
    )


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/Los_Angeles"])
def test_age_topic_day_and_total_caps(conn: psycopg.Connection, zone: str) -> None:
    conn.execute(f"SET TIME ZONE '{zone}'")
    _letters(conn, "ehs/v1/s1/old/telemetry", 5, NOW - timedelta(days=31))
    _letters(conn, "ehs/v1/s1/noisy/telemetry", 150, NOW - timedelta(minutes=20))  # today (UTC), 150 rows
    _letters(conn, "ehs/v1/s1/noisy/telemetry", 30, NOW - timedelta(hours=2))  # yesterday (UTC), 30 rows
    _letters(conn, "ehs/v1/s1/fine/telemetry", 100, NOW - timedelta(minutes=10), reason="bad_json")
    first = conn.execute(
        "SELECT min(id) FROM dead_letter WHERE topic = 'ehs/v1/s1/noisy/telemetry' AND received_at >= %s",
        (NOW - timedelta(minutes=30),),
    ).fetchone()[0]
    pruned = prune_dead_letters(conn, now=NOW, keep_days=30, per_topic_day=100, max_rows=10_000)
    assert (pruned.aged, pruned.topic_cap, pruned.total_cap) == (5, 50, 0)
    per_topic = dict(conn.execute("SELECT topic, count(*) FROM dead_letter GROUP BY topic").fetchall())
    assert per_topic == {"ehs/v1/s1/noisy/telemetry": 130, "ehs/v1/s1/fine/telemetry": 100}
    kept = conn.execute(
        "SELECT min(id) FROM dead_letter WHERE topic = 'ehs/v1/s1/noisy/telemetry' AND received_at >= %s",
        (NOW - timedelta(minutes=30),),
    ).fetchone()[0]
    assert kept == first  # the first rows of a day are the ones kept

    for i in range(40):  # made-up topics, each under its own cap
        _letters(conn, f"ehs/v1/made-up-{i}/x/telemetry", 10, NOW - timedelta(minutes=5))
    pruned = prune_dead_letters(conn, now=NOW, keep_days=30, per_topic_day=100, max_rows=300)
    assert (pruned.aged, pruned.topic_cap, pruned.total_cap) == (0, 0, 330)
    assert conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0] == 300
    newest = conn.execute("SELECT count(*) FROM dead_letter WHERE topic LIKE 'ehs/v1/made-up-%'").fetchone()[0]
    assert newest == 300  # the newest rows (all 400 made-up ones came last)
    counted = conn.execute("SELECT day, reason, cause, rows FROM dead_letter_pruned ORDER BY 1, 2, 3").fetchall()
    assert sum(r[3] for r in counted) == 50 + 330
    assert (NOW.date(), "unknown_device", "topic_cap", 50) in counted


def test_retention_settings_have_documented_defaults() -> None:
    settings = IngestSettings()
    assert (settings.dead_letter_days, settings.dead_letter_per_topic_day, settings.dead_letter_max_rows) == (
        30,
        1000,
        1_000_000,
    )
