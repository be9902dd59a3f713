"""API keys for devices and integrations: created (the secret shown once), listed, revoked; all audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from api import auth, security
from api.errors import Invalid, NotFound
from api.policy import KEY_ROLES, Principal, Role, scope_for
from api.queries import fetch_all, fetch_one, page
from api.users import check_grant, resolve_sites
from core import audit
from core.db import execute

_COLUMNS = """k.id, k.prefix, k.name, k.role, k.all_sites, k.created_by, k.created_at, k.expires_at, k.revoked_at,
              k.last_used_at,
              coalesce((SELECT array_agg(s.code ORDER BY s.code) FROM site s WHERE s.id = ANY(k.site_ids)),
                       '{}') AS sites"""
_VISIBLE = "(%(sites)s::int[] IS NULL OR (NOT k.all_sites AND k.site_ids <@ %(sites)s::int[]))"


def create_key(
    *,
    conn: psycopg.Connection,
    actor: Principal,
    name: str,
    role: Role,
    sites: list[str],
    all_sites: bool,
    expires_at: datetime | None,
    now: datetime,
) -> tuple[int, str]:
    """Create a key; return its id and the full key (stored only as a hash: it cannot be shown again)."""
    if role not in KEY_ROLES:
        raise Invalid(f"an API key cannot have the role {role}", field="body.role")
    if expires_at is not None and expires_at <= now:
        raise Invalid("the expiry must lie in the future", field="body.expires_at")
    site_ids = [] if all_sites else resolve_sites(conn, sites)
    if not all_sites and not site_ids:
        raise Invalid("a key needs at least one site, or all_sites", field="body.sites")
    check_grant(actor, scope_for(role, site_ids, all_sites))
    new = security.new_api_key()
    key_id = execute(
        conn,
        "INSERT INTO api_key (prefix, key_hash, name, role, site_ids, all_sites, created_by, "
        "created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (new.prefix, new.key_hash, name, role.value, site_ids, all_sites, actor.actor, now, expires_at),
    ).fetchone()[0]
    audit.append(
        conn,
        actor=actor.actor,
        action="api_key.create",
        target=f"api_key/{new.prefix}",
        detail={"name": name, "role": role.value, "sites": sites if not all_sites else "*"},
    )
    return key_id, new.key


def get_key(*, conn: psycopg.Connection, actor: Principal, key_id: int) -> dict[str, Any]:
    row = fetch_one(
        conn,
        f"SELECT {_COLUMNS} FROM api_key k WHERE k.id = %(id)s AND {_VISIBLE}",
        {"id": key_id, "sites": actor.scope.sites_param()},
    )
    if row is None:
        raise NotFound(f"no API key {key_id}")
    return row


def list_keys(
    *, conn: psycopg.Connection, actor: Principal, include_revoked: bool, after: int | None, limit: int
) -> dict[str, Any]:
    rows = fetch_all(
        conn,
        f"""
        SELECT {_COLUMNS} FROM api_key k
        WHERE k.id > %(after)s AND {_VISIBLE} AND (%(revoked)s OR k.revoked_at IS NULL)
        ORDER BY k.id LIMIT %(limit)s""",
        {"after": after or 0, "sites": actor.scope.sites_param(), "revoked": include_revoked, "limit": limit + 1},
    )
    return page(rows, limit, lambda r: (r["id"],))


def revoke_key(*, conn: psycopg.Connection, actor: Principal, key_id: int, now: datetime) -> None:
    row = get_key(conn=conn, actor=actor, key_id=key_id)
    execute(conn, "UPDATE api_key SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s", (now, key_id))
    auth.announce_revocation(conn, kind="api_key", principal_id=key_id)
    audit.append(
        conn,
        actor=actor.actor,
        action="api_key.revoke",
        target=f"api_key/{row['prefix']}",
        detail={"name": row["name"]},
    )
