"""Alarm floods (ISA-18.2 / EEMUA 191): more than ``flood_start`` alarms in an area within the window open one
flood record with its first-out alarm; it ends when the rate falls below ``flood_end``. ``GET /floods`` is a
bare JSON list, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from alerts import service
from api.alarms import alarm_scope, check_site, with_versions
from api.deps import Conn, PathId, SiteFilter, require
from api.policy import Permission, Principal
from api.schemas.alarms import FloodDetail, FloodRead

router = APIRouter(prefix="/api/v1/floods", tags=["alarms"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]


@router.get("", response_model=list[FloodRead])
def list_floods(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    area: Annotated[str | None, Query(max_length=64, description="Area code")] = None,
    open: Annotated[bool | None, Query(description="Only ongoing (true) or ended (false)")] = None,  # noqa: A002
    drill: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """Floods within your scope, newest first."""
    check_site(conn, principal.scope, site)
    return service.list_floods(
        conn=conn,
        scope=alarm_scope(conn, principal.scope),
        site=site,
        area=area,
        open_only=open,
        drill=drill,
        limit=limit,
    )


@router.get("/{flood_id}", response_model=FloodDetail)
def get_flood(flood_id: PathId, principal: Reader, conn: Conn):
    """One flood with its alarms (most urgent first); its first alarm is marked ``is_first_out``."""
    flood = service.get_flood(conn=conn, flood_id=flood_id, scope=alarm_scope(conn, principal.scope))
    flood["alarms"] = with_versions(conn, flood["alarms"])
    return flood
