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
commands, bypasses, drills         ``alerts.dispatch``: ``request_command``, ``request_bypass``,
                                   ``approve_bypass``, ``revoke_bypass``, ``start_drill``, ``end_drill``,
                                   ``list_commands``, ``get_command``
=================================  ===========================================================================

Errors are ``alerts.models.AlarmError`` subclasses with a ``status`` for the HTTP answer (404 not found, 403 not
allowed for the role, 409 not allowed in the alarm's state). Human actions are also written to the audit record.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from alerts import plans, store
from alerts.config import AlertConfig, AlertSection, NotifySpec, devices_from_index
from alerts.models import Action, Actor, AlarmError, AlarmState, Event, NotFound, PermissionDenied, Priority, Role
from core import audit
from core.model import Finding, Severity, SubjectRef
from core.registry import PlantIndex, load_index

_LOGGER = logging.getLogger(__name__)
ENGINE = "system:engine"
SERVICE = "system:alerts"


# --- configuration ----------------------------------------------------------------------------------------


def apply_config(*, conn: psycopg.Connection, section: AlertSection, source: str) -> int | None:
    """Store the alert section if it differs from the newest one; return the new revision or None."""
    body = section.model_dump(mode="json", by_alias=True)
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    latest = store.fetch_one(conn, "SELECT sha256 FROM alarm_config ORDER BY id DESC LIMIT 1")
    if latest and latest["sha256"] == digest:
        return None
    return conn.execute("INSERT INTO alarm_config (source, sha256, body) VALUES (%s, %s, %s) RETURNING id",
                        (source, digest, orjson.dumps(body).decode())).fetchone()[0]


def load_config(*, conn: psycopg.Connection, index: PlantIndex | None = None) -> AlertConfig:
    """The newest alert section, resolved against the registry (defaults when none was applied)."""
    row = store.fetch_one(conn, "SELECT id, body FROM alarm_config ORDER BY id DESC LIMIT 1")
    section = AlertSection.model_validate(row["body"]) if row else AlertSection()
    return AlertConfig.build(section, devices_from_index(index or load_index(conn)), revision=row["id"] if row else 0)


# --- findings -> transitions --------------------------------------------------------------------------------


def apply_findings(*, conn: psycopg.Connection, findings: Sequence[Finding], now: datetime,
                   config: AlertConfig | None = None, batch_id: str | None = None) -> list[int]:
    """Record findings as alarm transitions, notifications and interlock records; return the event ids.

    A finding above normal raises the alarm of (rule, source), or re-alarms it when more severe; a normal
    finding clears it. Suppression by design, chattering, floods, response plans and the commands the ingest
    stage already sent (``details["commands"]``) are recorded in the same transaction.
    """
    config = config or load_config(conn=conn)
    events: list[int] = []
    for finding in sorted(findings, key=lambda f: f.ts):
        events += _apply(conn, config, finding, now, batch_id or finding.caused_by)
    return events


def _apply(conn: psycopg.Connection, config: AlertConfig, f: Finding, now: datetime,
           batch_id: str | None) -> list[int]:
    alarm = store.open_alarm(conn, f.rule, f.subject.key)
    if alarm is None:
        if f.severity == Severity.NORMAL:
            return []
        alarm = store.new_alarm(f, config.attrs(f.rule), drill=bool(f.details.get("drill")))
    if f.severity > Severity.NORMAL and not alarm["condition_active"]:
        event = Event.RAISE
    elif f.severity > Severity.NORMAL:
        if f.severity == alarm["severity"]:
            return []                                  # nothing new (a restart re-reporting a known state)
        event = Event.SEVERITY_UP if f.severity > alarm["severity"] else Event.SEVERITY_DOWN
    elif alarm["condition_active"]:
        event = Event.CLEAR
    else:
        return []
    alarm.update(value=f.value, message=f.message, level=f.details.get("level") or alarm["level"])
    common = {"at": f.ts, "actor": ENGINE, "cause": f.message, "caused_by": f.details.get("finding_id"),
              "batch_id": batch_id}
    ids: list[int] = []
    if event is Event.RAISE and AlarmState(alarm["state"]) in (AlarmState.NORMAL,) + _SHOWN:
        cause = _active_cause(conn, config, alarm)
        if cause is not None:
            ids.append(_suppress(conn, alarm, cause, f.ts, batch_id))
    outcome, event_id = store.transition(conn, alarm, event, severity=f.severity,
                                         detail={"score": f.score, "level": f.details.get("level")}, **common)
    ids.append(event_id)
    if event is Event.RAISE:
        _chattering(conn, config, alarm, f.ts)
        ids += _suppress_dependents(conn, config, alarm, f.ts, batch_id)
    elif event is Event.CLEAR:
        ids += _release_dependents(conn, config, alarm, f.ts, batch_id)
    if Action.ANNUNCIATE in outcome.actions:
        _flood(conn, config, alarm, f.ts)
    _respond(conn, config, alarm, f, event_id, outcome.actions, now, batch_id)
    return ids


_SHOWN = tuple(s for s in AlarmState if s.annunciated)


def _respond(conn: psycopg.Connection, config: AlertConfig, alarm: dict, f: Finding, event_id: int,
             actions: tuple[Action, ...], now: datetime, batch_id: str | None) -> None:
    """Notifications and interlock records of a finding: a started plan level, else the alarm itself."""
    from alerts import dispatch  # dispatch imports this module

    if "plan" in f.details:                            # the ingest stage decided (and already sent the commands)
        started = [a for a in (_activation(config, d) for d in f.details["plan"]) if a is not None]
        commands = f.details.get("commands", [])
    else:                                              # no ingest stage: decide here, the worker sends them
        started = plans.activations(config, f)
        commands = plans.commands(config, started, source_device=f.subject.device, now=now,
                                  bypasses=dispatch.active_bypasses(conn=conn, now=now), drill=alarm["drill"])
    for act in started:
        alarm["plan_level"] = min(alarm["plan_level"] or act.level.level, act.level.level)
        store.outbox(conn, kind="plan", alarm=alarm, site=act.site, area=act.area, notify=act.level.notify,
                     title=f"[{act.level.name}] {act.plan.name}: {alarm['title']}",
                     title_en=f"[{act.level.name_en or act.level.name}] {act.plan.name_en or act.plan.name}: "
                              f"{alarm['title_en'] or alarm['title']}",
                     body=_body(alarm), body_en=_body(alarm), event_id=event_id, priority=alarm["priority"],
                     plan=f"{act.site}/{act.area}", plan_level=act.level.level,
                     evacuation=act.level.evacuation.model_dump() if act.level.evacuation else None,
                     drill=alarm["drill"])
    if started:
        store.save(conn, alarm)
    elif Action.ANNUNCIATE in actions:
        store.outbox(conn, kind="alarm", alarm=alarm, site=alarm["site"], area=alarm["area"],
                     notify=config.notify_for(Severity(alarm["severity"])),
                     title=f"[{Priority(alarm['priority']).label}] {alarm['title']}",
                     title_en=f"[{Priority(alarm['priority']).name.title()}] {alarm['title_en'] or alarm['title']}",
                     body=_body(alarm), body_en=_body(alarm), event_id=event_id, priority=alarm["priority"],
                     drill=alarm["drill"])
    if commands:
        dispatch.record_commands(conn=conn, commands=commands, alarm=alarm, event_id=event_id,
                                 finding_id=f.details.get("finding_id"), batch_id=batch_id, now=now)


def _activation(config: AlertConfig, data: dict) -> plans.Activation | None:
    site, _, area = data["plan"].partition("/")
    plan = config.plans.get((site, area))
    level = next((lv for lv in plan.levels if lv.level == data["level"]), None) if plan else None
    return plans.Activation(site, area, plan, level) if plan and level else None


def _body(alarm: dict) -> str:
    where = "/".join(p for p in (alarm["area"], alarm["device"], alarm["point"]) if p)
    return f"{where}: {alarm['message']}"


# --- suppression by design, chattering, floods --------------------------------------------------------------


def _like(pattern: str) -> str:
    return pattern.replace("%", r"\%").replace("_", r"\_").replace("*", "%").replace("?", "_")


def _scope_sql(scope: str) -> str:
    return {"device": "site = %(site)s AND area IS NOT DISTINCT FROM %(area)s AND device = %(device)s",
            "area": "site = %(site)s AND area IS NOT DISTINCT FROM %(area)s", "site": "site = %(site)s"}[scope]


def _active_cause(conn: psycopg.Connection, config: AlertConfig, alarm: dict) -> dict | None:
    """The earliest active alarm configured as a cause of this one, in its scope (or None)."""
    found = []
    for spec in config.causes_of(alarm["rule"]):
        found += store.fetch(conn, f"SELECT id, rule, raised_at FROM alarm WHERE closed_at IS NULL AND "  # noqa: S608
                             f"condition_active AND rule LIKE %(rule)s AND id IS DISTINCT FROM %(id)s AND "
                             f"{_scope_sql(spec.scope)}", {**alarm, "rule": _like(spec.rule)})
    return min(found, key=lambda r: (r["raised_at"], r["id"])) if found else None


def _suppress(conn: psycopg.Connection, alarm: dict, cause: dict, at: datetime, batch_id: str | None) -> int:
    alarm["suppressed_by"] = cause["id"]
    _, event_id = store.transition(conn, alarm, Event.SUPPRESS, at=at, actor=ENGINE, batch_id=batch_id,
                                   cause=f"suppressed by design while {cause['rule']} is active",
                                   caused_by=f"alarm:{cause['id']}", detail={"suppressed_by": cause["id"]})
    return event_id


def _dependents(config: AlertConfig, cause_rule: str) -> list[tuple[str, str]]:
    """(dependent rule pattern, scope) of every alarm configured to be suppressed by ``cause_rule``."""
    return [(pattern, spec.scope) for pattern, attrs in config.section.alarms.rules.items()
            for spec in attrs.suppressed_by if fnmatch.fnmatchcase(cause_rule, spec.rule)]


def _suppress_dependents(conn: psycopg.Connection, config: AlertConfig, cause: dict, at: datetime,
                         batch_id: str | None) -> list[int]:
    """The cause is active: hide its consequences in scope, and record which alarm of the group came first."""
    ids: list[int] = []
    group = [cause]
    for pattern, scope in _dependents(config, cause["rule"]):
        rows = store.fetch(conn, f"SELECT id FROM alarm WHERE closed_at IS NULL AND rule LIKE %(pattern)s AND "  # noqa: S608
                           f"id <> %(id)s AND {_scope_sql(scope)}", {**cause, "pattern": _like(pattern)})
        for row in rows:
            dependent = store.alarm_by_id(conn, row["id"])
            if dependent is None:
                continue
            if dependent["condition_active"]:
                group.append(dependent)
            if AlarmState(dependent["state"]).annunciated:
                ids.append(_suppress(conn, dependent, cause, at, batch_id))
    if len(group) > 1:
        first = min(group, key=lambda a: (a["raised_at"] or at, a["id"]))
        if not first["first_out"]:
            first["first_out"] = True
            store.save(conn, first)
        ids.append(store.event_row(conn, cause, "first_out", at=at, actor=ENGINE, caused_by=f"alarm:{first['id']}",
                                   cause=f"first out of {len(group)}: {first['rule']} at {first['source']}",
                                   detail={"first_out": first["id"], "group": [a["id"] for a in group]}))
    return ids


def _release_dependents(conn: psycopg.Connection, config: AlertConfig, cause: dict, at: datetime,
                        batch_id: str | None) -> list[int]:
    """The cause is back to normal: show what it hid, unless another configured cause is still active."""
    ids: list[int] = []
    for row in store.fetch(conn, "SELECT id FROM alarm WHERE closed_at IS NULL AND state = 'suppressed' AND "
                           "suppressed_by = %s", (cause["id"],)):
        dependent = store.alarm_by_id(conn, row["id"])
        if dependent is None:
            continue
        other = _active_cause(conn, config, dependent)
        if other is not None:
            ids.append(_suppress(conn, dependent, other, at, batch_id))
            continue
        outcome, event_id = store.transition(conn, dependent, Event.UNSUPPRESS, at=at, actor=ENGINE,
                                             batch_id=batch_id, caused_by=f"alarm:{cause['id']}",
                                             cause=f"{cause['rule']} returned to normal")
        ids.append(event_id)
        if Action.ANNUNCIATE in outcome.actions:
            _notify_alarm(conn, config, dependent, event_id)
    return ids


def _notify_alarm(conn: psycopg.Connection, config: AlertConfig, alarm: dict, event_id: int) -> None:
    store.outbox(conn, kind="alarm", alarm=alarm, site=alarm["site"], area=alarm["area"],
                 notify=config.notify_for(Severity(max(alarm["severity"], 1))),
                 title=f"[{Priority(alarm['priority']).label}] {alarm['title']}",
                 title_en=f"[{Priority(alarm['priority']).name.title()}] {alarm['title_en'] or alarm['title']}",
                 body=_body(alarm), body_en=_body(alarm), event_id=event_id, priority=alarm["priority"],
                 drill=alarm["drill"])


def _chattering(conn: psycopg.Connection, config: AlertConfig, alarm: dict, at: datetime) -> None:
    """Mark an alarm that keeps coming back (standards.md 1.3: each needs an action plan; KPI target 0)."""
    d = config.defaults
    n = conn.execute("SELECT count(*) FROM alarm_event WHERE rule = %s AND source = %s AND kind = 'raise' "
                     "AND at > %s AND at <= %s", (alarm["rule"], alarm["source"],
                                                  at - timedelta(seconds=d.chatter_window_s), at)).fetchone()[0]
    if n >= d.chatter_count and not alarm["chattering"]:
        alarm["chattering"] = True
        store.save(conn, alarm)
        store.event_row(conn, alarm, "chattering", at=at, actor=ENGINE,
                        cause=f"{n} activations within {d.chatter_window_s:g} s: tune its deadband or delays")


def _flood(conn: psycopg.Connection, config: AlertConfig, alarm: dict, at: datetime) -> None:
    """Group an area's alarms into one flood record while more than ``flood_start`` arrive per window."""
    d = config.defaults
    window = (alarm["site"], alarm["area"], at - timedelta(seconds=d.flood_window_s), at)
    n = conn.execute("SELECT count(*) FROM alarm_event WHERE annunciated AND site = %s AND area IS NOT DISTINCT "
                     "FROM %s AND at > %s AND at <= %s", window).fetchone()[0]
    flood = store.fetch_one(conn, "SELECT * FROM alarm_flood WHERE site = %s AND area = %s AND ended_at IS NULL "
                            "FOR UPDATE", (alarm["site"], alarm["area"] or ""))
    if flood is not None:
        conn.execute("UPDATE alarm_flood SET alarm_count = alarm_count + 1, peak_per_window = greatest("
                     "peak_per_window, %s) WHERE id = %s", (n, flood["id"]))
        alarm["flood_id"] = flood["id"]
        store.save(conn, alarm)
        return
    if n <= d.flood_start:
        return
    members = store.fetch(conn, "SELECT alarm_id, min(at) AS first FROM alarm_event WHERE annunciated AND site = %s "
                          "AND area IS NOT DISTINCT FROM %s AND at > %s AND at <= %s GROUP BY alarm_id "
                          "ORDER BY first, alarm_id", window)
    flood_id = conn.execute(
        "INSERT INTO alarm_flood (site, area, started_at, alarm_count, peak_per_window, first_alarm_id, drill) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (alarm["site"], alarm["area"] or "", at, n, n, members[0]["alarm_id"], alarm["drill"])).fetchone()[0]
    conn.execute("UPDATE alarm SET flood_id = %s WHERE id = ANY(%s)", (flood_id, [m["alarm_id"] for m in members]))
    alarm["flood_id"] = flood_id
    first = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (members[0]["alarm_id"],))
    store.event_row(conn, alarm, "flood", at=at, actor=ENGINE, caused_by=f"flood:{flood_id}",
                    cause=f"alarm flood in {alarm['area']}: {n} alarms in {d.flood_window_s / 60:g} min; first out "
                          f"{first['title']} ({first['source']})", detail={"flood_id": flood_id, "count": n})
    store.outbox(conn, kind="flood", alarm=first, site=alarm["site"], area=alarm["area"], flood_id=flood_id,
                 notify=config.notify_for(Severity.HIGH), priority=int(Priority.HIGH), drill=alarm["drill"],
                 title=f"报警泛滥: {alarm['area']} {n} 条/{d.flood_window_s / 60:g} 分钟",
                 title_en=f"Alarm flood in {alarm['area']}: {n} alarms in {d.flood_window_s / 60:g} min",
                 body=f"首发报警 {first['title']} ({first['source']})",
                 body_en=f"First out: {first['title_en'] or first['title']} ({first['source']})")


def end_floods(*, conn: psycopg.Connection, now: datetime, config: AlertConfig | None = None) -> list[int]:
    """End floods whose rate fell below ``flood_end`` per window (the worker's tick); return their ids."""
    d = (config or load_config(conn=conn)).defaults
    ended = []
    for flood in store.fetch(conn, "SELECT * FROM alarm_flood WHERE ended_at IS NULL FOR UPDATE"):
        n = conn.execute("SELECT count(*) FROM alarm_event WHERE annunciated AND site = %s AND coalesce(area, '') "
                         "= %s AND at > %s", (flood["site"], flood["area"],
                                              now - timedelta(seconds=d.flood_window_s))).fetchone()[0]
        if n < d.flood_end:
            conn.execute("UPDATE alarm_flood SET ended_at = %s WHERE id = %s", (now, flood["id"]))
            ended.append(flood["id"])
    return ended


# --- people --------------------------------------------------------------------------------------------------


def _locked(conn: psycopg.Connection, alarm_id: int) -> dict[str, Any]:
    alarm = store.alarm_by_id(conn, alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}")
    return alarm


def _human(conn: psycopg.Connection, alarm_id: int, event: Event, actor: Actor, permission: str, now: datetime,
           *, cause: str | None, detail: dict | None = None, prepare=None) -> dict[str, Any]:
    actor.require(permission)
    alarm = _locked(conn, alarm_id)
    if prepare is not None:
        prepare(alarm)
    outcome, event_id = store.transition(conn, alarm, event, at=now, actor=actor.name, cause=cause,
                                         caused_by=f"user:{actor.name}", detail=detail)
    if Action.CHECK_SUPPRESSION in outcome.actions or Action.ANNUNCIATE in outcome.actions:
        config = load_config(conn=conn)
        cause_row = _active_cause(conn, config, alarm) if outcome.state.annunciated else None
        if cause_row is not None:
            _suppress(conn, alarm, cause_row, now, None)
        elif Action.ANNUNCIATE in outcome.actions:
            _notify_alarm(conn, config, alarm, event_id)
    audit.append(conn, actor=actor.name, action=f"alarm.{event.value}", target=f"alarm:{alarm_id}",
                 detail={"rule": alarm["rule"], "source": alarm["source"], "to": alarm["state"], "cause": cause,
                         "event_id": event_id, **(detail or {})})
    return get_alarm(conn=conn, alarm_id=alarm_id, events=False)


def acknowledge(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, now: datetime,
                comment: str | None = None) -> dict[str, Any]:
    """Acknowledge (B -> C, D -> normal, latched unacknowledged -> latched acknowledged)."""
    def prepare(alarm: dict) -> None:
        alarm["acked_at"], alarm["acked_by"] = now, actor.name
    return _human(conn, alarm_id, Event.ACK, actor, "ack", now, cause=comment, prepare=prepare)


def reset(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, now: datetime,
          comment: str | None = None) -> dict[str, Any]:
    """Reset a latched, acknowledged alarm whose condition is back to normal."""
    return _human(conn, alarm_id, Event.RESET, actor, "reset", now, cause=comment)


def shelve(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, reason: str, now: datetime,
           duration: timedelta) -> dict[str, Any]:
    """Shelve for ``duration`` (at most ``shelve_max_h``); a critical alarm needs an EHS manager."""
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
    return _human(conn, alarm_id, Event.SHELVE, actor, "shelve", now, cause=reason, prepare=prepare,
                  detail={"until": (now + duration).isoformat()})


def unshelve(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, now: datetime,
             reason: str | None = None) -> dict[str, Any]:
    return _human(conn, alarm_id, Event.UNSHELVE, actor, "shelve", now, cause=reason)


def remove_from_service(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, reason: str, permit: str,
                        now: datetime) -> dict[str, Any]:
    """Out of service for maintenance; needs a reason and a work permit or MOC reference."""
    if not reason.strip() or not permit.strip():
        raise AlarmError("out of service needs a reason and a permit or MOC reference")

    def prepare(row: dict) -> None:
        row["oos_by"], row["oos_reason"], row["oos_permit"] = actor.name, reason, permit
    return _human(conn, alarm_id, Event.REMOVE_FROM_SERVICE, actor, "out_of_service", now, cause=reason,
                  prepare=prepare, detail={"permit": permit})


def return_to_service(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, now: datetime,
                      reason: str | None = None) -> dict[str, Any]:
    return _human(conn, alarm_id, Event.RETURN_TO_SERVICE, actor, "out_of_service", now, cause=reason)


def comment(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, text: str, now: datetime) -> int:
    """Add a note to the alarm's timeline; return the event id."""
    actor.require("comment")
    if not text.strip():
        raise AlarmError("an empty comment")
    alarm = _locked(conn, alarm_id)
    event_id = store.event_row(conn, alarm, "comment", at=now, actor=actor.name, cause=text,
                               caused_by=f"user:{actor.name}")
    audit.append(conn, actor=actor.name, action="alarm.comment", target=f"alarm:{alarm_id}",
                 detail={"event_id": event_id, "text": text})
    return event_id


def escalate(*, conn: psycopg.Connection, alarm_id: int, now: datetime, tier: int, notify: NotifySpec) -> int:
    """An unacknowledged alarm past its deadline: record the escalation and queue the next tier's notification."""
    alarm = _locked(conn, alarm_id)
    _, event_id = store.transition(conn, alarm, Event.ESCALATE, at=now, actor=SERVICE, cause=f"escalation tier {tier}",
                                   detail={"tier": tier})
    store.outbox(conn, kind="alarm", alarm=alarm, site=alarm["site"], area=alarm["area"], notify=notify,
                 title=f"[升级 {tier}] {alarm['title']}",
                 title_en=f"[Escalation {tier}] {alarm['title_en'] or alarm['title']}",
                 body=_body(alarm), body_en=_body(alarm), event_id=event_id, priority=alarm["priority"],
                 drill=alarm["drill"])
    return event_id


def expire_shelving(*, conn: psycopg.Connection, now: datetime) -> list[int]:
    """Unshelve alarms whose shelving expired (the worker's tick); return their ids."""
    done = []
    for row in store.fetch(conn, "SELECT id FROM alarm WHERE state = 'shelved' AND shelved_until <= %s", (now,)):
        alarm = _locked(conn, row["id"])
        if alarm["state"] != AlarmState.SHELVED.value:
            continue
        outcome, event_id = store.transition(conn, alarm, Event.UNSHELVE, at=now, actor=SERVICE,
                                             cause="shelving expired")
        config = load_config(conn=conn)
        cause_row = _active_cause(conn, config, alarm) if outcome.state.annunciated else None
        if cause_row is not None:
            _suppress(conn, alarm, cause_row, now, None)
        elif Action.ANNUNCIATE in outcome.actions:
            _notify_alarm(conn, config, alarm, event_id)
        done.append(alarm["id"])
    return done


# --- system alarms --------------------------------------------------------------------------------------------


def raise_system_alarm(*, conn: psycopg.Connection, rule: str, subject: SubjectRef, severity: Severity,
                       message: str, caused_by: str, at: datetime, title: str, title_en: str,
                       drill: bool = False) -> list[int]:
    """Raise (or clear, with ``Severity.NORMAL``) an alarm the service itself detected, e.g. an unconfirmed
    interlock. It goes through the same lifecycle; it starts no response plan."""
    finding = Finding(rule=rule, detector="system", subject=subject, severity=severity, ts=at, message=message,
                      details={"finding_id": caused_by, "name": title, "name_en": title_en, "type": "system",
                               "plan": [], "drill": drill})
    return apply_findings(conn=conn, findings=[finding], now=at)


# --- reading ----------------------------------------------------------------------------------------------------


def _present(row: dict[str, Any]) -> dict[str, Any]:
    state = AlarmState(row["state"])
    return {**row, "state_label": state.label, "state_label_en": state.label_en, "state_code": state.code,
            "needs_ack": state.needs_ack, "annunciated": state.annunciated,
            "priority_label": Priority(row["priority"]).label}


def list_alarms(*, conn: psycopg.Connection, site: str | None = None, area: str | None = None,
                states: Sequence[str] | None = None, open_only: bool = True, min_priority: int | None = None,
                rule: str | None = None, drill: bool | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Alarms, newest first; by default the open ones (anything not back to normal)."""
    where, params = ["true"], {}
    for column, value in (("site", site), ("area", area), ("rule", rule), ("drill", drill)):
        if value is not None:
            where.append(f"{column} = %({column})s")
            params[column] = value
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
    rows = store.fetch(conn, f"SELECT * FROM alarm WHERE {' AND '.join(where)} "  # noqa: S608
                       "ORDER BY priority DESC, coalesce(last_raised_at, opened_at) DESC, id DESC "
                       "LIMIT %(limit)s OFFSET %(offset)s", params)
    return [_present(r) for r in rows]


def get_alarm(*, conn: psycopg.Connection, alarm_id: int, events: bool = True) -> dict[str, Any]:
    """One alarm with its timeline (events), interlock commands and notifications."""
    row = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (alarm_id,))
    if row is None:
        raise NotFound(f"no alarm {alarm_id}")
    out = _present(row)
    if events:
        out["events"] = store.fetch(conn, "SELECT * FROM alarm_event WHERE alarm_id = %s ORDER BY id", (alarm_id,))
        out["commands"] = store.fetch(conn, "SELECT * FROM interlock_command WHERE alarm_id = %s ORDER BY created_at",
                                      (alarm_id,))
        out["notifications"] = store.fetch(conn, "SELECT * FROM notification_outbox WHERE alarm_id = %s ORDER BY id",
                                           (alarm_id,))
    return out


def open_alarm_conditions(*, conn: psycopg.Connection) -> list[tuple[str, str, Severity]]:
    """(rule, source, severity) of every open alarm whose condition is active: the engine restores them."""
    return [(r["rule"], r["source"], Severity(r["severity"])) for r in store.fetch(
        conn, "SELECT rule, source, severity FROM alarm WHERE closed_at IS NULL AND condition_active")]


def keep_failed_finding(*, conn: psycopg.Connection, finding: Finding, batch_id: str | None, error: str) -> None:
    """Keep a finding the alarm record could not take (never dropped silently)."""
    body = {**asdict(finding), "subject": asdict(finding.subject), "severity": int(finding.severity)}
    conn.execute("INSERT INTO finding_dead_letter (batch_id, finding, error) VALUES (%s, %s, %s)",
                 (batch_id, orjson.dumps(body, default=str).decode(), error))
