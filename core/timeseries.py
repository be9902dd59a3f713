"""The one query layer over readings, for TimescaleDB and plain PostgreSQL alike.

Readers use ``latest``, ``raw`` and ``bucketed``. Rollups ``reading_1m`` and ``reading_1h`` are continuous
aggregates under TimescaleDB and tables under plain PostgreSQL, where ``refresh_rollups`` fills them up to a
watermark and re-computes ranges that late data (spool replay, gateways forwarding old data) made dirty;
newer buckets are computed from raw rows at query time, as TimescaleDB's real-time aggregates do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from core.db import execute, timescaledb_enabled

#: Buckets are closed this long after they end (late readings of a still-open bucket need no bookkeeping).
GRACE = timedelta(minutes=2)
#: A batch with readings older than this (relative to now) marks its range dirty for the rollups.
LATE_AFTER = timedelta(minutes=1)

_ROLLUPS = {"1m": ("reading_1m", "minute", timedelta(minutes=1)), "1h": ("reading_1h", "hour", timedelta(hours=1))}

_AGG_RAW = """
    SELECT point_id, date_trunc(%(unit)s, time) AS bucket,
           min(value) AS value_min, max(value) AS value_max, avg(value) AS value_avg,
           (array_agg(value ORDER BY time DESC))[1] AS value_last, count(value) AS value_count
    FROM reading WHERE time >= %(start)s AND time < %(end)s {points}
    GROUP BY 1, 2"""

_AGG_1M = """
    SELECT point_id, date_trunc('hour', bucket) AS bucket,
           min(value_min), max(value_max),
           sum(value_avg * value_count) / nullif(sum(value_count), 0),
           (array_agg(value_last ORDER BY bucket DESC))[1], sum(value_count)
    FROM reading_1m WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1, 2"""

_UPSERT = """
    INSERT INTO {table} (point_id, bucket, value_min, value_max, value_avg, value_last, value_count)
    {select}
    ON CONFLICT (point_id, bucket) DO UPDATE SET
        value_min = excluded.value_min, value_max = excluded.value_max, value_avg = excluded.value_avg,
        value_last = excluded.value_last, value_count = excluded.value_count"""


def _watermark(conn: psycopg.Connection, rollup: str) -> datetime | None:
    row = execute(conn, "SELECT watermark FROM rollup_state WHERE rollup = %s", (rollup,)).fetchone()
    return row[0] if row else None


def _set_watermark(conn: psycopg.Connection, rollup: str, when: datetime) -> None:
    execute(conn, "INSERT INTO rollup_state (rollup, watermark) VALUES (%s, %s) ON CONFLICT (rollup) "
                 "DO UPDATE SET watermark = excluded.watermark", (rollup, when))


def _fill(conn: psycopg.Connection, name: str, start: datetime, end: datetime,
          point_ids: list[int] | None = None) -> None:
    """Recompute the buckets of [start, end), for every point or only ``point_ids``."""
    table, unit, _ = _ROLLUPS[name]
    if name == "1m":
        select = _AGG_RAW.format(points="AND point_id = ANY(%(pids)s)" if point_ids else "")
    else:
        select = _AGG_1M.replace("GROUP BY", "AND point_id = ANY(%(pids)s) GROUP BY") if point_ids else _AGG_1M
    execute(conn, _UPSERT.format(table=table, select=select),
            {"unit": unit, "start": start, "end": end, "pids": point_ids})


def refresh_rollups(conn: psycopg.Connection, *, now: datetime) -> dict[str, Any]:
    """Bring the plain-PostgreSQL rollups up to date (no-op under TimescaleDB); run inside a transaction."""
    if timescaledb_enabled(conn):
        return {"timescaledb": True}
    done: dict[str, Any] = {}
    dirty = execute(conn, "DELETE FROM rollup_dirty RETURNING from_time, to_time, point_ids").fetchall()
    for name in ("1m", "1h"):
        table, unit, width = _ROLLUPS[name]
        upto = execute(conn, "SELECT date_trunc(%s, %s::timestamptz)", (unit, now - GRACE)).fetchone()[0]
        mark = _watermark(conn, name)
        if mark is None:
            first = execute(conn, "SELECT min(time) FROM reading").fetchone()[0] if name == "1m" else \
                execute(conn, "SELECT min(bucket) FROM reading_1m").fetchone()[0]
            mark = execute(conn, "SELECT date_trunc(%s, %s::timestamptz)", (unit, first or upto)).fetchone()[0]
        if name == "1h":
            upto = min(upto, execute(conn, "SELECT date_trunc('hour', %s::timestamptz)",
                                          (_watermark(conn, "1m") or upto,)).fetchone()[0])
        if upto > mark:
            _fill(conn, name, mark, upto)
            _set_watermark(conn, name, upto)
            done[name] = (mark, upto)
        else:
            _set_watermark(conn, name, mark)
        for from_time, to_time, point_ids in dirty:
            start = execute(conn, "SELECT date_trunc(%s, %s::timestamptz)", (unit, from_time)).fetchone()[0]
            end = min(to_time + width, mark)
            if start < end:
                _fill(conn, name, start, end, point_ids)
    done["dirty"] = len(dirty)
    return done


def latest(conn: psycopg.Connection, *, point_ids: list[int] | None = None, site: str | None = None,
           site_ids: list[int] | None = None, processes: list[str] | None = None) -> list[dict[str, Any]]:
    """The newest reading of every (or the given) active point: one index probe per point.

    ``site_ids`` and ``processes`` (area process types) narrow the points further (a caller's data scope).
    """
    cur = execute(conn, """
        SELECT p.id AS point_id, s.code AS site, d.code AS device, p.key, p.unit,
               r.time, r.value, r.quality
        FROM point p JOIN device d ON d.id = p.device_id JOIN site s ON s.id = d.site_id
        JOIN area a ON a.id = d.area_id
        CROSS JOIN LATERAL (SELECT time, value, quality FROM reading
                            WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r
        WHERE p.retired_at IS NULL AND d.retired_at IS NULL
          AND (%(ids)s::int[] IS NULL OR p.id = ANY(%(ids)s))
          AND (%(site)s::text IS NULL OR s.code = %(site)s)
          AND (%(site_ids)s::int[] IS NULL OR s.id = ANY(%(site_ids)s))
          AND (%(procs)s::text[] IS NULL OR a.process_type = ANY(%(procs)s))
        ORDER BY p.id""", {"ids": point_ids, "site": site, "site_ids": site_ids, "procs": processes})
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def raw(conn: psycopg.Connection, *, point_id: int, start: datetime, end: datetime,
        limit: int = 10000) -> list[tuple[datetime, float | None, int]]:
    """Raw readings of one point in [start, end), oldest first."""
    return execute(conn, "SELECT time, value, quality FROM reading WHERE point_id = %s AND time >= %s "
                        "AND time < %s ORDER BY time LIMIT %s", (point_id, start, end, limit)).fetchall()


def bucketed(conn: psycopg.Connection, *, point_id: int, start: datetime, end: datetime,
             bucket: str = "1m") -> list[dict[str, Any]]:
    """Aggregates per bucket in [start, end); a bucket without readings is returned with nulls (a gap)."""
    table, unit, width = _ROLLUPS[bucket]
    params = {"pid": point_id, "start": start, "end": end, "unit": unit, "width": width}
    if timescaledb_enabled(conn):
        stored = f"SELECT * FROM {table} WHERE point_id = %(pid)s AND bucket >= %(start)s AND bucket < %(end)s"
    else:
        params["mark"] = _watermark(conn, bucket) or start
        recent = _AGG_RAW.format(points="AND point_id = %(pid)s").replace(
            "time >= %(start)s", "time >= greatest(%(start)s, %(mark)s)")
        stored = (f"SELECT point_id, bucket, value_min, value_max, value_avg, value_last, value_count "
                  f"FROM {table} WHERE point_id = %(pid)s AND bucket >= %(start)s "
                  f"AND bucket < least(%(end)s, %(mark)s) UNION ALL {recent}")
    cur = execute(conn, f"""
        SELECT g.bucket, a.value_min, a.value_max, a.value_avg, a.value_last, coalesce(a.value_count, 0) AS n
        FROM generate_series(date_trunc(%(unit)s, %(start)s::timestamptz), %(end)s::timestamptz - interval
                             '1 microsecond', %(width)s) AS g(bucket)
        LEFT JOIN ({stored}) a ON a.bucket = g.bucket
        ORDER BY g.bucket""", params)  # noqa: S608 - table names are fixed
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
