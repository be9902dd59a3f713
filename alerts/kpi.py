"""Alarm-system KPIs of ISA-18.2-2016 section 16, Table 5 (standards.md section 1.3), for a period.

Counted are *annunciated* alarm occurrences (an alarm presented to operators: raised, re-raised, re-alarmed on a
higher severity, back from shelving or suppression while active). Drills are left out. The ISA figures are
returned beside the measured ones so a screen can colour them; they are meant for at least 30 days of data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts import store
from alerts.config import AlertConfig
from alerts.config_store import load_config
from alerts.models import Priority
from core import db

#: ISA-18.2 Table 5 (standards.md 1.3): "very likely acceptable" and "maximum manageable".
TARGETS = {
    "alarms_per_day": {"acceptable": 150, "manageable": 300},
    "alarms_per_hour": {"acceptable": 6, "manageable": 12},
    "alarms_per_10min": {"acceptable": 1, "manageable": 2},
    "pct_hours_over_30": {"acceptable": 1.0},
    "pct_10min_over_10": {"acceptable": 1.0},
    "max_per_10min": {"acceptable": 10},
    "pct_time_in_flood": {"acceptable": 1.0},
    "top10_share_pct": {"acceptable": 5.0},
    "chattering": {"acceptable": 0},
    "stale_present": {"acceptable": 5},
    "priority_pct": {"low": 80.0, "medium": 15.0, "high": 5.0, "critical": 1.0},
}


def kpis(
    *,
    conn: psycopg.Connection,
    since: datetime,
    until: datetime,
    site: str | None = None,
    area: str | None = None,
    config: AlertConfig | None = None,
) -> dict[str, Any]:
    """The KPI table for ``[since, until)``, optionally for one site or area."""
    config = config or load_config(conn=conn)
    span = max((until - since).total_seconds(), 1.0)
    p = {"since": since, "until": until, "site": site, "area": area}
    scope = (
        "NOT drill AND at >= %(since)s AND at < %(until)s AND (%(site)s::text IS NULL OR site = %(site)s) "
        "AND (%(area)s::text IS NULL OR area = %(area)s)"
    )
    total = db.execute(conn, f"SELECT count(*) FROM alarm_event WHERE annunciated AND {scope}", p).fetchone()[0]  # noqa: S608

    def buckets(width: timedelta, over: int) -> tuple[int, float]:
        rows = db.execute(
            conn,
            f"SELECT b, (SELECT count(*) FROM alarm_event WHERE annunciated AND {scope} AND at >= b "  # noqa: S608
            "AND at < b + %(w)s) FROM generate_series(%(since)s, %(until)s - %(w)s, %(w)s) AS b",
            {**p, "w": width},
        ).fetchall()
        counts = [n for _, n in rows]
        return (max(counts, default=0), 100.0 * sum(1 for n in counts if n > over) / len(counts) if counts else 0.0)

    max_10, pct_10 = buckets(timedelta(minutes=10), 10)
    _, pct_hours = buckets(timedelta(hours=1), 30)
    floods = store.fetch(
        conn,
        "SELECT f.*, a.title AS first_title, a.source AS first_source FROM alarm_flood f "
        "LEFT JOIN alarm a ON a.id = f.first_alarm_id WHERE NOT f.drill AND f.started_at < %(until)s "
        "AND coalesce(f.ended_at, %(until)s) > %(since)s AND (%(site)s::text IS NULL OR f.site = "
        "%(site)s) AND (%(area)s::text IS NULL OR f.area = %(area)s) ORDER BY f.started_at",
        p,
    )
    in_flood = sum((min(f["ended_at"] or until, until) - max(f["started_at"], since)).total_seconds() for f in floods)
    top = store.fetch(
        conn,
        f"SELECT rule, source, count(*) AS alarms FROM alarm_event WHERE annunciated AND {scope} "  # noqa: S608
        "GROUP BY rule, source ORDER BY alarms DESC, rule LIMIT 10",
        p,
    )
    chattering = store.fetch(
        conn,
        f"SELECT rule, source, count(*) AS times FROM alarm_event WHERE kind = "  # noqa: S608
        f"'chattering' AND {scope} GROUP BY rule, source ORDER BY times DESC",
        p,
    )
    stale = store.fetch(
        conn,
        "SELECT id, rule, source, title, raised_at FROM alarm WHERE closed_at IS NULL AND "
        "condition_active AND NOT drill AND raised_at < %(cutoff)s AND (%(site)s::text IS NULL OR "
        "site = %(site)s) AND (%(area)s::text IS NULL OR area = %(area)s) ORDER BY raised_at",
        {**p, "cutoff": until - timedelta(hours=config.defaults.stale_h)},
    )
    by_priority = dict(
        db.execute(
            conn,
            f"SELECT priority, count(*) FROM alarm_event WHERE annunciated AND {scope} "  # noqa: S608
            "GROUP BY priority",
            p,
        ).fetchall()
    )
    return {
        "since": since,
        "until": until,
        "site": site,
        "area": area,
        "annunciated": total,
        "alarms_per_day": round(total / (span / 86400), 2),
        "alarms_per_hour": round(total / (span / 3600), 3),
        "alarms_per_10min": round(total / (span / 600), 3),
        "max_per_10min": max_10,
        "pct_10min_over_10": round(pct_10, 2),
        "pct_hours_over_30": round(pct_hours, 2),
        "floods": [
            {
                "id": f["id"],
                "area": f["area"],
                "started_at": f["started_at"],
                "ended_at": f["ended_at"],
                "alarms": f["alarm_count"],
                "peak_per_10min": f["peak_per_window"],
                "first_out": {"alarm_id": f["first_alarm_id"], "title": f["first_title"], "source": f["first_source"]},
            }
            for f in floods
        ],
        "pct_time_in_flood": round(100.0 * in_flood / span, 2),
        "top10": [{**r, "share_pct": round(100.0 * r["alarms"] / total, 2) if total else 0.0} for r in top],
        "top10_share_pct": round(100.0 * sum(r["alarms"] for r in top) / total, 2) if total else 0.0,
        "chattering": len(chattering),
        "chattering_alarms": chattering,
        "stale_present": len(stale),
        "stale_alarms": stale,
        "priority_pct": {
            Priority(p_).name.lower(): round(100.0 * n / total, 2) if total else 0.0
            for p_, n in sorted(by_priority.items())
        },
        "targets": TARGETS,
    }
