"""The interlock command machine: command records, their status table, acknowledgements, retries, time-outs.

Status of a command (``CommandStatus``): ``pending`` (to be sent by the alerts worker) -> ``issued``
(published, QoS 1) -> ``accepted`` -> ``done``, or ``rejected`` / ``failed`` (said the device) / ``timed_out``
(no confirmation in time after the bounded retries) / ``skipped`` (bypassed, or a real device in a drill) /
``cancelled`` (not sent before it would have expired). ``MOVES`` lists every move a device's acknowledgement
may make and ``WORKER_MOVES`` the moves of the worker's clock; ``DeviceMove`` tells which is which.

This module knows nothing of alarms beyond appending a ``command`` event to an alarm's timeline: a command
that ends badly or is confirmed is returned as an ``Ending``, and the alarm service (``alerts.service``) turns
endings into the ``interlock.failed`` system alarm (the flows module does so for the worker's calls).
Functions take the caller's connection and never commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from alerts import plans, store
from alerts.decisions import CommandStatus, InterlockCommand
from alerts.models import NotFound
from core.commands import ACK_STATUSES
from core.text import storable, storable_json

_LOGGER = logging.getLogger(__name__)


C = CommandStatus
OPEN = C.open_statuses()
FINAL = C.final_statuses()
#: Statuses that end a command badly: each raises ``interlock.failed`` for its device.
FAILING = frozenset({C.REJECTED, C.FAILED, C.TIMED_OUT, C.CANCELLED})

#: What a device's acknowledgement may do to a command, by its current status: anything else (a step back, a
#: repeat, an acknowledgement of a skipped, cancelled or finished command) is recorded as an event and ignored.
#: A confirmation after a time-out is taken ("confirmed late"): the device did act.
MOVES: dict[CommandStatus, frozenset[CommandStatus]] = {
    C.PENDING: frozenset({C.ACCEPTED, C.DONE, C.REJECTED, C.FAILED}),
    C.ISSUED: frozenset({C.ACCEPTED, C.DONE, C.REJECTED, C.FAILED}),
    C.ACCEPTED: frozenset({C.DONE, C.REJECTED, C.FAILED}),
    C.TIMED_OUT: frozenset({C.DONE, C.REJECTED, C.FAILED}),
    C.DONE: frozenset(),
    C.REJECTED: frozenset(),
    C.FAILED: frozenset(),
    C.SKIPPED: frozenset(),
    C.CANCELLED: frozenset(),
}
#: What the alerts worker's clock does: send (and send again), cancel what was never sent, time out.
WORKER_MOVES: dict[CommandStatus, frozenset[CommandStatus]] = {
    C.PENDING: frozenset({C.ISSUED, C.CANCELLED}),
    C.ISSUED: frozenset({C.ISSUED, C.TIMED_OUT}),
    C.ACCEPTED: frozenset({C.TIMED_OUT}),
}


def device_may(current: str, status: str) -> bool:
    """Whether a device's acknowledgement ``status`` moves a command that is ``current``."""
    try:
        return CommandStatus(status) in MOVES[CommandStatus(current)]
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Ending:
    """A command that ended: ``failed`` (rejected, failed, timed out, never sent) raises ``interlock.failed``
    for its device with ``message``; a confirmed one (``failed`` False) clears it."""

    command: Mapping[str, Any]
    failed: bool
    message: str


def _iso(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def record_commands(
    *,
    conn: psycopg.Connection,
    commands: Sequence[InterlockCommand | Mapping[str, Any]],
    alarm: dict | None,
    event_id: int | None,
    finding_id: str | None,
    batch_id: str | None,
    now: datetime,
    origin: str = "auto",
    requested_by: str = "system:ingest",
    reason: str = "",
) -> list[Ending]:
    """Store commands decided for an alarm: ``issued`` ones were already published, ``pending`` ones wait for
    the worker, ``skipped`` ones are kept to show what was not done and why. Acknowledgements that came before
    the record are applied now; return the commands they ended."""
    ended: list[Ending] = []
    records = [InterlockCommand.of(c) for c in commands]
    for command in records:
        c = command.as_dict()
        status = command.status
        issued = _iso(c.get("issued_at"))
        payload = c.get("payload")
        drill = bool(c.get("drill"))
        conn.execute(
            "INSERT INTO interlock_command (id, site, area, device, action, params, origin, drill, status, payload, "
            "issued_at, expires_at, accept_by, done_by, attempts, max_attempts, accept_within_s, done_within_s, "
            "alarm_id, alarm_event_id, finding_id, batch_id, plan, plan_level, requested_by, reason, detail, "
            "finished_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (
                c["id"],
                c["site"],
                c.get("area"),
                c["device"],
                c["action"],
                orjson.dumps(c.get("params", {})).decode(),
                "drill" if drill else origin,
                drill,
                status.value,
                orjson.dumps(payload).decode() if payload else None,
                issued,
                _expiry(payload),
                issued + timedelta(seconds=c["accept_within_s"]) if issued else None,
                issued + timedelta(seconds=c["done_within_s"]) if issued else None,
                1 if issued else 0,
                1 + int(c.get("retries", 2)),
                c["accept_within_s"],
                c["done_within_s"],
                alarm["id"] if alarm else None,
                event_id,
                finding_id,
                batch_id,
                c.get("plan"),
                c.get("plan_level"),
                requested_by,
                reason,
                c.get("detail", ""),
                now if status.final else None,
            ),
        )
        _event(conn, c["id"], status.value, c.get("detail", ""), None, requested_by, issued or now)
        if alarm is not None:
            store.event_row(
                conn,
                alarm,
                "command",
                at=now,
                actor=requested_by,
                caused_by=f"command:{c['id']}",
                cause=f"{c['action']} -> {c['device']}: {status}" + (f" ({c['detail']})" if c.get("detail") else ""),
                detail={
                    "command_id": c["id"],
                    "status": status.value,
                    "plan": c.get("plan"),
                    "plan_level": c.get("plan_level"),
                },
            )
        if status in (C.ISSUED, C.ACCEPTED):
            ended += _catch_up(conn, c["id"], now)[1]
    if any(command.status is C.PENDING for command in records):
        conn.execute("SELECT pg_notify(%s, %s)", (store.COMMAND_CHANNEL, "pending"))
    return ended


