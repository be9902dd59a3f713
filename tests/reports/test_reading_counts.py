"""``core.timeseries.counts`` (what the device-health report reads): readings with a value per point, the whole
hours from the hourly rollup and the partial hours at the edges from raw rows, equal to counting the raw rows; once
rolled up, the raw rows of a whole hour are not read again (deleting them does not change the count)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from core import timeseries
from tests.energy.world import T0, World

pytestmark = pytest.mark.db


def _raw(conn: psycopg.Connection, point_id: int, lo, hi) -> int:
    return conn.execute(
        "SELECT count(value) FROM reading WHERE point_id = %s AND time >= %s AND time < %s", (point_id, lo, hi)
    ).fetchone()[0]


def test_counts_read_the_hourly_rollup_and_the_edges(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        w = World(conn)
        point = w.point["e-coat"]
        with conn.cursor() as cur:  # one reading a minute 10:30-15:30 UTC, the 12:xx ones every tenth without value
            cur.executemany(
                "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, 0)",
                [
                    (T0 + timedelta(hours=10, minutes=30 + m), point, None if m % 10 == 0 and 90 <= m < 150 else m)
                    for m in range(300)
                ],
            )
        timeseries.refresh_rollups(conn, now=T0 + timedelta(days=1))
        windows = [
            (T0 + timedelta(hours=10, minutes=45), T0 + timedelta(hours=15, minutes=10)),  # partial hours both ends
            (T0 + timedelta(hours=11), T0 + timedelta(hours=14)),  # whole hours only
            (T0 + timedelta(hours=12, minutes=5), T0 + timedelta(hours=12, minutes=50)),  # inside one hour
            (T0, T0 + timedelta(days=1)),
        ]
        for lo, hi in windows:
            assert timeseries.counts(conn, point_ids=[point], start=lo, end=hi) == {point: _raw(conn, point, lo, hi)}
        assert timeseries.counts(conn, point_ids=[point], start=T0, end=T0 + timedelta(hours=1)) == {}
        before = timeseries.counts(conn, point_ids=[point], start=windows[0][0], end=windows[0][1])[point]
        conn.execute(
            "DELETE FROM reading WHERE point_id = %s AND time >= %s AND time < %s",
            (point, T0 + timedelta(hours=12), T0 + timedelta(hours=13)),
        )
        assert _raw(conn, point, *windows[0]) == before - 54  # 60 minutes, 6 of them without value
        assert timeseries.counts(conn, point_ids=[point], start=windows[0][0], end=windows[0][1]) == {point: before}
