"""Meter-tree balance (parent vs the sum of its children per interval), the energy flow for a Sankey diagram,
and the energy findings: an imbalance that stays above its limit, a 15-minute demand heading past the contract.

Findings go to the alarm engine through the composition root (``python -m energy``, ``ehs energy evaluate``),
edge-triggered through ``energy_finding_state`` like the other domains' periodic checks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from core.db import execute
from core.model import Finding, Severity, SubjectRef
from energy.ledger import UNASSIGNED, meters_of, per_meter, site_of, window
from energy.tariffs import list_tariffs
from energy.units import MEDIUM_UNIT

SLOT = timedelta(minutes=15)
TITLES = {
    "energy.balance": ("分表不平衡（损耗或漏损）", "Sub-meter imbalance (loss or leak)"),
    "energy.demand": ("15 分钟需量将超合同最大需量", "15-minute demand heading past the contracted maximum"),
}


def balance(
    conn: psycopg.Connection, *, site: str, start: datetime, end: datetime, bucket: str = "15min"
) -> list[dict[str, Any]]:
    """Per parent meter and bucket: parent quantity, sum of direct children, loss and loss % of the parent."""
    s = site_of(conn, site)
    lo, hi = window(start, end, bucket, s.timezone)
    meters = [m for m in meters_of(conn, s.id) if m.formula is None]
    children: dict[int, list[int]] = defaultdict(list)
    for m in meters:
        if m.parent_id is not None:
            children[m.parent_id].append(m.id)
    data = per_meter(conn, meter_ids=[m.id for m in meters], start=lo, end=hi, bucket=bucket, timezone=s.timezone)
    buckets = sorted({b for _mid, b in data})
    out = []
    for m in meters:
        if m.id not in children:
            continue
        for b in buckets:
            parent = data.get((m.id, b))
            if parent is None:
                continue
            kids = sum(data[(c, b)][0] for c in children[m.id] if (c, b) in data)
            loss = parent[0] - kids
            out.append(
                {
                    "meter": m.code,
                    "name": m.name,
                    "medium": m.medium,
                    "unit": MEDIUM_UNIT[m.medium],
                    "bucket": b.isoformat(),
                    "parent": parent[0],
                    "children": kids,
                    "loss": loss,
                    "loss_pct": None if parent[0] <= 0 else 100.0 * loss / parent[0],
                }
            )
    return out


def flow(
    conn: psycopg.Connection, *, site: str, start: datetime, end: datetime, medium: str = "electricity"
) -> dict[str, Any]:
    """Sankey of the meter tree of one medium: parent -> children, leaf -> its area, parent - sum of children ->
    a loss/unmetered node (negative remainders, children above their parent, are left out and listed)."""
    s = site_of(conn, site)
    lo, hi = window(start, end, "hour", s.timezone)
    meters = [m for m in meters_of(conn, s.id) if m.formula is None and m.medium == medium]
    totals: dict[int, float] = defaultdict(float)
    for (mid, _b), row in per_meter(
        conn, meter_ids=[m.id for m in meters], start=lo, end=hi, bucket="hour", timezone=s.timezone
    ).items():
        totals[mid] += row[0]
    children: dict[int, list] = defaultdict(list)
    for m in meters:
        if m.parent_id is not None:
            children[m.parent_id].append(m)
    nodes: dict[str, dict[str, str]] = {}
    links: list[dict[str, Any]] = []
    over: list[str] = []

    def node(name: str, label: str, kind: str) -> str:
        nodes.setdefault(name, {"name": name, "label": label, "kind": kind})
        return name

    for m in meters:
        src = node(f"meter:{m.code}", m.name, "meter")
        kids = children.get(m.id, [])
        if kids:
            for c in kids:
                if totals[c.id] > 0:
                    links.append(
                        {"source": src, "target": node(f"meter:{c.code}", c.name, "meter"), "value": totals[c.id]}
                    )
            rest = totals[m.id] - sum(totals[c.id] for c in kids)
            if rest > 0:
                links.append(
                    {"source": src, "target": node(f"loss:{m.code}", f"{m.name} 损耗/未计量", "loss"), "value": rest}
                )
            elif rest < 0:
                over.append(m.code)
        elif totals[m.id] > 0:
            area = m.area or UNASSIGNED
            links.append(
                {
                    "source": src,
                    "target": node(f"area:{area}", m.area_name or "未分配区域", "area"),
                    "value": totals[m.id],
                }
            )
    return {"unit": MEDIUM_UNIT[medium], "nodes": list(nodes.values()), "links": links, "children_exceed_parent": over}


# --- findings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    rule: str
    subject: SubjectRef
    severity: Severity
    message: str
    value: float | None = None
    details: dict[str, Any] | None = None


def _device_of(conn: psycopg.Connection, meter_id: int) -> str | None:
    row = execute(
        conn,
        "SELECT d.code FROM meter m JOIN point p ON p.id = m.point_id "
        "JOIN device d ON d.id = p.device_id WHERE m.id = %s",
        (meter_id,),
    ).fetchone()
    return row[0] if row else None


def balance_conditions(conn: psycopg.Connection, *, site: str, now: datetime) -> list[Condition]:
    """Parents whose loss % stayed above their limit over every closed interval of the hold time."""
    s = site_of(conn, site)
    out = []
    limits = execute(
        conn,
        """
        SELECT m.id, m.code, m.name, a.code, l.loss_pct_max, l.hold_minutes
        FROM energy_balance_limit l JOIN meter m ON m.id = l.meter_id LEFT JOIN area a ON a.id = m.area_id
        WHERE m.site_id = %s AND m.retired_at IS NULL""",
        (s.id,),
    ).fetchall()
    for mid, code, name, area, limit, hold in limits:
        end = now - (now - datetime(1970, 1, 1, tzinfo=now.tzinfo)) % SLOT  # start of the open interval
        start = end - timedelta(minutes=hold)
        rows = execute(
            conn,
            """
            SELECT p.start, p.quantity, coalesce(sum(c.quantity), 0), bool_and(p.quality = 'measured'),
                   coalesce(bool_and(c.quality = 'measured'), true)
            FROM energy_interval p
            LEFT JOIN meter cm ON cm.parent_id = p.meter_id AND cm.retired_at IS NULL
            LEFT JOIN energy_interval c ON c.meter_id = cm.id AND c.start = p.start
            WHERE p.meter_id = %s AND p.start >= %s AND p.start < %s
            GROUP BY p.start, p.quantity ORDER BY p.start""",
            (mid, start, end),
        ).fetchall()
        complete = len(rows) == hold // 15 and all(r[3] and r[4] for r in rows)
        pcts = [100.0 * (r[1] - r[2]) / r[1] for r in rows if r[1] > 0]
        above = complete and len(pcts) == len(rows) and all(abs(p) > limit for p in pcts)
        subject = SubjectRef(site=site, area=area, device=_device_of(conn, mid))
        mean = sum(pcts) / len(pcts) if pcts else None
        out.append(
            Condition(
                "energy.balance",
                subject,
                Severity.MEDIUM if above else Severity.NORMAL,
                f"{name}（{code}）与分表之差 {mean:.1f}% 持续 {hold} 分钟，超过 {limit:g}% / "
                f"{code}: parent vs sub-meters differ by {mean:.1f}% for {hold} min (limit {limit:g}%)"
                if above and mean is not None
                else f"{name}（{code}）分表平衡正常 / {code} balanced",
                mean,
                {"meter": code, "limit_pct": limit},
            )
        )
    return out


def demand_conditions(conn: psycopg.Connection, *, site: str, now: datetime) -> list[Condition]:
    """Root electricity meters whose projected demand of the current 15-minute interval exceeds the contracted
    maximum of the tariff in force (projection: energy so far plus the latest rate for the rest)."""
    s = site_of(conn, site)
    tariffs = [
        t
        for t in list_tariffs(conn=conn, site_id=s.id, medium="electricity")
        if t.contracted_max_kw and t.valid_from <= now.date() and (t.valid_to is None or now.date() < t.valid_to)
    ]
    if not tariffs:
        return []
    contract = tariffs[-1].contracted_max_kw
    out = []
    slot_start = now - (now - datetime(1970, 1, 1, tzinfo=now.tzinfo)) % SLOT
    for mid, code, name, area, pid, unit in execute(
        conn,
        """
            SELECT m.id, m.code, m.name, a.code, m.point_id, p.unit FROM meter m
            JOIN point p ON p.id = m.point_id LEFT JOIN area a ON a.id = m.area_id
            WHERE m.site_id = %s AND m.medium = 'electricity' AND m.parent_id IS NULL AND m.retired_at IS NULL""",
        (s.id,),
    ).fetchall():
        scale = 1000.0 if unit.lower() == "mwh" else 1.0
        recent = execute(
            conn,
            "SELECT time, value FROM reading WHERE point_id = %s AND time <= %s "
            "AND value IS NOT NULL ORDER BY time DESC LIMIT 2",
            (pid, now),
        ).fetchall()
        before = execute(
            conn,
            "SELECT time, value FROM reading WHERE point_id = %s AND time <= %s "
            "AND value IS NOT NULL ORDER BY time DESC LIMIT 1",
            (pid, slot_start),
        ).fetchone()
        projected = None
        if len(recent) == 2 and before is not None and recent[0][0] > slot_start:
            (t1, v1), (t0, v0) = recent
            rate_kw = max(0.0, (v1 - v0) * scale) / max((t1 - t0).total_seconds(), 1.0) * 3600.0
            so_far = max(0.0, (v1 - before[1]) * scale)
            remaining_h = (slot_start + SLOT - t1).total_seconds() / 3600.0
            projected = (so_far + rate_kw * max(remaining_h, 0.0)) * 4.0
        above = projected is not None and projected > contract
        subject = SubjectRef(site=site, area=area, device=_device_of(conn, mid))
        out.append(
            Condition(
                "energy.demand",
                subject,
                Severity.MEDIUM if above else Severity.NORMAL,
                f"{name}（{code}）本 15 分钟需量预计 {projected:.0f} kW，超过合同最大需量 {contract:g} kW"
                f" / "
                f"{code}: 15-min demand heading to {projected:.0f} kW, contract {contract:g} kW"
                if above
                else f"{name}（{code}）需量正常 / {code} demand within contract",
                projected,
                {"meter": code, "contracted_max_kw": contract},
            )
        )
    return out


def _figures(c: Condition) -> tuple[float | None, float | None, str | None]:
    """(expected, actual, unit) of a raised condition for the energy summary: the loss limit against the mean
    loss (percent of the parent) for a balance finding, the contracted maximum against the projected demand (kW)
    for a demand finding; nothing once back to normal."""
    details = c.details or {}
    if c.severity == Severity.NORMAL or c.value is None:
        return None, None, None
    if c.rule == "energy.balance":
        return details.get("limit_pct"), abs(c.value), "%"
    if c.rule == "energy.demand":
        return details.get("contracted_max_kw"), c.value, "kW"
    return None, None, None


def evaluate(conn: psycopg.Connection, *, site: str, now: datetime) -> list[Finding]:
    """Findings for the energy conditions whose severity changed since the last evaluation (caller's
    transaction; the caller hands them to the alarm engine)."""
    current = balance_conditions(conn, site=site, now=now) + demand_conditions(conn, site=site, now=now)
    out = []
    for c in current:
        row = execute(
            conn, "SELECT severity FROM energy_finding_state WHERE rule = %s AND subject = %s", (c.rule, c.subject.key)
        ).fetchone()
        before = row[0] if row else int(Severity.NORMAL)
        if before == int(c.severity):
            continue
        name, name_en = TITLES[c.rule]
        out.append(
            Finding(
                rule=c.rule,
                detector="energy",
                subject=c.subject,
                severity=c.severity,
                ts=now,
                value=c.value,
                message=c.message,
                details={
                    "name": name,
                    "name_en": name_en,
                    "type": "energy",
                    "plan": [],
                    **(c.details or {}),
                    "finding_id": f"{c.rule}:{c.subject.key}:{now.isoformat()}",
                },
            )
        )
        execute(
            conn,
            """
            INSERT INTO energy_finding_state (rule, subject, site, area, device, meter, severity, message,
                expected, actual, unit, since, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (rule, subject) DO UPDATE SET severity = excluded.severity, message = excluded.message,
                meter = excluded.meter, expected = excluded.expected, actual = excluded.actual,
                unit = excluded.unit, since = excluded.since, updated_at = excluded.updated_at""",
            (
                c.rule,
                c.subject.key,
                c.subject.site,
                c.subject.area,
                c.subject.device,
                (c.details or {}).get("meter"),
                int(c.severity),
                c.message,
                *_figures(c),
                now,
                now,
            ),
        )
    return out
