"""The query layer: latest values; the plain rollup tables (with late data), gaps as gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core import timeseries
from core.plant import apply_plant
from ingest.writer import mark_late
from tests.support import small_plant

pytestmark = pytest.mark.db
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _setup(conn: psycopg.Connection) -> int:
    apply_plant(conn=conn, plant=small_plant("s1"), source="t")
    return conn.execute("SELECT min(id) FROM point").fetchone()[0]


def _insert(conn: psycopg.Connection, pid: int, rows: list[tuple[datetime, float]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO reading (time, point_id, value) VALUES (%s, %s, %s)", [(t, pid, v) for t, v in rows]
        )


def test_latest_gives_the_newest_value_per_point(conn: psycopg.Connection) -> None:
    pid = _setup(conn)
    _insert(conn, pid, [(NOW - timedelta(seconds=2), 1.0), (NOW, 2.0), (NOW - timedelta(seconds=1), 3.0)])
    _insert(conn, pid + 1, [(NOW, 7.0)])
    rows = timeseries.latest(conn)
    assert [(r["point_id"], r["value"]) for r in rows] == [(pid, 2.0), (pid + 1, 7.0)]
    assert timeseries.latest(conn, point_ids=[pid + 1])[0]["key"] == "co_ppm"
    assert timeseries.latest(conn, site="other") == []


def test_rollups_match_raw_aggregates_and_show_gaps(conn: psycopg.Connection) -> None:
    pid = _setup(conn)
    start = NOW - timedelta(minutes=10)
    # minutes 0, 1 and 3 have data; minute 2 is a gap
    _insert(
        conn,
        pid,
        [(start + timedelta(minutes=m, seconds=s), float(m * 100 + s)) for m in (0, 1, 3) for s in (0, 20, 40)],
    )
    timeseries.refresh_rollups(conn, now=NOW)
    buckets = timeseries.bucketed(conn, point_id=pid, start=start, end=start + timedelta(minutes=5))
    assert [b["n"] for b in buckets] == [3, 3, 0, 3, 0]
    first = buckets[0]
    assert (first["value_min"], first["value_max"], first["value_avg"], first["value_last"]) == (0, 40, 20, 40)
    assert buckets[2]["value_avg"] is None  # a gap, not a zero
    stored = conn.execute("SELECT count(*) FROM reading_1m WHERE point_id = %s", (pid,)).fetchone()[0]
    assert stored == 3


def test_recent_buckets_come_from_raw_rows(conn: psycopg.Connection) -> None:
    pid = _setup(conn)
    timeseries.refresh_rollups(conn, now=NOW - timedelta(hours=1))
    _insert(conn, pid, [(NOW - timedelta(seconds=30), 5.0), (NOW - timedelta(seconds=10), 7.0)])
    buckets = timeseries.bucketed(conn, point_id=pid, start=NOW - timedelta(minutes=1), end=NOW)
    assert buckets[-1]["value_avg"] == 6.0 and buckets[-1]["n"] == 2


@pytest.mark.path("plain", "apache")
def test_late_data_marked_dirty_is_rolled_up_again(conn: psycopg.Connection) -> None:
    pid = _setup(conn)
    start = NOW - timedelta(minutes=30)
    _insert(conn, pid, [(start, 1.0)])
    timeseries.refresh_rollups(conn, now=NOW)
    _insert(conn, pid, [(start + timedelta(seconds=30), 3.0)])  # arrives late (a spool replay)
    _insert(conn, pid + 1, [(start + timedelta(seconds=40), 9.0)])  # late too, but not marked: stays out
    mark_late(
        conn,
        [(start + timedelta(seconds=30), pid, 3.0, 0), (NOW, pid + 2, 1.0, 0)],
        late_before=NOW - timedelta(minutes=1),
    )
    assert conn.execute("SELECT point_ids FROM rollup_dirty").fetchone()[0] == [pid]
    timeseries.refresh_rollups(conn, now=NOW + timedelta(hours=1))  # the 11:00 hour is closed by then
    row = conn.execute(
        "SELECT value_avg, value_count FROM reading_1m WHERE point_id = %s AND bucket = %s", (pid, start)
    ).fetchone()
    assert row == (2.0, 2)
    hour = conn.execute("SELECT value_avg, value_count FROM reading_1h WHERE point_id = %s", (pid,)).fetchone()
    assert hour == (2.0, 2)
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM reading_1m WHERE point_id = %s", (pid + 1,)).fetchone()[0] == 0
