"""Sign-in (OAuth2 password flow), token refresh and logout, the caller's profile, password and TOTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordRequestForm

from api import auth, users
from api.deps import AppClock, AuthConf, ClientAddress, Conn, CurrentPrincipal, require_user
from api.policy import Principal
from api.ratelimit import limit_auth
from api.schemas import ErrorRead
from api.schemas.auth import MeRead, MfaCode, MfaDisable, MfaSetupRead, PasswordChange, RefreshRequest, TokenRead
from core.db import unit_of_work

router = APIRouter(
    prefix="/api/v1/auth",
    tags=["auth"],
    responses={429: {"model": ErrorRead, "description": "Too many attempts from this address"}},
)
Me = Annotated[Principal, require_user()]

_INVALID = "incorrect username, password or code (an account locks after repeated failures)"


def _token_response(pair: auth.TokenPair, clock_now) -> TokenRead:
    return TokenRead(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=int((pair.access_expires_at - clock_now).total_seconds()),
        refresh_expires_in=int((pair.refresh_expires_at - clock_now).total_seconds()),
    )


def _refused(detail: str, **extra) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


@router.post(
    "/token",
    response_model=TokenRead,
    dependencies=[Depends(limit_auth)],
    responses={
        401: {
            "description": "Wrong credentials, locked account, or a TOTP code is needed "
            "(then the body has mfa_required: true)"
        }
    },
)
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    cfg: AuthConf,
    clock: AppClock,
    client: ClientAddress,
    totp: Annotated[str | None, Form(max_length=8, description="TOTP code, when enabled")] = None,
):
    """Sign in with username and password (and a TOTP code when two-factor authentication is on)."""
    now = clock.now()
    # an explicit transaction, committed before answering: failures and lockouts must be recorded even
    # though the answer is 401
    with unit_of_work(request.app.state.pool) as conn:
        result = auth.login(
            conn=conn,
            cfg=cfg,
            username=form.username[:200],
            password=form.password[:256],
            totp=totp,
            now=now,
            client=client,
        )
    if result.tokens is None:
        if result.failure == "mfa_required":
            return _refused("a TOTP code is required", mfa_required=True)
        return _refused(_INVALID)
    return _token_response(result.tokens, now)


@router.post(
    "/refresh",
    response_model=TokenRead,
    dependencies=[Depends(limit_auth)],
    responses={401: {"description": "Unknown, expired, revoked or reused refresh token"}},
)
def refresh(request: Request, body: RefreshRequest, cfg: AuthConf, clock: AppClock, client: ClientAddress):
    """Exchange a refresh token for a new pair; the old one stops working (rotation)."""
    now = clock.now()
    with unit_of_work(request.app.state.pool) as conn:
        pair = auth.refresh(conn=conn, cfg=cfg, token=body.refresh_token, now=now, client=client)
    if pair is None:
        return _refused("invalid refresh token; sign in again")
    return _token_response(pair, now)


@router.post("/logout", status_code=204, response_class=Response, dependencies=[Depends(limit_auth)])
def logout(body: RefreshRequest, conn: Conn, clock: AppClock) -> Response:
    """End the session the refresh token belongs to (its access tokens expire on their own, within minutes)."""
    auth.logout(conn=conn, token=body.refresh_token, now=clock.now())
    return Response(status_code=204)


@router.get("/me", response_model=MeRead)
def me(principal: CurrentPrincipal, conn: Conn) -> MeRead:
    """Who the caller is, with role, sites and permissions (for the PWA to show what the user may do)."""
    mfa = None
    if principal.kind == "user":
        mfa = auth.mfa_enabled(conn=conn, user_id=principal.id)
    sites = principal.scope.site_ids
    return MeRead(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        all_sites=sites is None,
        site_ids=sorted(sites or ()),
        processes=principal.scope.processes_param(),
        permissions=principal.permissions(),
        mfa_enabled=mfa,
    )


def _confirmed(request: Request, me: Principal, cfg: auth.AuthConfig, now, client: str, action: str, change):
    """Run a change confirmed by the password (or a code) in its own transaction; a wrong one is audited and
    counts toward the lockout, and that record is committed although the answer is 422."""
    wrong = None
    with unit_of_work(request.app.state.pool) as conn:
        try:
            return change(conn)
        except users.WrongSecret as exc:
            auth.record_wrong_secret(
                conn=conn,
                cfg=cfg,
                user_id=me.id,
                username=me.name,
                action=action,
                reason=exc.reason,
                now=now,
                client=client,
            )
            wrong = exc
    raise wrong


@router.post("/password", response_model=TokenRead, dependencies=[Depends(limit_auth)])
def change_password(
    request: Request, body: PasswordChange, me: Me, cfg: AuthConf, clock: AppClock, client: ClientAddress
) -> TokenRead:
    """Change your password; your other sessions end and a fresh token pair is returned. A wrong current password
    is audited and counts toward the account lockout."""
    now = clock.now()
    pair = _confirmed(
        request,
        me,
        cfg,
        now,
        client,
        "auth.password_change_failed",
        lambda conn: users.change_own_password(
            conn=conn, cfg=cfg, me=me, current=body.current_password, new=body.new_password, now=now
        ),
    )
    return _token_response(pair, now)


@router.post("/mfa/setup", response_model=MfaSetupRead)
def mfa_setup(me: Me, conn: Conn, cfg: AuthConf) -> MfaSetupRead:
    """Start TOTP enrolment: returns the seed and its otpauth:// URI (render it as a QR code)."""
    secret, uri = users.mfa_setup(conn=conn, cfg=cfg, me=me)
    return MfaSetupRead(secret=secret, provisioning_uri=uri)


@router.post("/mfa/enable", status_code=204, response_class=Response, dependencies=[Depends(limit_auth)])
def mfa_enable(body: MfaCode, me: Me, conn: Conn, cfg: AuthConf, clock: AppClock) -> Response:
    """Finish enrolment with the first code the authenticator shows."""
    users.mfa_enable(conn=conn, cfg=cfg, me=me, code=body.code, now=clock.now())
    return Response(status_code=204)


@router.post("/mfa/disable", status_code=204, response_class=Response, dependencies=[Depends(limit_auth)])
def mfa_disable(
    request: Request, body: MfaDisable, me: Me, cfg: AuthConf, clock: AppClock, client: ClientAddress
) -> Response:
    """Turn two-factor authentication off (needs the password and a current code; a wrong one is audited and
    counts toward the account lockout)."""
    now = clock.now()
    _confirmed(
        request,
        me,
        cfg,
        now,
        client,
        "auth.mfa_disable_failed",
        lambda conn: users.mfa_disable(conn=conn, cfg=cfg, me=me, password=body.password, code=body.code, now=now),
    )
    return Response(status_code=204)
