"""Store counter readings that do not come over MQTT (offline meters, imports, tests): deduplicated by (point,
time), daily partitions created as needed, the range marked dirty for the rollups and the energy refresh."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from core import storage
from core.db import execute
from core.timeseries import mark_dirty


def store_counter_readings(conn: psycopg.Connection, rows: Sequence[tuple[datetime, int, float]]) -> int:
    """Insert (time, point id, value) rows (existing (point, time) keep their value); returns the number stored."""
    if not rows:
        return 0
    storage.ensure_partitions(conn, [r[0] for r in rows])
    with conn.cursor() as cur:
        execute(
            conn,
            "CREATE TEMP TABLE IF NOT EXISTS _energy_in (time timestamptz, point_id integer, "
            "value double precision) ON COMMIT DROP",
        )
        execute(conn, "TRUNCATE _energy_in")
        with cur.copy("COPY _energy_in (time, point_id, value) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    stored = execute(
        conn,
        "INSERT INTO reading (time, point_id, value, quality) SELECT time, point_id, value, 0 "
        "FROM _energy_in ON CONFLICT DO NOTHING",
    ).rowcount
    mark_dirty(conn, min(r[0] for r in rows), max(r[0] for r in rows), sorted({r[1] for r in rows}))
    return stored
