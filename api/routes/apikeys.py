"""API keys for devices and integrations: list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import apikeys
from api.deps import After, AppClock, Conn, Limit, PathId, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.auth import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/api/v1/api-keys", tags=["users"])
Admin = Annotated[Principal, require(Permission.API_KEYS_MANAGE)]


@router.get("", response_model=Page[ApiKeyRead])
def list_keys(
    principal: Admin,
    conn: Conn,
    include_revoked: Annotated[bool, Query()] = False,
    after: After = None,
    limit: Limit = 100,
):
    return apikeys.list_keys(
        conn=conn, actor=principal, include_revoked=include_revoked, after=after_id(after), limit=limit
    )


@router.get("/{key_id}", response_model=ApiKeyRead)
def get_key(key_id: PathId, principal: Admin, conn: Conn):
    return apikeys.get_key(conn=conn, actor=principal, key_id=key_id)


@router.post("", response_model=ApiKeyCreated, status_code=201)
def create_key(body: ApiKeyCreate, principal: Admin, conn: Conn, clock: AppClock):
    """Create a key scoped to a role (never admin) and sites; the response holds the key, shown once."""
    key_id, key = apikeys.create_key(
        conn=conn,
        actor=principal,
        name=body.name,
        role=body.role,
        sites=body.sites,
        all_sites=body.all_sites,
        expires_at=body.expires_at,
        now=clock.now(),
    )
    return {**apikeys.get_key(conn=conn, actor=principal, key_id=key_id), "key": key}


@router.delete("/{key_id}", status_code=204, response_class=Response)
def revoke_key(key_id: PathId, principal: Admin, conn: Conn, clock: AppClock) -> Response:
    apikeys.revoke_key(conn=conn, actor=principal, key_id=key_id, now=clock.now())
    return Response(status_code=204)
