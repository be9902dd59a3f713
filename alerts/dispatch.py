"""Interlock command records: automatic commands, manual ones, drills, bypasses, acknowledgements, retries.

Status of a command: ``pending`` (to be sent by the alerts worker) -> ``issued`` (published, QoS 1) ->
``accepted`` -> ``done``, or ``rejected`` / ``failed`` (said the device) / ``timed_out`` (no confirmation in
time after the bounded retries) / ``skipped`` (bypassed, or a real device in a drill) / ``cancelled`` (not sent
before it would have expired). A command that is rejected, fails or times out raises the critical system alarm
``interlock.failed`` for its device; the next command that device confirms clears it.

Manual commands need a role and a reason; a bypass needs two different people and expires. Both go to the audit
record. Functions take the caller's connection and never commit.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from alerts import plans, service, store
from alerts.config import AlertConfig
from alerts.models import Actor, AlarmError, NotFound, PermissionDenied
from core import audit
from core.commands import ACK_STATUSES
from core.model import Finding, Severity, SubjectRef
from core.text import storable, storable_json

_LOGGER = logging.getLogger(__name__)
FAILED_RULE = "interlock.failed"
OPEN = ("pending", "issued", "accepted")
FINAL = ("done", "rejected", "failed", "timed_out", "skipped", "cancelled")
_RANK = {"pending": 0, "issued": 1, "accepted": 2, "timed_out": 3, "done": 4, "rejected": 4, "failed": 4}
MAX_BYPASS = timedelta(hours=24)


def _iso(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def record_commands(*, conn: psycopg.Connection, commands: list[dict], alarm: dict | None, event_id: int | None,
                    finding_id: str | None, batch_id: str | None, now: datetime, origin: str = "auto",
                    requested_by: str = "system:ingest", reason: str = "") -> None:
    """Store commands decided for an alarm: ``issued`` ones were already published, ``new`` ones wait for the
    worker (``pending``), ``skipped`` ones are kept to show what was not done and why."""
    for c in commands:
        status = {"new": "pending"}.get(c["status"], c["status"])
        issued = _iso(c.get("issued_at"))
        payload = c.get("payload")
        drill = bool(c.get("drill"))
        conn.execute(
            "INSERT INTO interlock_command (id, site, area, device, action, params, origin, drill, status, payload, "
            "issued_at, expires_at, accept_by, done_by, attempts, max_attempts, accept_within_s, done_within_s, "
            "alarm_id, alarm_event_id, finding_id, batch_id, plan, plan_level, requested_by, reason, detail, "
            "finished_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (c["id"], c["site"], c.get("area"), c["device"], c["action"], orjson.dumps(c.get("params", {})).decode(),
             "drill" if drill else origin, drill, status, orjson.dumps(payload).decode() if payload else None,
             issued, _expiry(payload), issued + timedelta(seconds=c["accept_within_s"]) if issued else None,
             issued + timedelta(seconds=c["done_within_s"]) if issued else None, 1 if issued else 0,
             1 + int(c.get("retries", 2)), c["accept_within_s"], c["done_within_s"],
             alarm["id"] if alarm else None, event_id, finding_id, batch_id, c.get("plan"), c.get("plan_level"),
             requested_by, reason, c.get("detail", ""), now if status in FINAL else None))
        _event(conn, c["id"], status, c.get("detail", ""), None, requested_by, issued or now)
        if alarm is not None:
            store.event_row(conn, alarm, "command", at=now, actor=requested_by, caused_by=f"command:{c['id']}",
                            cause=f"{c['action']} -> {c['device']}: {status}" + (f" ({c['detail']})" if c.get("detail")
                                                                                 else ""),
                            detail={"command_id": c["id"], "status": status, "plan": c.get("plan"),
                                    "plan_level": c.get("plan_level")})
        if status in ("issued", "accepted"):
            _catch_up(conn, c["id"], now)
    if any(c["status"] == "new" for c in commands):
        conn.execute("SELECT pg_notify(%s, %s)", (store.COMMAND_CHANNEL, "pending"))


def _expiry(payload: dict | None) -> datetime | None:
    if not payload:
        return None
    return datetime.fromtimestamp(payload["expires_at"] / 1000, UTC)


def _event(conn: psycopg.Connection, command_id: str, status: str, detail: str, state: Any, actor: str,
           at: datetime) -> None:
    conn.execute("INSERT INTO interlock_command_event (command_id, at, status, detail, state, actor) "
                 "VALUES (%s, %s, %s, %s, %s, %s)",
                 (command_id, at, status, detail, orjson.dumps(state).decode() if state is not None else None, actor))


# --- manual commands ---------------------------------------------------------------------------------------


def request_command(*, conn: psycopg.Connection, site: str, device: str, action: str, actor: Actor, reason: str,
                    now: datetime, params: dict | None = None, alarm_id: int | None = None,
                    config: AlertConfig | None = None) -> dict[str, Any]:
    """A person commands an actuator (the worker sends it); needs the command role and a reason."""
    actor.require("command")
    if not reason or not reason.strip():
        raise AlarmError("a manual command needs a reason")
    config = config or service.load_config(conn=conn)
    target = config.actuator(site, device)
    if target is None:
        raise NotFound(f"{site}/{device} is not a declared actuator")
    if action not in target.actions:
        raise AlarmError(f"{device} ({target.kind}) cannot {action}; it can {', '.join(target.actions)}")
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (alarm_id,)) if alarm_id else None
    if alarm_id and alarm is None:
        raise NotFound(f"no alarm {alarm_id}")
    command = {"id": str(uuid.uuid4()), "site": site, "area": target.area, "device": device, "action": action,
               "params": params or {}, "status": "new", "accept_within_s": target.accept_within_s,
               "done_within_s": target.done_within_s, "retries": config.defaults.command_retries}
    record_commands(conn=conn, commands=[command], alarm=alarm, event_id=None, finding_id=None, batch_id=None,
                    now=now, origin="manual", requested_by=actor.name, reason=reason)
    audit.append(conn, actor=actor.name, action="command.issue", target=f"command:{command['id']}",
                 site=site, area=target.area,
                 detail={"site": site, "device": device, "action": action, "params": params or {}, "reason": reason,
                         "alarm_id": alarm_id})
    return get_command(conn=conn, command_id=command["id"])


# --- the worker's side ---------------------------------------------------------------------------------------


def pending(*, conn: psycopg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Commands waiting to be sent, locked for this transaction (several workers never send one twice)."""
    return store.fetch(conn, "SELECT * FROM interlock_command WHERE status = 'pending' ORDER BY created_at "
                       "LIMIT %s FOR UPDATE SKIP LOCKED", (limit,))


