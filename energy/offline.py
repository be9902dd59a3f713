"""Offline meters and production figures from CSV/XLSX (and the API): validated row by row, refused whole with
the line and field of every problem, stored with an audit record.

Offline readings: columns ``meter``, ``time`` (ISO 8601 with offset), ``value`` (the counter). They become
readings of the meter's point, so the one interval computation serves (gaps between manual readings are
estimated like any other). Production: columns ``area``, ``start``, ``end``, ``quantity``, ``unit``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import psycopg

from core import audit
from core.db import execute
from energy.exports import parse_number, parse_time, read_table
from energy.readings import store_counter_readings

MAX_ROWS = 200_000
PRODUCTION_UNITS = ("cells", "packs", "ah", "kwh", "pcs", "t")


class ImportRefused(ValueError):
    """The file was refused; ``problems`` lists 'line N: field: what' for each (the first 50)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
        self.problems = problems[:50]


@dataclass(frozen=True)
class ImportResult:
    rows: int
    stored: int
    meters: list[str]
    import_id: int | None = None


def _site_code(conn: psycopg.Connection, site_id: int) -> str:
    return execute(conn, "SELECT code FROM site WHERE id = %s", (site_id,)).fetchone()[0]


def _rows(data: bytes, filename: str, needed: tuple[str, ...]) -> list[tuple[int, dict]]:
    try:
        rows = []
        for n, row in read_table(data, filename):
            rows.append((n, row))
            if len(rows) > MAX_ROWS:
                raise ImportRefused([f"more than {MAX_ROWS} rows: split the file"])
    except ValueError as exc:
        if isinstance(exc, ImportRefused):
            raise
        raise ImportRefused([str(exc)]) from None
    if not rows:
        raise ImportRefused(["no data rows"])
    missing = [c for c in needed if c not in rows[0][1]]
    if missing:
        raise ImportRefused([f"line 1: missing column(s) {', '.join(missing)} (need {', '.join(needed)})"])
    return rows


def import_offline(conn: psycopg.Connection, *, site_id: int, data: bytes, filename: str, actor: str) -> ImportResult:
    """Import manually read counter values of the site's meters (all or nothing), with an audit record."""
    meters = {
        code: (mid, pid)
        for code, mid, pid in execute(
            conn,
            """
        SELECT code, id, point_id FROM meter WHERE site_id = %s AND retired_at IS NULL AND point_id IS NOT NULL""",
            (site_id,),
        ).fetchall()
    }
    problems: list[str] = []
    parsed: list[tuple[datetime, int, float]] = []
    used: set[str] = set()
    for n, row in _rows(data, filename, ("meter", "time", "value")):
        code = str(row.get("meter") or "").strip()
        try:
            if code not in meters:
                raise ValueError(f"meter: no counter meter {code[:40]!r} in this site")
            when = parse_time(row.get("time"), "time")
            value = parse_number(row.get("value"), "value")
        except ValueError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        parsed.append((when, meters[code][1], value))
        used.add(code)
    if problems:
        raise ImportRefused(problems)
    stored = store_counter_readings(conn, parsed)
    times = [p[0] for p in parsed]
    import_id = execute(
        conn,
        """
        INSERT INTO energy_offline_import (site_id, filename, sha256, rows, meters, first_time, last_time, imported_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            site_id,
            filename[:200],
            hashlib.sha256(data).hexdigest(),
            len(parsed),
            sorted(used),
            min(times),
            max(times),
            actor,
        ),
    ).fetchone()[0]
    audit.append(
        conn,
        actor=actor,
        action="energy.offline_import",
        target=f"energy_offline_import:{import_id}",
        detail={"filename": filename[:200], "rows": len(parsed), "stored": stored, "meters": sorted(used)},
        site=_site_code(conn, site_id),
    )
    return ImportResult(rows=len(parsed), stored=stored, meters=sorted(used), import_id=import_id)


def record_production(conn: psycopg.Connection, *, site_id: int, rows: list[dict], source: str, actor: str) -> int:
    """Store production rows ({area, start, end, quantity, unit}); a row for the same area, period and unit is
    replaced. Returns the number stored; ImportRefused names the row and field of each problem."""
    areas = dict(
        execute(conn, "SELECT code, id FROM area WHERE site_id = %s AND retired_at IS NULL", (site_id,)).fetchall()
    )
    problems, clean = [], []
    for n, row in enumerate(rows, start=1):
        where = f"line {row.get('_line', n)}"
        try:
            code = str(row.get("area") or "").strip()
            if code not in areas:
                raise ValueError(f"area: no area {code[:40]!r} in this site")
            start, end = parse_time(row.get("start"), "start"), parse_time(row.get("end"), "end")
            if end <= start:
                raise ValueError("end: must come after start")
            quantity = parse_number(row.get("quantity"), "quantity", maximum=1e10)
            unit = str(row.get("unit") or "").strip().lower()
            if unit not in PRODUCTION_UNITS:
                raise ValueError(f"unit: one of {', '.join(PRODUCTION_UNITS)}")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        clean.append((areas[code], start, end, quantity, unit))
    if problems:
        raise ImportRefused(problems)
    for area_id, start, end, quantity, unit in clean:
        execute(
            conn,
            """
            INSERT INTO energy_production (area_id, start, "end", quantity, unit, source, recorded_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (area_id, start, "end", unit) DO UPDATE SET quantity = excluded.quantity,
                source = excluded.source, recorded_by = excluded.recorded_by, recorded_at = now()""",
            (area_id, start, end, quantity, unit, source, actor),
        )
    audit.append(
        conn,
        actor=actor,
        action="energy.production",
        target=f"site:{site_id}",
        detail={"rows": len(clean), "source": source},
        site=_site_code(conn, site_id),
    )
    return len(clean)


def import_production(conn: psycopg.Connection, *, site_id: int, data: bytes, filename: str, actor: str) -> int:
    rows = [{**row, "_line": n} for n, row in _rows(data, filename, ("area", "start", "end", "quantity", "unit"))]
    return record_production(conn, site_id=site_id, rows=rows, source="csv", actor=actor)


def production(conn: psycopg.Connection, *, site_id: int, start: datetime, end: datetime) -> list[dict]:
    """Production records of a site's areas overlapping [start, end) (``area``, ``start``, ``end``, ``quantity``,
    ``unit``, ``source``), by start and area, at most 10000."""
    cur = execute(
        conn,
        """
        SELECT a.code AS area, p.start, p."end", p.quantity, p.unit, p.source FROM energy_production p
        JOIN area a ON a.id = p.area_id WHERE a.site_id = %s AND p.start < %s AND p."end" > %s
        ORDER BY p.start, a.code LIMIT 10000""",
        (site_id, end, start),
    )
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
