"""Devices: read within scope; administrators add (with their points), change, move and retire them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import plant_read, plant_write
from api.deps import After, Conn, IncludeRetired, Limit, PathId, QueryId, SiteFilter, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.plant import DeviceCreate, DeviceRead, DeviceUpdate

router = APIRouter(prefix="/api/v1/devices", tags=["plant"])
Reader = Annotated[Principal, require(Permission.PLANT_READ)]
Writer = Annotated[Principal, require(Permission.PLANT_WRITE)]


@router.get("", response_model=Page[DeviceRead])
def list_devices(
    principal: Reader,
    conn: Conn,
    site: SiteFilter = None,
    area_id: QueryId = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[Literal["online", "offline", "unknown"] | None, Query()] = None,
    include_retired: IncludeRetired = False,
    after: After = None,
    limit: Limit = 100,
):
    return plant_read.list_devices(
        conn,
        principal.scope,
        site=site,
        area_id=area_id,
        kind=kind,
        status=status,
        include_retired=include_retired,
        after=after_id(after),
        limit=limit,
    )


@router.get("/{device_id}", response_model=DeviceRead)
def get_device(device_id: PathId, principal: Reader, conn: Conn):
    return plant_read.get_device(conn, principal.scope, device_id)


@router.post("", response_model=DeviceRead, status_code=201)
def create_device(body: DeviceCreate, principal: Writer, conn: Conn):
    device_id = plant_write.create_device(conn=conn, principal=principal, body=body)
    return plant_read.get_device(conn, principal.scope, device_id)


@router.patch("/{device_id}", response_model=DeviceRead)
def update_device(device_id: PathId, body: DeviceUpdate, principal: Writer, conn: Conn):
    plant_write.update_device(conn=conn, principal=principal, device_id=device_id, body=body)
    return plant_read.get_device(conn, principal.scope, device_id)


@router.delete("/{device_id}", status_code=204, response_class=Response)
def retire_device(device_id: PathId, principal: Writer, conn: Conn) -> Response:
    """Retire a device and its points (409 while a meter reads it). Readings are kept."""
    plant_write.retire_device(conn=conn, principal=principal, device_id=device_id)
    return Response(status_code=204)
