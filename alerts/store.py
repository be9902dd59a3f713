"""Row-level helpers of the alarm record: lock, transition and save an alarm, append its events, notify.

Every change of an alarm goes through ``transition``: the pure lifecycle decides, this module writes the row
and one append-only ``alarm_event``, and announces it with ``pg_notify('alarm_changed', ...)`` (delivered only
on commit). Functions take the caller's connection and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg

from alerts.config import AlarmRuleSpec, NotifySpec
from alerts.lifecycle import Outcome, next_state
from alerts.models import Action, AlarmState, Event, Priority
from core import channels, db
from core.model import Finding, Severity

COMMAND_CHANNEL = "interlock_command"
PROCESS_EVENTS = (Event.RAISE, Event.CLEAR, Event.SEVERITY_UP, Event.SEVERITY_DOWN)

_COLUMNS = (
    "rule",
    "source",
    "site",
    "area",
    "device",
    "point",
    "rule_type",
    "detector",
    "rule_revision",
    "title",
    "title_en",
    "state",
    "condition_active",
    "severity",
    "priority",
    "latching",
    "alarm_class",
    "level",
    "value",
    "message",
    "raised_at",
    "last_raised_at",
    "cleared_at",
    "activations",
    "acked_at",
    "acked_by",
    "shelved_until",
    "shelved_by",
    "shelve_reason",
    "oos_by",
    "oos_reason",
    "oos_permit",
    "suppressed_by",
    "first_out",
    "chattering",
    "flood_id",
    "plan_level",
    "drill",
    "first_finding_id",
    "updated_at",
    "closed_at",
)


#: Dict rows: the one row helper (core.db), under the names this package's modules use.
fetch = db.fetch_all
fetch_one = db.fetch_one


def filters(
    equal: Mapping[str, Any],
    *,
    sites: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    site_level: bool = False,
) -> tuple[list[str], dict[str, Any]]:
    """WHERE terms and parameters of a list: ``column = value`` for each filter that is given (None: any), and
    the caller's scope, ``sites`` (site codes) and ``areas`` (``site/area`` keys) of a table with ``site`` and
    ``area`` columns; ``site_level``: rows without an area belong to the whole site and pass ``areas``
    (core.scope)."""
    where, params = ["true"], {}
    if sites is not None:
        where.append("site = ANY(%(sites)s)")
        params["sites"] = list(sites)
    if areas is not None:
        where.append(
            "(site || '/' || coalesce(area, '') = ANY(%(areas)s)" + (" OR area IS NULL)" if site_level else ")")
        )
        params["areas"] = list(areas)
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = %({column})s")
            params[column] = value
    return where, params


def lock_source(conn: psycopg.Connection, rule: str, source: str) -> None:
    """Serialise work on one (rule, source) across transactions (two ingest processes, the API, the worker)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"alarm|{rule}|{source}",))


def open_alarm(conn: psycopg.Connection, rule: str, source: str) -> dict[str, Any] | None:
    """The open alarm of (rule, source), locked for this transaction."""
    lock_source(conn, rule, source)
    return fetch_one(
        conn, "SELECT * FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL FOR UPDATE", (rule, source)
    )


def alarm_by_id(conn: psycopg.Connection, alarm_id: int) -> dict[str, Any] | None:
    row = fetch_one(conn, "SELECT rule, source FROM alarm WHERE id = %s", (alarm_id,))
    if row is None:
        return None
    lock_source(conn, row["rule"], row["source"])
    return fetch_one(conn, "SELECT * FROM alarm WHERE id = %s FOR UPDATE", (alarm_id,))


def new_alarm(finding: Finding, attrs: AlarmRuleSpec, *, drill: bool = False) -> dict[str, Any]:
    """An alarm not yet stored, in state normal: ``transition`` inserts it with its first event."""
    s, d = finding.subject, finding.details
    return {
        "id": None,
        "rule": finding.rule,
        "source": s.key,
        "site": s.site,
        "area": s.area,
        "device": s.device,
        "point": s.point,
        "rule_type": d.type,
        "detector": finding.detector,
        "rule_revision": d.rule_revision,
        "title": d.name or finding.rule,
        "title_en": d.name_en,
        "state": AlarmState.NORMAL.value,
        "condition_active": False,
        "severity": 0,
        "priority": 1,
        "latching": attrs.latching,
        "alarm_class": attrs.klass,
        "level": None,
        "value": None,
        "message": "",
        "raised_at": None,
        "last_raised_at": None,
        "cleared_at": None,
        "activations": 0,
        "acked_at": None,
        "acked_by": None,
        "shelved_until": None,
        "shelved_by": None,
        "shelve_reason": None,
        "oos_by": None,
        "oos_reason": None,
        "oos_permit": None,
        "suppressed_by": None,
        "first_out": False,
        "chattering": False,
        "flood_id": None,
        "plan_level": None,
        "drill": drill,
        "first_finding_id": d.finding_id,
        "updated_at": None,
        "closed_at": None,
    }


def save(conn: psycopg.Connection, alarm: dict[str, Any]) -> None:
    values = [alarm[c] for c in _COLUMNS]
    if alarm["id"] is None:
        names = ", ".join(_COLUMNS)
        marks = ", ".join(["%s"] * len(_COLUMNS))
        alarm["id"] = db.execute(
            conn,
            f"INSERT INTO alarm ({names}) VALUES ({marks}) RETURNING id",  # noqa: S608
            values,
        ).fetchone()[0]
    else:
        sets = ", ".join(f"{c} = %s" for c in _COLUMNS)
        conn.execute(f"UPDATE alarm SET {sets} WHERE id = %s", [*values, alarm["id"]])  # noqa: S608


