"""User accounts: administration (create, change, disable, reset), self-service password and TOTP enrolment.

Functions take ``conn`` keyword-only and never commit; every change is audited with the acting principal.
A site administrator manages only users inside their own sites and cannot grant all sites; the last
enabled administrator of all sites cannot be disabled or demoted, so the plant is never left without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from api import auth, security
from api.errors import Conflict, Forbidden, Invalid, NotFound
from api.policy import USER_ROLES, Principal, Role, Scope, scope_for
from api.queries import fetch_all, fetch_one, page
from core import audit
from core.db import execute

_COLUMNS = """u.id, u.username, u.display_name, u.role, u.all_sites, u.mfa_enabled, u.disabled_at,
              u.locked_until, u.last_login_at, u.created_at,
              coalesce((SELECT array_agg(s.code ORDER BY s.code) FROM site s WHERE s.id = ANY(u.site_ids)),
                       '{}') AS sites"""


def resolve_sites(conn: psycopg.Connection, codes: list[str], *, field: str = "body.sites") -> list[int]:
    """Site codes to ids; an unknown code is a 422 naming it."""
    rows = fetch_all(conn, "SELECT id, code FROM site WHERE code = ANY(%s)", (codes,))
    found = {r["code"]: r["id"] for r in rows}
    if missing := [c for c in codes if c not in found]:
        raise Invalid(f"unknown site(s): {', '.join(missing)}", field=field)
    return sorted(found[c] for c in codes)


def check_grant(actor: Principal, scope: Scope) -> None:
    """A principal may only hand out sites it holds itself."""
    if not actor.scope.covers(scope):
        raise Forbidden("you can only grant sites that you administer yourself")


def _visible(actor: Principal, row: dict[str, Any]) -> bool:
    return actor.scope.covers(scope_for(Role(row["role"]), row["site_ids"], row["all_sites"]))


def _load(conn: psycopg.Connection, actor: Principal, user_id: int, *, lock: bool = False) -> dict[str, Any]:
    row = fetch_one(conn, "SELECT * FROM app_user WHERE id = %s" + (" FOR UPDATE" if lock else ""), (user_id,))
    if row is None or not _visible(actor, row):
        raise NotFound(f"no user {user_id}")
    return row


def get_user(*, conn: psycopg.Connection, actor: Principal, user_id: int) -> dict[str, Any]:
    _load(conn, actor, user_id)
    return fetch_one(conn, f"SELECT {_COLUMNS} FROM app_user u WHERE u.id = %s", (user_id,))


def list_users(*, conn: psycopg.Connection, actor: Principal, after: int | None, limit: int) -> dict[str, Any]:
    sites = actor.scope.sites_param()
    rows = fetch_all(
        conn,
        f"""
        SELECT {_COLUMNS} FROM app_user u
        WHERE u.id > %(after)s AND (%(sites)s::int[] IS NULL OR (NOT u.all_sites AND u.site_ids <@ %(sites)s::int[]))
        ORDER BY u.id LIMIT %(limit)s""",
        {"after": after or 0, "sites": sites, "limit": limit + 1},
    )
    return page(rows, limit, lambda r: (r["id"],))


def _enabled_global_admins(conn: psycopg.Connection, excluding: int) -> int:
    return execute(
        conn,
        "SELECT count(*) FROM app_user WHERE role = 'admin' AND all_sites AND disabled_at IS NULL AND id <> %s",
        (excluding,),
    ).fetchone()[0]


@dataclass(frozen=True)
class NewUser:
    id: int
    one_time_password: str | None


def create_user(
    *,
    conn: psycopg.Connection,
    actor: Principal,
    username: str,
    role: Role,
    sites: list[str],
    all_sites: bool,
    display_name: str = "",
    password: str | None = None,
) -> NewUser:
    """Create a user; without ``password`` a one-time password is generated and returned (shown once)."""
    username = auth.normalise_username(username)
    if role not in USER_ROLES:
        raise Invalid(f"a user cannot have the role {role} (device roles are for API keys)", field="body.role")
    site_ids = [] if all_sites else resolve_sites(conn, sites)
    if not all_sites and not site_ids:
        raise Invalid("a user needs at least one site, or all_sites", field="body.sites")
    check_grant(actor, scope_for(role, site_ids, all_sites))
    generated = None if password else security.one_time_password()
    if problem := security.check_password_policy(password or generated):
        raise Invalid(f"the password {problem}", field="body.password")
    if fetch_one(conn, "SELECT 1 FROM app_user WHERE username = %s", (username,)):
        raise Conflict(f"user {username!r} exists")
    try:
        with conn.transaction():
            user_id = execute(
                conn,
                "INSERT INTO app_user (username, display_name, role, site_ids, all_sites, "
                "password_hash) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    username,
                    display_name,
                    role.value,
                    site_ids,
                    all_sites,
                    security.hash_password(password or generated),
                ),
            ).fetchone()[0]
    except psycopg.errors.CheckViolation:
        raise Invalid(
            "a username is 2 to 64 characters: lower-case letters, digits and . _ @ -", field="body.username"
        ) from None
    audit.append(
        conn,
        actor=actor.actor,
        action="user.create",
        target=f"user/{username}",
        detail={"role": role.value, "sites": sites if not all_sites else "*"},
    )
    return NewUser(user_id, generated)


def update_user(
    *, conn: psycopg.Connection, actor: Principal, user_id: int, changes: dict[str, Any], now: datetime
) -> None:
    """Change display name, role, sites or the disabled flag; security-relevant changes end the user's sessions."""
    row = _load(conn, actor, user_id, lock=True)
    role = Role(changes.get("role") or row["role"])
    all_sites = changes["all_sites"] if changes.get("all_sites") is not None else row["all_sites"]
    site_ids = row["site_ids"]
    if changes.get("sites") is not None:
        site_ids = resolve_sites(conn, changes["sites"])
    if all_sites:
        site_ids = []
    elif not site_ids:
        raise Invalid("a user needs at least one site, or all_sites", field="body.sites")
    if role not in USER_ROLES:
        raise Invalid(f"a user cannot have the role {role}", field="body.role")
    check_grant(actor, scope_for(role, site_ids, all_sites))
    disabled = row["disabled_at"] is not None if changes.get("disabled") is None else changes["disabled"]
    was_global_admin = row["role"] == "admin" and row["all_sites"] and row["disabled_at"] is None
    if (
        was_global_admin
        and (disabled or role != Role.ADMIN or not all_sites)
        and _enabled_global_admins(conn, user_id) == 0
    ):
        raise Conflict("this is the last enabled administrator of all sites")
    execute(
        conn,
        "UPDATE app_user SET display_name = coalesce(%s, display_name), role = %s, site_ids = %s, "
        "all_sites = %s, disabled_at = CASE WHEN %s THEN coalesce(disabled_at, %s) END, updated_at = %s "
        "WHERE id = %s",
        (changes.get("display_name"), role.value, site_ids, all_sites, disabled, now, now, user_id),
    )
    security_change = (
        role.value != row["role"]
        or site_ids != row["site_ids"]
        or all_sites != row["all_sites"]
        or disabled != (row["disabled_at"] is not None)
    )
    if security_change:
        auth.end_sessions(conn=conn, user_id=user_id, now=now)
    audit.append(
        conn,
        actor=actor.actor,
        action="user.update",
        target=f"user/{row['username']}",
        detail={"set": {k: v for k, v in changes.items() if v is not None}},
    )


