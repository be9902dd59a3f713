"""Production output from counter points (plant file ``areas[].production``) into ``energy_production`` per
site-local day, with the counter arithmetic of the energy intervals (resets and rollovers never count negative)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import psycopg

from core.db import execute
from energy.intervals import GRACE, compute

_UNITS = {"cells": "cells", "packs": "packs", "pcs": "pcs", "ah": "ah"}


def refresh_production(
    conn: psycopg.Connection,
    *,
    now: datetime,
    site: str | None = None,
    late: list[tuple[datetime, list[int] | None]] = (),
) -> int:
    """Recompute daily output of every output counter from the local day of its last used reading (or of a late
    reading) on; returns the number of day rows written."""
    written = 0
    for area_id, point_id, unit, tz, state in execute(
        conn,
        """
            SELECT pp.area_id, pp.point_id, p.unit, s.timezone, st.reading_to
            FROM energy_production_point pp JOIN point p ON p.id = pp.point_id JOIN area a ON a.id = pp.area_id
            JOIN site s ON s.id = a.site_id LEFT JOIN energy_production_state st ON st.point_id = pp.point_id
            WHERE (%s::text IS NULL OR s.code = %s)""",
        (site, site),
    ).fetchall():
        since = min([state, *[f for f, pids in late if pids is None or point_id in pids]]) if state else None
        newest = execute(
            conn, "SELECT max(time) FROM reading WHERE point_id = %s AND value IS NOT NULL", (point_id,)
        ).fetchone()[0]
        if newest is None or (state is not None and newest <= state and since == state):
            continue
        zone_day = None
        if since is not None:
            local = pd.Timestamp(since).tz_convert(tz).normalize()
            zone_day = local.tz_convert("UTC").to_pydatetime()
        rows = execute(
            conn,
            """
            SELECT extract(epoch FROM time)::float8, value FROM reading WHERE point_id = %s AND value IS NOT NULL
              AND time >= coalesce((SELECT max(time) FROM reading WHERE point_id = %s AND time < %s),
                                   '-infinity'::timestamptz)
            ORDER BY time""",
            (point_id, point_id, zone_day or datetime(1970, 1, 1, tzinfo=now.tzinfo)),
        ).fetchall()
        if len(rows) < 2:
            continue
        data = np.asarray(rows, dtype=float)
        result = compute(data[:, 0], data[:, 1], end=int((now - GRACE).timestamp()) // 900 * 900)
        slots = pd.Series(result.quantity, index=pd.to_datetime(result.starts, unit="s", utc=True))
        days = slots.groupby(slots.index.tz_convert(tz).normalize()).sum()
        for day, quantity in days.items():
            start = day.tz_convert("UTC").to_pydatetime()
            if zone_day is not None and start < zone_day:
                continue
            end = (day + timedelta(days=1)).tz_convert("UTC").to_pydatetime()
            execute(
                conn,
                """
                INSERT INTO energy_production (area_id, start, "end", quantity, unit, source, recorded_by)
                VALUES (%s, %s, %s, %s, %s, 'counter', 'system')
                ON CONFLICT (area_id, start, "end", unit) DO UPDATE SET quantity = excluded.quantity,
                    source = excluded.source, recorded_at = now()""",
                (area_id, start, end, float(quantity), _UNITS.get(unit, "pcs")),
            )
            written += 1
        execute(
            conn,
            "INSERT INTO energy_production_state (point_id, reading_to) VALUES (%s, %s) "
            "ON CONFLICT (point_id) DO UPDATE SET reading_to = excluded.reading_to",
            (point_id, newest),
        )
    return written
