"""Compliance of the hazardous-waste record, evaluated periodically, as ``Finding``s for the alarm engine.

Checks (standards.md section 4), each a rule id with its subject:

==========================================  ===================================================================
``hazwaste.storage_time``                   a container stored longer than the site's warning days (default 270
                                            low, 330 medium) or its limit (365, Solid Waste Law Art. 81: high)
``hazwaste.capacity``                       a store at 90 % of its capacity (medium) or full (high)
``hazwaste.incompatible``                   incompatible waste in one store (high; storing it is refused, this
                                            catches a catalogue changed afterwards)
``hazwaste.manifest.receipt_overdue``       the receiver has not confirmed within 5 working days (high)
``hazwaste.manifest.backfill_overdue``      a paper manifest not back-filled within 10 working days (high)
``hazwaste.declaration.monthly``            key-supervision units: last month's declaration due by the 15th
``hazwaste.declaration.quarterly``          simplified units: last quarter's due by the 15th of the next
``hazwaste.declaration.annual``             every unit: last year's due by 31 March (low from 5 days before
                                            a deadline, medium once it has passed)
``hazwaste.dwell``                          the stage model (``hazwaste.dwell``): a step missing or far later
                                            than usual for the waste type, with the likely step named (medium)
==========================================  ===================================================================

``evaluate`` is edge-triggered like the detectors (STYLE.md B4): it keeps the last severity of every (rule,
subject) in ``hw_finding_state`` and returns only changes, including the return to normal. A composition root
passes the findings to ``alerts.service.apply_findings`` in the same transaction (``ehs hazwaste evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from core.db import execute
from core.model import Finding, Severity, SubjectRef
from hazwaste import manifests
from hazwaste.dwell import StageModel, load_events
from hazwaste.workdays import WorkCalendar

TITLES = {
    "hazwaste.storage_time": ("危废贮存超期", "Hazardous waste stored too long"),
    "hazwaste.capacity": ("危废库容量不足", "Hazardous-waste store nearly full"),
    "hazwaste.incompatible": ("不相容危废混存", "Incompatible hazardous waste stored together"),
    "hazwaste.manifest.receipt_overdue": ("转移联单接收超期未确认", "Manifest receipt not confirmed in time"),
    "hazwaste.manifest.backfill_overdue": ("纸质联单超期未补录", "Paper manifest not back-filled in time"),
    "hazwaste.declaration.monthly": ("危废月度申报", "Monthly hazardous-waste declaration"),
    "hazwaste.declaration.quarterly": ("危废季度申报", "Quarterly hazardous-waste declaration"),
    "hazwaste.declaration.annual": ("危废年度申报", "Annual hazardous-waste declaration"),
    "hazwaste.dwell": ("危废流转环节缺失或延迟", "Hazardous-waste step missing or late"),
}
DECLARATION_WARN_DAYS = 5
CAPACITY_WARN = 0.9
DWELL_HISTORY = timedelta(days=730)


@dataclass(frozen=True)
class Condition:
    rule: str
    subject: SubjectRef
    severity: Severity
    message: str
    value: float | None = None
    caused_by: str | None = None


def _sites(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT s.id, s.code, s.timezone, coalesce(h.storage_limit_days, 365) AS limit_days,
                  coalesce(h.warn_days, '{270,330}') AS warn_days, coalesce(h.unit_class, 'key') AS unit_class
           FROM site s LEFT JOIN hw_site_setting h ON h.site_id = s.id
           WHERE EXISTS (SELECT 1 FROM hw_waste_type w WHERE w.site_id = s.id) ORDER BY s.id"""
        )
        .fetchall()
    )