def mark_issued(*, conn: psycopg.Connection, command: dict, payload: dict, now: datetime) -> None:
    """The worker published ``payload`` for a pending command (or again, for a retry)."""
    conn.execute("UPDATE interlock_command SET status = 'issued', payload = %s, issued_at = coalesce(issued_at, %s), "
                 "expires_at = %s, attempts = attempts + 1, accept_by = %s, done_by = %s, updated_at = %s "
                 "WHERE id = %s",
                 (orjson.dumps(payload).decode(), now, _expiry(payload),
                  now + timedelta(seconds=command["accept_within_s"]),
                  now + timedelta(seconds=command["done_within_s"]),
                  now, command["id"]))
    _event(conn, command["id"], "issued", f"attempt {command['attempts'] + 1}", None, "system:alerts", now)


def cancel_stale(*, conn: psycopg.Connection, now: datetime, ttl: timedelta) -> list[dict[str, Any]]:
    """Pending commands not sent within their validity are cancelled, never sent late."""
    rows = store.fetch(conn, "UPDATE interlock_command SET status = 'cancelled', finished_at = %s, updated_at = %s, "
                       "detail = 'not sent within its validity' WHERE status = 'pending' AND created_at < %s "
                       "RETURNING *", (now, now, now - ttl))
    for row in rows:
        _event(conn, row["id"], "cancelled", row["detail"], None, "system:alerts", now)
        _failed(conn, row, now, f"{row['action']} to {row['device']} was never sent (the alerts worker was down?)")
    return rows


