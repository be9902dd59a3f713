"""Sites: read within scope; administrators create and rename (sites are never deleted: readings refer to them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api import plant_read, plant_write
from api.deps import After, Conn, Limit, PathId, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.plant import SiteCreate, SiteRead, SiteUpdate

router = APIRouter(prefix="/api/v1/sites", tags=["plant"])
Reader = Annotated[Principal, require(Permission.PLANT_READ)]
Writer = Annotated[Principal, require(Permission.PLANT_WRITE)]


@router.get("", response_model=Page[SiteRead])
def list_sites(principal: Reader, conn: Conn, after: After = None, limit: Limit = 100):
    """The sites you may see."""
    return plant_read.list_sites(conn, principal.scope, after=after_id(after), limit=limit)


@router.get("/{site_id}", response_model=SiteRead)
def get_site(site_id: PathId, principal: Reader, conn: Conn):
    return plant_read.get_site(conn, principal.scope, site_id)


@router.post("", response_model=SiteRead, status_code=201)
def create_site(body: SiteCreate, principal: Writer, conn: Conn):
    """Create a site (administrators of all sites); add areas, devices and meters next."""
    site_id = plant_write.create_site(conn=conn, principal=principal, body=body)
    return plant_read.get_site(conn, principal.scope, site_id)


@router.patch("/{site_id}", response_model=SiteRead)
def update_site(site_id: PathId, body: SiteUpdate, principal: Writer, conn: Conn):
    plant_write.update_site(conn=conn, principal=principal, site_id=site_id, body=body)
    return plant_read.get_site(conn, principal.scope, site_id)
