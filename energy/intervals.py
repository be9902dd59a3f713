"""Meter counters -> energy per 15-minute interval (``energy_interval``) and per site-local day (``energy_day``).

The counter is read as a piecewise-linear cumulative curve through its readings; the energy of an interval is
the rise of that curve across it, so the intervals of any stretch add up to the counter difference exactly
(energy is conserved). Counter decreases never become negative energy: a drop near the instrument span is a
rollover (the counter wrapped at ``valid_max``), another drop a reset (the counter restarted from zero), and a
replacement recorded by the energy manager bridges the old meter's final and the new meter's first reading.
A rise far beyond the meter's nominal rate (``point.nominal`` per hour, times ``JUMP_FACTOR``) is a jump: it is
recorded, and the intervals it spans are ``missing`` with no energy rather than a giant spike.

Quality: ``measured`` when readings at most ``GAP`` apart cover the interval; ``estimated`` when the interval
lies in a longer gap that a later reading closed (the gap's energy is distributed by
``energy.gapfill.distribute``); ``missing`` when no reading closes it yet (after the newest reading) or it
precedes the first reading, or a jump spans it.

``refresh`` is incremental: per meter it recomputes from the interval of the last reading it used before the
earliest new or late reading (late ranges come from ``energy_dirty``, which a trigger fills from the rollups'
``rollup_dirty``), so out-of-order and duplicate readings are handled by recomputation, never by patching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg

from core.db import execute
from energy import copybin, gapfill
from energy.tariffs import BANDS, Schedule, schedule_for
from energy.units import factor

_LOGGER = logging.getLogger(__name__)

SLOT = 900  # seconds in an interval
GAP = timedelta(minutes=30)  # readings further apart than this leave a gap (estimated intervals)
JUMP_FACTOR = 20.0  # a rise above this many times the nominal hourly rate is a jump
GRACE = timedelta(minutes=2)  # an interval is closed this long after it ends
TRAILING_MAX = timedelta(days=7)  # missing intervals written after a silent meter's last reading, at most
HISTORY = timedelta(days=28)  # the meter's own past intervals handed to gap filling
QUALITY = ("measured", "estimated", "missing")
_MEASURED, _ESTIMATED, _MISSING = 0, 1, 2

Filler = Callable[..., pd.Series]


@dataclass(frozen=True)
class Meter:
    id: int
    code: str
    site_id: int
    timezone: str
    medium: str
    point_id: int
    factor: float  # point unit -> ledger unit
    span: float | None  # counter wraps above this (point.valid_max)
    nominal_per_h: float | None  # typical rise per hour (point.nominal), point units


@dataclass
class Result:
    """Intervals of one meter: starts (epoch seconds), energy (ledger unit), quality index; detected events."""

    starts: np.ndarray
    quantity: np.ndarray
    quality: np.ndarray
    events: list[tuple[float, str, float | None, float | None, float]] = field(default_factory=list)


def _floor(seconds: float) -> int:
    return int(seconds // SLOT) * SLOT


def counter_deltas(
    times: np.ndarray,
    values: np.ndarray,
    *,
    span: float | None = None,
    nominal_per_h: float | None = None,
    replacements: list[tuple[float, float, float]] = (),
) -> tuple[np.ndarray, np.ndarray, list]:
    """Rise of the counter between consecutive readings (>= 0, counter units) and a pair status.

    Returns (deltas, jump mask, events); ``times`` in epoch seconds, ascending and unique. ``replacements``:
    (time, old meter's final reading, new meter's first reading).
    """
    deltas = np.diff(values).astype(float)
    dt = np.diff(times)
    fixed = np.zeros(len(deltas), dtype=bool)
    events: list[tuple[float, str, float | None, float | None, float]] = []
    for when, before, after in replacements:
        j = int(np.searchsorted(times, when, side="left")) - 1  # times[j] < when <= times[j + 1]
        if 0 <= j < len(deltas):
            deltas[j] = max(0.0, before - values[j]) + max(0.0, values[j + 1] - after)
            fixed[j] = True
            events.append((when, "replacement", before, after, deltas[j]))
    for j in np.flatnonzero((deltas < 0) & ~fixed):
        prev, cur = float(values[j]), float(values[j + 1])
        wrapped = (span - prev + cur) if span is not None and np.isfinite(span) else None
        if wrapped is not None and 0 <= wrapped <= 0.1 * span and prev >= 0.5 * span:
            deltas[j] = wrapped
            events.append((float(times[j + 1]), "rollover", prev, cur, wrapped))
        else:  # the counter restarted from zero: what it shows was counted since
            deltas[j] = max(0.0, cur)
            events.append((float(times[j + 1]), "reset", prev, cur, deltas[j]))
        fixed[j] = True
    jump = np.zeros(len(deltas), dtype=bool)
    if nominal_per_h is not None and nominal_per_h > 0:
        limit = nominal_per_h * JUMP_FACTOR * np.maximum(dt / 3600.0, SLOT / 3600.0)
        jump = (deltas > limit) & ~fixed
        for j in np.flatnonzero(jump):
            events.append((float(times[j + 1]), "jump", float(values[j]), float(values[j + 1]), 0.0))
        deltas[jump] = 0.0
    return deltas, jump, events


def compute(
    times: np.ndarray,
    values: np.ndarray,
    *,
    end: int,
    span: float | None = None,
    nominal_per_h: float | None = None,
    replacements: list[tuple[float, float, float]] = (),
    gap_s: float = GAP.total_seconds(),
    fill: Filler = gapfill.distribute,
    history: pd.Series | None = None,
    siblings: Mapping[str, pd.Series] | None = None,
) -> Result:
    """Interval energy from one counter's readings (epoch seconds, counter units), for the intervals from the one
    holding the first reading up to ``end`` (epoch seconds, exclusive, aligned)."""
    start = _floor(times[0])
    end = max(end, -(-int(np.ceil(times[-1])) // SLOT) * SLOT, start + SLOT)
    bounds = np.arange(start, end + SLOT, SLOT, dtype=np.int64)
    n = len(bounds) - 1
    quality = np.full(n, _MEASURED, dtype=np.int8)
    if len(times) < 2:
        return Result(bounds[:-1], np.zeros(n), np.full(n, _MISSING, dtype=np.int8))
    deltas, jump, events = counter_deltas(
        times, values, span=span, nominal_per_h=nominal_per_h, replacements=replacements
    )
    cum = np.concatenate(([0.0], np.cumsum(deltas)))
    qty = np.diff(np.interp(bounds, times, cum))
    dt = np.diff(times)
    gaps = np.flatnonzero((dt > gap_s) | jump)
    if len(gaps):
        history = _with_own(history, bounds, qty, times, gaps, start)
    for j in gaps:
        t0, t1 = times[j], times[j + 1]
        touched = slice(int((t0 - start) // SLOT), int(-(-(t1 - start) // SLOT)))
        if jump[j]:
            quality[touched] = _MISSING
            continue
        quality[touched] = np.maximum(quality[touched], _ESTIMATED)
        lo, hi = int(-(-(t0 - start) // SLOT)), int((t1 - start) // SLOT)  # slots wholly inside the gap
        if hi > lo:
            amount = float(qty[lo:hi].sum())
            slots = pd.DatetimeIndex(pd.to_datetime(bounds[lo:hi], unit="s", utc=True))
            more = {"siblings": siblings} if siblings else {}
            filled = fill(max(0.0, amount), slots, history=history, **more)
            qty[lo:hi] = np.maximum(filled.to_numpy(dtype=float), 0.0)
    covered = (bounds[:-1] >= times[0]) & (bounds[1:] <= times[-1])
    quality[~covered] = _MISSING
    return Result(bounds[:-1], np.maximum(qty, 0.0), quality, events)


def _with_own(
    history: pd.Series | None, bounds: np.ndarray, qty: np.ndarray, times: np.ndarray, gaps: np.ndarray, start: int
) -> pd.Series:
    """``history`` (counter units) extended by this computation's own intervals outside every gap and jump, so that
    a gap inside a long recomputation (a backfill, late data) is filled from the intervals around it too."""
    ok = (bounds[:-1] >= times[0]) & (bounds[1:] <= times[-1])
    for j in gaps:
        ok[int((times[j] - start) // SLOT) : int(-(-(times[j + 1] - start) // SLOT))] = False
    own = pd.Series(qty[ok], index=pd.DatetimeIndex(pd.to_datetime(bounds[:-1][ok], unit="s", utc=True)))
    if history is None or history.empty:
        return own
    past = history.copy()
    past.index = pd.DatetimeIndex(past.index).tz_convert("UTC")
    return pd.concat([past[~past.index.isin(own.index)], own]).sort_index()


# --- database ---------------------------------------------------------------------------------------------


def load_meters(
    conn: psycopg.Connection, *, site: str | None = None, meter_ids: list[int] | None = None
) -> list[Meter]:
    """The active counter meters (not virtual), optionally of one site or only ``meter_ids``."""
    out = []
    for row in execute(
        conn,
        """
            SELECT m.id, m.code, s.id, s.timezone, m.medium, p.id, p.unit, p.valid_max, p.nominal
            FROM meter m JOIN site s ON s.id = m.site_id JOIN point p ON p.id = m.point_id
            WHERE m.retired_at IS NULL AND (%(site)s::text IS NULL OR s.code = %(site)s)
              AND (%(ids)s::int[] IS NULL OR m.id = ANY(%(ids)s))
            ORDER BY m.id""",
        {"site": site, "ids": meter_ids},
    ).fetchall():
        mid, code, site_id, tz, medium, pid, unit, vmax, nominal = row
        try:
            f = factor(medium, unit)
        except ValueError as exc:
            _LOGGER.error("meter %s skipped: %s", code, exc)
            continue
        out.append(Meter(mid, code, site_id, tz, medium, pid, f, vmax, nominal))
    return out


def _one(conn: psycopg.Connection, sql: str, params: tuple) -> datetime | None:
    row = execute(conn, sql, params).fetchone()
    return row[0] if row else None


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class RefreshSummary:
    meters: int = 0
    readings: int = 0
    intervals: int = 0
    events: int = 0
    dirty: int = 0
    production_days: int = 0
    late: list = field(default_factory=list)  # the late ranges read (for the output counters)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "late"}


def refresh(
    conn: psycopg.Connection,
    *,
    now: datetime,
    site: str | None = None,
    meter_ids: list[int] | None = None,
    fill: Filler = gapfill.distribute,
) -> RefreshSummary:
    """Bring the intervals and days of every meter (of ``site``, or ``meter_ids``) up to ``now``, late readings
    included; runs in the caller's transaction."""
    summary = RefreshSummary()
    # a partial refresh (one site or some meters) reads the late ranges and leaves them for the full one
    full = site is None and meter_ids is None
    dirty = execute(
        conn,
        "DELETE FROM energy_dirty RETURNING from_time, point_ids"
        if full
        else "SELECT from_time, point_ids FROM energy_dirty",
    ).fetchall()
    summary.dirty = len(dirty)
    schedules: dict[tuple[int, str], Schedule] = {}
    for meter in load_meters(conn, site=site, meter_ids=meter_ids):
        state = _one(conn, "SELECT reading_to FROM energy_state WHERE meter_id = %s", (meter.id,))
        late = [f for f, pids in dirty if pids is None or meter.point_id in pids]
        since = min([state, *late]) if state is not None and late else state
        key = (meter.site_id, meter.medium)
        if key not in schedules:
            schedules[key] = schedule_for(
                conn=conn, site_id=meter.site_id, medium=meter.medium, timezone=meter.timezone
            )
        done = refresh_meter(conn, meter, since=since, now=now, schedule=schedules[key], fill=fill, fresh=state is None)
        if done is not None:
            summary.meters += 1
            summary.readings += done[0]
            summary.intervals += done[1]
            summary.events += done[2]
    summary.late = dirty
    return summary


