"""The compliance overview of a site, as a regulator reads it: each outfall's pollutants against their limits today
and this month (the stored results of the compliance job, the regulator's averaging), the latest value of each,
and this month's exceedances. Read-only queries; the caller's connection, never committed.

"Today" and "this month" are the site's calendar (its time zone), and count the periods that have closed and been
judged (``compliance_result``): a daily limit has no result for today before the day is over, which is why the
latest real-time value is shown beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from compliance.config import OutfallConfig
from compliance.service import load_compliance

#: Exceedances listed at most (the newest; the count is complete).
MAX_EXCEEDANCES = 100


@dataclass(frozen=True)
class Window:
    """Today and this month in the site's time zone, as UTC instants."""

    now: datetime
    day_start: datetime
    month_start: datetime

    @classmethod
    def of(cls, now: datetime, timezone: str, day: date | None = None) -> Window:
        """The window of ``now`` (up to which results count); ``day`` names "today" when looking back (its end,
        midnight, belongs to the next day's calendar)."""
        tz = ZoneInfo(timezone)
        start = datetime.combine(day or now.astimezone(tz).date(), time(), tz)
        return cls(now, start, start.replace(day=1))


def _rows(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


def _point_areas(conn: psycopg.Connection, site: str) -> dict[str, tuple[int, str]]:
    """``device/key`` -> (point id, area code) of a site's current points."""
    rows = _rows(
        conn,
        """SELECT d.code || '/' || p.key AS ref, p.id, a.code AS area FROM point p
                          JOIN device d ON d.id = p.device_id JOIN area a ON a.id = d.area_id
                          JOIN site s ON s.id = d.site_id
                          WHERE s.code = %(site)s AND p.retired_at IS NULL AND d.retired_at IS NULL""",
        {"site": site},
    )
    return {r["ref"]: (r["id"], r["area"]) for r in rows}


def visible_outfalls(
    conn: psycopg.Connection, site: str, areas: set[str] | None
) -> list[tuple[OutfallConfig, list[str]]]:
    """The site's outfalls with their areas; with ``areas`` (``site/area`` keys), only those wholly inside it."""
    _revision, section = load_compliance(conn=conn)
    points = _point_areas(conn, site)
    out = []
    for outfall in section.outfalls:
        if outfall.site != site:
            continue
        found = sorted({points[p.point][1] for p in outfall.pollutants if p.point in points})
        if areas is not None and (not found or any(f"{site}/{a}" not in areas for a in found)):
            continue
        out.append((outfall, found))
    return out


_SUMMARY = """
SELECT outfall, pollutant, averaging,
       count(*) FILTER (WHERE period_start >= %(day)s) AS today_periods,
       count(*) FILTER (WHERE period_start >= %(day)s AND valid) AS today_valid,
       count(*) FILTER (WHERE period_start >= %(day)s AND exceeded) AS today_exceeded,
       max(value) FILTER (WHERE period_start >= %(day)s AND valid) AS today_max,
       count(*) AS month_periods,
       count(*) FILTER (WHERE valid) AS month_valid,
       count(*) FILTER (WHERE exceeded) AS month_exceeded,
       max(value) FILTER (WHERE valid) AS month_max,
       avg(value) FILTER (WHERE valid) AS month_mean,
       max(period_start) AS last_period,
       (array_agg(value ORDER BY period_start DESC))[1] AS last_value,
       (array_agg(valid ORDER BY period_start DESC))[1] AS last_valid,
       (array_agg(exceeded ORDER BY period_start DESC))[1] AS last_exceeded,
       (array_agg(limit_min ORDER BY period_start DESC))[1] AS limit_min,
       (array_agg(limit_max ORDER BY period_start DESC))[1] AS limit_max,
       (array_agg(source ORDER BY period_start DESC))[1] AS source
FROM compliance_result
WHERE site_code = %(site)s AND outfall = ANY(%(outfalls)s) AND period_start >= %(month)s AND period_start < %(now)s
GROUP BY outfall, pollutant, averaging
"""

_LATEST = """
SELECT DISTINCT ON (point_id) point_id, time, value FROM reading
WHERE point_id = ANY(%(points)s) AND time >= %(since)s AND time <= %(now)s
ORDER BY point_id, time DESC
"""


def site_overview(
    conn: psycopg.Connection,
    *,
    site: str,
    timezone: str,
    now: datetime,
    day: date | None = None,
    areas: set[str] | None = None,
) -> dict[str, Any]:
    """Outfalls with each pollutant's limit, latest value, today and this month; this month's exceedances.
    Looking back, ``now`` is the end of ``day``."""
    window = Window.of(now, timezone, day)
    outfalls = visible_outfalls(conn, site, areas)
    codes = [o.code for o, _ in outfalls]
    params = {"site": site, "outfalls": codes, "day": window.day_start, "month": window.month_start, "now": now}
    summary = {(r["outfall"], r["pollutant"]): r for r in _rows(conn, _SUMMARY, params)} if codes else {}
    points = _point_areas(conn, site)
    wanted = [points[p.point][0] for o, _ in outfalls for p in o.pollutants if p.point in points]
    latest = (
        {r["point_id"]: r for r in _rows(conn, _LATEST, {"points": wanted, "since": window.month_start, "now": now})}
        if wanted
        else {}
    )
    shown = []
    for outfall, outfall_areas in outfalls:
        pollutants = []
        for p in outfall.pollutants:
            row = summary.get((outfall.code, p.pollutant)) or {}
            point = points.get(p.point, (None, None))[0]
            last = latest.get(point)
            pollutants.append(
                {
                    "pollutant": p.pollutant,
                    "point": p.point,
                    "averaging": row.get("averaging"),
                    "limit_min": row.get("limit_min"),
                    "limit_max": row.get("limit_max"),
                    "source": row.get("source"),
                    "latest": {"time": last["time"], "value": last["value"]} if last else None,
                    "last_period": (
                        {
                            "start": row["last_period"],
                            "value": row["last_value"],
                            "valid": row["last_valid"],
                            "exceeded": row["last_exceeded"],
                        }
                        if row
                        else None
                    ),
                    "today": {
                        k: row.get(f"today_{k}", 0 if k != "max" else None)
                        for k in ("periods", "valid", "exceeded", "max")
                    },
                    "month": {
                        k: row.get(f"month_{k}", 0 if k not in ("max", "mean") else None)
                        for k in ("periods", "valid", "exceeded", "max", "mean")
                    },
                }
            )
        shown.append(
            {
                "code": outfall.code,
                "name": outfall.name,
                "medium": outfall.medium,
                "regime": outfall.regime,
                "standards": outfall.standards,
                "areas": outfall_areas,
                "permit": outfall.permit.number if outfall.permit else None,
                "pollutants": pollutants,
            }
        )
    exceedances = (
        _rows(
            conn,
            """
        SELECT outfall, pollutant, averaging, period_start, value, limit_min, limit_max, source
        FROM compliance_result WHERE site_code = %(site)s AND outfall = ANY(%(outfalls)s) AND exceeded
          AND period_start >= %(month)s AND period_start < %(now)s
        ORDER BY period_start DESC, outfall, pollutant LIMIT %(limit)s""",
            {**params, "limit": MAX_EXCEEDANCES},
        )
        if codes
        else []
    )
    return {
        "window": {"day_start": window.day_start, "month_start": window.month_start, "now": now},
        "outfalls": shown,
        "exceedances": exceedances,
        "exceedances_total": sum(r["month_exceeded"] for r in summary.values()),
    }


#: Alarms shown beside the emissions: the compliance job's, the hazardous-waste checks', and every alarm of an
#: outfall's own areas (the treatment plant: RTO, adsorbers, collection fans, the wastewater station).
_RULE_PREFIXES = ("compliance.%", "hazwaste.%")


def open_alarms(conn: psycopg.Connection, *, site: str, outfall_areas: list[str]) -> list[dict[str, Any]]:
    """The open alarms of a site shown beside its emissions, most urgent first (at most 200)."""
    return _rows(
        conn,
        """
            SELECT id, rule, title, title_en, site, area, device, point, state, severity, priority, value, message,
                   raised_at, acked_at
            FROM alarm WHERE closed_at IS NULL AND site = %(site)s
              AND (rule LIKE ANY(%(rules)s) OR area = ANY(%(areas)s))
            ORDER BY priority DESC, raised_at DESC NULLS LAST LIMIT 200""",
        {"site": site, "rules": list(_RULE_PREFIXES), "areas": outfall_areas},
    )
