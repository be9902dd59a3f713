"""The one query layer over readings, for TimescaleDB and plain PostgreSQL alike.

Readers use ``latest``, ``raw``, ``bucketed`` and ``counts``. Rollups ``reading_1m`` and ``reading_1h`` are continuous
aggregates under TimescaleDB (community build) and tables otherwise, where ``refresh_rollups`` fills them up to a
watermark; newer buckets are computed from raw rows at query time, as TimescaleDB's real-time aggregates do.

Late readings (spool replay, gateways forwarding old data) are recorded in ``rollup_dirty`` by the writer, and
``refresh_rollups`` recomputes the buckets they touched on both paths (``refresh_continuous_aggregate`` under
TimescaleDB): correctness never waits for TimescaleDB's background jobs.

Buckets: minute and hour buckets are UTC-aligned (the same as ``time_bucket`` without an origin); ``day``,
``month`` and ``year`` follow the calendar of a time zone (the point's site by default). Nothing depends on the
session's TimeZone. ``bucketed`` returns every bucket that overlaps [start, end), each aggregating all of its
readings (whole buckets, also at unaligned window edges, on both paths).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from core.db import execute, fetch_all

#: Buckets are closed this long after they end (late readings of a still-open bucket need no bookkeeping).
GRACE = timedelta(minutes=2)
#: A batch with readings older than this (relative to now) marks its range dirty for the rollups.
LATE_AFTER = timedelta(minutes=1)

_ROLLUPS = {"1m": ("reading_1m", "minute", timedelta(minutes=1)), "1h": ("reading_1h", "hour", timedelta(hours=1))}
#: Calendar buckets: (date_trunc unit, time_bucket interval).
CALENDAR = {"day": ("day", "1 day"), "month": ("month", "1 month"), "year": ("year", "1 year")}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

_AGG_RAW = """
    SELECT point_id, date_trunc(%(unit)s, time, 'UTC') AS bucket,
           min(value) AS value_min, max(value) AS value_max, avg(value) AS value_avg,
           (array_agg(value ORDER BY time DESC))[1] AS value_last, count(value) AS value_count
    FROM reading WHERE time >= %(start)s AND time < %(end)s {points}
    GROUP BY 1, 2"""

_AGG_1M = """
    SELECT point_id, date_trunc('hour', bucket, 'UTC') AS bucket,
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