def reset_password(
    *, conn: psycopg.Connection, actor: Principal, user_id: int, password: str | None, now: datetime
) -> str | None:
    """Set a new password (or a generated one-time password, returned) and end the user's sessions."""
    row = _load(conn, actor, user_id, lock=True)
    generated = None if password else security.one_time_password()
    if problem := security.check_password_policy(password or generated):
        raise Invalid(f"the password {problem}", field="body.password")
    execute(
        conn,
        "UPDATE app_user SET password_hash = %s, password_changed_at = %s, failed_logins = 0, "
        "locked_until = NULL WHERE id = %s",
        (security.hash_password(password or generated), now, user_id),
    )
    auth.end_sessions(conn=conn, user_id=user_id, now=now)
    audit.append(conn, actor=actor.actor, action="user.password_reset", target=f"user/{row['username']}")
    return generated


def reset_mfa(*, conn: psycopg.Connection, actor: Principal, user_id: int, now: datetime) -> None:
    row = _load(conn, actor, user_id, lock=True)
    execute(
        conn,
        "UPDATE app_user SET mfa_enabled = false, mfa_secret = NULL, mfa_pending_secret = NULL, "
        "mfa_last_step = NULL WHERE id = %s",
        (user_id,),
    )
    auth.end_sessions(conn=conn, user_id=user_id, now=now)
    audit.append(conn, actor=actor.actor, action="user.mfa_reset", target=f"user/{row['username']}")


def unlock(*, conn: psycopg.Connection, actor: Principal, user_id: int) -> None:
    row = _load(conn, actor, user_id, lock=True)
    execute(conn, "UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = %s", (user_id,))
    audit.append(conn, actor=actor.actor, action="user.unlock", target=f"user/{row['username']}")


def find_user_id(conn: psycopg.Connection, username: str) -> int | None:
    row = execute(conn, "SELECT id FROM app_user WHERE username = %s", (auth.normalise_username(username),))
    found = row.fetchone()
    return found[0] if found else None


