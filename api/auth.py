"""Authentication service: login with lockout and TOTP, rotating refresh tokens, callers from tokens and keys.

Functions take a psycopg ``Connection`` as keyword-only ``conn`` and never commit (STYLE.md B3); every
login, failure, lockout and token theft signal is written to the audit record in the caller's transaction,
so a route must commit even when it answers 401.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from api import security
from api.policy import Principal, Role, scope_for
from api.settings import ApiSettings
from core import audit, keys
from core.db import execute
from core.keys import Keyring
from core.settings import CoreSettings

_LOGGER = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
#: How often an API key's last_used_at is written (not on every request: that would be a write per call).
_KEY_TOUCH = timedelta(minutes=1)


@dataclass(frozen=True)
class AuthConfig:
    """What the auth service needs from settings, with the derived keys."""

    jwt_key: bytes
    keyring: Keyring  # seals the TOTP seeds (core.keys)
    access_lifetime: timedelta
    refresh_lifetime: timedelta
    lockout_threshold: int
    lockout_duration: timedelta
    issuer: str = "ehs-monitor"

    @classmethod
    def from_settings(cls, core: CoreSettings, api: ApiSettings) -> AuthConfig:
        if api.jwt_secret:
            jwt_key = api.jwt_secret.get_secret_value().encode()
        else:
            jwt_key = keys.label_key(core.secret_key.get_secret_value(), "jwt")
        return cls(
            jwt_key=jwt_key,
            keyring=core.keyring,
            access_lifetime=timedelta(minutes=api.access_token_minutes),
            refresh_lifetime=timedelta(days=api.refresh_token_days),
            lockout_threshold=api.lockout_threshold,
            lockout_duration=timedelta(minutes=api.lockout_minutes),
        )


def seal_totp(cfg: AuthConfig, seed: str, *, user_id: int) -> bytes:
    """A TOTP seed sealed for one user's row (core.keys; it does not unseal in another row)."""
    return keys.seal(cfg.keyring, seed, purpose="totp", context=f"totp:{user_id}")


def unseal_totp(cfg: AuthConfig, sealed: bytes, *, user_id: int) -> str | None:
    """The seed sealed by ``seal_totp`` (or by the former AES-GCM scheme); None if altered, moved, or sealed
    under a secret not in the keyring."""
    try:
        return keys.unseal(cfg.keyring, bytes(sealed), purpose="totp", context=f"totp:{user_id}")
    except keys.SealError:
        return None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    tokens: TokenPair | None
    #: "mfa_required" when the password was right but the TOTP code is missing; "invalid" otherwise
    failure: str | None = None


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _printable_username(username: str) -> str:
    # a password typed into the username field must not land in the audit record verbatim
    return username if _USERNAME.match(username) else "<not a valid username>"


def _fail(conn: psycopg.Connection, *, username: str, reason: str, client: str) -> LoginResult:
    audit.append(
        conn,
        actor=f"user:{_printable_username(username)}",
        action="auth.login_failed",
        target=f"user/{_printable_username(username)}",
        detail={"reason": reason, "client": client},
    )
    return LoginResult(None, "invalid")


def _count_failure(
    conn: psycopg.Connection, cfg: AuthConfig, user: dict, *, now: datetime, reason: str, client: str
) -> LoginResult:
    failures = user["failed_logins"] + 1
    if failures >= cfg.lockout_threshold:
        until = now + cfg.lockout_duration
        execute(conn, "UPDATE app_user SET failed_logins = 0, locked_until = %s WHERE id = %s", (until, user["id"]))
        audit.append(
            conn,
            actor="system",
            action="auth.lockout",
            target=f"user/{user['username']}",
            detail={"failures": failures, "until": until.isoformat(), "client": client},
        )
        _LOGGER.warning("account %s locked after %d failed logins", user["username"], failures)
    else:
        execute(conn, "UPDATE app_user SET failed_logins = %s WHERE id = %s", (failures, user["id"]))
    return _fail(conn, username=user["username"], reason=reason, client=client)


def record_wrong_secret(
    *,
    conn: psycopg.Connection,
    cfg: AuthConfig,
    user_id: int,
    username: str,
    action: str,
    reason: str,
    now: datetime,
    client: str,
) -> None:
    """A signed-in user got their password (or code) wrong when confirming a sensitive change: audit it and count
    it toward the lockout like a failed login, so that a stolen session cannot guess the password."""
    failures = execute(
        conn, "UPDATE app_user SET failed_logins = failed_logins + 1 WHERE id = %s RETURNING failed_logins", (user_id,)
    ).fetchone()[0]
    audit.append(
        conn,
        actor=f"user:{username}",
        action=action,
        target=f"user/{username}",
        detail={"reason": reason, "client": client},
    )
    if failures >= cfg.lockout_threshold:
        until = now + cfg.lockout_duration
        execute(conn, "UPDATE app_user SET failed_logins = 0, locked_until = %s WHERE id = %s", (until, user_id))
        audit.append(
            conn,
            actor="system",
            action="auth.lockout",
            target=f"user/{username}",
            detail={"failures": failures, "until": until.isoformat(), "client": client},
        )
        _LOGGER.warning("account %s locked after %d wrong passwords or codes", username, failures)


