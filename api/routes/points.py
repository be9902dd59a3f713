"""Points: read within scope; administrators add, change and retire them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import plant_read, plant_write
from api.deps import After, Conn, IncludeRetired, Limit, PathId, QueryId, SiteFilter, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.plant import PointCreate, PointRead, PointUpdate

router = APIRouter(prefix="/api/v1/points", tags=["plant"])
Reader = Annotated[Principal, require(Permission.PLANT_READ)]
Writer = Annotated[Principal, require(Permission.PLANT_WRITE)]


@router.get("", response_model=Page[PointRead])
def list_points(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    area_id: QueryId = None,
    device_id: QueryId = None,
    quantity: Annotated[str | None, Query(max_length=64, description="e.g. temperature, h2")] = None,
    include_retired: IncludeRetired = False,
    after: After = None,
    limit: Limit = 100,
):
    return plant_read.list_points(
        conn,
        principal.scope,
        site=site,
        area_id=area_id,
        device_id=device_id,
        quantity=quantity,
        include_retired=include_retired,
        after=after_id(after),
        limit=limit,
    )


@router.get("/{point_id}", response_model=PointRead)
def get_point(point_id: PathId, principal: Reader, conn: Conn):
    return plant_read.get_point(conn, principal.scope, point_id)


@router.post("", response_model=PointRead, status_code=201)
def create_point(body: PointCreate, principal: Writer, conn: Conn):
    point_id = plant_write.create_point(conn=conn, principal=principal, body=body)
    return plant_read.get_point(conn, principal.scope, point_id)


@router.patch("/{point_id}", response_model=PointRead)
def update_point(point_id: PathId, body: PointUpdate, principal: Writer, conn: Conn):
    plant_write.update_point(conn=conn, principal=principal, point_id=point_id, body=body)
    return plant_read.get_point(conn, principal.scope, point_id)


@router.delete("/{point_id}", status_code=204, response_class=Response)
def retire_point(point_id: PathId, principal: Writer, conn: Conn) -> Response:
    """Retire a point (409 while a meter reads it). Its readings are kept."""
    plant_write.retire_point(conn=conn, principal=principal, point_id=point_id)
    return Response(status_code=204)
