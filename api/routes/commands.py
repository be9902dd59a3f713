"""Interlock commands: automatic ones (response plans), manual ones (people, with a reason) and drill ones, with
their acknowledgements from the devices. A manual command is recorded here and sent by the alerts worker
(signed, QoS 1); it is audited as ``command.issue``. ``GET /commands`` is a bare JSON list, newest first."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from alerts import commands as machine
from alerts import flows
from api.alarms import actor, alarm_scope, check_site, get_visible, input_field
from api.deps import AppClock, Conn, SiteFilter, require
from api.errors import Forbidden, Invalid, NotFound
from api.policy import Permission, Principal
from api.schemas.alarms import CommandCreate, CommandDetail, CommandRead
from core import errors

router = APIRouter(prefix="/api/v1/commands", tags=["alarms"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]
Issuer = Annotated[Principal, require(Permission.COMMANDS_ISSUE)]
STATUSES = ("pending", "issued", "accepted", "done", "rejected", "failed", "timed_out", "skipped", "cancelled")


@router.get("", response_model=list[CommandRead])
def list_commands(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    device: Annotated[str | None, Query(max_length=64, description="Device code")] = None,
    status: Annotated[str | None, Query(max_length=16, description=", ".join(STATUSES))] = None,
    alarm_id: Annotated[int | None, Query(ge=1, le=9_223_372_036_854_775_807)] = None,
    drill: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """Commands within your scope, newest first."""
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    return machine.list_commands(
        conn=conn,
        site=site,
        device=device,
        status=status,
        alarm_id=alarm_id,
        drill=drill,
        limit=limit,
        sites=ascope.sites,
        areas=ascope.areas,
    )


@router.get("/{command_id}", response_model=CommandDetail)
def get_command(command_id: Annotated[UUID, Path(description="Command id")], principal: Reader, conn: Conn):
    """One command with its events (sent, acknowledged, retried, timed out...)."""
    command = machine.get_command(conn=conn, command_id=str(command_id))
    if not alarm_scope(conn, principal.scope).sees(command["site"], command["area"]):
        raise NotFound(f"no command {command_id}")
    return command


@router.post("", response_model=CommandDetail, status_code=201)
def issue_command(body: CommandCreate, principal: Issuer, conn: Conn, clock: AppClock):
    """Command an actuator by hand (needs a reason; audited). The worker sends it; follow its status here."""
    ascope = alarm_scope(conn, principal.scope)
    if ascope.sites is not None and body.site not in ascope.sites:
        raise Forbidden(f"site {body.site!r} is not in your scope")
    if body.alarm_id is not None:
        try:
            get_visible(conn, ascope, body.alarm_id)
        except NotFound:
            raise Invalid(f"no alarm {body.alarm_id}", field="body.alarm_id") from None
    try:
        with input_field("body.action"):
            return flows.request_command(
                conn=conn,
                site=body.site,
                device=body.device,
                action=body.action,
                actor=actor(principal),
                reason=body.reason,
                now=clock.now(),
                params=body.params,
                alarm_id=body.alarm_id,
            )
    except errors.NotFound as exc:  # not a declared actuator: an input error of this body
        raise Invalid(str(exc), field="body.device") from None