def event_row(
    conn: psycopg.Connection,
    alarm: Mapping[str, Any],
    kind: str,
    *,
    at: datetime,
    actor: str,
    from_state: str | None = None,
    cause: str | None = None,
    caused_by: str | None = None,
    batch_id: str | None = None,
    annunciated: bool = False,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Append one event of ``alarm`` and announce it; return its id."""
    event_id = db.execute(
        conn,
        "INSERT INTO alarm_event (alarm_id, at, kind, from_state, to_state, severity, priority, value, actor, cause, "
        "caused_by, batch_id, annunciated, drill, rule, source, site, area, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            alarm["id"],
            at,
            kind,
            from_state,
            alarm["state"],
            alarm["severity"],
            alarm["priority"],
            alarm["value"],
            actor,
            cause,
            caused_by,
            batch_id,
            annunciated,
            alarm["drill"],
            alarm["rule"],
            alarm["source"],
            alarm["site"],
            alarm["area"],
            orjson.dumps(dict(detail or {})).decode(),
        ),
    ).fetchone()[0]
    # the alarm_changed contract of core.channels (the API's live feed routes on site and area)
    payload = {
        "alarm_id": alarm["id"],
        "event_id": event_id,
        "kind": kind,
        "state": alarm["state"],
        "site": alarm["site"],
        "area": alarm["area"],
        "rule": alarm["rule"],
        "source": alarm["source"],
        "priority": alarm["priority"],
        "drill": alarm["drill"],
        "at": at.isoformat(),
    }
    conn.execute("SELECT pg_notify(%s, %s)", (channels.ALARMS, orjson.dumps(payload).decode()))
    return event_id


def transition(
    conn: psycopg.Connection,
    alarm: dict[str, Any],
    event: Event,
    *,
    at: datetime,
    actor: str,
    severity: Severity | None = None,
    cause: str | None = None,
    caused_by: str | None = None,
    batch_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> tuple[Outcome, int]:
    """Apply ``event`` to ``alarm`` (the dict is updated), save it, append the event.

    Raises IllegalTransition when the lifecycle does not allow the event in the alarm's state.
    """
    before = AlarmState(alarm["state"])
    active = {Event.RAISE: True, Event.SEVERITY_UP: True, Event.SEVERITY_DOWN: True, Event.CLEAR: False}.get(
        event, alarm["condition_active"]
    )
    outcome = next_state(before, event, condition_active=active, latching=alarm["latching"])
    alarm["state"], alarm["condition_active"], alarm["updated_at"] = outcome.state.value, active, at
    if event in PROCESS_EVENTS and severity is not None:
        alarm["severity"] = int(severity)
        if severity > Severity.NORMAL:
            alarm["priority"] = max(alarm["priority"], int(Priority.of(severity)))
    if event is Event.RAISE:
        alarm["raised_at"] = alarm["raised_at"] or at
        alarm["last_raised_at"] = at
        alarm["activations"] += 1
    elif event is Event.CLEAR:
        alarm["cleared_at"] = at
    elif event is Event.UNSHELVE:
        alarm["shelved_until"] = alarm["shelved_by"] = alarm["shelve_reason"] = None
    elif event is Event.RETURN_TO_SERVICE:
        alarm["oos_by"] = alarm["oos_reason"] = alarm["oos_permit"] = None
    elif event is Event.UNSUPPRESS:
        alarm["suppressed_by"] = None
    if outcome.state is AlarmState.NORMAL:
        alarm["closed_at"] = at
    save(conn, alarm)
    event_id = event_row(
        conn,
        alarm,
        event.value,
        at=at,
        actor=actor,
        from_state=before.value,
        cause=cause,
        caused_by=caused_by,
        batch_id=batch_id,
        annunciated=Action.ANNUNCIATE in outcome.actions,
        detail=detail,
    )
    return outcome, event_id


def outbox(
    conn: psycopg.Connection,
    *,
    kind: str,
    alarm: Mapping[str, Any] | None,
    site: str,
    area: str | None,
    notify: NotifySpec,
    title: str,
    body: str,
    title_en: str | None = None,
    body_en: str | None = None,
    event_id: int | None = None,
    priority: int | None = None,
    plan: str | None = None,
    plan_level: int | None = None,
    evacuation: Mapping[str, Any] | None = None,
    flood_id: int | None = None,
    command_id: str | None = None,
    drill: bool = False,
) -> int:
    """Queue one notification intent (the notifier sends it); same transaction as its cause."""
    return db.execute(
        conn,
        "INSERT INTO notification_outbox (kind, alarm_id, alarm_event_id, flood_id, command_id, site, area, priority, "
        "plan, plan_level, recipients, channels, title, title_en, body, body_en, evacuation, drill) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            kind,
            alarm["id"] if alarm else None,
            event_id,
            flood_id,
            command_id,
            site,
            area,
            priority,
            plan,
            plan_level,
            orjson.dumps({"roles": notify.roles, "users": notify.users}).decode(),
            orjson.dumps(notify.channels).decode(),
            title,
            title_en,
            body,
            body_en,
            orjson.dumps(evacuation).decode() if evacuation else None,
            drill,
        ),
    ).fetchone()[0]
