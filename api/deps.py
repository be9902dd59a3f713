"""Dependency aliases for routes (FastAPI full-stack template style): connection, settings, caller, permission."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from api import auth
from api.policy import Permission, Principal
from api.schemas import MAX_ID
from api.security import API_KEY_PREFIX, TokenError, decode_access_token, split_api_key
from api.settings import ApiSettings
from core.clock import Clock
from core.settings import CoreSettings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for one request, in one transaction."""
    with request.app.state.pool.connection() as conn, conn.transaction():
        yield conn


def get_app_settings(request: Request) -> CoreSettings:
    return request.app.state.settings


def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings


def get_auth_config(request: Request) -> auth.AuthConfig:
    return request.app.state.auth


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: uvicorn --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


# scope="function": the transaction commits before the response is sent, so a client never sees a success
# that was then rolled back
Conn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]

Settings = Annotated[CoreSettings, Depends(get_app_settings)]
ApiConfig = Annotated[ApiSettings, Depends(get_api_settings)]
AuthConf = Annotated[auth.AuthConfig, Depends(get_auth_config)]
AppClock = Annotated[Clock, Depends(get_clock)]
ClientAddress = Annotated[str, Depends(client_address)]

_bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token", auto_error=False, description="Access token from POST /api/v1/auth/token"
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key of a device or integration (ehs_<prefix>_<secret>)"
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def get_credential(
    cfg: AuthConf, token: Annotated[str | None, Depends(_bearer)], key: Annotated[str | None, Depends(_api_key)]
) -> tuple[str, str]:
    """("api_key" or "token", the credential), checked as far as possible without the database: an access
    token's signature and expiry, an API key's form. A request without a credential, or with junk, is answered
    401 here, before it takes a pooled connection (resolved ahead of ``Conn`` in ``get_principal``)."""
    if not key and token and token.startswith(API_KEY_PREFIX):
        key = token
    if key:
        if split_api_key(key) is None:
            raise _unauthorized("invalid API key")
        return "api_key", key
    if token:
        try:
            decode_access_token(token, key=cfg.jwt_key)
        except TokenError as exc:
            raise _unauthorized(str(exc)) from None
        return "token", token
    raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})


def get_principal(
    credential: Annotated[tuple[str, str], Depends(get_credential)], conn: Conn, cfg: AuthConf, clock: AppClock
) -> Principal:
    """The caller, from an access token (Authorization: Bearer) or an API key (X-API-Key, or as bearer); the
    user or key is read on every request, so a disabled user, a changed password, role or sites (token version)
    or a revoked key is refused at once."""
    kind, value = credential
    try:
        if kind == "api_key":
            return auth.principal_from_api_key(conn=conn, key=value, now=clock.now())
        return auth.principal_from_access_token(conn=conn, cfg=cfg, token=value)
    except TokenError as exc:
        raise _unauthorized(str(exc)) from None


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Any:
    """A dependency that returns the caller if their role holds ``permission``, else answers 403."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise HTTPException(403, f"the {principal.role} role may not do this ({permission})")
        return principal

    check.__name__ = f"require_{permission.value.replace('.', '_')}"
    check.permission = permission  # type: ignore[attr-defined] - read by the route-policy test
    return Depends(check)


def require_user() -> Any:
    """A dependency for self-service routes: a signed-in person, not an API key."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.kind != "user":
            raise HTTPException(403, "only a signed-in user may do this, not an API key")
        return principal

    return Depends(check)


# --- list parameters ---------------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page")]
After = Annotated[str | None, Query(max_length=200, description="The `next` cursor of the previous page")]
SiteFilter = Annotated[str | None, Query(max_length=64, description="Only this site (code)")]
IncludeRetired = Annotated[bool, Query(description="Also list retired items")]
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="Id")]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
