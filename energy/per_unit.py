"""Energy and cost per unit of output per process area and per device, compared across peers of the same kind
(issue 13 item 6; GB/T 2589 / ISO 50006 EnPI "specific energy consumption").

* **Processes**: an area's energy (the area ledger: a parent meter's remainder stays in its area) over its
  recorded production (``energy_production``), compared across areas of the same process type, medium and unit.
* **Devices**: a device that carries both an output counter (plant file ``areas[].production``) and a counter
  meter's point: the meter's energy over that counter's own output in the window, compared across devices of the
  same kind, medium and unit. Devices metered elsewhere than where they count are not attributed (a guess would
  misstate the comparison).

The window is widened to whole site-local days (production rows are daily).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from core.db import execute
from energy.intervals import compute
from energy.ledger import coefficients, ledger, per_meter, site_of, window
from energy.units import MEDIUM_UNIT


def _output(conn: psycopg.Connection, point_id: int, lo: datetime, hi: datetime) -> float | None:
    """Output of one counter in [lo, hi) (counter units; resets and rollovers never count negative), or None
    without readings on both sides of some interval of the window."""
    rows = execute(
        conn,
        """
        SELECT extract(epoch FROM time)::float8, value FROM reading
        WHERE point_id = %(p)s AND value IS NOT NULL
          AND time >= coalesce((SELECT max(time) FROM reading WHERE point_id = %(p)s AND value IS NOT NULL
                                  AND time <= %(lo)s), %(lo)s)
          AND time <= coalesce((SELECT min(time) FROM reading WHERE point_id = %(p)s AND value IS NOT NULL
                                  AND time >= %(hi)s), %(hi)s)
        ORDER BY time""",
        {"p": point_id, "lo": lo, "hi": hi},
    ).fetchall()
    if len(rows) < 2:
        return None
    data = np.asarray(rows, dtype=float)
    result = compute(data[:, 0], data[:, 1], end=int(hi.timestamp()) // 900 * 900)
    inside = result.starts >= lo.timestamp()
    return float(np.nansum(result.quantity[inside]))


def _compare(rows: list[dict[str, Any]], group_keys: tuple[str, ...]) -> None:
    """Add ``peers``, ``rank`` (1 = least energy per unit), ``group_median`` and ``vs_median_pct`` to each row."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["per_unit"] is not None:
            groups[tuple(r[k] for k in group_keys)].append(r)
    for r in rows:
        r.update(peers=0, rank=None, group_median=None, vs_median_pct=None)
    for members in groups.values():
        median = statistics.median(m["per_unit"] for m in members)
        for rank, m in enumerate(sorted(members, key=lambda m: m["per_unit"]), start=1):
            m.update(
                peers=len(members),
                rank=rank,
                group_median=median,
                vs_median_pct=None if median == 0 else 100.0 * (m["per_unit"] - median) / median,
            )


def _row(energy: float, cost: float | None, kgce_factor: float | None, output: float | None) -> dict[str, Any]:
    good = output is not None and output > 0
    return {
        "quantity": energy,
        "output": output,
        "per_unit": energy / output if good else None,
        "kgce_per_unit": energy * kgce_factor / output if good and kgce_factor is not None else None,
        "cost_per_unit": cost / output if good and cost is not None else None,
    }


def _processes(conn, site, lo, hi, coef) -> list[dict[str, Any]]:
    produced = execute(
        conn,
        """
        SELECT a.code, a.name, a.process_type, p.unit, sum(p.quantity) FROM energy_production p
        JOIN area a ON a.id = p.area_id
        WHERE a.site_id = %s AND p.start >= %s AND p."end" <= %s GROUP BY 1, 2, 3, 4 ORDER BY 1, 4""",
        (site.id, lo, hi),
    ).fetchall()
    if not produced:
        return []
    energy: dict[tuple[str, str], list[float | None]] = defaultdict(lambda: [0.0, None])
    for r in ledger(conn, site=site.code, start=lo, end=hi, bucket="day", by="area"):
        acc = energy[(r.key, r.medium)]
        acc[0] += r.quantity
        if r.cost is not None:
            acc[1] = (acc[1] or 0.0) + r.cost
    out = []
    for code, name, process, unit, output in produced:
        for (area, medium), (quantity, cost) in sorted(energy.items()):
            if area == code:
                out.append(
                    {
                        "area": code,
                        "name": name,
                        "process": process,
                        "medium": medium,
                        "energy_unit": MEDIUM_UNIT[medium],
                        "output_unit": unit,
                        **_row(quantity, cost, coef.get(medium), float(output)),
                    }
                )
    _compare(out, ("process", "medium", "output_unit"))
    return out


def _devices(conn, site, lo, hi, coef) -> list[dict[str, Any]]:
    found = execute(
        conn,
        """
        SELECT d.code, d.name, d.kind, a.code, op.id, op.unit, m.id, m.code, m.medium
        FROM energy_production_point pp JOIN point op ON op.id = pp.point_id JOIN device d ON d.id = op.device_id
        JOIN area a ON a.id = d.area_id JOIN point mp ON mp.device_id = d.id
        JOIN meter m ON m.point_id = mp.id AND m.retired_at IS NULL
        WHERE d.site_id = %s AND d.retired_at IS NULL ORDER BY d.code, m.code""",
        (site.id,),
    ).fetchall()
    if not found:
        return []
    energy: dict[int, list[float | None]] = defaultdict(lambda: [0.0, None])
    data = per_meter(conn, meter_ids=[r[6] for r in found], start=lo, end=hi, bucket="day", timezone=site.timezone)
    for (mid, _b), (quantity, cost, *_counts) in data.items():
        energy[mid][0] += quantity
        if cost is not None:
            energy[mid][1] = (energy[mid][1] or 0.0) + cost
    outputs: dict[int, float | None] = {}
    out = []
    for device, name, kind, area, point_id, unit, meter_id, meter, medium in found:
        if point_id not in outputs:
            outputs[point_id] = _output(conn, point_id, lo, hi)
        quantity, cost = energy[meter_id]
        out.append(
            {
                "device": device,
                "name": name,
                "kind": kind,
                "area": area,
                "meter": meter,
                "medium": medium,
                "energy_unit": MEDIUM_UNIT[medium],
                "output_unit": unit,
                **_row(quantity, cost, coef.get(medium), outputs[point_id]),
            }
        )
    _compare(out, ("kind", "medium", "output_unit"))
    return out


def per_unit(conn: psycopg.Connection, *, site: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Energy, kgce and cost per unit of output per process area and per device in [start, end) widened to whole
    local days, each with its rank and deviation from the median of its peers."""
    s = site_of(conn, site)
    lo, hi = window(start, end, "day", s.timezone)
    coef = coefficients(conn)
    return {
        "site": s.code,
        "start": lo.isoformat(),
        "end": hi.isoformat(),
        "processes": _processes(conn, s, lo, hi, coef),
        "devices": _devices(conn, s, lo, hi, coef),
    }
