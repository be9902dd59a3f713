"""Process areas: read within scope; administrators create, change and retire them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import plant_read, plant_write
from api.deps import After, Conn, IncludeRetired, Limit, PathId, SiteFilter, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.plant import AreaCreate, AreaRead, AreaUpdate
from core.model import ProcessType

router = APIRouter(prefix="/api/v1/areas", tags=["plant"])
Reader = Annotated[Principal, require(Permission.PLANT_READ)]
Writer = Annotated[Principal, require(Permission.PLANT_WRITE)]


@router.get("", response_model=Page[AreaRead])
def list_areas(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    process: Annotated[ProcessType | None, Query(description="Only this process")] = None,
    include_retired: IncludeRetired = False,
    after: After = None,
    limit: Limit = 100,
):
    return plant_read.list_areas(
        conn,
        principal.scope,
        site=site,
        process=process and process.value,
        include_retired=include_retired,
        after=after_id(after),
        limit=limit,
    )


@router.get("/{area_id}", response_model=AreaRead)
def get_area(area_id: PathId, principal: Reader, conn: Conn):
    return plant_read.get_area(conn, principal.scope, area_id)


@router.post("", response_model=AreaRead, status_code=201)
def create_area(body: AreaCreate, principal: Writer, conn: Conn):
    area_id = plant_write.create_area(conn=conn, principal=principal, body=body)
    return plant_read.get_area(conn, principal.scope, area_id)


@router.patch("/{area_id}", response_model=AreaRead)
def update_area(area_id: PathId, body: AreaUpdate, principal: Writer, conn: Conn):
    plant_write.update_area(conn=conn, principal=principal, area_id=area_id, body=body)
    return plant_read.get_area(conn, principal.scope, area_id)


@router.delete("/{area_id}", status_code=204, response_class=Response)
def retire_area(area_id: PathId, principal: Writer, conn: Conn) -> Response:
    """Retire an empty area (409 while it still has devices)."""
    plant_write.retire_area(conn=conn, principal=principal, area_id=area_id)
    return Response(status_code=204)
