"""Alarm records in PostgreSQL: findings become ISA-18.2 transitions; people acknowledge, shelve, comment, reset.

Synchronous functions with a keyword-only ``conn``; they never commit (the caller owns the transaction, STYLE.md
B3). ``apply_findings`` runs inside the ingest batch transaction (``record_extra``); the others are what the API
calls, one function per route:

=================================  ===========================================================================
``list_alarms`` / ``get_alarm``    the alarm list (filters) and one alarm with its event timeline, commands
                                   and notifications
``acknowledge`` ``reset``          acknowledge (with a comment), reset a latched alarm
``shelve`` ``unshelve``            shelve with a reason and an expiry (at most ``shelve_max_h``)
``remove_from_service``            out of service with a reason and a permit/MOC reference; ``return_to_service``
``comment``                        a note on the timeline
``kpis`` (``alerts.kpi``)          the ISA-18.2 KPI table
``command_endings``                the ``interlock.failed`` system alarm of commands that ended badly (and
                                   its return to normal when the device confirms a later command)
=================================  ===========================================================================

The read model and the people's actions answer with ``alerts.alarm.Alarm`` (typed, state and priority as
enums); callers that need the dict (API bodies, messages, the console) take ``Alarm.to_dict()``.

Where the rest lives (alerts/ has no import cycle, tests/alerts/test_import_graph.py): the configuration in
``alerts.config_store``, the command machine in ``alerts.commands`` (below this module), manual commands,
bypasses, drills and the worker's command steps in ``alerts.flows`` (above it).

Errors are ``alerts.models.AlarmError`` subclasses with a ``status`` for the HTTP answer (404 not found, 403 not
allowed for the role, 409 not allowed in the alarm's state). Human actions are also written to the audit record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from alerts import commands as machine
from alerts import management, plans, store
from alerts.alarm import Alarm
from alerts.config import AlertConfig, NotifySpec
from alerts.config_store import load_config
from alerts.models import (
    Action,
    Actor,
    AlarmChanged,
    AlarmError,
    AlarmState,
    Event,
    NotFound,
    PermissionDenied,
    Priority,
    Role,
)
from core import audit
from core.model import Finding, Severity, SubjectRef
from core.scope import CodeScope
from core.text import storable, storable_json

_LOGGER = logging.getLogger(__name__)
ENGINE = management.ENGINE
SERVICE = "system:alerts"
FAILED_RULE = "interlock.failed"


# --- findings -> transitions --------------------------------------------------------------------------------


def apply_findings(
    *,
    conn: psycopg.Connection,
    findings: Sequence[Finding],
    now: datetime,
    config: AlertConfig | None = None,
    batch_id: str | None = None,
) -> list[int]:
    """Record findings as alarm transitions, notifications and interlock records; return the event ids.

    A finding above normal raises the alarm of (rule, source), or re-alarms it when more severe; a normal
    finding clears it. Suppression by design, chattering, floods, response plans and the commands the ingest
    stage already sent (``details.decision``) are recorded in the same transaction.
    """
    config = config or load_config(conn=conn)
    events: list[int] = []
    for finding in sorted(findings, key=lambda f: f.ts):
        events += _apply(conn, config, finding, now, batch_id or finding.caused_by)
    return events


def _apply(conn: psycopg.Connection, config: AlertConfig, f: Finding, now: datetime, batch_id: str | None) -> list[int]:
    alarm = store.open_alarm(conn, f.rule, f.subject.key)
    if alarm is None:
        if f.severity == Severity.NORMAL:
            return []
        alarm = store.new_alarm(f, config.attrs(f.rule), drill=bool(f.details.drill))
    if f.severity > Severity.NORMAL and not alarm["condition_active"]:
        event = Event.RAISE
    elif f.severity > Severity.NORMAL:
        if f.severity == alarm["severity"]:
            return []  # nothing new (a restart re-reporting a known state)
        event = Event.SEVERITY_UP if f.severity > alarm["severity"] else Event.SEVERITY_DOWN
    elif alarm["condition_active"]:
        event = Event.CLEAR
    else:
        return []
    alarm.update(value=f.value, message=f.message, level=f.details.level or alarm["level"])
    common = {"at": f.ts, "actor": ENGINE, "cause": f.message, "caused_by": f.details.finding_id, "batch_id": batch_id}
    ids: list[int] = []
    if event is Event.RAISE and (alarm["state"] == AlarmState.NORMAL or AlarmState(alarm["state"]).annunciated):
        cause = management.active_cause(conn, config, alarm)
        if cause is not None:
            ids.append(management.suppress(conn, alarm, cause, f.ts, batch_id))
    outcome, event_id = store.transition(
        conn, alarm, event, severity=f.severity, detail={"score": f.score, "level": f.details.level}, **common
    )
    ids.append(event_id)
    if event is Event.RAISE:
        management.chattering(conn, config, alarm, f.ts)
        ids += management.suppress_dependents(conn, config, alarm, f.ts, batch_id)
    elif event is Event.CLEAR:
        ids += management.release_dependents(conn, config, alarm, f.ts, batch_id)
    if Action.ANNUNCIATE in outcome.actions:
        management.flood(conn, config, alarm, f.ts)
    _respond(conn, config, alarm, f, event_id, outcome.actions, now, batch_id)
    return ids


def _respond(
    conn: psycopg.Connection,
    config: AlertConfig,
    alarm: dict,
    f: Finding,
    event_id: int,
    actions: tuple[Action, ...],
    now: datetime,
    batch_id: str | None,
) -> None:
    """Notifications and interlock records of a finding: a started plan level, else the alarm itself."""
    decision = f.details.decision
    if decision is not None:  # the ingest stage decided (and already sent the commands)
        started = [a for a in (_activation(config, d) for d in decision.plan) if a is not None]
        commands = list(decision.commands)
    else:  # no ingest stage: decide here, the worker sends them
        started = plans.activations(config, f)
        commands = plans.commands(
            config,
            started,
            source_device=f.subject.device,
            now=now,
            bypasses=machine.active_bypasses(conn=conn, now=now),
            drill=alarm["drill"],
        )
    for act in started:
        alarm["plan_level"] = min(alarm["plan_level"] or act.level.level, act.level.level)
        store.outbox(
            conn,
            kind="plan",
            alarm=alarm,
            site=act.site,
            area=act.area,
            notify=act.level.notify,
            title=f"[{act.level.name}] {act.plan.name}: {alarm['title']}",
            title_en=f"[{act.level.name_en or act.level.name}] {act.plan.name_en or act.plan.name}: "
            f"{alarm['title_en'] or alarm['title']}",
            body=management.body(alarm),
            body_en=management.body(alarm),
            event_id=event_id,
            priority=alarm["priority"],
            plan=f"{act.site}/{act.area}",
            plan_level=act.level.level,
            evacuation=act.level.evacuation.model_dump() if act.level.evacuation else None,
            drill=alarm["drill"],
        )
    if started:
        store.save(conn, alarm)
    elif Action.ANNUNCIATE in actions:
        management.notify(conn, config, alarm, event_id)
    if commands:
        ended = machine.record_commands(
            conn=conn,
            commands=commands,
            alarm=alarm,
            event_id=event_id,
            finding_id=f.details.finding_id,
            batch_id=batch_id,
            now=now,
        )
        command_endings(conn=conn, ended=ended, now=now)


def _activation(config: AlertConfig, data: dict) -> plans.Activation | None:
    site, _, area = data["plan"].partition("/")
    plan = config.plans.get((site, area))
    level = next((lv for lv in plan.levels if lv.level == data["level"]), None) if plan else None
    return plans.Activation(site, area, plan, level) if plan and level else None


# --- people --------------------------------------------------------------------------------------------------


def _locked(conn: psycopg.Connection, alarm_id: int, scope: CodeScope | None = None) -> dict[str, Any]:
    """The alarm, locked for this transaction; NotFound when there is none or the caller may not see it."""
    alarm = store.alarm_by_id(conn, alarm_id)
    if alarm is None or (scope is not None and not scope.sees(alarm["site"], alarm["area"])):
        raise NotFound(f"no alarm {alarm_id}")
    return alarm


def versions(*, conn: psycopg.Connection, alarm_ids: Sequence[int]) -> dict[int, int]:
    """The ``version`` of each alarm: the id of its latest event."""
    if not alarm_ids:
        return {}
    return {
        r["alarm_id"]: r["version"]
        for r in store.fetch(
            conn,
            "SELECT alarm_id, max(id) AS version FROM alarm_event WHERE alarm_id = ANY(%s) GROUP BY alarm_id",
            (list(alarm_ids),),
        )
    }


def _seen(conn: psycopg.Connection, alarm_id: int, scope: CodeScope | None, expected_version: int | None) -> None:
    """A person's action through the API: the alarm they may see, as they saw it (checked before anything)."""
    if scope is not None or expected_version is not None:
        check(conn=conn, alarm_id=alarm_id, scope=scope, expected_version=expected_version)