def _user_for_login(conn: psycopg.Connection, username: str) -> dict | None:
    cur = execute(
        conn,
        "SELECT id, username, password_hash, role, disabled_at, locked_until, failed_logins, "
        "mfa_enabled, mfa_secret, mfa_last_step, token_version FROM app_user "
        "WHERE username = %s FOR UPDATE",
        (username,),
    )
    row = cur.fetchone()
    return None if row is None else dict(zip([d.name for d in cur.description], row, strict=True))


def login(
    *,
    conn: psycopg.Connection,
    cfg: AuthConfig,
    username: str,
    password: str,
    totp: str | None,
    now: datetime,
    client: str,
) -> LoginResult:
    """Check password (and TOTP when enabled); on success issue a token pair. Every outcome is audited."""
    username = normalise_username(username)
    user = _user_for_login(conn, username) if _USERNAME.match(username) else None
    if user is None:
        security.verify_password(None, password)  # same cost as a real check: no user enumeration
        return _fail(conn, username=username, reason="unknown_user", client=client)
    if user["locked_until"] is not None and user["locked_until"] > now:
        return _fail(conn, username=username, reason="locked", client=client)
    ok, rehash = security.verify_password(user["password_hash"], password)
    if user["disabled_at"] is not None:
        return _fail(conn, username=username, reason="disabled", client=client)
    if not ok:
        return _count_failure(conn, cfg, user, now=now, reason="bad_password", client=client)
    if user["mfa_enabled"]:
        if not totp:
            return LoginResult(None, "mfa_required")
        secret = unseal_totp(cfg, user["mfa_secret"], user_id=user["id"])
        step = security.verify_totp(secret, totp, now=now, last_step=user["mfa_last_step"]) if secret else None
        if step is None:
            return _count_failure(conn, cfg, user, now=now, reason="bad_totp", client=client)
        execute(conn, "UPDATE app_user SET mfa_last_step = %s WHERE id = %s", (step, user["id"]))
    if rehash:
        execute(
            conn, "UPDATE app_user SET password_hash = %s WHERE id = %s", (security.hash_password(password), user["id"])
        )
    execute(
        conn,
        "UPDATE app_user SET failed_logins = 0, locked_until = NULL, last_login_at = %s WHERE id = %s",
        (now, user["id"]),
    )
    audit.append(
        conn,
        actor=f"user:{username}",
        action="auth.login",
        target=f"user/{username}",
        detail={"client": client, "mfa": user["mfa_enabled"]},
    )
    return LoginResult(
        issue_tokens(conn=conn, cfg=cfg, user_id=user["id"], token_version=user["token_version"], now=now)
    )


def issue_tokens(
    *,
    conn: psycopg.Connection,
    cfg: AuthConfig,
    user_id: int,
    token_version: int,
    now: datetime,
    family: uuid.UUID | None = None,
) -> TokenPair:
    """A new access token and the next refresh token of ``family`` (a new family when None)."""
    access, access_exp = security.encode_access_token(
        key=cfg.jwt_key, user_id=user_id, token_version=token_version, now=now, lifetime=cfg.access_lifetime
    )
    refresh = security.new_refresh_token()
    refresh_exp = now + cfg.refresh_lifetime
    execute(
        conn,
        "INSERT INTO refresh_token (user_id, family, token_hash, issued_at, expires_at) VALUES (%s, %s, %s, %s, %s)",
        (user_id, family or uuid.uuid4(), security.digest(refresh), now, refresh_exp),
    )
    return TokenPair(access, access_exp, refresh, refresh_exp)


