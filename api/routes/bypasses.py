"""Interlock bypasses: a person asks to bypass automatic commands to an actuator, a second person (an EHS
manager or administrator) approves, and it expires (at most 24 h); anyone who may ask may revoke it early.
Commands a bypass covers are recorded as ``skipped``. Audited as ``bypass.request``/``approve``/``revoke``.
``GET /bypasses`` is a bare JSON list, newest first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query

from alerts import flows
from api.alarms import AlarmScope, actor, alarm_scope, check_site, domain_errors
from api.deps import AppClock, Conn, PathId, SiteFilter, require
from api.errors import Conflict, Forbidden, Invalid, NotFound
from api.policy import Permission, Principal
from api.queries import fetch_all, fetch_one
from api.schemas.alarms import BypassCreate, BypassRead

router = APIRouter(prefix="/api/v1/bypasses", tags=["alarms"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]
Requester = Annotated[Principal, require(Permission.BYPASS_REQUEST)]
Approver = Annotated[Principal, require(Permission.BYPASS_APPROVE)]

_AREA = ("SELECT a.code FROM device d JOIN site s ON s.id = d.site_id JOIN area a ON a.id = d.area_id "
         "WHERE s.code = %s AND d.code = %s")


def _status(row: dict[str, Any], now: datetime) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["approved_at"] is None:
        return "requested"
    return "active" if row["expires_at"] > now else "expired"


def _read(conn: psycopg.Connection, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    area = fetch_one(conn, _AREA, (row["site"], row["device"]))
    return {**row, "area": area["code"] if area else None, "status": _status(row, now)}


def _visible(conn: psycopg.Connection, ascope: AlarmScope, bypass_id: int, now: datetime) -> dict[str, Any]:
    row = fetch_one(conn, "SELECT * FROM interlock_bypass WHERE id = %s", (bypass_id,))
    if row is None:
        raise NotFound(f"no bypass {bypass_id}")
    row = _read(conn, row, now)
    if not ascope.sees(row["site"], row["area"]):
        raise NotFound(f"no bypass {bypass_id}")
    return row


@router.get("", response_model=list[BypassRead])
def list_bypasses(principal: Reader, conn: Conn, clock: AppClock, site: SiteFilter = None,
                  active: Annotated[bool, Query(description="Only requested and running ones")] = True):
    """Bypasses within your scope, newest first."""
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    now = clock.now()
    with domain_errors():
        rows = flows.list_bypasses(conn=conn, now=now, active_only=active)
    areas = {(r["site"], r["device"]): r["area"] for r in fetch_all(
        conn, "SELECT s.code AS site, d.code AS device, a.code AS area FROM device d "
              "JOIN site s ON s.id = d.site_id JOIN area a ON a.id = d.area_id "
              "WHERE s.code || '/' || d.code = ANY(%s)", ([f"{r['site']}/{r['device']}" for r in rows],))}
    out = [{**r, "area": areas.get((r["site"], r["device"])), "status": _status(r, now)} for r in rows
           if site is None or r["site"] == site]
    return [r for r in out if ascope.sees(r["site"], r["area"])]


@router.post("", response_model=BypassRead, status_code=201)
def request_bypass(body: BypassCreate, principal: Requester, conn: Conn, clock: AppClock):
    """Ask for a bypass; it takes effect when someone else approves it."""
    ascope = alarm_scope(conn, principal.scope)
    if ascope.sites is not None and body.site not in ascope.sites:
        raise Forbidden(f"site {body.site!r} is not in your scope")
    now = clock.now()
    try:
        with domain_errors(field="body.action"):
            row = flows.request_bypass(conn=conn, site=body.site, device=body.device, actor=actor(principal),
                                          reason=body.reason, duration=timedelta(minutes=body.minutes), now=now,
                                          action=body.action)
    except NotFound as exc:                         # not a declared actuator: an input error of this body
        raise Invalid(str(exc), field="body.device") from None
    return _read(conn, row, now)


@router.post("/{bypass_id}/approve", response_model=BypassRead)
def approve_bypass(bypass_id: PathId, principal: Approver, conn: Conn, clock: AppClock):
    """Approve someone else's request (never your own: 403); it runs from now for its duration."""
    now = clock.now()
    row = _visible(conn, alarm_scope(conn, principal.scope), bypass_id, now)
    if row["status"] != "requested":
        raise Conflict(f"bypass {bypass_id} is {row['status']}, not waiting for approval")
    with domain_errors():
        approved = flows.approve_bypass(conn=conn, bypass_id=bypass_id, actor=actor(principal), now=now)
    return _read(conn, approved, now)


@router.post("/{bypass_id}/revoke", response_model=BypassRead)
def revoke_bypass(bypass_id: PathId, principal: Requester, conn: Conn, clock: AppClock):
    """End a bypass early, or withdraw a request."""
    now = clock.now()
    row = _visible(conn, alarm_scope(conn, principal.scope), bypass_id, now)
    if row["status"] in ("revoked", "expired"):
        raise Conflict(f"bypass {bypass_id} is already {row['status']}")
    with domain_errors():
        revoked = flows.revoke_bypass(conn=conn, bypass_id=bypass_id, actor=actor(principal), now=now)
    return _read(conn, revoked, now)