def refresh_meter(
    conn: psycopg.Connection,
    meter: Meter,
    *,
    since: datetime | None,
    now: datetime,
    schedule: Schedule,
    fill: Filler = gapfill.distribute,
    fresh: bool = False,
) -> tuple[int, int, int] | None:
    """Recompute one meter's intervals from the interval of its last reading before ``since`` (everything when
    None); returns (readings used, intervals written, events) or None when nothing changed."""
    pid = meter.point_id
    newest = _one(
        conn, "SELECT time FROM reading WHERE point_id = %s AND value IS NOT NULL ORDER BY time DESC LIMIT 1", (pid,)
    )
    if newest is None:
        return None
    horizon = now - GRACE
    if since is not None and newest <= since and not fresh:
        _extend_missing(conn, meter, since=since, horizon=horizon)
        return None
    base = None
    if since is not None:
        prev = _one(
            conn,
            "SELECT time FROM reading WHERE point_id = %s AND time < %s AND value IS NOT NULL "
            "ORDER BY time DESC LIMIT 1",
            (pid, since),
        )
        base = _floor(_epoch(prev if prev is not None else since))
    anchor = (
        None
        if base is None
        else _one(
            conn,
            "SELECT time FROM reading WHERE point_id = %s AND time < %s AND value IS NOT NULL "
            "ORDER BY time DESC LIMIT 1",
            (pid, _at(base)),
        )
    )
    # one row: times and values as two big-endian binary arrays (*_send), read by numpy without Python per row;
    # the rows come in index order from the subquery (PostgreSQL keeps it; checked below, sorted if not)
    blob_t, blob_v = execute(
        conn,
        """
        SELECT string_agg(timestamptz_send(time), ''::bytea), string_agg(float8send(value), ''::bytea)
        FROM (SELECT time, value FROM reading
              WHERE point_id = %s AND value IS NOT NULL AND time >= %s ORDER BY time) r""",
        (pid, anchor or datetime(1970, 1, 1, tzinfo=UTC)),
    ).fetchone()
    # timestamptz_send: int64 microseconds since 2000-01-01 UTC
    times = np.frombuffer(blob_t or b"", dtype=">i8") / 1e6 + 946_684_800.0
    values = np.frombuffer(blob_v or b"", dtype=">f8").astype(float)
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    if len(times) == 0:
        return None
    replacements = [
        (_epoch(t), b, a)
        for t, b, a in execute(
            conn,
            """
        SELECT time, before, after FROM meter_event WHERE meter_id = %s AND kind = 'replacement'
          AND time > %s ORDER BY time""",
            (meter.id, _at(times[0])),
        ).fetchall()
    ]
    end = _floor(_epoch(min(horizon, newest + TRAILING_MAX)))
    history = siblings = None
    if len(times) > 1 and np.any(np.diff(times) > GAP.total_seconds()):
        history = _history(conn, meter.id, _at(times[0])) / meter.factor  # the counter's units, as ``compute``
        siblings = _siblings(conn, meter.id, _at(times[0]) - gapfill.SIBLING_WINDOW, _at(times[-1]))
    result = compute(
        times,
        values,
        end=end,
        span=meter.span,
        nominal_per_h=meter.nominal_per_h,
        replacements=replacements,
        fill=fill,
        history=history,
        siblings=siblings,
    )
    keep = result.starts >= (base if base is not None else result.starts[0])
    starts, qty, quality = result.starts[keep], result.quantity[keep] * meter.factor, result.quality[keep]
    index = pd.DatetimeIndex(pd.to_datetime(starts, unit="s", utc=True))
    band, price = schedule.price(index)
    _write(conn, meter, index, qty, quality, band, price)
    for when, kind, before, after, delta in result.events:
        execute(
            conn,
            """
            INSERT INTO meter_event (meter_id, time, kind, before, after, delta_used)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (meter_id, time, kind) DO UPDATE SET delta_used = excluded.delta_used""",
            (meter.id, _at(when), kind, before, after, delta * meter.factor),
        )
    execute(
        conn,
        "INSERT INTO energy_state (meter_id, reading_to) VALUES (%s, %s) ON CONFLICT (meter_id) "
        "DO UPDATE SET reading_to = excluded.reading_to",
        (meter.id, newest),
    )
    return len(times), len(starts), len(result.events)


