"""Energy ledgers per meter, area (process), medium and site: native units, kgce and cost, 15 minutes to a year.

Buckets: ``15min`` and ``hour`` come from ``energy_interval``; ``day``, ``month`` and ``year`` follow the site's
local calendar and come from ``energy_day`` and ``energy_month`` (all written by ``energy.intervals.refresh``).
A window is widened to whole buckets, so every bucket returned holds all of its intervals.

No double counting across the meter tree: by ``area`` every counter meter contributes its own energy minus its
direct children's (a parent's remainder is its area's: losses and unmetered consumers), so the areas of a medium
add up to its root meters; by ``medium`` and ``site`` only root meters count. Virtual meters (formulas) appear
by ``meter`` only. Standard coal: quantity x the GB/T 2589-2020 coefficient of the medium (``basis``
``calorific`` = 当量值 or ``equivalent`` = 等价值 for electricity), the newest version valid at the bucket.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from core.db import execute
from core.formula import parse as parse_formula
from energy import demand_charge
from energy.units import MEDIUM_UNIT

BUCKETS = ("15min", "hour", "day", "month", "year")
BYS = ("meter", "area", "medium", "site")
UNASSIGNED = "unassigned"


class LedgerError(ValueError):
    """A bad ledger request (unknown site, bucket or grouping); the API answers 4xx with the message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LedgerRow:
    key: str
    name: str
    medium: str
    bucket_start: datetime
    quantity: float
    unit: str
    kgce: float | None
    cost: float | None
    measured: int
    estimated: int
    missing: int
    demand_charge: float | None = None  # CNY, month and year buckets of root electricity meters, medium, site

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "medium": self.medium,
            "bucket": self.bucket_start.isoformat(),
            "quantity": self.quantity,
            "unit": self.unit,
            "kgce": self.kgce,
            "cost": self.cost,
            "demand_charge": self.demand_charge,
            "quality": {"measured": self.measured, "estimated": self.estimated, "missing": self.missing},
        }


@dataclass(frozen=True)
class MeterRow:
    id: int
    code: str
    name: str
    name_en: str | None
    medium: str
    parent_id: int | None
    area: str | None
    area_name: str | None
    formula: str | None


@dataclass(frozen=True)
class Site:
    id: int
    code: str
    name: str
    timezone: str