# --- self-service ------------------------------------------------------------------------------------------------


class WrongSecret(Invalid):
    """The password or code that confirms a self-service change is wrong (the caller records and counts it)."""

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message, field=field)
        self.reason = reason


def _not_locked(row: dict[str, Any], now: datetime) -> None:
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise Forbidden("the account is locked after repeated wrong passwords; try again later")


def change_own_password(
    *, conn: psycopg.Connection, cfg: auth.AuthConfig, me: Principal, current: str, new: str, now: datetime
) -> auth.TokenPair:
    """Change one's password; other sessions end, and a fresh token pair is returned for this one."""
    row = fetch_one(
        conn, "SELECT password_hash, token_version, locked_until FROM app_user WHERE id = %s FOR UPDATE", (me.id,)
    )
    _not_locked(row, now)
    if not security.verify_password(row["password_hash"], current)[0]:
        raise WrongSecret("the current password is wrong", field="body.current_password", reason="bad_password")
    if problem := security.check_password_policy(new):
        raise Invalid(f"the new password {problem}", field="body.new_password")
    execute(
        conn,
        "UPDATE app_user SET password_hash = %s, password_changed_at = %s WHERE id = %s",
        (security.hash_password(new), now, me.id),
    )
    auth.end_sessions(conn=conn, user_id=me.id, now=now)
    audit.append(conn, actor=me.actor, action="auth.password_change", target=f"user/{me.name}")
    return auth.issue_tokens(conn=conn, cfg=cfg, user_id=me.id, token_version=row["token_version"] + 1, now=now)


def mfa_setup(*, conn: psycopg.Connection, cfg: auth.AuthConfig, me: Principal) -> tuple[str, str]:
    """Start TOTP enrolment: a new pending seed; return it and its otpauth:// URI (for the QR code)."""
    row = fetch_one(conn, "SELECT mfa_enabled FROM app_user WHERE id = %s FOR UPDATE", (me.id,))
    if row["mfa_enabled"]:
        raise Conflict("two-factor authentication is already on; turn it off first to enrol a new device")
    secret = security.new_totp_secret()
    execute(
        conn,
        "UPDATE app_user SET mfa_pending_secret = %s WHERE id = %s",
        (auth.seal_totp(cfg, secret, user_id=me.id), me.id),
    )
    return secret, security.provisioning_uri(secret, me.name, cfg.issuer)


def mfa_enable(*, conn: psycopg.Connection, cfg: auth.AuthConfig, me: Principal, code: str, now: datetime) -> None:
    """Confirm enrolment with a first code from the authenticator."""
    row = fetch_one(conn, "SELECT mfa_pending_secret FROM app_user WHERE id = %s FOR UPDATE", (me.id,))
    if row["mfa_pending_secret"] is None:
        raise Conflict("start with POST /api/v1/auth/mfa/setup")
    secret = auth.unseal_totp(cfg, row["mfa_pending_secret"], user_id=me.id)
    step = security.verify_totp(secret, code, now=now, last_step=None) if secret else None
    if step is None:
        raise Invalid("the code does not match; check the authenticator's clock", field="body.code")
    execute(
        conn,
        "UPDATE app_user SET mfa_secret = mfa_pending_secret, mfa_pending_secret = NULL, "
        "mfa_enabled = true, mfa_last_step = %s WHERE id = %s",
        (step, me.id),
    )
    audit.append(conn, actor=me.actor, action="auth.mfa_enable", target=f"user/{me.name}")


def mfa_disable(
    *, conn: psycopg.Connection, cfg: auth.AuthConfig, me: Principal, password: str, code: str, now: datetime
) -> None:
    """Turn TOTP off; needs both the password and a current code."""
    row = fetch_one(
        conn,
        "SELECT password_hash, mfa_enabled, mfa_secret, mfa_last_step, locked_until FROM app_user "
        "WHERE id = %s FOR UPDATE",
        (me.id,),
    )
    if not row["mfa_enabled"]:
        raise Conflict("two-factor authentication is not on")
    _not_locked(row, now)
    if not security.verify_password(row["password_hash"], password)[0]:
        raise WrongSecret("the password is wrong", field="body.password", reason="bad_password")
    secret = auth.unseal_totp(cfg, row["mfa_secret"], user_id=me.id)
    if secret is None or security.verify_totp(secret, code, now=now, last_step=row["mfa_last_step"]) is None:
        raise WrongSecret("the code does not match", field="body.code", reason="bad_totp")
    execute(
        conn, "UPDATE app_user SET mfa_enabled = false, mfa_secret = NULL, mfa_last_step = NULL WHERE id = %s", (me.id,)
    )
    audit.append(conn, actor=me.actor, action="auth.mfa_disable", target=f"user/{me.name}")