def _history(conn: psycopg.Connection, meter_id: int, before: datetime) -> pd.Series:
    rows = execute(
        conn,
        "SELECT start, quantity FROM energy_interval WHERE meter_id = %s AND start >= %s "
        "AND start < %s AND quality = 'measured' ORDER BY start",
        (meter_id, before - HISTORY, before),
    ).fetchall()
    if not rows:
        return pd.Series(dtype=float)
    return pd.Series([r[1] for r in rows], index=pd.DatetimeIndex([r[0] for r in rows]))


def _siblings(conn: psycopg.Connection, meter_id: int, start: datetime, end: datetime) -> dict[str, pd.Series]:
    """Measured intervals in [start, end) of the counter meters of the same medium in the same area or under the
    same parent (``gapfill.distribute`` uses one that covers the gap and tracked this meter before it). A sibling
    refreshed later in the same pass counts from the next gap on: its intervals are read as they are now."""
    rows = execute(
        conn,
        """
        SELECT s.code, i.start, i.quantity FROM meter m
        JOIN meter s ON s.site_id = m.site_id AND s.medium = m.medium AND s.id <> m.id AND s.retired_at IS NULL
             AND s.point_id IS NOT NULL AND (s.area_id = m.area_id OR s.parent_id = m.parent_id)
        JOIN energy_interval i ON i.meter_id = s.id AND i.start >= %s AND i.start < %s AND i.quality = 'measured'
        WHERE m.id = %s ORDER BY s.code, i.start""",
        (start, end, meter_id),
    ).fetchall()
    grouped: dict[str, tuple[list, list]] = {}
    for code, at, quantity in rows:
        starts, values = grouped.setdefault(code, ([], []))
        starts.append(at)
        values.append(float(quantity))
    return {code: pd.Series(v, index=pd.DatetimeIndex(t)) for code, (t, v) in grouped.items()}