def site_of(conn: psycopg.Connection, code: str) -> Site:
    row = execute(conn, "SELECT id, code, name, timezone FROM site WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise LedgerError(f"no site {code!r}", 404)
    return Site(*row)


def meters_of(conn: psycopg.Connection, site_id: int) -> list[MeterRow]:
    return [
        MeterRow(*r)
        for r in execute(
            conn,
            """
        SELECT m.id, m.code, m.name, m.name_en, m.medium, m.parent_id, a.code, a.name, m.formula
        FROM meter m LEFT JOIN area a ON a.id = m.area_id
        WHERE m.site_id = %s AND m.retired_at IS NULL ORDER BY m.id""",
            (site_id,),
        ).fetchall()
    ]


def window(start: datetime, end: datetime, bucket: str, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) widened to whole buckets (local calendar for day, month, year)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise LedgerError("start and end need a time zone (ISO 8601 with an offset or Z)")
    if end <= start:
        raise LedgerError("end must come after start")
    if bucket in ("15min", "hour"):
        width = timedelta(minutes=15) if bucket == "15min" else timedelta(hours=1)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        lo = epoch + ((start - epoch) // width) * width
        hi = epoch + (-((epoch - end) // width)) * width
        return lo, hi
    zone = ZoneInfo(timezone)

    def trunc(at: datetime) -> datetime:
        local = at.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        if bucket in ("month", "year"):
            local = local.replace(day=1)
        if bucket == "year":
            local = local.replace(month=1)
        return local

    def step(local: datetime) -> datetime:
        if bucket == "day":
            return local + timedelta(days=1)
        if bucket == "month":
            return local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
        return local.replace(year=local.year + 1)

    lo = trunc(start)
    hi = trunc(end - timedelta(microseconds=1))
    hi = step(hi)
    return lo.replace(tzinfo=zone).astimezone(UTC), hi.replace(tzinfo=zone).astimezone(UTC)


def _source(bucket: str) -> tuple[str, str, str, str]:
    """(table alias d, bucket expression, time filter, quality count columns) of a bucket's source table."""
    if bucket in ("15min", "hour"):
        trunc = "d.start" if bucket == "15min" else "date_trunc('hour', d.start, %(tz)s)"
        counts = ("(d.quality = 'measured')::int", "(d.quality = 'estimated')::int", "(d.quality = 'missing')::int")
        return ("energy_interval d", trunc, "d.start >= %(lo)s AND d.start < %(hi)s", ", ".join(counts))
    table = "energy_day d" if bucket == "day" else "energy_month d"
    return (
        table,
        "(date_trunc(%(unit)s, d.day::timestamp) AT TIME ZONE %(tz)s)",
        "d.day >= (%(lo)s::timestamptz AT TIME ZONE %(tz)s)::date "
        "AND d.day < (%(hi)s::timestamptz AT TIME ZONE %(tz)s)::date",
        "d.measured, d.estimated, d.missing",
    )


def grouped(
    conn: psycopg.Connection,
    *,
    site_id: int,
    site_code: str,
    by: str,
    start: datetime,
    end: datetime,
    bucket: str,
    timezone: str,
    medium: str | None,
) -> dict[tuple[str, str, datetime], list]:
    """(key, medium, bucket start UTC) -> [quantity, cost, measured, estimated, missing] by area, medium or site,
    summed in the database: by area each counter meter adds its own and takes its direct children's energy from
    its area; by medium and site only root meters count. Rows are summed on integer keys and raw days or interval
    starts first; the calendar truncation and the area codes apply to the few sums."""
    table, trunc, when, counts = _source(bucket)
    raw = "d.start" if "interval" in table else "d.day"
    meters = f"""FROM {table} JOIN meter m ON m.id = d.meter_id
                WHERE m.site_id = %(site)s AND m.retired_at IS NULL AND m.point_id IS NOT NULL
                  AND (%(medium)s::text IS NULL OR m.medium = %(medium)s) AND {when}"""
    if by == "area":
        rows = f"""
            SELECT m.area_id, m.medium, {raw}, d.quantity, d.cost_cny, {counts} {meters}
            UNION ALL
            SELECT p.area_id, m.medium, {raw}, -d.quantity, -d.cost_cny, 0, 0, 0
            {meters.replace("WHERE", "JOIN meter p ON p.id = m.parent_id AND p.retired_at IS NULL WHERE")}"""
        key = f"coalesce(a.code, '{UNASSIGNED}')"
    else:
        rows = f"""SELECT NULL::integer, m.medium, {raw}, d.quantity, d.cost_cny, {counts}
                   {meters} AND m.parent_id IS NULL"""
        key = "g.medium" if by == "medium" else "%(code)s::text"
    outer = trunc.replace("d.start", "g.k").replace("d.day", "g.k")
    sql = f"""
        WITH g AS (SELECT aid, medium, k, sum(q) AS q, sum(c) AS c, sum(measured) AS measured,
                          sum(estimated) AS estimated, sum(missing) AS missing
                   FROM ({rows}) r (aid, medium, k, q, c, measured, estimated, missing) GROUP BY 1, 2, 3)
        SELECT {key}, g.medium, {outer}, sum(g.q), sum(g.c), sum(g.measured), sum(g.estimated), sum(g.missing)
        FROM g LEFT JOIN area a ON a.id = g.aid GROUP BY 1, 2, 3"""
    out: dict[tuple[str, str, datetime], list] = {}
    for key_, med, b, q, cost, m, e, x in execute(
        conn,
        sql,
        {  # noqa: S608 - fixed text
            "site": site_id,
            "medium": medium,
            "lo": start,
            "hi": end,
            "tz": timezone,
            "unit": bucket,
            "code": site_code,
        },
    ).fetchall():
        out[(key_, med, b.astimezone(UTC))] = [
            float(q or 0.0),
            None if cost is None else float(cost),
            int(m),
            int(e),
            int(x),
        ]
    return out


def per_meter(
    conn: psycopg.Connection, *, meter_ids: list[int], start: datetime, end: datetime, bucket: str, timezone: str
) -> dict[tuple[int, datetime], list]:
    """(meter id, bucket start UTC) -> [quantity, cost or None, measured, estimated, missing] for a whole-bucket
    window (see ``window``)."""
    if bucket in ("15min", "hour"):
        trunc = "i.start" if bucket == "15min" else "date_trunc('hour', i.start, %(tz)s)"
        sql = f"""
            SELECT i.meter_id, {trunc} AS b, sum(i.quantity), sum(i.cost_cny),
                   count(*) FILTER (WHERE i.quality = 'measured'), count(*) FILTER (WHERE i.quality = 'estimated'),
                   count(*) FILTER (WHERE i.quality = 'missing')
            FROM energy_interval i
            WHERE i.meter_id = ANY(%(ids)s) AND i.start >= %(lo)s AND i.start < %(hi)s
            GROUP BY 1, 2"""  # noqa: S608 - fixed text
    else:
        table = "energy_day" if bucket == "day" else "energy_month"
        sql = f"""
            SELECT d.meter_id, (date_trunc(%(unit)s, d.day::timestamp) AT TIME ZONE %(tz)s) AS b, sum(d.quantity),
                   sum(d.cost_cny), sum(d.measured), sum(d.estimated), sum(d.missing)
            FROM {table} d
            WHERE d.meter_id = ANY(%(ids)s)
              AND d.day >= (%(lo)s::timestamptz AT TIME ZONE %(tz)s)::date
              AND d.day < (%(hi)s::timestamptz AT TIME ZONE %(tz)s)::date
            GROUP BY 1, 2"""  # noqa: S608 - fixed text
    out: dict[tuple[int, datetime], list] = {}
    for mid, b, q, cost, m, e, x in execute(
        conn, sql, {"ids": meter_ids, "lo": start, "hi": end, "tz": timezone, "unit": bucket}
    ).fetchall():
        out[(mid, b.astimezone(UTC))] = [float(q or 0.0), None if cost is None else float(cost), int(m), int(e), int(x)]
    return out


def coefficients(conn: psycopg.Connection, basis: str = "calorific") -> dict[str, float]:
    """kgce per ledger unit of each medium (the newest version in force; electricity on ``basis``)."""
    rows = execute(
        conn,
        """
        SELECT DISTINCT ON (medium) medium, kgce_per_unit FROM energy_coefficient
        WHERE basis = %s OR (medium <> 'electricity' AND basis = 'calorific')
        ORDER BY medium, (basis = %s) DESC, valid_from DESC""",
        (basis, basis),
    ).fetchall()
    return {medium: float(k) for medium, k in rows}


def _add(into: list, row: list, sign: float = 1.0, counts: bool = True) -> None:
    into[0] += sign * row[0]
    if row[1] is not None:
        into[1] = (into[1] or 0.0) + sign * row[1]
    if counts:
        into[2] += row[2]
        into[3] += row[3]
        into[4] += row[4]


def ledger(
    conn: psycopg.Connection,
    *,
    site: str,
    start: datetime,
    end: datetime,
    bucket: str,
    by: str,
    medium: str | None = None,
    basis: str = "calorific",
) -> list[LedgerRow]:
    """Energy per ``by`` (meter, area, medium, site) and ``bucket`` in [start, end) widened to whole buckets."""
    if bucket not in BUCKETS:
        raise LedgerError(f"bucket must be one of {', '.join(BUCKETS)}")
    if by not in BYS:
        raise LedgerError(f"by must be one of {', '.join(BYS)}")
    if basis not in ("calorific", "equivalent"):
        raise LedgerError("basis must be calorific or equivalent")
    s = site_of(conn, site)
    lo, hi = window(start, end, bucket, s.timezone)
    meters = [m for m in meters_of(conn, s.id) if medium is None or m.medium == medium]
    counters = [m for m in meters if m.formula is None]
    coef = coefficients(conn, basis)
    groups: dict[tuple[str, str, datetime], list] = defaultdict(lambda: [0.0, None, 0, 0, 0])
    names: dict[tuple[str, str], str] = {}
    if by != "meter":
        groups = grouped(
            conn,
            site_id=s.id,
            site_code=s.code,
            by=by,
            start=lo,
            end=hi,
            bucket=bucket,
            timezone=s.timezone,
            medium=medium,
        )
        area_names = {m.area: m.area_name for m in meters if m.area}
        for key, med, _b in groups:
            names[(key, med)] = (
                s.name if by == "site" else med if by == "medium" else area_names.get(key) or "未分配区域 / unassigned"
            )
        return _rows(groups, names, coef, _demand(conn, s, by, bucket, lo, hi, groups, meters))
    data = per_meter(conn, meter_ids=[m.id for m in counters], start=lo, end=hi, bucket=bucket, timezone=s.timezone)
    by_id = {m.id: m for m in counters}
    code_to_id = {m.code: m.id for m in counters}
    for (mid, b), row in data.items():
        m = by_id[mid]
        _add(groups[(m.code, m.medium, b)], row)
        names[(m.code, m.medium)] = m.name
    buckets = {b for (_mid, b) in data}
    for v in (m for m in meters if m.formula is not None):
        names[(v.code, v.medium)] = v.name
        for b in buckets:
            acc = groups[(v.code, v.medium, b)]
            for factor, code in parse_formula(v.formula):
                row = data.get((code_to_id.get(code, -1), b))
                if row is not None:
                    _add(acc, row, factor, counts=factor > 0)
    return _rows(groups, names, coef, _demand(conn, s, by, bucket, lo, hi, groups, meters))


def _demand(
    conn: psycopg.Connection,
    s: Site,
    by: str,
    bucket: str,
    lo: datetime,
    hi: datetime,
    groups: dict,
    meters: list[MeterRow],
) -> dict[tuple[str, str, datetime], float]:
    """Add the two-part tariff's monthly charge to the cost of month and year buckets of root electricity meters,
    the electricity medium and the site; (key, medium, bucket) -> the charge added. Areas and virtual meters get
    none (it is not caused by any one process), so by area the costs are the per-interval costs only."""
    if bucket not in ("month", "year") or by == "area" or not any(m.medium == "electricity" for m in meters):
        return {}
    codes = {m.id: m.code for m in meters}
    out: dict[tuple[str, str, datetime], float] = defaultdict(float)
    for c in demand_charge.monthly(conn, site_id=s.id, timezone=s.timezone, start=lo, end=hi):
        month = c.month if bucket == "month" else c.month.replace(month=1)
        b = demand_charge.month_start_utc(month, s.timezone)
        key = codes.get(c.meter_id) if by == "meter" else "electricity" if by == "medium" else s.code
        if key is None or (key, "electricity", b) not in groups:
            continue
        out[(key, "electricity", b)] += c.cny
        acc = groups[(key, "electricity", b)]
        acc[1] = (acc[1] or 0.0) + c.cny
    return out


def _rows(groups: dict, names: dict, coef: dict[str, float], demand: dict | None = None) -> list[LedgerRow]:
    out = []
    demand = demand or {}
    for (key, med, b), (q, cost, mc, ec, xc) in groups.items():
        factor = coef.get(med)
        out.append(
            LedgerRow(
                key=key,
                name=names.get((key, med), key),
                medium=med,
                bucket_start=b,
                quantity=q,
                unit=MEDIUM_UNIT[med],
                kgce=None if factor is None else q * factor,
                cost=cost,
                measured=mc,
                estimated=ec,
                missing=xc,
                demand_charge=demand.get((key, med, b)),
            )
        )
    out.sort(key=lambda r: (r.key, r.medium, r.bucket_start))
    return out


def by_band(conn: psycopg.Connection, *, site: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Site electricity per time-of-use band in [start, end) widened to whole local days: quantity (kWh) and cost
    (CNY, None where no interval was priced) of the root counter meters (the incomers: no double counting)."""
    s = site_of(conn, site)
    lo, hi = window(start, end, "day", s.timezone)
    found = execute(
        conn,
        """
        SELECT i.band, sum(i.quantity), sum(i.cost_cny) FROM energy_interval i JOIN meter m ON m.id = i.meter_id
        WHERE m.site_id = %s AND m.medium = 'electricity' AND m.parent_id IS NULL AND m.point_id IS NOT NULL
          AND m.formula IS NULL AND i.start >= %s AND i.start < %s
        GROUP BY i.band""",
        (s.id, lo, hi),
    ).fetchall()
    got = {band: (float(q or 0.0), None if c is None else float(c)) for band, q, c in found}
    order = ("critical", "peak", "flat", "valley")
    return [
        {"band": band or "none", "quantity": got[band][0], "cost": got[band][1]}
        for band in (*order, None)
        if band in got
    ]