def apply_ack(*, conn: psycopg.Connection, site: str, device: str, ack: dict, now: datetime) -> dict | None:
    """Record an acknowledgement from ``site/device`` and move its command on; return the command if it changed.

    An acknowledgement for a command of another device is refused (a device cannot confirm someone else's
    interlock). One for a command not stored yet (ingest publishes first, records after) is kept as an event
    and applied by ``reconcile``.
    """
    command_id, status = ack.get("id"), ack.get("status")
    if not isinstance(command_id, str) or status not in ACK_STATUSES:
        raise ValueError("an acknowledgement needs an id and a status of " + ", ".join(ACK_STATUSES))
    try:
        uuid.UUID(command_id)
    except ValueError as exc:
        raise ValueError(f"command id {command_id[:60]!r} is not a UUID") from exc
    detail = storable(ack.get("detail") or "", 2000)       # device text: NUL and lone surrogates escaped
    state = storable_json(ack["state"]) if isinstance(ack.get("state"), dict) else None
    site, device = storable(site, 200), storable(device, 200)
    row = store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s FOR UPDATE", (command_id,))
    if row is not None and (row["site"], row["device"]) != (site, device):
        _LOGGER.warning("acknowledgement of command %s for %s/%s came from %s/%s: ignored", command_id, row["site"],
                        row["device"], site, device)
        _event(conn, command_id, "foreign_ack", f"from {site}/{device}: {status}", state, f"device:{site}/{device}",
               now)
        return None
    _event(conn, command_id, status, detail, state, f"device:{site}/{device}", now)
    return _advance(conn, row, status, detail, state, now) if row is not None else None


def _advance(conn: psycopg.Connection, row: dict, status: str, detail: str, state: Any, now: datetime) -> dict | None:
    current = row["status"]
    if current in ("skipped", "cancelled") or _RANK.get(status, 0) <= _RANK.get(current, 0):
        return None
    late = current == "timed_out"
    final = status in ("done", "rejected", "failed")
    changed = store.fetch_one(
        conn, "UPDATE interlock_command SET status = %s, detail = %s, device_state = coalesce(%s, device_state), "
        "finished_at = CASE WHEN %s THEN %s ELSE finished_at END, updated_at = %s WHERE id = %s RETURNING *",
        (status, (f"confirmed late: {detail}" if late else detail), orjson.dumps(state).decode() if state else None,
         final, now, now, row["id"]))
    if status in ("rejected", "failed"):
        _failed(conn, changed, now, f"{row['action']} to {row['device']} {status}: {detail or 'no reason given'}")
    elif status == "done":
        _confirmed(conn, changed, now)
    return changed


def reconcile(*, conn: psycopg.Connection, now: datetime) -> int:
    """Apply acknowledgements that arrived before their command was stored (the ingest/worker race)."""
    moved = 0
    for row in store.fetch(conn, "SELECT c.* FROM interlock_command c WHERE c.status IN ('issued', 'accepted', "
                           "'timed_out') AND EXISTS (SELECT 1 FROM interlock_command_event e WHERE e.command_id = c.id "
                           "AND e.status IN ('accepted', 'done', 'rejected', 'failed') AND e.actor LIKE 'device:%%' "
                           "AND e.at >= c.updated_at - interval '1 minute') FOR UPDATE OF c SKIP LOCKED"):
        moved += _catch_up(conn, row["id"], now, row)
    return moved


def _catch_up(conn: psycopg.Connection, command_id: str, now: datetime, row: dict | None = None) -> int:
    row = row or store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s FOR UPDATE", (command_id,))
    moved = 0
    for event in store.fetch(conn, "SELECT * FROM interlock_command_event WHERE command_id = %s AND actor = %s "
                             "ORDER BY id", (command_id, f"device:{row['site']}/{row['device']}")):
        changed = _advance(conn, row, event["status"], event["detail"], event["state"], now)
        if changed is not None:
            row, moved = changed, moved + 1
    return moved