def floor(when: datetime, width: timedelta) -> datetime:
    """The start of the UTC-aligned bucket of ``width`` holding ``when``."""
    return _EPOCH + ((when - _EPOCH) // width) * width


def continuous_aggregates(conn: psycopg.Connection) -> bool:
    """True when the rollups are TimescaleDB continuous aggregates (views), False for the plain tables."""
    row = execute(conn, "SELECT relkind FROM pg_class WHERE oid = to_regclass('reading_1m')").fetchone()
    return bool(row and row[0] == "v")


def mark_dirty(conn: psycopg.Connection, start: datetime, end: datetime, point_ids: list[int] | None) -> None:
    """Record that readings in [start, end] arrived late, for ``refresh_rollups`` (any writer may call it)."""
    execute(
        conn, "INSERT INTO rollup_dirty (from_time, to_time, point_ids) VALUES (%s, %s, %s)", (start, end, point_ids)
    )


def _watermark(conn: psycopg.Connection, rollup: str) -> datetime | None:
    row = execute(conn, "SELECT watermark FROM rollup_state WHERE rollup = %s", (rollup,)).fetchone()
    return row[0] if row else None


def _set_watermark(conn: psycopg.Connection, rollup: str, when: datetime) -> None:
    execute(
        conn,
        "INSERT INTO rollup_state (rollup, watermark) VALUES (%s, %s) ON CONFLICT (rollup) "
        "DO UPDATE SET watermark = excluded.watermark",
        (rollup, when),
    )


def _fill(
    conn: psycopg.Connection, name: str, start: datetime, end: datetime, point_ids: list[int] | None = None
) -> None:
    """Recompute the buckets of [start, end), for every point or only ``point_ids``."""
    table, unit, _ = _ROLLUPS[name]
    if name == "1m":
        select = _AGG_RAW.format(points="AND point_id = ANY(%(pids)s)" if point_ids else "")
    else:
        select = _AGG_1M.replace("GROUP BY", "AND point_id = ANY(%(pids)s) GROUP BY") if point_ids else _AGG_1M
    execute(
        conn, _UPSERT.format(table=table, select=select), {"unit": unit, "start": start, "end": end, "pids": point_ids}
    )


def refresh_rollups(conn: psycopg.Connection, *, now: datetime, retention_days: int | None = None) -> dict[str, Any]:
    """Bring the rollups up to date, late data included.

    Plain rollup tables: runs in its own transaction (a savepoint inside the caller's). Continuous aggregates:
    ``refresh_continuous_aggregate`` cannot run in a transaction block, so ``conn`` must be in autocommit mode.
    ``retention_days`` keeps refreshes away from raw data that retention dropped or is about to drop (a
    continuous aggregate refreshed over missing raw rows would lose its buckets).
    """
    if continuous_aggregates(conn):
        return _refresh_continuous(conn, now=now, retention_days=retention_days)
    with conn.transaction():
        return _refresh_tables(conn, now=now)


def _refresh_tables(conn: psycopg.Connection, *, now: datetime) -> dict[str, Any]:
    done: dict[str, Any] = {}
    dirty = execute(conn, "DELETE FROM rollup_dirty RETURNING from_time, to_time, point_ids").fetchall()
    for name in ("1m", "1h"):
        _table, _unit, width = _ROLLUPS[name]
        upto = floor(now - GRACE, width)
        mark = _watermark(conn, name)
        if mark is None:
            first = (
                execute(conn, "SELECT min(time) FROM reading").fetchone()[0]
                if name == "1m"
                else execute(conn, "SELECT min(bucket) FROM reading_1m").fetchone()[0]
            )
            mark = floor(first or upto, width)
        if name == "1h":
            upto = min(upto, floor(_watermark(conn, "1m") or upto, width))
        if upto > mark:
            _fill(conn, name, mark, upto)
            _set_watermark(conn, name, upto)
            done[name] = (mark, upto)
        else:
            _set_watermark(conn, name, mark)
        for from_time, to_time, point_ids in dirty:
            start = floor(from_time, width)
            end = min(to_time + width, mark)
            if start < end:
                _fill(conn, name, start, end, point_ids)
    done["dirty"] = len(dirty)
    return done


def _merged(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(windows):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _refresh_continuous(conn: psycopg.Connection, *, now: datetime, retention_days: int | None) -> dict[str, Any]:
    """Refresh the buckets that late readings touched, each continuous aggregate over closed buckets only.

    The part of a dirty range in a bucket that is not closed yet stays in ``rollup_dirty`` for the next run
    (real-time aggregation serves it meanwhile, unless a refresh policy materialized it, which then also
    processed TimescaleDB's own invalidations).
    """
    dirty = execute(conn, "SELECT id, from_time, to_time, rollup FROM rollup_dirty ORDER BY id").fetchall()
    if not dirty:
        return {"dirty": 0}
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE or not conn.autocommit:
        raise RuntimeError("refresh_rollups under TimescaleDB needs an autocommit connection outside a transaction")
    oldest = floor(now - timedelta(days=retention_days - 1), timedelta(hours=1)) if retention_days else None
    done: dict[str, Any] = {"dirty": len(dirty)}
    rest: dict[str, tuple[datetime, datetime]] = {}
    for name in ("1m", "1h"):
        table, _unit, width = _ROLLUPS[name]
        cap = floor(now - GRACE, width)
        mine = [(f, t) for _id, f, t, rollup in dirty if rollup in (None, name)]
        for lo, hi in _merged([(floor(f, width), floor(t, width) + width) for f, t in mine]):
            if oldest is not None:
                lo = max(lo, oldest)
            if lo < min(hi, cap):
                execute(
                    conn,
                    "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
                    (table, lo, min(hi, cap)),
                )
                done.setdefault(name, []).append((lo, min(hi, cap)))
            if hi > cap:  # the open bucket: again once it is closed
                start, end = rest.get(name, (max(lo, cap), hi))
                rest[name] = (min(start, max(lo, cap)), max(end, hi))
    with conn.transaction():
        execute(conn, "DELETE FROM rollup_dirty WHERE id = ANY(%s)", ([d[0] for d in dirty],))
        for name, (start, end) in rest.items():
            execute(
                conn,
                "INSERT INTO rollup_dirty (from_time, to_time, rollup) VALUES (%s, %s, %s)",
                (start, end - _MICRO, name),
            )
    done["kept"] = sorted(rest)
    return done


def latest(
    conn: psycopg.Connection,
    *,
    point_ids: list[int] | None = None,
    site: str | None = None,
    site_ids: list[int] | None = None,
    processes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The newest reading of every (or the given) active point: one index probe per point.

    ``site_ids`` and ``processes`` (area process types) narrow the points further (a caller's data scope).
    """
    cur = execute(
        conn,
        """
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
        ORDER BY p.id""",
        {"ids": point_ids, "site": site, "site_ids": site_ids, "procs": processes},
    )
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def counts(conn: psycopg.Connection, *, point_ids: list[int], start: datetime, end: datetime) -> dict[int, int]:
    """Readings with a value per point in [start, end) (points without any are left out): the whole hours from
    the hourly rollup, the partial hours at the edges (and, without TimescaleDB, what is newer than the rollup's
    watermark) from raw rows, so a month costs one row per point and hour instead of every reading."""
    if not point_ids or end <= start:
        return {}
    hour = timedelta(hours=1)
    h0, h1 = floor(start - _MICRO, hour) + hour, floor(end, hour)
    raw_ranges: list[tuple[datetime, datetime]] = []
    rollup: tuple[datetime, datetime] | None = None
    if h0 >= h1:
        raw_ranges.append((start, end))
    else:
        raw_ranges += [(start, h0), (h1, end)]
        if continuous_aggregates(conn):  # real-time aggregates: the view adds what is not materialized yet
            rollup = (h0, h1)
        else:
            mark = min(max(_watermark(conn, "1h") or h0, h0), h1)
            rollup = (h0, mark)
            raw_ranges.append((mark, h1))
    out: dict[int, int] = {}

    def add(found: list[tuple[int, int]]) -> None:
        for pid, n in found:
            out[pid] = out.get(pid, 0) + int(n or 0)

    if rollup is not None and rollup[0] < rollup[1]:
        add(
            execute(
                conn,
                "SELECT point_id, sum(value_count) FROM reading_1h WHERE point_id = ANY(%s) AND bucket >= %s "
                "AND bucket < %s GROUP BY 1",
                (point_ids, *rollup),
            ).fetchall()
        )
    for lo, hi in raw_ranges:
        if lo < hi:
            add(
                execute(
                    conn,
                    "SELECT point_id, count(value) FROM reading WHERE point_id = ANY(%s) AND time >= %s "
                    "AND time < %s GROUP BY 1",
                    (point_ids, lo, hi),
                ).fetchall()
            )
    return {pid: n for pid, n in out.items() if n}


def raw(
    conn: psycopg.Connection, *, point_id: int, start: datetime, end: datetime, limit: int = 10000
) -> list[tuple[datetime, float | None, int]]:
    """Raw readings of one point in [start, end), oldest first."""
    return execute(
        conn,
        "SELECT time, value, quality FROM reading WHERE point_id = %s AND time >= %s "
        "AND time < %s ORDER BY time LIMIT %s",
        (point_id, start, end, limit),
    ).fetchall()


def raw_export(
    conn: psycopg.Connection, *, point_ids: list[int], start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """Raw readings (``time``, ``point_id``, ``value``, ``quality``) of some points in [start, end), by point
    then time, at most ``limit`` rows."""
    return fetch_all(
        conn,
        """
        SELECT time, point_id, value, quality FROM reading
        WHERE point_id = ANY(%s) AND time >= %s AND time < %s ORDER BY point_id, time LIMIT %s""",
        (point_ids, start, end, limit),
    )


def _fine(conn: psycopg.Connection, rollup: str, continuous: bool) -> tuple[str, dict[str, Any]]:
    """SQL of one point's rollup rows in [%(first)s, %(stop)s) (columns bucket, value_min ... value_count)."""
    table, unit, _ = _ROLLUPS[rollup]
    columns = "bucket, value_min, value_max, value_avg, value_last, value_count"
    if continuous:  # real-time: TimescaleDB adds the not yet materialized buckets
        return (
            f"SELECT {columns} FROM {table} WHERE point_id = %(pid)s "  # noqa: S608 - fixed names
            "AND bucket >= %(first)s AND bucket < %(stop)s"
        ), {}
    recent = (
        _AGG_RAW.format(points="AND point_id = %(pid)s")
        .replace("time >= %(start)s AND time < %(end)s", "time >= greatest(%(first)s, %(mark)s) AND time < %(stop)s")
        .replace("%(unit)s", f"'{unit}'")
    )
    return (
        f"SELECT {columns} FROM {table} WHERE point_id = %(pid)s AND bucket >= %(first)s "  # noqa: S608
        f"AND bucket < least(%(stop)s, %(mark)s) UNION ALL SELECT {columns} FROM ({recent}) r"
    ), {"mark": _watermark(conn, rollup)}


def _period_start(at: datetime, unit: str, zone: ZoneInfo) -> datetime:
    """Local midnight starting the day/month/year that holds ``at`` (naive, local)."""
    day = at.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if unit in ("month", "year"):
        day = day.replace(day=1)
    return day.replace(month=1) if unit == "year" else day


def _next_local(day: datetime, unit: str) -> datetime:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "month":
        return day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)
    return day.replace(year=day.year + 1)


def _calendar(start: datetime, end: datetime, unit: str, zone: ZoneInfo) -> tuple[list[datetime], datetime]:
    """Starts (UTC instants) of the local periods overlapping [start, end), and the end of the last one."""
    day = _period_start(start, unit, zone)
    starts = []
    while (at := day.replace(tzinfo=zone).astimezone(UTC)) < end:
        starts.append(at)
        day = _next_local(day, unit)
    return starts, at


def site_timezone(conn: psycopg.Connection, point_id: int) -> str:
    """The time zone of the site a point belongs to."""
    row = execute(
        conn,
        "SELECT s.timezone FROM point p JOIN device d ON d.id = p.device_id "
        "JOIN site s ON s.id = d.site_id WHERE p.id = %s",
        (point_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"no point {point_id}")
    return row[0]


def bucketed(
    conn: psycopg.Connection,
    *,
    point_id: int,
    start: datetime,
    end: datetime,
    bucket: str = "1m",
    tz: str | None = None,
) -> list[dict[str, Any]]:
    """Aggregates of one point per bucket, for every bucket that overlaps [start, end), oldest first.

    Each bucket aggregates all of its readings, also the first and last bucket when ``start``/``end`` fall inside
    them; a bucket without readings comes back with nulls and ``n`` 0 (a gap). ``bucket``: ``1m``, ``1h`` (UTC
    aligned), or ``day``/``month``/``year`` of the calendar in ``tz`` (default: the point's site time zone), made
    from the hourly rollup (the minute rollup in zones whose periods do not start on a UTC hour, e.g. +05:30).
    Keys: ``bucket`` (start, UTC), ``value_min``, ``value_max``, ``value_avg``, ``value_last``, ``n``.
    """
    continuous = continuous_aggregates(conn)
    params: dict[str, Any] = {"pid": point_id}
    if bucket in _ROLLUPS:
        width = _ROLLUPS[bucket][2]
        first, stop = floor(start, width), floor(end - _MICRO, width) + width
        starts = [first + i * width for i in range((stop - first) // width)]
        query, extra = _fine(conn, bucket, continuous)
    elif bucket in CALENDAR:
        zone_name = tz or site_timezone(conn, point_id)
        unit, interval = CALENDAR[bucket]
        starts, stop = _calendar(start, end, unit, ZoneInfo(zone_name))
        first = starts[0]
        rollup = "1h" if all(s.minute == 0 and s.second == 0 for s in [*starts, stop]) else "1m"
        fine, extra = _fine(conn, rollup, continuous)
        local = (
            "time_bucket(%(interval)s::interval, f.bucket, timezone => %(tz)s)"
            if continuous
            else "date_trunc(%(unit)s, f.bucket, %(tz)s)"
        )
        query = f"""
            SELECT {local} AS bucket, min(f.value_min) AS value_min, max(f.value_max) AS value_max,
                   sum(f.value_avg * f.value_count) / nullif(sum(f.value_count), 0) AS value_avg,
                   (array_agg(f.value_last ORDER BY f.bucket DESC))[1] AS value_last,
                   sum(f.value_count) AS value_count
            FROM ({fine}) f GROUP BY 1"""
        params.update(tz=zone_name, unit=unit, interval=interval)
    else:
        raise ValueError(f"unknown bucket {bucket!r}")
    params.update(first=first, stop=stop, **extra)
    if "mark" in params and params["mark"] is None:
        params["mark"] = first  # nothing rolled up yet: everything from raw rows
    cols = "bucket, value_min, value_max, value_avg, value_last, value_count"
    found = {row[0]: row[1:] for row in execute(conn, f"SELECT {cols} FROM ({query}) q", params).fetchall()}  # noqa: S608 - fixed SQL
    out = []
    for at in starts:
        vmin, vmax, vavg, vlast, n = found.get(at, (None, None, None, None, 0))
        out.append(
            {
                "bucket": at,
                "value_min": vmin,
                "value_max": vmax,
                "value_avg": vavg,
                "value_last": vlast,
                "n": int(n or 0),
            }
        )
    return out
