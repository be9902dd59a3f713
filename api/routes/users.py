"""User administration: list, create, change role/sites, disable, reset password or TOTP, unlock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from api import users
from api.deps import After, AppClock, Conn, Limit, PathId, require
from api.policy import Permission, Principal
from api.queries import Page, after_id
from api.schemas.auth import PasswordReset, PasswordResetRead, UserCreate, UserCreated, UserRead, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Principal, require(Permission.USERS_MANAGE)]


@router.get("", response_model=Page[UserRead])
def list_users(principal: Admin, conn: Conn, after: After = None, limit: Limit = 100):
    """Users within your sites."""
    return users.list_users(conn=conn, actor=principal, after=after_id(after), limit=limit)


@router.get("/{user_id}", response_model=UserRead)
def get_user(user_id: PathId, principal: Admin, conn: Conn):
    return users.get_user(conn=conn, actor=principal, user_id=user_id)


@router.post("", response_model=UserCreated, status_code=201)
def create_user(body: UserCreate, principal: Admin, conn: Conn):
    """Create a user; without a password, a one-time password is generated and returned once."""
    new = users.create_user(
        conn=conn,
        actor=principal,
        username=body.username,
        role=body.role,
        sites=body.sites,
        all_sites=body.all_sites,
        display_name=body.display_name,
        password=body.password,
    )
    return {**users.get_user(conn=conn, actor=principal, user_id=new.id), "one_time_password": new.one_time_password}


@router.patch("/{user_id}", response_model=UserRead)
def update_user(user_id: PathId, body: UserUpdate, principal: Admin, conn: Conn, clock: AppClock):
    """Change display name, role, sites, or disable/enable; role, site and status changes end the user's sessions."""
    users.update_user(
        conn=conn, actor=principal, user_id=user_id, changes=body.model_dump(mode="json"), now=clock.now()
    )
    return users.get_user(conn=conn, actor=principal, user_id=user_id)


@router.post("/{user_id}/password", response_model=PasswordResetRead)
def reset_password(user_id: PathId, body: PasswordReset, principal: Admin, conn: Conn, clock: AppClock):
    """Set a new password, or get a one-time password (shown once); the user's sessions end."""
    generated = users.reset_password(
        conn=conn, actor=principal, user_id=user_id, password=body.password, now=clock.now()
    )
    return {"one_time_password": generated}


@router.post("/{user_id}/mfa-reset", status_code=204, response_class=Response)
def reset_mfa(user_id: PathId, principal: Admin, conn: Conn, clock: AppClock) -> Response:
    """Turn off a user's TOTP (a lost phone); they can enrol again after signing in."""
    users.reset_mfa(conn=conn, actor=principal, user_id=user_id, now=clock.now())
    return Response(status_code=204)


@router.post("/{user_id}/unlock", status_code=204, response_class=Response)
def unlock(user_id: PathId, principal: Admin, conn: Conn) -> Response:
    """Lift a lockout before it expires."""
    users.unlock(conn=conn, actor=principal, user_id=user_id)
    return Response(status_code=204)
