"""What a signed notification link (alerts.notifications.links) gives access to: the alarm it names, and
whether the person it was sent to may acknowledge it through the link, as if they had signed in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from alerts import service
from alerts.models import Actor, AlarmState
from alerts.notifications.links import Link
from core import db
from core.errors import Conflict, Forbidden, NotFound
from core.permissions import ROLE_PROCESSES, Permission, Role, allowed


def alarm(conn: psycopg.Connection, link: Link) -> dict[str, Any]:
    """The alarm the link names (NotFound "unknown link" when it is gone)."""
    found = db.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (link.alarm_id,))
    if found is None:
        raise NotFound("unknown link")
    return found


def acker(conn: psycopg.Connection, link: Link, alarm: dict[str, Any]) -> Actor | None:
    """The person the link was sent to, if they may acknowledge this alarm: an active user whose role allows it
    and whose sites (and processes) include the alarm's, as if they had signed in."""
    if link.user_id is None:
        return None
    user = db.fetch_one(
        conn,
        "SELECT username, role, site_ids, all_sites FROM app_user WHERE id = %s AND disabled_at IS NULL",
        (link.user_id,),
    )
    if user is None or not allowed(Role(user["role"]), Permission.ALARMS_ACK):
        return None
    sites = None if user["all_sites"] else set(user["site_ids"] or ())
    processes = ROLE_PROCESSES.get(Role(user["role"]))
    where = db.fetch_one(
        conn,
        "SELECT s.id AS site_id, a.process_type FROM site s LEFT JOIN area a "
        "ON a.site_id = s.id AND a.code = %s WHERE s.code = %s",
        (alarm["area"], alarm["site"]),
    )
    if (
        where is None
        or (sites is not None and where["site_id"] not in sites)
        or (processes is not None and (where["process_type"] or "") not in processes)
    ):
        return None
    return Actor(f"user:{user['username']}", user["role"])  # named as every API action names a person


def can_ack(conn: psycopg.Connection, link: Link, alarm: dict[str, Any]) -> bool:
    """Whether ``acknowledge`` would be allowed now."""
    return acker(conn, link, alarm) is not None and AlarmState(alarm["state"]).needs_ack


def acknowledge(conn: psycopg.Connection, link: Link, *, now: datetime, comment: str | None) -> dict[str, Any]:
    """Acknowledge the link's alarm as the person it was sent to (audited as them): Forbidden when the link may
    open the alarm but not acknowledge it, Conflict when the alarm does not need an acknowledgement any more."""
    found = alarm(conn, link)
    actor = acker(conn, link, found)
    if actor is None:
        raise Forbidden("this link may open the alarm but not acknowledge it")
    if not AlarmState(found["state"]).needs_ack:
        raise Conflict("the alarm does not need an acknowledgement any more")
    return service.acknowledge(
        conn=conn,
        alarm_id=found["id"],
        actor=actor,
        now=now,
        comment=comment or "确认 (通知链接) / acknowledged from a notification link",
    ).to_dict()