def _write(
    conn: psycopg.Connection,
    meter: Meter,
    index: pd.DatetimeIndex,
    qty: np.ndarray,
    quality: np.ndarray,
    band: np.ndarray,
    price: np.ndarray,
) -> None:
    """Replace the meter's intervals from ``index[0]`` on, and its days from that local day on."""
    if len(index) == 0:
        return
    first = index[0].to_pydatetime()
    execute(conn, "DELETE FROM energy_interval WHERE meter_id = %s AND start >= %s", (meter.id, first))
    body = copybin.interval_rows(meter.id, index.as_unit("s").asi8, qty, quality, QUALITY, band, BANDS, qty * price)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY energy_interval (meter_id, start, quantity, quality, band, cost_cny) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.write(copybin.HEADER + body + copybin.TRAILER)
    _write_days(conn, meter, index, qty, quality, band, qty * price)


_DAY_COLUMNS = (
    "meter_id, day, quantity, cost_cny, q_critical, q_peak, q_flat, q_valley, max_15min, measured, estimated, missing"
)


def _write_days(
    conn: psycopg.Connection,
    meter: Meter,
    index: pd.DatetimeIndex,
    qty: np.ndarray,
    quality: np.ndarray,
    band: np.ndarray,
    cost: np.ndarray,
) -> None:
    """The days of freshly written intervals: the first local day (which may hold older intervals too) from the
    table, the following ones summed here (numpy, no second pass over the intervals), then the months."""
    day = index.tz_convert(meter.timezone).tz_localize(None).to_numpy().astype("datetime64[D]")
    first_day = day[0]
    refresh_days(conn, meter_id=meter.id, timezone=meter.timezone, since=index[0].to_pydatetime(), only_day=True)
    execute(conn, "DELETE FROM energy_day WHERE meter_id = %s AND day > %s", (meter.id, first_day.item()))
    rest = day > first_day
    if rest.any():
        d, q, k, b, c = day[rest], qty[rest], quality[rest], band[rest], cost[rest]
        days, inv = np.unique(d, return_inverse=True)
        n = len(days)
        starts = np.r_[0, np.flatnonzero(np.diff(inv)) + 1]
        priced = ~np.isnan(c)
        sums = [np.bincount(inv, q, n), np.bincount(inv, np.where(priced, c, 0.0), n)]
        has_cost = np.bincount(inv, priced, n) > 0
        by_band = [np.bincount(inv, np.where(b == i, q, 0.0), n) for i in range(len(BANDS))]
        peak = np.maximum.reduceat(q, starts)
        counts = [np.bincount(inv, k == i, n).astype(int) for i in range(len(QUALITY))]
        with conn.cursor() as cur, cur.copy(f"COPY energy_day ({_DAY_COLUMNS}) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row(
                    (
                        meter.id,
                        days[i].item(),
                        float(sums[0][i]),
                        float(sums[1][i]) if has_cost[i] else None,
                        *(float(x[i]) for x in by_band),
                        float(peak[i]),
                        *(int(x[i]) for x in counts),
                    )
                )
    _refresh_months(conn, meter_id=meter.id, timezone=meter.timezone, since=index[0].to_pydatetime())


