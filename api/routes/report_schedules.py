"""Report schedules over the API: list, create, replace and delete the schedules of the caller's sites (reports/
schedules.py). Schedules kept by the plant file (``managed_by = 'config'``) are read here but changed only by
applying the file (409), so the file stays the one record of them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from api.alarms import AlarmScope, alarm_scope, check_site
from api.deps import Conn, SiteFilter, require
from api.errors import Conflict, Forbidden, NotFound
from api.policy import Permission, Principal
from reports import schedules
from reports.context import NotFound as ReportNotFound

router = APIRouter(prefix="/api/v1/reports/schedules", tags=["reports"])
Scheduler = Annotated[Principal, require(Permission.REPORTS_SCHEDULE)]
ScheduleName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)]
Recipient = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(:[^\s:@]+@[^\s:@]+\.[^\s:@]+)?$", max_length=300)
]


class ScheduleBody(BaseModel):
    kind: str = Field(max_length=40)
    site: str = Field(max_length=64)
    cadence: Literal["daily", "weekly", "monthly", "after_incident"]
    time: dt.time = Field(dt.time(6, 0), description="Local time (the site's zone) the report is due")
    grace_minutes: int = Field(120, ge=0, le=7 * 24 * 60)
    areas: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=100)
    language: Literal["zh-CN", "en"] = "zh-CN"
    formats: list[Literal["pdf", "xlsx", "csv"]] = Field(["pdf", "xlsx"], min_length=1, max_length=3)
    recipients: list[Recipient] = Field([], max_length=50, description="channel, or channel:address (e-mail)")


class ScheduleCreate(ScheduleBody):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)


class ScheduleRead(BaseModel):
    id: int
    name: str
    kind: str
    site: str
    cadence: Literal["daily", "weekly", "monthly", "after_incident"]
    time: dt.time
    grace_minutes: int
    areas: list[str] | None
    language: str
    formats: list[str]
    recipients: list[str]
    enabled: bool
    managed_by: Literal["console", "api", "config"]
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


def _read(row: dict) -> dict:
    return {
        **row,
        "cadence": "after_incident" if row["every"] == "incident" else row["every"],
        "time": row["at_local"],
        "grace_minutes": int(row["grace"].total_seconds() // 60),
        "language": row["lang"],
        "recipients": row["deliver_to"],
    }


def _spec(name: str, body: ScheduleBody) -> schedules.ScheduleSpec:
    return schedules.ScheduleSpec(
        name=name,
        kind=body.kind,
        site=body.site,
        every=schedules.CADENCES[body.cadence],
        formats=tuple(dict.fromkeys(body.formats)),
        areas=tuple(body.areas) if body.areas else None,
        lang=body.language,
        deliver_to=tuple(dict.fromkeys(body.recipients)),
        at_local=body.time,
        grace=dt.timedelta(minutes=body.grace_minutes),
        managed_by="api",
    )


def _check_scope(conn: psycopg.Connection, principal: Principal, site: str, areas: list[str] | None) -> AlarmScope:
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    if ascope.areas is not None and (not areas or not all(f"{site}/{a}" in ascope.areas for a in areas)):
        raise Forbidden("name the areas of the schedule, all within your scope")
    return ascope


def _visible(conn: psycopg.Connection, principal: Principal, name: str) -> dict:
    """The schedule if the caller's scope holds its site (and areas), else 404 as if it did not exist."""
    try:
        row = schedules.get_schedule(conn, name)
    except ReportNotFound:
        row = None
    ascope = alarm_scope(conn, principal.scope)
    if row is None or (ascope.sites is not None and row["site"] not in ascope.sites):
        raise NotFound(f"no schedule {name!r}")
    if ascope.areas is not None and not all(f"{row['site']}/{a}" in ascope.areas for a in row["areas"] or ["*"]):
        raise NotFound(f"no schedule {name!r}")
    return row


def _editable(row: dict) -> None:
    if row["managed_by"] == "config":
        raise Conflict(f"schedule {row['name']!r} is kept by the plant file; change it there and apply it")


@router.get("", response_model=list[ScheduleRead])
def list_schedules(principal: Scheduler, conn: Conn, site: SiteFilter = None):
    """The report schedules of the caller's sites (all of them, enabled or not)."""
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    out = []
    for row in schedules.list_schedules(conn):
        if site is not None and row["site"] != site:
            continue
        if ascope.sites is not None and row["site"] not in ascope.sites:
            continue
        if ascope.areas is not None and not all(f"{row['site']}/{a}" in ascope.areas for a in row["areas"] or ["*"]):
            continue
        out.append(_read(row))
    return out


@router.post("", response_model=ScheduleRead, status_code=201)
def create_schedule(body: ScheduleCreate, principal: Scheduler, conn: Conn):
    """Create a schedule (audited); 409 if the name is taken."""
    _check_scope(conn, principal, body.site, body.areas)
    if schedules.schedule_exists(conn, body.name):
        raise Conflict(f"schedule {body.name!r} exists; PUT /api/v1/reports/schedules/{body.name} replaces it")
    return _read(schedules.put_schedule(conn, spec=_spec(body.name, body), actor=principal.actor))


@router.put("/{name}", response_model=ScheduleRead)
def replace_schedule(name: ScheduleName, body: ScheduleBody, principal: Scheduler, conn: Conn):
    """Replace a schedule (and enable it again if it was disabled); audited when anything changed."""
    _editable(_visible(conn, principal, name))
    _check_scope(conn, principal, body.site, body.areas)
    return _read(schedules.put_schedule(conn, spec=_spec(name, body), actor=principal.actor))


@router.delete("/{name}", status_code=204)
def delete_schedule(name: ScheduleName, principal: Scheduler, conn: Conn):
    """Delete a schedule (audited); the reports it made stay in the archive."""
    _editable(_visible(conn, principal, name))
    schedules.remove_schedule(conn, name=name, actor=principal.actor)
    return Response(status_code=204)
