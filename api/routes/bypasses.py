"""Interlock bypasses: a person asks to bypass automatic commands to an actuator, a second person (an EHS
manager or administrator) approves, and it expires (at most 24 h); anyone who may ask may revoke it early.
Commands a bypass covers are recorded as ``skipped``. Audited as ``bypass.request``/``approve``/``revoke``.
``GET /bypasses`` is a bare JSON list, newest first."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from alerts import flows
from api.alarms import actor, alarm_scope, check_site, input_field
from api.deps import AppClock, Conn, PathId, SiteFilter, require
from api.errors import Invalid
from api.policy import Permission, Principal
from api.schemas.alarms import BypassCreate, BypassRead
from core import errors

router = APIRouter(prefix="/api/v1/bypasses", tags=["alarms"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]
Requester = Annotated[Principal, require(Permission.BYPASS_REQUEST)]
Approver = Annotated[Principal, require(Permission.BYPASS_APPROVE)]


@router.get("", response_model=list[BypassRead])
def list_bypasses(
    principal: Reader,
    conn: Conn,
    clock: AppClock,
    site: SiteFilter = None,
    active: Annotated[bool, Query(description="Only requested and running ones")] = True,
):
    """Bypasses within your scope, newest first."""
    check_site(conn, principal.scope, site)
    return flows.list_bypasses(
        conn=conn, now=clock.now(), active_only=active, site=site, scope=alarm_scope(conn, principal.scope)
    )


@router.post("", response_model=BypassRead, status_code=201)
def request_bypass(body: BypassCreate, principal: Requester, conn: Conn, clock: AppClock):
    """Ask for a bypass; it takes effect when someone else approves it."""
    try:
        with input_field("body.action"):
            return flows.request_bypass(
                conn=conn,
                site=body.site,
                device=body.device,
                actor=actor(principal),
                reason=body.reason,
                duration=timedelta(minutes=body.minutes),
                now=clock.now(),
                action=body.action,
                scope=alarm_scope(conn, principal.scope),
            )
    except errors.NotFound as exc:  # not a declared actuator: an input error of this body
        raise Invalid(str(exc), field="body.device") from None


@router.post("/{bypass_id}/approve", response_model=BypassRead)
def approve_bypass(bypass_id: PathId, principal: Approver, conn: Conn, clock: AppClock):
    """Approve someone else's request (never your own: 403); it runs from now for its duration."""
    return flows.approve_bypass(
        conn=conn,
        bypass_id=bypass_id,
        actor=actor(principal),
        now=clock.now(),
        scope=alarm_scope(conn, principal.scope),
    )


@router.post("/{bypass_id}/revoke", response_model=BypassRead)
def revoke_bypass(bypass_id: PathId, principal: Requester, conn: Conn, clock: AppClock):
    """End a bypass early, or withdraw a request."""
    return flows.revoke_bypass(
        conn=conn,
        bypass_id=bypass_id,
        actor=actor(principal),
        now=clock.now(),
        scope=alarm_scope(conn, principal.scope),
    )