def check(
    *, conn: psycopg.Connection, alarm_id: int, scope: CodeScope | None = None, expected_version: int | None = None
) -> dict[str, Any]:
    """Lock the alarm a person acts on and check that they may see it (else NotFound) and that it is still the
    version they saw (else AlarmChanged, carrying the alarm as it is now); nothing changes before both hold."""
    alarm = _locked(conn, alarm_id, scope)
    if expected_version is not None:
        current = versions(conn=conn, alarm_ids=[alarm_id]).get(alarm_id, 0)
        if expected_version != current:
            raise AlarmChanged(
                alarm_id,
                seen=expected_version,
                current=current,
                alarm=get_alarm(conn=conn, alarm_id=alarm_id, events=False),
            )
    return alarm


def _person(actor: Actor) -> str:
    """What caused a person's event: ``user:<name>``, or the actor's name when it already says what it is (the
    API names its callers ``user:<name>`` or ``key:<prefix>``)."""
    return actor.name if ":" in actor.name else f"user:{actor.name}"


def _human(
    conn: psycopg.Connection,
    alarm_id: int,
    event: Event,
    actor: Actor,
    permission: str,
    now: datetime,
    *,
    cause: str | None,
    detail: dict | None = None,
    prepare=None,
) -> Alarm:
    actor.require(permission)
    alarm = _locked(conn, alarm_id)
    if prepare is not None:
        prepare(alarm)
    outcome, event_id = store.transition(
        conn, alarm, event, at=now, actor=actor.name, cause=cause, caused_by=_person(actor), detail=detail
    )
    if Action.CHECK_SUPPRESSION in outcome.actions or Action.ANNUNCIATE in outcome.actions:
        management.back_in_view(conn, load_config(conn=conn), alarm, outcome, event_id, now)
    audit.append(
        conn,
        actor=actor.name,
        action=f"alarm.{event.value}",
        target=f"alarm:{alarm_id}",
        site=alarm["site"],
        area=alarm["area"],
        detail={
            "rule": alarm["rule"],
            "source": alarm["source"],
            "to": alarm["state"],
            "cause": cause,
            "event_id": event_id,
            **(detail or {}),
        },
    )
    return get_alarm(conn=conn, alarm_id=alarm_id, events=False)


