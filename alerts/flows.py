"""Flows of the alarm engine that span its parts: manual commands, bypasses, drills, and the command steps of
the alerts worker with their failure alarms.

On top of the alarm service (``alerts.service``) and the command machine (``alerts.commands``): a manual
command is recorded by the machine; an acknowledgement, a reconciliation, a time-out or a cancellation moves
commands in the machine and the alarm service raises (or clears) ``interlock.failed`` for what they ended; a
drill runs a response plan level through the alarm service. Manual commands need a role and a reason; a
bypass needs two different people and expires. Both go to the audit record. Functions take the caller's
connection and never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts import commands as machine
from alerts import plans, service, store
from alerts.alarm import Alarm
from alerts.config import AlertConfig
from alerts.config_store import load_config
from alerts.decisions import InterlockCommand
from alerts.models import Actor, AlarmError, Conflict, NotFound, PermissionDenied
from core import audit
from core.model import Finding, Severity, SubjectRef
from core.scope import CodeScope

MAX_BYPASS = timedelta(hours=24)


# --- manual commands ---------------------------------------------------------------------------------------
def request_command(
    *,
    conn: psycopg.Connection,
    site: str,
    device: str,
    action: str,
    actor: Actor,
    reason: str,
    now: datetime,
    params: dict | None = None,
    alarm_id: int | None = None,
    config: AlertConfig | None = None,
) -> dict[str, Any]:
    """A person commands an actuator (the worker sends it); needs the command role and a reason."""
    actor.require("command")
    if not reason or not reason.strip():
        raise AlarmError("a manual command needs a reason")
    config = config or load_config(conn=conn)
    target = config.actuator(site, device)
    if target is None:
        raise NotFound(f"{site}/{device} is not a declared actuator")
    if action not in target.actions:
        raise AlarmError(f"{device} ({target.kind}) cannot {action}; it can {', '.join(target.actions)}")
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (alarm_id,)) if alarm_id else None
    if alarm_id and alarm is None:
        raise NotFound(f"no alarm {alarm_id}")
    command = InterlockCommand(
        id=str(uuid.uuid4()),
        site=site,
        area=target.area,
        device=device,
        action=action,
        params=params or {},
        accept_within_s=target.accept_within_s,
        done_within_s=target.done_within_s,
        retries=config.defaults.command_retries,
    )
    ended = machine.record_commands(
        conn=conn,
        commands=[command],
        alarm=alarm,
        event_id=None,
        finding_id=None,
        batch_id=None,
        now=now,
        origin="manual",
        requested_by=actor.name,
        reason=reason,
    )
    service.command_endings(conn=conn, ended=ended, now=now)
    audit.append(
        conn,
        actor=actor.name,
        action="command.issue",
        target=f"command:{command.id}",
        site=site,
        area=target.area,
        detail={
            "site": site,
            "device": device,
            "action": action,
            "params": params or {},
            "reason": reason,
            "alarm_id": alarm_id,
        },
    )
    return machine.get_command(conn=conn, command_id=command.id)


# --- the worker's command steps -----------------------------------------------------------------------------


def apply_ack(*, conn: psycopg.Connection, site: str, device: str, ack: dict, now: datetime) -> dict | None:
    """An acknowledgement from ``site/device`` (``commands.apply_ack``); a command it ends badly raises
    ``interlock.failed``, a confirmation clears it. Return the command if it changed."""
    changed, ended = machine.apply_ack(conn=conn, site=site, device=device, ack=ack, now=now)
    service.command_endings(conn=conn, ended=ended, now=now)
    return changed


def reconcile(*, conn: psycopg.Connection, now: datetime) -> int:
    """Apply acknowledgements that arrived before their command was stored; return how many moves were made."""
    moved, ended = machine.reconcile(conn=conn, now=now)
    service.command_endings(conn=conn, ended=ended, now=now)
    return moved


def time_out(*, conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Commands not confirmed in time after their retries: timed out, and a critical alarm each."""
    ended = machine.time_out(conn=conn, now=now)
    service.command_endings(conn=conn, ended=ended, now=now)
    return [dict(end.command) for end in ended]


def cancel_stale(*, conn: psycopg.Connection, now: datetime, ttl: timedelta) -> list[dict[str, Any]]:
    """Pending commands not sent within their validity are cancelled (never sent late), a critical alarm each."""
    ended = machine.cancel_stale(conn=conn, now=now, ttl=ttl)
    service.command_endings(conn=conn, ended=ended, now=now)
    return [dict(end.command) for end in ended]


# --- bypasses ------------------------------------------------------------------------------------------------

#: A bypass with the area of its device (what scopes it) in one query, never one look-up per row.
_BYPASS = (
    "SELECT b.*, a.code AS area FROM interlock_bypass b LEFT JOIN site s ON s.code = b.site "
    "LEFT JOIN device d ON d.site_id = s.id AND d.code = b.device LEFT JOIN area a ON a.id = d.area_id"
)