def refresh(*, conn: psycopg.Connection, cfg: AuthConfig, token: str, now: datetime, client: str) -> TokenPair | None:
    """Rotate a refresh token; a reused (already rotated) token revokes its whole family."""
    row = execute(
        conn,
        """
        SELECT r.id, r.family, r.expires_at, r.used_at, r.revoked_at, u.id, u.username, u.token_version,
               u.disabled_at
        FROM refresh_token r JOIN app_user u ON u.id = r.user_id
        WHERE r.token_hash = %s FOR UPDATE OF r""",
        (security.digest(token),),
    ).fetchone()
    if row is None:
        return None
    rid, family, expires, used, revoked, user_id, username, version, disabled = row
    if used is not None and revoked is None:
        execute(
            conn, "UPDATE refresh_token SET revoked_at = %s WHERE family = %s AND revoked_at IS NULL", (now, family)
        )
        audit.append(
            conn,
            actor="system",
            action="auth.refresh_reuse",
            target=f"user/{username}",
            detail={"family": str(family), "client": client},
        )
        _LOGGER.warning("refresh token of %s used twice: session family revoked", username)
        return None
    if revoked is not None or used is not None or expires <= now or disabled is not None:
        return None
    execute(conn, "UPDATE refresh_token SET used_at = %s WHERE id = %s", (now, rid))
    return issue_tokens(conn=conn, cfg=cfg, user_id=user_id, token_version=version, now=now, family=family)


def mfa_enabled(*, conn: psycopg.Connection, user_id: int) -> bool:
    """Whether the user has a second factor (TOTP) enabled."""
    return execute(conn, "SELECT mfa_enabled FROM app_user WHERE id = %s", (user_id,)).fetchone()[0]


def logout(*, conn: psycopg.Connection, token: str, now: datetime) -> None:
    """Revoke the session (refresh-token family) that ``token`` belongs to; unknown tokens are ignored."""
    row = execute(
        conn,
        "SELECT r.family, u.username FROM refresh_token r JOIN app_user u ON u.id = r.user_id WHERE r.token_hash = %s",
        (security.digest(token),),
    ).fetchone()
    if row is None:
        return
    execute(conn, "UPDATE refresh_token SET revoked_at = %s WHERE family = %s AND revoked_at IS NULL", (now, row[0]))
    audit.append(conn, actor=f"user:{row[1]}", action="auth.logout", target=f"user/{row[1]}")


def end_sessions(*, conn: psycopg.Connection, user_id: int, now: datetime) -> None:
    """Invalidate every access token (version bump) and refresh token of a user, and tell the API processes so
    that open WebSocket sessions close at once (on commit)."""
    execute(
        conn, "UPDATE app_user SET token_version = token_version + 1, updated_at = %s WHERE id = %s", (now, user_id)
    )
    execute(conn, "UPDATE refresh_token SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL", (now, user_id))
    announce_revocation(conn, kind="user", principal_id=user_id)


#: NOTIFY channel: a user's sessions ended or an API key was revoked, payload {"kind": "user"|"api_key", "id": N}.
REVOKED_CHANNEL = "auth_revoked"


def announce_revocation(conn: psycopg.Connection, *, kind: str, principal_id: int) -> None:
    """Tell every API process (api.hub) to close the live sessions of this principal; sent on commit."""
    execute(conn, "SELECT pg_notify(%s, %s)", (REVOKED_CHANNEL, f'{{"kind": "{kind}", "id": {int(principal_id)}}}'))


# --- who is calling ------------------------------------------------------------------------------------------


def principal_from_access_token(*, conn: psycopg.Connection, cfg: AuthConfig, token: str) -> Principal:
    """Verify the JWT, then check the user is still enabled and the token not superseded (one indexed read)."""
    claims = security.decode_access_token(token, key=cfg.jwt_key)
    row = execute(
        conn,
        "SELECT username, role, site_ids, all_sites, token_version, disabled_at FROM app_user WHERE id = %s",
        (claims.user_id,),
    ).fetchone()
    if row is None or row[5] is not None or row[4] != claims.token_version:
        raise security.TokenError("token revoked")
    role = Role(row[1])
    return Principal("user", claims.user_id, row[0], role, scope_for(role, row[2], row[3]))


def principal_from_api_key(*, conn: psycopg.Connection, key: str, now: datetime) -> Principal:
    prefix = security.split_api_key(key)
    if prefix is None:
        raise security.TokenError("invalid API key")
    row = execute(
        conn,
        "SELECT id, name, role, site_ids, all_sites, key_hash, expires_at, revoked_at, "
        "last_used_at FROM api_key WHERE prefix = %s",
        (prefix,),
    ).fetchone()
    if row is None or not security.same_digest(bytes(row[5]), security.digest(key)):
        raise security.TokenError("invalid API key")
    key_id, name, role, sites, all_sites, _, expires, revoked, last_used = row
    if revoked is not None or (expires is not None and expires <= now):
        raise security.TokenError("API key revoked or expired")
    if last_used is None or now - last_used > _KEY_TOUCH:
        execute(conn, "UPDATE api_key SET last_used_at = %s WHERE id = %s", (now, key_id))
    role = Role(role)
    return Principal("api_key", key_id, name, role, scope_for(role, sites, all_sites), label=prefix)