def acknowledge(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    now: datetime,
    comment: str | None = None,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> Alarm:
    """Acknowledge (B -> C, D -> normal, latched unacknowledged -> latched acknowledged)."""
    _seen(conn, alarm_id, scope, expected_version)

    def prepare(alarm: dict) -> None:
        alarm["acked_at"], alarm["acked_by"] = now, actor.name

    return _human(conn, alarm_id, Event.ACK, actor, "ack", now, cause=comment, prepare=prepare)


def reset(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    now: datetime,
    comment: str | None = None,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> Alarm:
    """Reset a latched, acknowledged alarm whose condition is back to normal."""
    _seen(conn, alarm_id, scope, expected_version)
    return _human(conn, alarm_id, Event.RESET, actor, "reset", now, cause=comment)


def shelve(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    reason: str,
    now: datetime,
    duration: timedelta,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> Alarm:
    """Shelve for ``duration`` (at most ``shelve_max_h``); a critical alarm needs an EHS manager."""
    _seen(conn, alarm_id, scope, expected_version)
    if not reason or not reason.strip():
        raise AlarmError("shelving needs a reason")
    limit = load_config(conn=conn).defaults.shelve_max_h
    if not timedelta(0) < duration <= timedelta(hours=limit):
        raise AlarmError(f"shelving must last more than 0 and at most {limit:g} h")
    alarm = _locked(conn, alarm_id)
    if alarm["priority"] >= Priority.CRITICAL and actor.role not in (Role.EHS_MANAGER, Role.ADMIN):
        raise PermissionDenied("shelving a critical alarm needs an EHS manager or an administrator")

    def prepare(row: dict) -> None:
        row["shelved_until"], row["shelved_by"], row["shelve_reason"] = now + duration, actor.name, reason

    return _human(
        conn,
        alarm_id,
        Event.SHELVE,
        actor,
        "shelve",
        now,
        cause=reason,
        prepare=prepare,
        detail={"until": (now + duration).isoformat()},
    )


def unshelve(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> Alarm:
    _seen(conn, alarm_id, scope, expected_version)
    return _human(conn, alarm_id, Event.UNSHELVE, actor, "shelve", now, cause=reason)


def remove_from_service(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    reason: str,
    permit: str,
    now: datetime,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> Alarm:
    """Out of service for maintenance; needs a reason and a work permit or MOC reference."""
    _seen(conn, alarm_id, scope, expected_version)
    if not reason.strip() or not permit.strip():
        raise AlarmError("out of service needs a reason and a permit or MOC reference")

    def prepare(row: dict) -> None:
        row["oos_by"], row["oos_reason"], row["oos_permit"] = actor.name, reason, permit

    return _human(
        conn,
        alarm_id,
        Event.REMOVE_FROM_SERVICE,
        actor,
        "out_of_service",
        now,
        cause=reason,
        prepare=prepare,
        detail={"permit": permit},
    )


def return_to_service(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> Alarm:
    _seen(conn, alarm_id, scope, expected_version)
    return _human(conn, alarm_id, Event.RETURN_TO_SERVICE, actor, "out_of_service", now, cause=reason)


def comment(
    *,
    conn: psycopg.Connection,
    alarm_id: int,
    actor: Actor,
    text: str,
    now: datetime,
    scope: CodeScope | None = None,
    expected_version: int | None = None,
) -> int:
    """Add a note to the alarm's timeline; return the event id."""
    _seen(conn, alarm_id, scope, expected_version)
    actor.require("comment")
    if not text.strip():
        raise AlarmError("an empty comment")
    alarm = _locked(conn, alarm_id)
    event_id = store.event_row(conn, alarm, "comment", at=now, actor=actor.name, cause=text, caused_by=_person(actor))
    audit.append(
        conn,
        actor=actor.name,
        action="alarm.comment",
        target=f"alarm:{alarm_id}",
        site=alarm["site"],
        area=alarm["area"],
        detail={"event_id": event_id, "text": text},
    )
    return event_id


def escalate(*, conn: psycopg.Connection, alarm_id: int, now: datetime, tier: int, notify: NotifySpec) -> int:
    """An unacknowledged alarm past its deadline: record the escalation and queue the next tier's notification."""
    alarm = _locked(conn, alarm_id)
    _, event_id = store.transition(
        conn, alarm, Event.ESCALATE, at=now, actor=SERVICE, cause=f"escalation tier {tier}", detail={"tier": tier}
    )
    store.outbox(
        conn,
        kind="alarm",
        alarm=alarm,
        site=alarm["site"],
        area=alarm["area"],
        notify=notify,
        title=f"[升级 {tier}] {alarm['title']}",
        title_en=f"[Escalation {tier}] {alarm['title_en'] or alarm['title']}",
        body=management.body(alarm),
        body_en=management.body(alarm),
        event_id=event_id,
        priority=alarm["priority"],
        drill=alarm["drill"],
    )
    return event_id


def expire_shelving(*, conn: psycopg.Connection, now: datetime) -> list[int]:
    """Unshelve alarms whose shelving expired (the worker's tick); return their ids."""
    done, config = [], None
    for row in store.fetch(conn, "SELECT id FROM alarm WHERE state = 'shelved' AND shelved_until <= %s", (now,)):
        alarm = _locked(conn, row["id"])
        if alarm["state"] != AlarmState.SHELVED.value:
            continue
        outcome, event_id = store.transition(
            conn, alarm, Event.UNSHELVE, at=now, actor=SERVICE, cause="shelving expired"
        )
        config = config or load_config(conn=conn)
        management.back_in_view(conn, config, alarm, outcome, event_id, now)
        done.append(alarm["id"])
    return done


# --- system alarms --------------------------------------------------------------------------------------------


def raise_system_alarm(
    *,
    conn: psycopg.Connection,
    rule: str,
    subject: SubjectRef,
    severity: Severity,
    message: str,
    caused_by: str,
    at: datetime,
    title: str,
    title_en: str,
    drill: bool = False,
) -> list[int]:
    """Raise (or clear, with ``Severity.NORMAL``) an alarm the service itself detected, e.g. an unconfirmed
    interlock. It goes through the same lifecycle; it starts no response plan."""
    finding = Finding(
        rule=rule,
        detector="system",
        subject=subject,
        severity=severity,
        ts=at,
        message=message,
        details={
            "finding_id": caused_by,
            "name": title,
            "name_en": title_en,
            "type": "system",
            "plan": [],
            "drill": drill,
        },
    )
    return apply_findings(conn=conn, findings=[finding], now=at)


def _command_subject(row: Mapping[str, Any]) -> SubjectRef:
    return SubjectRef(row["site"], row["area"], row["device"])


def command_endings(*, conn: psycopg.Connection, ended: Sequence[machine.Ending], now: datetime) -> None:
    """Commands that ended badly raise the critical ``interlock.failed`` alarm of their device (and name it on
    the command); a command the device confirmed returns that alarm to normal."""
    for end in ended:
        row, subject = end.command, _command_subject(end.command)
        names = {"title": f"联锁未执行: {row['device']}", "title_en": f"Interlock not carried out: {row['device']}"}
        if end.failed:
            raise_system_alarm(
                conn=conn,
                rule=FAILED_RULE,
                subject=subject,
                severity=Severity.CRITICAL,
                message=end.message,
                caused_by=f"command:{row['id']}",
                at=now,
                drill=row["drill"],
                **names,
            )
            alarm = store.fetch_one(
                conn,
                "SELECT id FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL",
                (FAILED_RULE, subject.key),
            )
            if alarm and row.get("alarm_id") is None:
                conn.execute("UPDATE interlock_command SET alarm_id = %s WHERE id = %s", (alarm["id"], row["id"]))
        elif store.fetch_one(
            conn,
            "SELECT 1 FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL AND condition_active",
            (FAILED_RULE, subject.key),
        ):
            raise_system_alarm(
                conn=conn,
                rule=FAILED_RULE,
                subject=subject,
                severity=Severity.NORMAL,
                message=end.message,
                caused_by=f"command:{row['id']}",
                at=now,
                drill=row["drill"],
                **names,
            )


# --- reading ----------------------------------------------------------------------------------------------------


def list_alarms(
    *,
    conn: psycopg.Connection,
    site: str | None = None,
    area: str | None = None,
    states: Sequence[str] | None = None,
    open_only: bool = True,
    min_priority: int | None = None,
    rule: str | None = None,
    drill: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    sites: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    flood_id: int | None = None,
) -> list[Alarm]:
    """Alarms, most urgent and newest first; by default the open ones (anything not back to normal).

    ``sites`` (site codes) and ``areas`` (``site/area`` keys) restrict the list to what a caller may see; alarms
    without an area are site-level and pass ``areas`` (core.scope).
    """
    where, params = store.filters(
        {"site": site, "area": area, "rule": rule, "drill": drill, "flood_id": flood_id},
        sites=sites,
        areas=areas,
        site_level=True,
    )
    if states:
        where.append("state = ANY(%(states)s)")
        params["states"] = [AlarmState(s).value for s in states]
    if open_only:
        where.append("closed_at IS NULL")
    if min_priority is not None:
        where.append("priority >= %(min_priority)s")
        params["min_priority"] = min_priority
    if since is not None:
        where.append("opened_at >= %(since)s")
        params["since"] = since
    if until is not None:
        where.append("opened_at < %(until)s")
        params["until"] = until
    params.update(limit=min(limit, 1000), offset=offset)
    rows = store.fetch(
        conn,
        f"SELECT * FROM alarm WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY priority DESC, coalesce(last_raised_at, opened_at) DESC, id DESC "
        "LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    return [Alarm.from_row(r) for r in rows]


def get_alarm(*, conn: psycopg.Connection, alarm_id: int, events: bool = True) -> Alarm:
    """One alarm with its timeline (events), interlock commands and notifications."""
    row = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (alarm_id,))
    if row is None:
        raise NotFound(f"no alarm {alarm_id}")
    alarm = Alarm.from_row(row)
    if not events:
        return alarm
    return alarm.with_timeline(
        events=store.fetch(conn, "SELECT * FROM alarm_event WHERE alarm_id = %s ORDER BY id", (alarm_id,)),
        commands=store.fetch(
            conn, "SELECT * FROM interlock_command WHERE alarm_id = %s ORDER BY created_at", (alarm_id,)
        ),
        notifications=store.fetch(
            conn, "SELECT * FROM notification_outbox WHERE alarm_id = %s ORDER BY id", (alarm_id,)
        ),
    )


def get_event(*, conn: psycopg.Connection, event_id: int) -> dict[str, Any]:
    """One event of an alarm's timeline."""
    row = store.fetch_one(conn, "SELECT * FROM alarm_event WHERE id = %s", (event_id,))
    if row is None:
        raise NotFound(f"no alarm event {event_id}")
    return row


def list_floods(
    *,
    conn: psycopg.Connection,
    scope: CodeScope | None = None,
    site: str | None = None,
    area: str | None = None,
    open_only: bool | None = None,
    drill: bool | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alarm floods within ``scope`` (filtered in SQL), newest first; ``open_only`` True: ongoing, False: ended."""
    term, params = (scope or CodeScope()).sql()
    return store.fetch(
        conn,
        f"""
        SELECT * FROM alarm_flood WHERE {term}
          AND (%(site)s::text IS NULL OR site = %(site)s) AND (%(area)s::text IS NULL OR area = %(area)s)
          AND (%(open)s::boolean IS NULL OR (ended_at IS NULL) = %(open)s)
          AND (%(drill)s::boolean IS NULL OR drill = %(drill)s)
        ORDER BY started_at DESC, id DESC LIMIT %(limit)s""",  # noqa: S608
        {**params, "site": site, "area": area, "open": open_only, "drill": drill, "limit": limit},
    )


def get_flood(*, conn: psycopg.Connection, flood_id: int, scope: CodeScope | None = None) -> dict[str, Any]:
    """One flood with its alarms (most urgent first), the first one marked ``is_first_out``; NotFound when the
    caller may not see it."""
    flood = store.fetch_one(conn, "SELECT * FROM alarm_flood WHERE id = %s", (flood_id,))
    if flood is None or (scope is not None and not scope.sees(flood["site"], flood["area"])):
        raise NotFound(f"no flood {flood_id}")
    alarms = list_alarms(conn=conn, flood_id=flood_id, open_only=False, limit=1000)
    flood["alarms"] = [{**a.to_dict(), "is_first_out": a.id == flood["first_alarm_id"]} for a in alarms]
    return flood


def open_alarm_conditions(*, conn: psycopg.Connection) -> list[tuple[str, str, Severity, datetime]]:
    """(rule, source, severity, raised at) of every open alarm whose condition is active: the engine restores
    them, and warms their detectors only with what came before them."""
    return [
        (r["rule"], r["source"], Severity(r["severity"]), r["last_raised_at"])
        for r in store.fetch(
            conn,
            "SELECT rule, source, severity, last_raised_at FROM alarm WHERE closed_at IS NULL AND condition_active",
        )
    ]


def keep_failed_finding(*, conn: psycopg.Connection, finding: Finding, batch_id: str | None, error: str) -> None:
    """Keep a finding the alarm record could not take (never dropped silently)."""
    body = {
        **asdict(finding),
        "subject": asdict(finding.subject),
        "severity": int(finding.severity),
        "details": finding.details.as_dict(),
    }
    conn.execute(
        "INSERT INTO finding_dead_letter (batch_id, finding, error) VALUES (%s, %s, %s)",
        (batch_id, orjson.dumps(storable_json(body), default=str).decode(), storable(error)),
    )