def _expiry(payload: dict | None) -> datetime | None:
    if not payload:
        return None
    return datetime.fromtimestamp(payload["expires_at"] / 1000, UTC)


def _event(
    conn: psycopg.Connection, command_id: str, status: str, detail: str, state: Any, actor: str, at: datetime
) -> None:
    conn.execute(
        "INSERT INTO interlock_command_event (command_id, at, status, detail, state, actor) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (command_id, at, status, detail, orjson.dumps(state).decode() if state is not None else None, actor),
    )


# --- the worker's side ---------------------------------------------------------------------------------------


def pending(*, conn: psycopg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Commands waiting to be sent, locked for this transaction (several workers never send one twice)."""
    return store.fetch(
        conn,
        "SELECT * FROM interlock_command WHERE status = 'pending' ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )


def mark_issued(*, conn: psycopg.Connection, command: dict, payload: dict, now: datetime) -> None:
    """The worker published ``payload`` for a pending command (or again, for a retry)."""
    conn.execute(
        "UPDATE interlock_command SET status = 'issued', payload = %s, issued_at = coalesce(issued_at, %s), "
        "expires_at = %s, attempts = attempts + 1, accept_by = %s, done_by = %s, updated_at = %s "
        "WHERE id = %s",
        (
            orjson.dumps(payload).decode(),
            now,
            _expiry(payload),
            now + timedelta(seconds=command["accept_within_s"]),
            now + timedelta(seconds=command["done_within_s"]),
            now,
            command["id"],
        ),
    )
    _event(conn, command["id"], "issued", f"attempt {command['attempts'] + 1}", None, "system:alerts", now)


def cancel_stale(*, conn: psycopg.Connection, now: datetime, ttl: timedelta) -> list[Ending]:
    """Pending commands not sent within their validity are cancelled, never sent late."""
    rows = store.fetch(
        conn,
        "UPDATE interlock_command SET status = 'cancelled', finished_at = %s, updated_at = %s, "
        "detail = 'not sent within its validity' WHERE status = 'pending' AND created_at < %s "
        "RETURNING *",
        (now, now, now - ttl),
    )
    for row in rows:
        _event(conn, row["id"], "cancelled", row["detail"], None, "system:alerts", now)
    return [
        Ending(row, True, f"{row['action']} to {row['device']} was never sent (the alerts worker was down?)")
        for row in rows
    ]


def apply_ack(
    *, conn: psycopg.Connection, site: str, device: str, ack: dict, now: datetime
) -> tuple[dict | None, list[Ending]]:
    """Record an acknowledgement from ``site/device`` and move its command on; return the command if it changed
    and what it ended.

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
    detail = storable(ack.get("detail") or "", 2000)  # device text: NUL and lone surrogates escaped
    state = storable_json(ack["state"]) if isinstance(ack.get("state"), dict) else None
    site, device = storable(site, 200), storable(device, 200)
    row = store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s FOR UPDATE", (command_id,))
    if row is not None and (row["site"], row["device"]) != (site, device):
        _LOGGER.warning(
            "acknowledgement of command %s for %s/%s came from %s/%s: ignored",
            command_id,
            row["site"],
            row["device"],
            site,
            device,
        )
        _event(
            conn, command_id, "foreign_ack", f"from {site}/{device}: {status}", state, f"device:{site}/{device}", now
        )
        return None, []
    _event(conn, command_id, status, detail, state, f"device:{site}/{device}", now)
    if row is None:
        return None, []
    ended: list[Ending] = []
    return _advance(conn, row, status, detail, state, now, ended), ended


def _advance(
    conn: psycopg.Connection, row: dict, status: str, detail: str, state: Any, now: datetime, ended: list[Ending]
) -> dict | None:
    if not device_may(row["status"], status):
        return None
    late = row["status"] == C.TIMED_OUT
    final = CommandStatus(status).final
    changed = store.fetch_one(
        conn,
        "UPDATE interlock_command SET status = %s, detail = %s, device_state = coalesce(%s, device_state), "
        "finished_at = CASE WHEN %s THEN %s ELSE finished_at END, updated_at = %s WHERE id = %s RETURNING *",
        (
            status,
            (f"confirmed late: {detail}" if late else detail),
            orjson.dumps(state).decode() if state else None,
            final,
            now,
            now,
            row["id"],
        ),
    )
    if status in (C.REJECTED, C.FAILED):
        ended.append(
            Ending(changed, True, f"{row['action']} to {row['device']} {status}: {detail or 'no reason given'}")
        )
    elif status == C.DONE:
        ended.append(Ending(changed, False, f"{row['action']} confirmed by {row['device']}"))
    return changed


def reconcile(*, conn: psycopg.Connection, now: datetime) -> tuple[int, list[Ending]]:
    """Apply acknowledgements that arrived before their command was stored (the ingest/worker race); return
    how many moves were made and what they ended."""
    moved, ended = 0, []
    for row in store.fetch(
        conn,
        "SELECT c.* FROM interlock_command c WHERE c.status IN ('issued', 'accepted', "
        "'timed_out') AND EXISTS (SELECT 1 FROM interlock_command_event e WHERE e.command_id = c.id "
        "AND e.status IN ('accepted', 'done', 'rejected', 'failed') AND e.actor LIKE 'device:%%' "
        "AND e.at >= c.updated_at - interval '1 minute') FOR UPDATE OF c SKIP LOCKED",
    ):
        count, more = _catch_up(conn, row["id"], now, row)
        moved, ended = moved + count, ended + more
    return moved, ended


def _catch_up(
    conn: psycopg.Connection, command_id: str, now: datetime, row: dict | None = None
) -> tuple[int, list[Ending]]:
    row = row or store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s FOR UPDATE", (command_id,))
    moved, ended = 0, []
    for event in store.fetch(
        conn,
        "SELECT * FROM interlock_command_event WHERE command_id = %s AND actor = %s ORDER BY id",
        (command_id, f"device:{row['site']}/{row['device']}"),
    ):
        changed = _advance(conn, row, event["status"], event["detail"], event["state"], now, ended)
        if changed is not None:
            row, moved = changed, moved + 1
    return moved, ended


def retries_due(*, conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Issued commands not accepted in time that may be sent again (same id and signature: idempotent)."""
    return store.fetch(
        conn,
        "SELECT * FROM interlock_command WHERE status = 'issued' AND accept_by <= %s AND "
        "attempts < max_attempts AND expires_at > %s FOR UPDATE SKIP LOCKED",
        (now, now),
    )


def time_out(*, conn: psycopg.Connection, now: datetime) -> list[Ending]:
    """Commands not confirmed in time after their retries: timed out (each ends badly)."""
    rows = store.fetch(
        conn,
        "UPDATE interlock_command SET status = 'timed_out', finished_at = %s, updated_at = %s, "
        "detail = CASE WHEN status = 'issued' THEN 'not accepted after ' || attempts || ' attempt(s)' "
        "ELSE 'accepted but not done in time' END "
        "WHERE (status = 'issued' AND accept_by <= %s AND (attempts >= max_attempts "
        "OR expires_at <= %s)) OR (status = 'accepted' AND done_by <= %s) RETURNING *",
        (now, now, now, now, now),
    )
    for row in rows:
        _event(conn, row["id"], "timed_out", row["detail"], None, "system:alerts", now)
    return [Ending(row, True, f"{row['action']} to {row['device']} not confirmed: {row['detail']}") for row in rows]


def active_bypasses(*, conn: psycopg.Connection, now: datetime) -> list[plans.Bypass]:
    """Approved bypasses in force: automatic commands they cover are kept as ``skipped``."""
    return [
        plans.Bypass(r["id"], r["site"], r["device"], r["action"], r["expires_at"])
        for r in store.fetch(
            conn,
            "SELECT * FROM interlock_bypass WHERE approved_by IS NOT NULL AND revoked_by IS NULL AND expires_at > %s",
            (now,),
        )
    ]


# --- reading ---------------------------------------------------------------------------------------------------


def list_commands(
    *,
    conn: psycopg.Connection,
    site: str | None = None,
    device: str | None = None,
    alarm_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    drill: bool | None = None,
    sites: list[str] | None = None,
    areas: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Commands, newest first; ``sites`` (codes) and ``areas`` (``site/area`` keys) restrict them to a scope."""
    where, params = store.filters(
        {"site": site, "device": device, "alarm_id": alarm_id, "status": status, "drill": drill},
        sites=sites,
        areas=areas,
    )
    params["limit"] = min(limit, 1000)
    return store.fetch(
        conn,
        f"SELECT * FROM interlock_command WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY created_at DESC LIMIT %(limit)s",
        params,
    )


def get_command(*, conn: psycopg.Connection, command_id: str) -> dict[str, Any]:
    row = store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s", (command_id,))
    if row is None:
        raise NotFound(f"no command {command_id}")
    row["events"] = store.fetch(
        conn, "SELECT * FROM interlock_command_event WHERE command_id = %s ORDER BY id", (command_id,)
    )
    return row