def refresh_days(
    conn: psycopg.Connection, *, meter_id: int, timezone: str, since: datetime, only_day: bool = False
) -> None:
    """Recompute ``energy_day`` of a meter from the local day holding ``since`` on (only that day with
    ``only_day``; the months are then the caller's), else also ``energy_month`` from that local month on."""
    params = {"since": since, "tz": timezone, "m": meter_id}
    bound = "AND e.day = d.day" if only_day else "AND e.day >= d.day"
    execute(
        conn,
        f"""
        WITH d AS (SELECT (%(since)s::timestamptz AT TIME ZONE %(tz)s)::date AS day)
        DELETE FROM energy_day e USING d WHERE e.meter_id = %(m)s {bound}""",
        params,
    )  # noqa: S608 - fixed text
    until = (
        "AND start < (((%(since)s::timestamptz AT TIME ZONE %(tz)s)::date + 1)::timestamp AT TIME ZONE %(tz)s)"
        if only_day
        else ""
    )
    execute(
        conn,
        f"""
        INSERT INTO energy_day ({_DAY_COLUMNS})
        SELECT meter_id, (start AT TIME ZONE %(tz)s)::date, sum(quantity), sum(cost_cny),
               coalesce(sum(quantity) FILTER (WHERE band = 'critical'), 0),
               coalesce(sum(quantity) FILTER (WHERE band = 'peak'), 0),
               coalesce(sum(quantity) FILTER (WHERE band = 'flat'), 0),
               coalesce(sum(quantity) FILTER (WHERE band = 'valley'), 0),
               max(quantity),
               count(*) FILTER (WHERE quality = 'measured'), count(*) FILTER (WHERE quality = 'estimated'),
               count(*) FILTER (WHERE quality = 'missing')
        FROM energy_interval
        WHERE meter_id = %(m)s
          AND start >= ((%(since)s::timestamptz AT TIME ZONE %(tz)s)::date::timestamp AT TIME ZONE %(tz)s) {until}
        GROUP BY 1, 2""",
        params,
    )  # noqa: S608 - fixed text
    if not only_day:
        _refresh_months(conn, meter_id=meter_id, timezone=timezone, since=since)


