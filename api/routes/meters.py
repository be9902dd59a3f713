"""Meters (the metering tree): read within scope; administrators add, change and retire them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import plant_read, plant_write
from api.deps import After, Conn, IncludeRetired, Limit, PathId, SiteFilter, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.plant import MeterCreate, MeterRead, MeterUpdate
from core.model import Medium

router = APIRouter(prefix="/api/v1/meters", tags=["plant"])
Reader = Annotated[Principal, require(Permission.PLANT_READ)]
Writer = Annotated[Principal, require(Permission.PLANT_WRITE)]


@router.get("", response_model=Page[MeterRead])
def list_meters(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    medium: Annotated[Medium | None, Query()] = None,
    include_retired: IncludeRetired = False,
    after: After = None,
    limit: Limit = 100,
):
    return plant_read.list_meters(
        conn,
        principal.scope,
        site=site,
        medium=medium and medium.value,
        include_retired=include_retired,
        after=after_id(after),
        limit=limit,
    )


@router.get("/{meter_id}", response_model=MeterRead)
def get_meter(meter_id: PathId, principal: Reader, conn: Conn):
    return plant_read.get_meter(conn, principal.scope, meter_id)


@router.post("", response_model=MeterRead, status_code=201)
def create_meter(body: MeterCreate, principal: Writer, conn: Conn):
    meter_id = plant_write.create_meter(conn=conn, principal=principal, body=body)
    return plant_read.get_meter(conn, principal.scope, meter_id)


@router.patch("/{meter_id}", response_model=MeterRead)
def update_meter(meter_id: PathId, body: MeterUpdate, principal: Writer, conn: Conn):
    plant_write.update_meter(conn=conn, principal=principal, meter_id=meter_id, body=body)
    return plant_read.get_meter(conn, principal.scope, meter_id)


@router.delete("/{meter_id}", status_code=204, response_class=Response)
def retire_meter(meter_id: PathId, principal: Writer, conn: Conn) -> Response:
    """Retire a meter (409 while other meters hang below it)."""
    plant_write.retire_meter(conn=conn, principal=principal, meter_id=meter_id)
    return Response(status_code=204)
