"""Alarms: the list, one alarm with its timeline and response plan, the ISA-18.2 KPIs, and people's actions
(acknowledge, shelve, unshelve, comment, reset, out of service, return to service).

Actions call ``alerts.service``, which applies the lifecycle, writes the event, announces it on the live feed
and writes the audit record (actor: the caller, as ``user:<name>`` or ``key:<prefix>``). Every action answers
the alarm as it is now; with a ``seen_version`` older than the alarm's ``version`` it answers 409
``alarm_changed`` and does nothing, and an action the alarm's state does not allow answers 409
``illegal_transition``; both 409s carry the current alarm. ``GET /alarms`` is a bare JSON list (offset pages,
ordered by priority then newest first), like ``GET /latest``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import AwareDatetime

from alerts import config_store, kpi, service
from alerts.models import AlarmState
from api.alarms import (
    act,
    actor,
    alarm_scope,
    check_site,
    get_visible,
    plan_for,
    present,
    with_versions,
)
from api.deps import ApiConfig, AppClock, Conn, PathId, SiteFilter, require
from api.errors import Forbidden, Invalid
from api.policy import Permission, Principal
from api.ratelimit import limit_heavy
from api.schemas import ErrorRead
from api.schemas.alarms import (
    AckBody,
    ActionBody,
    AlarmConflict,
    AlarmDetail,
    AlarmEventRead,
    AlarmRead,
    CommentBody,
    KpiRead,
    OutOfServiceBody,
    ShelveBody,
)

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]
Acker = Annotated[Principal, require(Permission.ALARMS_ACK)]
Commenter = Annotated[Principal, require(Permission.ALARMS_COMMENT)]
Resetter = Annotated[Principal, require(Permission.ALARMS_RESET)]
Shelver = Annotated[Principal, require(Permission.ALARMS_SHELVE)]
Maintainer = Annotated[Principal, require(Permission.ALARMS_OUT_OF_SERVICE)]

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": AlarmConflict,
        "description": "The alarm changed since `seen_version` (`alarm_changed`), or "
        "its state does not allow this (`illegal_transition`)",
    }
}
MAX_KPI_SPAN = timedelta(days=92)
Since = Annotated[AwareDatetime | None, Query(description="Opened at or after")]
Until = Annotated[AwareDatetime | None, Query(description="Opened before")]


@router.get("", response_model=list[AlarmRead])
def list_alarms(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    area: Annotated[str | None, Query(max_length=64, description="Area code")] = None,
    state: Annotated[list[AlarmState] | None, Query(description="Repeatable")] = None,
    min_priority: Annotated[int | None, Query(ge=1, le=4, description="1 low ... 4 critical")] = None,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    drill: Annotated[bool | None, Query(description="Only drills (true) or only real alarms")] = None,
    open: Annotated[bool, Query(description="Only alarms not back to normal")] = True,  # noqa: A002
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
):
    """Alarms within your scope, highest priority first, then newest first."""
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    rows = service.list_alarms(
        conn=conn,
        site=site,
        area=area,
        states=state,
        open_only=open,
        min_priority=min_priority,
        rule=rule,
        drill=drill,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        sites=ascope.sites,
        areas=ascope.areas,
    )
    return with_versions(conn, rows)


@router.get(
    "/kpi",
    response_model=KpiRead,
    responses={
        403: {"model": ErrorRead, "description": "A site outside your scope; regulators must name a compliance area"},
        429: {"model": ErrorRead, "description": "Too many long-period requests"},
    },
)
def alarm_kpis(
    request: Request,
    principal: Reader,
    conn: Conn,
    clock: AppClock,
    api: ApiConfig,
    site: SiteFilter = None,
    area: Annotated[str | None, Query(max_length=64, description="Area code")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Default: 24 h before until")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Default: now")] = None,
):
    """ISA-18.2 alarm-system KPIs of one site (yours when you have one) or of every site (administrators of all
    sites), for a period of at most 92 days. Drills are left out. Periods longer than ``kpi_long_days`` are
    rate-limited per caller (each reads every alarm event of the period)."""
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    if site is None and ascope.sites is not None:
        if len(ascope.sites) != 1:
            raise Invalid("you have several sites: name one", field="query.site")
        site = ascope.sites[0]
    if ascope.areas is not None and (area is None or not ascope.sees(site or "", area)):
        raise Forbidden("your role sees the alarms of compliance areas only: name one with area")
    until = until or clock.now()
    since = since or until - timedelta(hours=24)
    if not timedelta(0) < until - since <= MAX_KPI_SPAN:
        raise Invalid("since must be before until, at most 92 days before", field="query.since")
    if until - since > timedelta(days=api.kpi_long_days):
        limit_heavy(request, principal.actor, "long KPI")
    return kpi.kpis(conn=conn, since=since, until=until, site=site, area=area)


@router.get("/{alarm_id}", response_model=AlarmDetail)
def get_alarm(alarm_id: PathId, principal: Reader, conn: Conn):
    """One alarm with its timeline (events), interlock commands, notifications and the response plan level it
    started (evacuation instructions, interlocks), or ``plan: null``."""
    alarm = present(conn, get_visible(conn, alarm_scope(conn, principal.scope), alarm_id, events=True))
    alarm["plan"] = plan_for(config_store.load_config(conn=conn), alarm)
    return alarm


@router.post("/{alarm_id}/ack", response_model=AlarmRead, responses=CONFLICT)
def ack_alarm(
    alarm_id: PathId, principal: Acker, conn: Conn, clock: AppClock, body: Annotated[AckBody | None, Body()] = None
):
    """Acknowledge, with an optional comment."""
    body = body or AckBody()
    seen = _seen(conn, principal, body.seen_version)
    return present(
        conn,
        act(
            conn,
            alarm_id,
            lambda: service.acknowledge(
                conn=conn, alarm_id=alarm_id, actor=actor(principal), now=clock.now(), comment=body.comment, **seen
            ),
        ),
    )


@router.post("/{alarm_id}/shelve", response_model=AlarmRead, responses=CONFLICT)
def shelve_alarm(alarm_id: PathId, body: ShelveBody, principal: Shelver, conn: Conn, clock: AppClock):
    """Shelve for some minutes (at most the engine's limit), with a reason; a critical alarm needs an EHS
    manager or an administrator."""
    limit_min = config_store.load_config(conn=conn).defaults.shelve_max_h * 60
    if body.minutes > limit_min:
        raise Invalid(f"at most {limit_min:g} minutes", field="body.minutes")
    seen = _seen(conn, principal, body.seen_version)
    return present(
        conn,
        act(
            conn,
            alarm_id,
            lambda: service.shelve(
                conn=conn,
                alarm_id=alarm_id,
                actor=actor(principal),
                reason=body.reason,
                now=clock.now(),
                duration=timedelta(minutes=body.minutes),
                **seen,
            ),
            field="body.reason",
        ),
    )


@router.post("/{alarm_id}/unshelve", response_model=AlarmRead, responses=CONFLICT)
def unshelve_alarm(
    alarm_id: PathId, principal: Shelver, conn: Conn, clock: AppClock, body: Annotated[ActionBody | None, Body()] = None
):
    body = body or ActionBody()
    seen = _seen(conn, principal, body.seen_version)
    return present(
        conn,
        act(
            conn,
            alarm_id,
            lambda: service.unshelve(
                conn=conn, alarm_id=alarm_id, actor=actor(principal), now=clock.now(), reason=body.comment, **seen
            ),
        ),
    )


@router.post("/{alarm_id}/comment", response_model=AlarmEventRead, status_code=201)
def comment_alarm(alarm_id: PathId, body: CommentBody, principal: Commenter, conn: Conn, clock: AppClock):
    """Add a note to the alarm's timeline; answers the new event."""
    seen = _seen(conn, principal, None)
    event_id = act(
        conn,
        alarm_id,
        lambda: service.comment(
            conn=conn, alarm_id=alarm_id, actor=actor(principal), text=body.text, now=clock.now(), **seen
        ),
        field="body.text",
    )
    return service.get_event(conn=conn, event_id=event_id)


@router.post("/{alarm_id}/reset", response_model=AlarmRead, responses=CONFLICT)
def reset_alarm(
    alarm_id: PathId,
    principal: Resetter,
    conn: Conn,
    clock: AppClock,
    body: Annotated[ActionBody | None, Body()] = None,
):
    """Reset a latched, acknowledged alarm whose condition is back to normal."""
    body = body or ActionBody()
    seen = _seen(conn, principal, body.seen_version)
    return present(
        conn,
        act(
            conn,
            alarm_id,
            lambda: service.reset(
                conn=conn, alarm_id=alarm_id, actor=actor(principal), now=clock.now(), comment=body.comment, **seen
            ),
        ),
    )


@router.post("/{alarm_id}/out-of-service", response_model=AlarmRead, responses=CONFLICT)
def remove_from_service(alarm_id: PathId, body: OutOfServiceBody, principal: Maintainer, conn: Conn, clock: AppClock):
    """Take an alarm out of service for maintenance, with a reason and a permit or MOC reference."""
    seen = _seen(conn, principal, body.seen_version)
    return present(
        conn,
        act(
            conn,
            alarm_id,
            lambda: service.remove_from_service(
                conn=conn,
                alarm_id=alarm_id,
                actor=actor(principal),
                reason=body.reason,
                permit=body.permit,
                now=clock.now(),
                **seen,
            ),
            field="body.reason",
        ),
    )


@router.post("/{alarm_id}/return-to-service", response_model=AlarmRead, responses=CONFLICT)
def return_to_service(
    alarm_id: PathId,
    principal: Maintainer,
    conn: Conn,
    clock: AppClock,
    body: Annotated[ActionBody | None, Body()] = None,
):
    body = body or ActionBody()
    seen = _seen(conn, principal, body.seen_version)
    return present(
        conn,
        act(
            conn,
            alarm_id,
            lambda: service.return_to_service(
                conn=conn, alarm_id=alarm_id, actor=actor(principal), now=clock.now(), reason=body.comment, **seen
            ),
        ),
    )


def _seen(conn: Conn, principal: Principal, version: int | None) -> dict[str, Any]:
    """What the alarm engine checks before a person's action: the caller's scope and the version they saw."""
    return {"scope": alarm_scope(conn, principal.scope), "expected_version": version}