def _refresh_months(conn: psycopg.Connection, *, meter_id: int, timezone: str, since: datetime) -> None:
    """Recompute ``energy_month`` of a meter from the local month holding ``since`` on (from its days)."""
    params = {"since": since, "tz": timezone, "m": meter_id}
    execute(
        conn,
        """
        WITH d AS (SELECT date_trunc('month', (%(since)s::timestamptz AT TIME ZONE %(tz)s))::date AS month)
        DELETE FROM energy_month e USING d WHERE e.meter_id = %(m)s AND e.day >= d.month""",
        params,
    )
    execute(
        conn,
        f"""
        INSERT INTO energy_month ({_DAY_COLUMNS})
        SELECT meter_id, date_trunc('month', day)::date, sum(quantity), sum(cost_cny), sum(q_critical), sum(q_peak),
               sum(q_flat), sum(q_valley), max(max_15min), sum(measured), sum(estimated), sum(missing)
        FROM energy_day
        WHERE meter_id = %(m)s AND day >= date_trunc('month', (%(since)s::timestamptz AT TIME ZONE %(tz)s))::date
        GROUP BY 1, 2""",
        params,
    )  # noqa: S608 - fixed text


def _extend_missing(conn: psycopg.Connection, meter: Meter, *, since: datetime, horizon: datetime) -> None:
    """A silent meter: add ``missing`` intervals after its newest reading up to ``horizon`` (bounded)."""
    last = _one(conn, "SELECT max(start) FROM energy_interval WHERE meter_id = %s", (meter.id,))
    if last is None:
        return
    stop = _at(_floor(_epoch(min(horizon, since + TRAILING_MAX))))
    first = last + timedelta(seconds=SLOT)
    if first >= stop:
        return
    execute(
        conn,
        """
        INSERT INTO energy_interval (meter_id, start, quantity, quality)
        SELECT %s, g, 0, 'missing' FROM generate_series(%s::timestamptz, %s::timestamptz - interval '15 minutes',
                                                        interval '15 minutes') g
        ON CONFLICT DO NOTHING""",
        (meter.id, first, stop),
    )
    refresh_days(conn, meter_id=meter.id, timezone=meter.timezone, since=first)


def record_replacement(
    conn: psycopg.Connection, *, meter_id: int, when: datetime, before: float, after: float, actor: str, note: str = ""
) -> None:
    """Record a meter replacement (old meter's final reading, new meter's first) and recompute from there."""
    execute(
        conn,
        """
        INSERT INTO meter_event (meter_id, time, kind, before, after, note, recorded_by)
        VALUES (%s, %s, 'replacement', %s, %s, %s, %s)
        ON CONFLICT (meter_id, time, kind) DO UPDATE SET before = excluded.before, after = excluded.after,
            note = excluded.note, recorded_by = excluded.recorded_by, recorded_at = now()""",
        (meter_id, when, before, after, note, actor),
    )
    execute(conn, "UPDATE energy_state SET reading_to = least(reading_to, %s) WHERE meter_id = %s", (when, meter_id))
