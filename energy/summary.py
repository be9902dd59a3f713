"""The energy overview of a site for the PWA and the control-room screen: today and this month per area (kgce,
cost, quantity per medium, output and kgce per unit), open energy findings, and the time-of-use shares."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from core.db import execute
from energy.abnormal_job import current_abnormal
from energy.ledger import ledger, site_of


def _period(conn: psycopg.Connection, site: str, start: datetime, end: datetime) -> dict[str, Any]:
    rows = ledger(conn, site=site, start=start, end=end, bucket="day", by="area")
    areas: dict[str, dict[str, Any]] = {}
    for r in rows:
        a = areas.setdefault(r.key, {"area": r.key, "name": r.name, "kgce": 0.0, "cost": None, "by_medium": {}})
        a["kgce"] += r.kgce or 0.0
        if r.cost is not None:
            a["cost"] = (a["cost"] or 0.0) + r.cost
        a["by_medium"][r.medium] = a["by_medium"].get(r.medium, 0.0) + r.quantity
    output = defaultdict(float)
    for code, quantity in execute(
        conn,
        """
            SELECT a.code, sum(p.quantity * extract(epoch FROM (least(p."end", %(e)s) - greatest(p.start, %(s)s)))
                                / extract(epoch FROM (p."end" - p.start)))
            FROM energy_production p JOIN area a ON a.id = p.area_id JOIN site s ON s.id = a.site_id
            WHERE s.code = %(site)s AND p.start < %(e)s AND p."end" > %(s)s GROUP BY a.code""",
        {"site": site, "s": start, "e": end},
    ).fetchall():
        output[code] = float(quantity)
    for code, a in areas.items():
        a["output"] = output.get(code)
        a["per_unit_kgce"] = a["kgce"] / output[code] if output.get(code) else None
    return {
        "kgce": sum(a["kgce"] for a in areas.values()),
        "cost": sum(a["cost"] for a in areas.values() if a["cost"] is not None)
        if any(a["cost"] is not None for a in areas.values())
        else None,
        "by_area": sorted(areas.values(), key=lambda a: -a["kgce"]),
    }


def _abnormal(conn: psycopg.Connection, site: str) -> list[dict[str, Any]]:
    """The open energy findings of ``site``, the largest excess first: the abnormal-consumption decisions
    (energy.abnormal_job) and the balance and demand findings (energy.balance), with the expected and actual
    figures and their unit where the finding has them (None otherwise)."""
    return [
        {
            "meter": r["meter"] or r["device"],
            "name": r["name"] or r["message"],
            "area": r["area"],
            "rule": r["rule"],
            "message": r["message"],
            "expected": r["expected"],
            "actual": r["actual"],
            "unit": r["unit"],
            "since": r["since"].isoformat() if r["since"] else None,
        }
        for r in current_abnormal(conn=conn, site=site)
    ]


def summary(conn: psycopg.Connection, *, site: str, now: datetime) -> dict[str, Any]:
    s = site_of(conn, site)
    zone = ZoneInfo(s.timezone)
    local = now.astimezone(zone)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    tomorrow = (today + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=zone)
    abnormal = _abnormal(conn, site)
    shares = execute(
        conn,
        """
        SELECT sum(d.q_critical), sum(d.q_peak), sum(d.q_flat), sum(d.q_valley) FROM energy_day d
        JOIN meter m ON m.id = d.meter_id
        WHERE m.site_id = %s AND m.medium = 'electricity' AND m.parent_id IS NULL AND m.point_id IS NOT NULL
          AND d.day >= %s AND d.day < %s""",
        (s.id, month.date(), tomorrow.date()),
    ).fetchone()
    total = sum(x or 0.0 for x in shares)
    tou = {
        band: (float(x or 0.0) / total if total > 0 else None)
        for band, x in zip(("critical", "peak", "flat", "valley"), shares, strict=True)
    }
    return {
        "site": site,
        "today": _period(conn, site, today, tomorrow),
        "month": _period(conn, site, month, tomorrow),
        "abnormal": abnormal,
        "tou_share": tou,
    }
