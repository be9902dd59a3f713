"""Alarm management across alarms: suppression by design with first-out, chattering, floods (ISA-18.2 / EEMUA 191).

* Suppression by design: an alarm configured with ``suppressed_by`` causes is suppressed while one of them is
  active in its scope (device, area or site), and comes back by itself when none is; the first alarm of such a
  group is marked first-out.
* Chattering: an alarm that activates ``chatter_count`` times within ``chatter_window_s`` is marked (KPI; it
  needs its deadband or delays tuned).
* Floods: more than ``flood_start`` annunciated alarms within ``flood_window_s`` in an area open one flood record
  (its first-out, count and peak); it ends when the rate falls below ``flood_end``.

Functions take the caller's connection and never commit.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta

import psycopg

from alerts import store
from alerts.config import AlertConfig
from alerts.lifecycle import Outcome
from alerts.models import Action, AlarmState, Event, Priority
from core import db
from core.model import Severity

ENGINE = "system:engine"


def body(alarm: dict) -> str:
    where = "/".join(p for p in (alarm["area"], alarm["device"], alarm["point"]) if p)
    return f"{where}: {alarm['message']}"


def notify(conn: psycopg.Connection, config: AlertConfig, alarm: dict, event_id: int) -> None:
    """Queue the default notification of an alarm presented to operators (by priority, ``alarms.defaults``)."""
    store.outbox(
        conn,
        kind="alarm",
        alarm=alarm,
        site=alarm["site"],
        area=alarm["area"],
        notify=config.notify_for(Severity(max(alarm["severity"], 1))),
        title=f"[{Priority(alarm['priority']).label}] {alarm['title']}",
        title_en=f"[{Priority(alarm['priority']).name.title()}] {alarm['title_en'] or alarm['title']}",
        body=body(alarm),
        body_en=body(alarm),
        event_id=event_id,
        priority=alarm["priority"],
        drill=alarm["drill"],
    )


def back_in_view(
    conn: psycopg.Connection, config: AlertConfig, alarm: dict, outcome: Outcome, event_id: int, at: datetime
) -> None:
    """After unshelving or a return to service: suppress it again if a cause is active, else announce it."""
    cause = active_cause(conn, config, alarm) if outcome.state.annunciated else None
    if cause is not None:
        suppress(conn, alarm, cause, at, None)
    elif Action.ANNUNCIATE in outcome.actions:
        notify(conn, config, alarm, event_id)


def _like(pattern: str) -> str:
    return pattern.replace("%", r"\%").replace("_", r"\_").replace("*", "%").replace("?", "_")


def _scope_sql(scope: str) -> str:
    return {
        "device": "site = %(site)s AND area IS NOT DISTINCT FROM %(area)s AND device = %(device)s",
        "area": "site = %(site)s AND area IS NOT DISTINCT FROM %(area)s",
        "site": "site = %(site)s",
    }[scope]


def active_cause(conn: psycopg.Connection, config: AlertConfig, alarm: dict) -> dict | None:
    """The earliest active alarm configured as a cause of this one, in its scope (or None)."""
    found = []
    for spec in config.causes_of(alarm["rule"]):
        found += store.fetch(
            conn,
            f"SELECT id, rule, raised_at FROM alarm WHERE closed_at IS NULL AND "  # noqa: S608
            f"condition_active AND rule LIKE %(rule)s AND id IS DISTINCT FROM %(id)s AND "
            f"{_scope_sql(spec.scope)}",
            {**alarm, "rule": _like(spec.rule)},
        )
    return min(found, key=lambda r: (r["raised_at"], r["id"])) if found else None


def suppress(conn: psycopg.Connection, alarm: dict, cause: dict, at: datetime, batch_id: str | None) -> int:
    alarm["suppressed_by"] = cause["id"]
    _, event_id = store.transition(
        conn,
        alarm,
        Event.SUPPRESS,
        at=at,
        actor=ENGINE,
        batch_id=batch_id,
        cause=f"suppressed by design while {cause['rule']} is active",
        caused_by=f"alarm:{cause['id']}",
        detail={"suppressed_by": cause["id"]},
    )
    return event_id


def _dependents(config: AlertConfig, cause_rule: str) -> list[tuple[str, str]]:
    """(dependent rule pattern, scope) of every alarm configured to be suppressed by ``cause_rule``."""
    return [
        (pattern, spec.scope)
        for pattern, attrs in config.section.alarms.rules.items()
        for spec in attrs.suppressed_by
        if fnmatch.fnmatchcase(cause_rule, spec.rule)
    ]


def suppress_dependents(
    conn: psycopg.Connection, config: AlertConfig, cause: dict, at: datetime, batch_id: str | None
) -> list[int]:
    """The cause is active: hide its consequences in scope, and record which alarm of the group came first."""
    ids: list[int] = []
    group = [cause]
    for pattern, scope in _dependents(config, cause["rule"]):
        rows = store.fetch(
            conn,
            f"SELECT id FROM alarm WHERE closed_at IS NULL AND rule LIKE %(pattern)s AND "  # noqa: S608
            f"id <> %(id)s AND {_scope_sql(scope)}",
            {**cause, "pattern": _like(pattern)},
        )
        for row in rows:
            dependent = store.alarm_by_id(conn, row["id"])
            if dependent is None:
                continue
            if dependent["condition_active"]:
                group.append(dependent)
            if AlarmState(dependent["state"]).annunciated:
                ids.append(suppress(conn, dependent, cause, at, batch_id))
    if len(group) > 1:
        first = min(group, key=lambda a: (a["raised_at"] or at, a["id"]))
        if not first["first_out"]:
            first["first_out"] = True
            store.save(conn, first)
        ids.append(
            store.event_row(
                conn,
                cause,
                "first_out",
                at=at,
                actor=ENGINE,
                caused_by=f"alarm:{first['id']}",
                cause=f"first out of {len(group)}: {first['rule']} at {first['source']}",
                detail={"first_out": first["id"], "group": [a["id"] for a in group]},
            )
        )
    return ids


def release_dependents(
    conn: psycopg.Connection, config: AlertConfig, cause: dict, at: datetime, batch_id: str | None
) -> list[int]:
    """The cause is back to normal: show what it hid, unless another configured cause is still active."""
    ids: list[int] = []
    for row in store.fetch(
        conn,
        "SELECT id FROM alarm WHERE closed_at IS NULL AND state = 'suppressed' AND suppressed_by = %s",
        (cause["id"],),
    ):
        dependent = store.alarm_by_id(conn, row["id"])
        if dependent is None:
            continue
        other = active_cause(conn, config, dependent)
        if other is not None:
            ids.append(suppress(conn, dependent, other, at, batch_id))
            continue
        outcome, event_id = store.transition(
            conn,
            dependent,
            Event.UNSUPPRESS,
            at=at,
            actor=ENGINE,
            batch_id=batch_id,
            caused_by=f"alarm:{cause['id']}",
            cause=f"{cause['rule']} returned to normal",
        )
        ids.append(event_id)
        if Action.ANNUNCIATE in outcome.actions:
            notify(conn, config, dependent, event_id)
    return ids


def chattering(conn: psycopg.Connection, config: AlertConfig, alarm: dict, at: datetime) -> None:
    """Mark an alarm that keeps coming back (standards.md 1.3: each needs an action plan; KPI target 0)."""
    d = config.defaults
    n = db.execute(
        conn,
        "SELECT count(*) FROM alarm_event WHERE rule = %s AND source = %s AND kind = 'raise' AND at > %s AND at <= %s",
        (alarm["rule"], alarm["source"], at - timedelta(seconds=d.chatter_window_s), at),
    ).fetchone()[0]
    if n >= d.chatter_count and not alarm["chattering"]:
        alarm["chattering"] = True
        store.save(conn, alarm)
        store.event_row(
            conn,
            alarm,
            "chattering",
            at=at,
            actor=ENGINE,
            cause=f"{n} activations within {d.chatter_window_s:g} s: tune its deadband or delays",
        )


def flood(conn: psycopg.Connection, config: AlertConfig, alarm: dict, at: datetime) -> None:
    """Group an area's alarms into one flood record while more than ``flood_start`` arrive per window."""
    d = config.defaults
    window = (alarm["site"], alarm["area"], at - timedelta(seconds=d.flood_window_s), at)
    n = db.execute(
        conn,
        "SELECT count(*) FROM alarm_event WHERE annunciated AND site = %s AND area IS NOT DISTINCT "
        "FROM %s AND at > %s AND at <= %s",
        window,
    ).fetchone()[0]
    flood = store.fetch_one(
        conn,
        "SELECT * FROM alarm_flood WHERE site = %s AND area = %s AND ended_at IS NULL ORDER BY id FOR UPDATE",
        (alarm["site"], alarm["area"] or ""),
    )
    if flood is not None:
        conn.execute(
            "UPDATE alarm_flood SET alarm_count = alarm_count + 1, peak_per_window = greatest("
            "peak_per_window, %s) WHERE id = %s",
            (n, flood["id"]),
        )
        alarm["flood_id"] = flood["id"]
        store.save(conn, alarm)
        return
    if n <= d.flood_start:
        return
    members = store.fetch(
        conn,
        "SELECT alarm_id, min(at) AS first FROM alarm_event WHERE annunciated AND site = %s "
        "AND area IS NOT DISTINCT FROM %s AND at > %s AND at <= %s GROUP BY alarm_id "
        "ORDER BY first, alarm_id",
        window,
    )
    flood_id = db.execute(
        conn,
        "INSERT INTO alarm_flood (site, area, started_at, alarm_count, peak_per_window, first_alarm_id, drill) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (alarm["site"], alarm["area"] or "", at, n, n, members[0]["alarm_id"], alarm["drill"]),
    ).fetchone()[0]
    conn.execute("UPDATE alarm SET flood_id = %s WHERE id = ANY(%s)", (flood_id, [m["alarm_id"] for m in members]))
    alarm["flood_id"] = flood_id
    first = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (members[0]["alarm_id"],))
    store.event_row(
        conn,
        alarm,
        "flood",
        at=at,
        actor=ENGINE,
        caused_by=f"flood:{flood_id}",
        cause=f"alarm flood in {alarm['area']}: {n} alarms in {d.flood_window_s / 60:g} min; first out "
        f"{first['title']} ({first['source']})",
        detail={"flood_id": flood_id, "count": n},
    )
    store.outbox(
        conn,
        kind="flood",
        alarm=first,
        site=alarm["site"],
        area=alarm["area"],
        flood_id=flood_id,
        notify=config.notify_for(Severity.HIGH),
        priority=int(Priority.HIGH),
        drill=alarm["drill"],
        title=f"报警泛滥: {alarm['area']} {n} 条/{d.flood_window_s / 60:g} 分钟",
        title_en=f"Alarm flood in {alarm['area']}: {n} alarms in {d.flood_window_s / 60:g} min",
        body=f"首发报警 {first['title']} ({first['source']})",
        body_en=f"First out: {first['title_en'] or first['title']} ({first['source']})",
    )


def end_floods(*, conn: psycopg.Connection, now: datetime, config: AlertConfig) -> list[int]:
    """End floods whose rate fell below ``flood_end`` per window (the worker's tick); return their ids."""
    d = config.defaults
    ended = []
    for flood in store.fetch(conn, "SELECT * FROM alarm_flood WHERE ended_at IS NULL ORDER BY id FOR UPDATE"):
        n = db.execute(
            conn,
            "SELECT count(*) FROM alarm_event WHERE annunciated AND site = %s AND coalesce(area, '') = %s AND at > %s",
            (flood["site"], flood["area"], now - timedelta(seconds=d.flood_window_s)),
        ).fetchone()[0]
        if n < d.flood_end:
            conn.execute("UPDATE alarm_flood SET ended_at = %s WHERE id = %s", (now, flood["id"]))
            ended.append(flood["id"])
    return ended