def retries_due(*, conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Issued commands not accepted in time that may be sent again (same id and signature: idempotent)."""
    return store.fetch(conn, "SELECT * FROM interlock_command WHERE status = 'issued' AND accept_by <= %s AND "
                       "attempts < max_attempts AND expires_at > %s FOR UPDATE SKIP LOCKED", (now, now))


def time_out(*, conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Commands not confirmed in time after their retries: timed out, and a critical alarm each."""
    rows = store.fetch(conn, "UPDATE interlock_command SET status = 'timed_out', finished_at = %s, updated_at = %s, "
                       "detail = CASE WHEN status = 'issued' THEN 'not accepted after ' || attempts || ' attempt(s)' "
                       "ELSE 'accepted but not done in time' END "
                       "WHERE (status = 'issued' AND accept_by <= %s AND (attempts >= max_attempts "
                       "OR expires_at <= %s)) OR (status = 'accepted' AND done_by <= %s) RETURNING *",
                       (now, now, now, now, now))
    for row in rows:
        _event(conn, row["id"], "timed_out", row["detail"], None, "system:alerts", now)
        _failed(conn, row, now, f"{row['action']} to {row['device']} not confirmed: {row['detail']}")
    return rows


def _subject(row: dict) -> SubjectRef:
    return SubjectRef(row["site"], row["area"], row["device"])


def _failed(conn: psycopg.Connection, row: dict, now: datetime, message: str) -> None:
    service.raise_system_alarm(conn=conn, rule=FAILED_RULE, subject=_subject(row), severity=Severity.CRITICAL,
                               message=message, caused_by=f"command:{row['id']}", at=now, drill=row["drill"],
                               title=f"联锁未执行: {row['device']}",
                               title_en=f"Interlock not carried out: {row['device']}")
    alarm = store.fetch_one(conn, "SELECT id FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL",
                            (FAILED_RULE, _subject(row).key))
    if alarm and row.get("alarm_id") is None:
        conn.execute("UPDATE interlock_command SET alarm_id = %s WHERE id = %s", (alarm["id"], row["id"]))


def _confirmed(conn: psycopg.Connection, row: dict, now: datetime) -> None:
    """A device confirmed a command: an open ``interlock.failed`` alarm of that device returns to normal."""
    if store.fetch_one(conn, "SELECT 1 FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL "
                       "AND condition_active", (FAILED_RULE, _subject(row).key)):
        service.raise_system_alarm(conn=conn, rule=FAILED_RULE, subject=_subject(row), severity=Severity.NORMAL,
                                   message=f"{row['action']} confirmed by {row['device']}",
                                   caused_by=f"command:{row['id']}", at=now, drill=row["drill"],
                                   title=f"联锁未执行: {row['device']}",
                                   title_en=f"Interlock not carried out: {row['device']}")


# --- bypasses ------------------------------------------------------------------------------------------------


def _device_area(conn: psycopg.Connection, site: str, device: str) -> str | None:
    """The area code of a device (what the audit record is scoped by)."""
    row = store.fetch_one(conn, "SELECT a.code FROM device d JOIN site s ON s.id = d.site_id "
                          "JOIN area a ON a.id = d.area_id WHERE s.code = %s AND d.code = %s", (site, device))
    return row["code"] if row else None


def request_bypass(*, conn: psycopg.Connection, site: str, device: str, actor: Actor, reason: str,
                   duration: timedelta, now: datetime, action: str | None = None,
                   config: AlertConfig | None = None) -> dict[str, Any]:
    """Ask to bypass automatic commands to an actuator; it takes effect only when someone else approves."""
    actor.require("bypass_request")
    if not reason or not reason.strip():
        raise AlarmError("a bypass needs a reason")
    if not timedelta(0) < duration <= MAX_BYPASS:
        raise AlarmError(f"a bypass must expire within {MAX_BYPASS.total_seconds() / 3600:g} h")
    target = (config or service.load_config(conn=conn)).actuator(site, device)
    if target is None:
        raise NotFound(f"{site}/{device} is not a declared actuator")
    if action is not None and action not in target.actions:
        raise AlarmError(f"{device} has no action {action}")
    row = store.fetch_one(conn, "INSERT INTO interlock_bypass (site, device, action, reason, duration_s, requested_by, "
                          "requested_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
                          (site, device, action, reason, int(duration.total_seconds()), actor.name, now))
    audit.append(conn, actor=actor.name, action="bypass.request", target=f"bypass:{row['id']}",
                 site=site, area=target.area,
                 detail={"site": site, "device": device, "action": action, "reason": reason,
                         "duration_s": row["duration_s"]})
    return row


def approve_bypass(*, conn: psycopg.Connection, bypass_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """A second person approves: the bypass runs from now for its duration."""
    actor.require("bypass_approve")
    row = store.fetch_one(conn, "SELECT * FROM interlock_bypass WHERE id = %s FOR UPDATE", (bypass_id,))
    if row is None:
        raise NotFound(f"no bypass {bypass_id}")
    if row["requested_by"] == actor.name:
        raise PermissionDenied("a bypass needs two different people: the requester cannot approve it")
    if row["approved_by"] or row["revoked_by"]:
        raise AlarmError("this bypass was already approved or revoked")
    row = store.fetch_one(conn, "UPDATE interlock_bypass SET approved_by = %s, approved_at = %s, "
                          "expires_at = %s + make_interval(secs => duration_s) WHERE id = %s RETURNING *",
                          (actor.name, now, now, bypass_id))
    conn.execute("SELECT pg_notify('interlock_bypass', %s)", (str(bypass_id),))
    audit.append(conn, actor=actor.name, action="bypass.approve", target=f"bypass:{bypass_id}",
                 site=row["site"], area=_device_area(conn, row["site"], row["device"]),
                 detail={"site": row["site"], "device": row["device"], "action": row["action"],
                         "requested_by": row["requested_by"], "expires_at": row["expires_at"].isoformat()})
    return row


def revoke_bypass(*, conn: psycopg.Connection, bypass_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """End a bypass early (or withdraw a request)."""
    actor.require("bypass_request")
    row = store.fetch_one(conn, "UPDATE interlock_bypass SET revoked_by = %s, revoked_at = %s WHERE id = %s AND "
                          "revoked_by IS NULL RETURNING *", (actor.name, now, bypass_id))
    if row is None:
        raise NotFound(f"no bypass {bypass_id} in force")
    conn.execute("SELECT pg_notify('interlock_bypass', %s)", (str(bypass_id),))
    audit.append(conn, actor=actor.name, action="bypass.revoke", target=f"bypass:{bypass_id}",
                 site=row["site"], area=_device_area(conn, row["site"], row["device"]),
                 detail={"site": row["site"], "device": row["device"]})
    return row


def active_bypasses(*, conn: psycopg.Connection, now: datetime) -> list[plans.Bypass]:
    return [plans.Bypass(r["id"], r["site"], r["device"], r["action"], r["expires_at"]) for r in store.fetch(
        conn, "SELECT * FROM interlock_bypass WHERE approved_by IS NOT NULL AND revoked_by IS NULL AND expires_at > %s",
        (now,))]


def list_bypasses(*, conn: psycopg.Connection, now: datetime, active_only: bool = True) -> list[dict[str, Any]]:
    where = "revoked_by IS NULL AND (expires_at IS NULL OR expires_at > %(now)s)" if active_only else "true"
    return store.fetch(conn, f"SELECT * FROM interlock_bypass WHERE {where} ORDER BY id DESC", {"now": now})  # noqa: S608


# --- drills --------------------------------------------------------------------------------------------------


def start_drill(*, conn: psycopg.Connection, site: str, area: str, level: int, actor: Actor, reason: str,
                now: datetime, config: AlertConfig | None = None) -> dict[str, Any]:
    """Run a response plan level as a drill: a drill alarm, notifications and evacuation marked as drill, and
    commands to simulated actuators only (real ones are kept as skipped)."""
    actor.require("drill")
    config = config or service.load_config(conn=conn)
    plan = config.plans.get((site, area))
    chosen = next((lv for lv in plan.levels if lv.level == level), None) if plan else None
    if chosen is None:
        raise NotFound(f"no response plan level {level} for {site}/{area}")
    act = plans.Activation(site, area, plan, chosen)
    commands = plans.commands(config, [act], source_device=None, now=now, drill=True)
    finding = Finding(rule="drill", detector="drill", subject=SubjectRef(site, area),
                      severity=Severity[chosen.min_severity.upper()], ts=now, message=f"演练 drill: {reason}",
                      details={"finding_id": f"drill:{uuid.uuid4().hex}",
                               "name": f"应急演练: {plan.name} {chosen.name}",
                               "name_en": f"Drill: {plan.name_en or plan.name} {chosen.name_en or chosen.name}",
                               "type": "drill", "drill": True, "previous": 0, "plan": [act.as_dict()],
                               "commands": commands})
    service.apply_findings(conn=conn, findings=[finding], now=now, config=config)
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE rule = 'drill' AND source = %s AND closed_at IS NULL",
                            (SubjectRef(site, area).key,))
    audit.append(conn, actor=actor.name, action="drill.start", target=f"alarm:{alarm['id']}",
                 site=site, area=area, detail={"site": site, "area": area, "level": level, "reason": reason,
                         "commands": {c["device"]: c["status"] for c in commands}})
    return service.get_alarm(conn=conn, alarm_id=alarm["id"])


def end_drill(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """End a drill: its alarm returns to normal and is acknowledged by the person ending it."""
    actor.require("drill")
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s AND rule = 'drill'", (alarm_id,))
    if alarm is None:
        raise NotFound(f"no drill alarm {alarm_id}")
    subject = SubjectRef(alarm["site"], alarm["area"])
    service.apply_findings(conn=conn, findings=[Finding(
        rule="drill", detector="drill", subject=subject, severity=Severity.NORMAL, ts=now, message="drill ended",
        details={"finding_id": f"drill-end:{uuid.uuid4().hex}", "plan": [], "drill": True})], now=now)
    current = store.fetch_one(conn, "SELECT state FROM alarm WHERE id = %s", (alarm_id,))
    if current["state"] != "normal":
        service.acknowledge(conn=conn, alarm_id=alarm_id, actor=actor, now=now, comment="drill ended")
    audit.append(conn, actor=actor.name, action="drill.end", target=f"alarm:{alarm_id}", detail={},
                 site=alarm["site"], area=alarm["area"])
    return service.get_alarm(conn=conn, alarm_id=alarm_id)


# --- reading ---------------------------------------------------------------------------------------------------


def list_commands(*, conn: psycopg.Connection, site: str | None = None, device: str | None = None,
                  alarm_id: int | None = None, status: str | None = None, limit: int = 100,
                  drill: bool | None = None, sites: list[str] | None = None,
                  areas: list[str] | None = None) -> list[dict[str, Any]]:
    """Commands, newest first; ``sites`` (codes) and ``areas`` (``site/area`` keys) restrict them to a scope."""
    where, params = store.filters({"site": site, "device": device, "alarm_id": alarm_id, "status": status,
                                   "drill": drill}, sites=sites, areas=areas)
    params["limit"] = min(limit, 1000)
    return store.fetch(conn, f"SELECT * FROM interlock_command WHERE {' AND '.join(where)} "  # noqa: S608
                       "ORDER BY created_at DESC LIMIT %(limit)s", params)


def get_command(*, conn: psycopg.Connection, command_id: str) -> dict[str, Any]:
    row = store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s", (command_id,))
    if row is None:
        raise NotFound(f"no command {command_id}")
    row["events"] = store.fetch(conn, "SELECT * FROM interlock_command_event WHERE command_id = %s ORDER BY id",
                                (command_id,))
    return row
