"""Alarm floods (ISA-18.2 / EEMUA 191): more than ``flood_start`` alarms in an area within the window open one
flood record with its first-out alarm; it ends when the rate falls below ``flood_end``. ``GET /floods`` is a
bare JSON list, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from alerts import service
from api.alarms import alarm_scope, check_site, with_versions
from api.deps import Conn, PathId, SiteFilter, require
from api.errors import NotFound
from api.policy import Permission, Principal
from api.queries import fetch_all, fetch_one
from api.schemas.alarms import FloodDetail, FloodRead

router = APIRouter(prefix="/api/v1/floods", tags=["alarms"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]


@router.get("", response_model=list[FloodRead])
def list_floods(principal: Reader, conn: Conn, site: SiteFilter = None,
                area: Annotated[str | None, Query(max_length=64, description="Area code")] = None,
                open: Annotated[bool | None, Query(description="Only ongoing (true) or ended (false)")] = None,  # noqa: A002
                drill: bool | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """Floods within your scope, newest first."""
    check_site(conn, principal.scope, site)
    ascope = alarm_scope(conn, principal.scope)
    return fetch_all(conn, """
        SELECT * FROM alarm_flood
        WHERE (%(sites)s::text[] IS NULL OR site = ANY(%(sites)s))
          AND (%(areas)s::text[] IS NULL OR site || '/' || area = ANY(%(areas)s))
          AND (%(site)s::text IS NULL OR site = %(site)s) AND (%(area)s::text IS NULL OR area = %(area)s)
          AND (%(open)s::boolean IS NULL OR (ended_at IS NULL) = %(open)s)
          AND (%(drill)s::boolean IS NULL OR drill = %(drill)s)
        ORDER BY started_at DESC, id DESC LIMIT %(limit)s""",
                     {"sites": ascope.sites, "areas": ascope.areas, "site": site, "area": area, "open": open,
                      "drill": drill, "limit": limit})


@router.get("/{flood_id}", response_model=FloodDetail)
def get_flood(flood_id: PathId, principal: Reader, conn: Conn):
    """One flood with its alarms (most urgent first); its first alarm is marked ``is_first_out``."""
    flood = fetch_one(conn, "SELECT * FROM alarm_flood WHERE id = %s", (flood_id,))
    if flood is None or not alarm_scope(conn, principal.scope).sees(flood["site"], flood["area"]):
        raise NotFound(f"no flood {flood_id}")
    alarms = service.list_alarms(conn=conn, flood_id=flood_id, open_only=False, limit=1000)
    flood["alarms"] = [{**a, "is_first_out": a["id"] == flood["first_alarm_id"]}
                       for a in with_versions(conn, alarms)]
    return flood