def storage_conditions(conn: psycopg.Connection, site: dict[str, Any], now: datetime) -> list[Condition]:
    out = []
    warn = sorted(site["warn_days"])
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT c.id, c.code, c.first_stored_at, f.code AS facility, f.area FROM hw_container c
           JOIN hw_facility f ON f.id = c.facility_id
           WHERE c.site_id = %s AND c.stage = 'storage_in' AND c.first_stored_at <= %s""",
            (site["id"], now - timedelta(days=warn[0] if warn else site["limit_days"])),
        )
        .fetchall()
    )
    for r in rows:
        days = (now - r["first_stored_at"]).total_seconds() / 86400
        if days >= site["limit_days"]:
            severity = Severity.HIGH
        elif len(warn) > 1 and days >= warn[1]:
            severity = Severity.MEDIUM
        else:
            severity = Severity.LOW
        out.append(
            Condition(
                "hazwaste.storage_time",
                SubjectRef(site["code"], r["area"], f"container:{r['code']}"),
                severity,
                f"容器 {r['code']} 已在 {r['facility']} 贮存 {days:.0f} 天（上限 {site['limit_days']} 天）",
                days,
            )
        )
    return out


def store_conditions(conn: psycopg.Connection, site: dict[str, Any]) -> list[Condition]:
    out = []
    cur = conn.cursor(row_factory=dict_row)
    for f in cur.execute(
        """SELECT f.code, f.area, f.capacity_kg, coalesce(sum(c.weight_kg), 0) AS fill
               FROM hw_facility f JOIN hw_container c ON c.facility_id = f.id AND c.stage = 'storage_in'
               WHERE f.site_id = %s AND f.capacity_kg IS NOT NULL GROUP BY f.id""",
        (site["id"],),
    ).fetchall():
        ratio = f["fill"] / f["capacity_kg"]
        if ratio >= CAPACITY_WARN:
            out.append(
                Condition(
                    "hazwaste.capacity",
                    SubjectRef(site["code"], f["area"], f"facility:{f['code']}"),
                    Severity.HIGH if ratio >= 1 else Severity.MEDIUM,
                    f"{f['code']} 存量 {f['fill']:.0f} kg，容量 {f['capacity_kg']:.0f} kg（{ratio:.0%}）",
                    ratio,
                )
            )
    for f in cur.execute(
        """WITH t AS (SELECT DISTINCT c.facility_id, c.waste_type_id FROM hw_container c
                         JOIN hw_facility f ON f.id = c.facility_id
                         WHERE f.site_id = %s AND c.stage = 'storage_in')
               SELECT f.code, f.area, string_agg(DISTINCT a.code || '/' || b.code, ', ') AS pairs
               FROM t ta JOIN t tb ON tb.facility_id = ta.facility_id AND tb.waste_type_id > ta.waste_type_id
               JOIN hw_waste_type a ON a.id = ta.waste_type_id JOIN hw_waste_type b ON b.id = tb.waste_type_id
               JOIN hw_facility f ON f.id = ta.facility_id
               WHERE a.code = ANY(b.incompatible_with) OR b.code = ANY(a.incompatible_with)
               GROUP BY f.id""",
        (site["id"],),
    ).fetchall():  # pairs of waste types, not of containers
        out.append(
            Condition(
                "hazwaste.incompatible",
                SubjectRef(site["code"], f["area"], f"facility:{f['code']}"),
                Severity.HIGH,
                f"{f['code']} 混存不相容危废：{f['pairs']}",
            )
        )
    return out


def manifest_conditions(conn: psycopg.Connection, now: datetime, calendar: WorkCalendar) -> list[Condition]:
    out = []
    for o in manifests.overdue(conn=conn, now=now, calendar=calendar):
        m = o["manifest"]
        name = m["number"] or f"草稿 {m['id']}"
        what = "接收单位未在 5 个工作日内确认" if o["deadline"] == "receipt" else "纸质联单未在 10 个工作日内补录"
        out.append(
            Condition(
                f"hazwaste.manifest.{o['deadline']}_overdue",
                SubjectRef(o["site"], None, f"manifest:{m['id']}"),
                Severity.HIGH,
                f"联单 {name}：{what}（期限 {o['due'].isoformat()}）",
                caused_by=f"manifest:{m['id']}",
            )
        )
    return out


def _periods(today: date, unit_class: str) -> list[tuple[str, str, date]]:
    """The declarations due around ``today``: (rule, period, deadline) of the last closed periods."""
    out = []
    first = today.replace(day=1)
    if unit_class == "key":
        last_month = first - timedelta(days=1)
        out.append(("hazwaste.declaration.monthly", f"{last_month:%Y-%m}", first.replace(day=15)))
    if unit_class == "simplified":
        q_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        prev = q_start - timedelta(days=1)
        out.append(
            ("hazwaste.declaration.quarterly", f"{prev.year}-Q{(prev.month - 1) // 3 + 1}", q_start.replace(day=15))
        )
    out.append(("hazwaste.declaration.annual", f"{today.year - 1}", date(today.year, 3, 31)))
    return out


def declaration_conditions(conn: psycopg.Connection, site: dict[str, Any], now: datetime) -> list[Condition]:
    today = now.astimezone(ZoneInfo(site["timezone"])).date()
    filed = {r[0] for r in execute(conn, "SELECT period FROM hw_declaration WHERE site_id = %s", (site["id"],))}
    out = []
    for rule, period, deadline in _periods(today, site["unit_class"]):
        if period in filed or today < deadline - timedelta(days=DECLARATION_WARN_DAYS):
            continue
        late = today > deadline
        out.append(
            Condition(
                rule,
                SubjectRef(site["code"], None, f"declaration:{period}"),
                Severity.MEDIUM if late else Severity.LOW,
                f"{period} 申报{'已逾期' if late else '即将到期'}（截止 {deadline.isoformat()}）",
            )
        )
    return out


def dwell_conditions(
    conn: psycopg.Connection, site: dict[str, Any], now: datetime, model: StageModel | None = None
) -> list[Condition]:
    events = load_events(conn=conn, site_id=site["id"], since=now - DWELL_HISTORY)
    if not events:
        return []
    found = (model or StageModel()).fit(events).detect(events, now)
    codes = dict(
        execute(
            conn, "SELECT id, code FROM hw_container WHERE id = ANY(%s)", ([a.container for a in found],)
        ).fetchall()
    )
    return [
        Condition(
            "hazwaste.dwell",
            SubjectRef(site["code"], None, f"container:{codes[a.container]}"),
            Severity.MEDIUM,
            f"容器 {codes[a.container]}：可能缺少 {' → '.join(a.missing)}（{a.detail}）",
            a.p,
        )
        for a in found
    ]


def conditions(
    *, conn: psycopg.Connection, now: datetime, calendar: WorkCalendar | None = None, dwell: bool = True
) -> list[Condition]:
    """Everything that is wrong now, one condition per (rule, subject)."""
    out = manifest_conditions(conn, now, calendar or WorkCalendar())
    for site in _sites(conn):
        out += storage_conditions(conn, site, now) + store_conditions(conn, site)
        out += declaration_conditions(conn, site, now)
        if dwell:
            out += dwell_conditions(conn, site, now)
    return out


def evaluate(
    *, conn: psycopg.Connection, now: datetime, calendar: WorkCalendar | None = None, dwell: bool = True
) -> list[Finding]:
    """The findings that changed since the last evaluation (raised, changed severity, or back to normal)."""
    execute(conn, "SELECT pg_advisory_xact_lock(hashtext('hazwaste.compliance'))")
    current = {(c.rule, c.subject.key): c for c in conditions(conn=conn, now=now, calendar=calendar, dwell=dwell)}
    previous = {
        (r[0], r[1]): r[2:]
        for r in execute(conn, "SELECT rule, subject, severity, message, site, area, device FROM hw_finding_state")
    }
    out: list[Finding] = []
    for key, c in current.items():
        if key not in previous or previous[key][0] != int(c.severity):
            out.append(_finding(c, now))
    for key, (severity, message, site, area, device) in previous.items():
        if key not in current and severity > 0:
            out.append(
                _finding(
                    Condition(key[0], SubjectRef(site, area, device), Severity.NORMAL, f"恢复正常：{message}"), now
                )
            )
    for f in out:
        execute(
            conn,
            """INSERT INTO hw_finding_state (rule, subject, site, area, device, severity, message, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (rule, subject) DO UPDATE SET severity = excluded.severity, message = excluded.message,
                   updated_at = excluded.updated_at""",
            (f.rule, f.subject.key, f.subject.site, f.subject.area, f.subject.device, int(f.severity), f.message, now),
        )
    return out


def _finding(c: Condition, now: datetime) -> Finding:
    name, name_en = TITLES[c.rule]
    return Finding(
        rule=c.rule,
        detector="hazwaste",
        subject=c.subject,
        severity=c.severity,
        ts=now,
        value=c.value,
        message=c.message,
        caused_by=c.caused_by,
        details={
            "name": name,
            "name_en": name_en,
            "type": "hazwaste",
            "plan": [],
            "finding_id": f"{c.rule}:{c.subject.key}:{now.isoformat()}",
        },
    )


def status(*, conn: psycopg.Connection, site_id: int, now: datetime) -> dict[str, Any]:
    """The site's hazardous waste at a glance (the regulator's overview): what is in storage and for how long
    against the site's limit, and the manifests not closed yet, by state."""
    setting = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT coalesce(h.storage_limit_days, 365) AS limit_days, coalesce(h.warn_days, '{270,330}') AS warn_days
           FROM site s LEFT JOIN hw_site_setting h ON h.site_id = s.id WHERE s.id = %s""",
            (site_id,),
        )
        .fetchone()
    )
    limit_days = setting["limit_days"] if setting else 365
    warn = sorted(setting["warn_days"]) if setting and setting["warn_days"] else [limit_days]
    stored = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT count(*) AS containers, coalesce(sum(weight_kg), 0) AS kg, min(first_stored_at) AS oldest,
                  count(*) FILTER (WHERE first_stored_at <= %(warn)s) AS warned,
                  count(*) FILTER (WHERE first_stored_at <= %(limit)s) AS over_limit
           FROM hw_container WHERE site_id = %(site)s AND stage = 'storage_in'""",
            {"site": site_id, "warn": now - timedelta(days=warn[0]), "limit": now - timedelta(days=limit_days)},
        )
        .fetchone()
    )
    manifests = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT state, count(*) AS n FROM hw_manifest WHERE site_id = %s AND closed_at IS NULL
             AND state NOT IN ('closed', 'cancelled') GROUP BY state ORDER BY state""",
            (site_id,),
        )
        .fetchall()
    )
    oldest = stored["oldest"]
    return {
        "limit_days": limit_days,
        "warn_days": warn,
        "containers_in_storage": stored["containers"],
        "kg_in_storage": float(stored["kg"]),
        "containers_warned": stored["warned"],
        "containers_over_limit": stored["over_limit"],
        "oldest_days": round((now - oldest).total_seconds() / 86400, 1) if oldest else None,
        "open_manifests": {r["state"]: r["n"] for r in manifests},
    }


def file_declaration(
    *, conn: psycopg.Connection, site_id: int, period: str, filed_at: datetime, filed_by: str
) -> dict[str, Any] | None:
    """Record that a period's declaration was filed (``period``, ``filed_at``, ``filed_by``); None when the
    period is already filed (nothing is changed)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "INSERT INTO hw_declaration (site_id, period, filed_at, filed_by) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (site_id, period) DO NOTHING RETURNING period, filed_at, filed_by",
            (site_id, period, filed_at, filed_by),
        ).fetchone()