def bypass_status(row: dict[str, Any], now: datetime) -> str:
    """``requested`` (waiting for a second person), ``active``, ``expired`` or ``revoked``."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["approved_at"] is None:
        return "requested"
    return "active" if row["expires_at"] > now else "expired"


def _shown(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**row, "status": bypass_status(row, now)}


def get_bypass(
    *, conn: psycopg.Connection, bypass_id: int, now: datetime, scope: CodeScope | None = None, lock: bool = False
) -> dict[str, Any]:
    """One bypass with its area and status; NotFound when there is none or the caller may not see it."""
    row = store.fetch_one(conn, f"{_BYPASS} WHERE b.id = %s" + (" FOR UPDATE OF b" if lock else ""), (bypass_id,))
    if row is None or (scope is not None and not scope.sees(row["site"], row["area"])):
        raise NotFound(f"no bypass {bypass_id}")
    return _shown(row, now)


def list_bypasses(
    *,
    conn: psycopg.Connection,
    now: datetime,
    active_only: bool = True,
    scope: CodeScope | None = None,
    site: str | None = None,
) -> list[dict[str, Any]]:
    """Bypasses (with area and status), newest first: requested and running ones unless ``active_only`` is
    False, of ``site`` if given, within ``scope`` (filtered in SQL)."""
    term, params = (scope or CodeScope()).sql("b.site", "a.code")
    active = "b.revoked_by IS NULL AND (b.expires_at IS NULL OR b.expires_at > %(now)s)" if active_only else "true"
    rows = store.fetch(
        conn,
        f"{_BYPASS} WHERE {active} AND (%(site)s::text IS NULL OR b.site = %(site)s) "  # noqa: S608
        f"AND {term} ORDER BY b.id DESC",
        {**params, "now": now, "site": site},
    )
    return [_shown(r, now) for r in rows]


def request_bypass(
    *,
    conn: psycopg.Connection,
    site: str,
    device: str,
    actor: Actor,
    reason: str,
    duration: timedelta,
    now: datetime,
    action: str | None = None,
    config: AlertConfig | None = None,
    scope: CodeScope | None = None,
) -> dict[str, Any]:
    """Ask to bypass automatic commands to an actuator; it takes effect only when someone else approves."""
    if scope is not None and scope.sites is not None and site not in scope.sites:
        raise PermissionDenied(f"site {site!r} is not in your scope")
    actor.require("bypass_request")
    if not reason or not reason.strip():
        raise AlarmError("a bypass needs a reason")
    if not timedelta(0) < duration <= MAX_BYPASS:
        raise AlarmError(f"a bypass must expire within {MAX_BYPASS.total_seconds() / 3600:g} h")
    target = (config or load_config(conn=conn)).actuator(site, device)
    if target is None:
        raise NotFound(f"{site}/{device} is not a declared actuator")
    if action is not None and action not in target.actions:
        raise AlarmError(f"{device} has no action {action}")
    row = store.fetch_one(
        conn,
        "INSERT INTO interlock_bypass (site, device, action, reason, duration_s, requested_by, "
        "requested_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (site, device, action, reason, int(duration.total_seconds()), actor.name, now),
    )
    row = get_bypass(conn=conn, bypass_id=row["id"], now=now)
    audit.append(
        conn,
        actor=actor.name,
        action="bypass.request",
        target=f"bypass:{row['id']}",
        site=site,
        area=target.area,
        detail={"site": site, "device": device, "action": action, "reason": reason, "duration_s": row["duration_s"]},
    )
    return row


def approve_bypass(
    *, conn: psycopg.Connection, bypass_id: int, actor: Actor, now: datetime, scope: CodeScope | None = None
) -> dict[str, Any]:
    """A second person approves a requested bypass: it runs from now for its duration."""
    actor.require("bypass_approve")
    row = get_bypass(conn=conn, bypass_id=bypass_id, now=now, scope=scope, lock=True)
    if row["status"] != "requested":
        raise Conflict(f"bypass {bypass_id} is {row['status']}, not waiting for approval")
    if row["requested_by"] == actor.name:
        raise PermissionDenied("a bypass needs two different people: the requester cannot approve it")
    conn.execute(
        "UPDATE interlock_bypass SET approved_by = %s, approved_at = %s, "
        "expires_at = %s + make_interval(secs => duration_s) WHERE id = %s",
        (actor.name, now, now, bypass_id),
    )
    row = get_bypass(conn=conn, bypass_id=bypass_id, now=now)
    conn.execute("SELECT pg_notify('interlock_bypass', %s)", (str(bypass_id),))
    audit.append(
        conn,
        actor=actor.name,
        action="bypass.approve",
        target=f"bypass:{bypass_id}",
        site=row["site"],
        area=row["area"],
        detail={
            "site": row["site"],
            "device": row["device"],
            "action": row["action"],
            "requested_by": row["requested_by"],
            "expires_at": row["expires_at"].isoformat(),
        },
    )
    return row


def revoke_bypass(
    *, conn: psycopg.Connection, bypass_id: int, actor: Actor, now: datetime, scope: CodeScope | None = None
) -> dict[str, Any]:
    """End a bypass early (or withdraw a request); one already revoked or expired is a conflict."""
    actor.require("bypass_request")
    row = get_bypass(conn=conn, bypass_id=bypass_id, now=now, scope=scope, lock=True)
    if row["status"] in ("revoked", "expired"):
        raise Conflict(f"bypass {bypass_id} is already {row['status']}")
    conn.execute(
        "UPDATE interlock_bypass SET revoked_by = %s, revoked_at = %s WHERE id = %s", (actor.name, now, bypass_id)
    )
    row = get_bypass(conn=conn, bypass_id=bypass_id, now=now)
    conn.execute("SELECT pg_notify('interlock_bypass', %s)", (str(bypass_id),))
    audit.append(
        conn,
        actor=actor.name,
        action="bypass.revoke",
        target=f"bypass:{bypass_id}",
        site=row["site"],
        area=row["area"],
        detail={"site": row["site"], "device": row["device"]},
    )
    return row


# --- drills --------------------------------------------------------------------------------------------------


def start_drill(
    *,
    conn: psycopg.Connection,
    site: str,
    area: str,
    level: int,
    actor: Actor,
    reason: str,
    now: datetime,
    config: AlertConfig | None = None,
) -> Alarm:
    """Run a response plan level as a drill: a drill alarm, notifications and evacuation marked as drill, and
    commands to simulated actuators only (real ones are kept as skipped)."""
    actor.require("drill")
    config = config or load_config(conn=conn)
    plan = config.plans.get((site, area))
    chosen = next((lv for lv in plan.levels if lv.level == level), None) if plan else None
    if chosen is None:
        raise NotFound(f"no response plan level {level} for {site}/{area}")
    act = plans.Activation(site, area, plan, chosen)
    commands = plans.commands(config, [act], source_device=None, now=now, drill=True)
    finding = Finding(
        rule="drill",
        detector="drill",
        subject=SubjectRef(site, area),
        severity=Severity[chosen.min_severity.upper()],
        ts=now,
        message=f"演练 drill: {reason}",
        details={
            "finding_id": f"drill:{uuid.uuid4().hex}",
            "name": f"应急演练: {plan.name} {chosen.name}",
            "name_en": f"Drill: {plan.name_en or plan.name} {chosen.name_en or chosen.name}",
            "type": "drill",
            "drill": True,
            "previous": 0,
            "plan": [act.as_dict()],
            "commands": [c.as_dict() for c in commands],
        },
    )
    service.apply_findings(conn=conn, findings=[finding], now=now, config=config)
    alarm = store.fetch_one(
        conn,
        "SELECT * FROM alarm WHERE rule = 'drill' AND source = %s AND closed_at IS NULL",
        (SubjectRef(site, area).key,),
    )
    audit.append(
        conn,
        actor=actor.name,
        action="drill.start",
        target=f"alarm:{alarm['id']}",
        site=site,
        area=area,
        detail={
            "site": site,
            "area": area,
            "level": level,
            "reason": reason,
            "commands": {c.device: c.status.value for c in commands},
        },
    )
    return service.get_alarm(conn=conn, alarm_id=alarm["id"])


def end_drill(*, conn: psycopg.Connection, alarm_id: int, actor: Actor, now: datetime) -> Alarm:
    """End a drill: its alarm returns to normal and is acknowledged by the person ending it."""
    actor.require("drill")
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s AND rule = 'drill'", (alarm_id,))
    if alarm is None:
        raise NotFound(f"no drill alarm {alarm_id}")
    subject = SubjectRef(alarm["site"], alarm["area"])
    service.apply_findings(
        conn=conn,
        findings=[
            Finding(
                rule="drill",
                detector="drill",
                subject=subject,
                severity=Severity.NORMAL,
                ts=now,
                message="drill ended",
                details={"finding_id": f"drill-end:{uuid.uuid4().hex}", "plan": [], "drill": True},
            )
        ],
        now=now,
    )
    current = store.fetch_one(conn, "SELECT state FROM alarm WHERE id = %s", (alarm_id,))
    if current["state"] != "normal":
        service.acknowledge(conn=conn, alarm_id=alarm_id, actor=actor, now=now, comment="drill ended")
    audit.append(
        conn,
        actor=actor.name,
        action="drill.end",
        target=f"alarm:{alarm_id}",
        detail={},
        site=alarm["site"],
        area=alarm["area"],
    )
    return service.get_alarm(conn=conn, alarm_id=alarm_id)
