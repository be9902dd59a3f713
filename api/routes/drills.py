"""Drills: run a response plan level against simulated devices (the same plan the real alarm would start;
real devices are never commanded and their commands are kept as ``skipped``). The drill is an alarm marked
``drill`` everywhere (events, commands, notifications); end it to return that alarm to normal. Audited as
``drill.start`` / ``drill.end``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from alerts import config_store, flows
from alerts.alarm import Alarm
from api.alarms import actor, alarm_scope, get_visible, plan_for, present
from api.deps import AppClock, Conn, PathId, require
from api.errors import Forbidden, Invalid
from api.policy import Permission, Principal
from api.schemas.alarms import AlarmDetail, DrillCreate
from core import errors

router = APIRouter(prefix="/api/v1/drills", tags=["alarms"])
Runner = Annotated[Principal, require(Permission.DRILLS_RUN)]


def _detail(conn, alarm: Alarm) -> dict:
    alarm = present(conn, alarm)
    alarm["plan"] = plan_for(config_store.load_config(conn=conn), alarm)
    return alarm


@router.post("", response_model=AlarmDetail, status_code=201)
def start_drill(body: DrillCreate, principal: Runner, conn: Conn, clock: AppClock):
    """Start a drill of a response plan level; answers the drill alarm with its commands and notifications."""
    ascope = alarm_scope(conn, principal.scope)
    if ascope.sites is not None and body.site not in ascope.sites:
        raise Forbidden(f"site {body.site!r} is not in your scope")
    try:
        alarm = flows.start_drill(
            conn=conn,
            site=body.site,
            area=body.area,
            level=body.level,
            actor=actor(principal),
            reason=body.reason,
            now=clock.now(),
        )
    except errors.NotFound as exc:  # no such plan level: an input error of this body
        raise Invalid(str(exc), field="body.level") from None
    return _detail(conn, alarm)


@router.post("/{alarm_id}/end", response_model=AlarmDetail)
def end_drill(alarm_id: PathId, principal: Runner, conn: Conn, clock: AppClock):
    """End a drill: its alarm returns to normal, acknowledged by you."""
    get_visible(conn, alarm_scope(conn, principal.scope), alarm_id)
    alarm = flows.end_drill(conn=conn, alarm_id=alarm_id, actor=actor(principal), now=clock.now())
    return _detail(conn, alarm)
