"""Read the plant registry within the caller's scope: sites, areas, devices, points, meters.

An object outside the scope is reported as absent (``NotFound``); a list filter naming a site outside the
scope is ``Forbidden`` (api/policy.py). Retired items are left out unless asked for. Lists are keyset pages
ordered by id.
"""

from __future__ import annotations

from typing import Any

import psycopg

from api.errors import Forbidden, NotFound
from api.policy import Scope
from api.queries import fetch_all, fetch_one, page, scope_params, scope_sql

_SITE = "SELECT id, code, name, name_en, timezone FROM site s"
_AREA = """SELECT a.id, a.site_id, s.code AS site, a.code, a.name, a.name_en, a.process_type AS process,
                  a.retired_at
           FROM area a JOIN site s ON s.id = a.site_id"""
_DEVICE = """SELECT d.id, d.site_id, s.code AS site, d.area_id, a.code AS area, d.code, d.name, d.name_en, d.kind,
                    d.interval_s, d.status, d.status_at, d.retired_at
             FROM device d JOIN site s ON s.id = d.site_id JOIN area a ON a.id = d.area_id"""
_POINT = """SELECT p.id, p.device_id, d.code AS device, d.site_id, s.code AS site, d.area_id, p.key, p.name,
                   p.name_en, p.quantity, p.unit, p.kind, p.valid_min, p.valid_max, p.nominal,
                   coalesce(p.retired_at, d.retired_at) AS retired_at
            FROM point p JOIN device d ON d.id = p.device_id JOIN site s ON s.id = d.site_id
            JOIN area a ON a.id = d.area_id"""
# virtual meters (a formula, no point) are scoped by their own area
_METER = """SELECT m.id, m.site_id, s.code AS site, m.code, m.name, m.name_en, m.medium, m.point_id, m.parent_id,
                   m.area_id, m.formula, m.retired_at
            FROM meter m JOIN site s ON s.id = m.site_id LEFT JOIN point p ON p.id = m.point_id
            LEFT JOIN device d ON d.id = p.device_id JOIN area a ON a.id = coalesce(d.area_id, m.area_id)"""


def site_filter(conn: psycopg.Connection, scope: Scope, code: str | None) -> int | None:
    """Resolve a ``site`` list filter (a code) to its id: 403 outside the scope, 404 if unknown."""
    if code is None:
        return None
    row = fetch_one(conn, "SELECT id FROM site WHERE code = %s", (code,))
    if scope.site_ids is not None and (row is None or row["id"] not in scope.site_ids):
        raise Forbidden(f"site {code!r} is not in your scope")
    if row is None:
        raise NotFound(f"no site {code!r}")
    return row["id"]


def _list(
    conn: psycopg.Connection,
    base: str,
    where: list[str],
    params: dict[str, Any],
    id_col: str,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    where = [*where, f"{id_col} > %(after)s"]
    sql = f"{base} WHERE {' AND '.join(where)} ORDER BY {id_col} LIMIT %(limit)s"
    rows = fetch_all(conn, sql, {**params, "after": after or 0, "limit": limit + 1})
    return page(rows, limit, lambda r: (r["id"],))


def _get(
    conn: psycopg.Connection, base: str, where: str, id_col: str, scope: Scope, obj_id: int, what: str
) -> dict[str, Any]:
    row = fetch_one(conn, f"{base} WHERE {id_col} = %(id)s AND {where}", {"id": obj_id, **scope_params(scope)})
    if row is None:
        raise NotFound(f"no {what} {obj_id}")
    return row


# --- sites --------------------------------------------------------------------------------------------------


def list_sites(conn: psycopg.Connection, scope: Scope, *, after: int | None, limit: int) -> dict[str, Any]:
    return _list(conn, _SITE, [scope_sql("s.id")], scope_params(scope), "s.id", after, limit)


def get_site(conn: psycopg.Connection, scope: Scope, site_id: int) -> dict[str, Any]:
    return _get(conn, _SITE, scope_sql("s.id"), "s.id", scope, site_id, "site")


# --- areas --------------------------------------------------------------------------------------------------

_AREA_SCOPE = scope_sql("a.site_id", "a.process_type")


def list_areas(
    conn: psycopg.Connection,
    scope: Scope,
    *,
    site: str | None,
    process: str | None,
    include_retired: bool,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    where = [_AREA_SCOPE]
    params = {**scope_params(scope), "site": site_filter(conn, scope, site), "process": process}
    where.append("(%(site)s::int IS NULL OR a.site_id = %(site)s)")
    where.append("(%(process)s::text IS NULL OR a.process_type = %(process)s)")
    if not include_retired:
        where.append("a.retired_at IS NULL")
    return _list(conn, _AREA, where, params, "a.id", after, limit)


def get_area(conn: psycopg.Connection, scope: Scope, area_id: int) -> dict[str, Any]:
    return _get(conn, _AREA, _AREA_SCOPE, "a.id", scope, area_id, "area")


# --- devices ------------------------------------------------------------------------------------------------


def list_devices(
    conn: psycopg.Connection,
    scope: Scope,
    *,
    site: str | None,
    area_id: int | None,
    kind: str | None,
    status: str | None,
    include_retired: bool,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    params = {
        **scope_params(scope),
        "site": site_filter(conn, scope, site),
        "area": area_id,
        "kind": kind,
        "status": status,
    }
    where = [
        _AREA_SCOPE,
        "(%(site)s::int IS NULL OR d.site_id = %(site)s)",
        "(%(area)s::int IS NULL OR d.area_id = %(area)s)",
        "(%(kind)s::text IS NULL OR d.kind = %(kind)s)",
        "(%(status)s::text IS NULL OR d.status = %(status)s)",
    ]
    if not include_retired:
        where.append("d.retired_at IS NULL")
    return _list(conn, _DEVICE, where, params, "d.id", after, limit)


def get_device(conn: psycopg.Connection, scope: Scope, device_id: int) -> dict[str, Any]:
    return _get(conn, _DEVICE, _AREA_SCOPE, "d.id", scope, device_id, "device")


# --- points -------------------------------------------------------------------------------------------------


def list_points(
    conn: psycopg.Connection,
    scope: Scope,
    *,
    site: str | None,
    area_id: int | None,
    device_id: int | None,
    quantity: str | None,
    include_retired: bool,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    params = {
        **scope_params(scope),
        "site": site_filter(conn, scope, site),
        "area": area_id,
        "device": device_id,
        "quantity": quantity,
    }
    where = [
        _AREA_SCOPE,
        "(%(site)s::int IS NULL OR d.site_id = %(site)s)",
        "(%(area)s::int IS NULL OR d.area_id = %(area)s)",
        "(%(device)s::int IS NULL OR p.device_id = %(device)s)",
        "(%(quantity)s::text IS NULL OR p.quantity = %(quantity)s)",
    ]
    if not include_retired:
        where.append("p.retired_at IS NULL AND d.retired_at IS NULL")
    return _list(conn, _POINT, where, params, "p.id", after, limit)


def get_point(conn: psycopg.Connection, scope: Scope, point_id: int) -> dict[str, Any]:
    return _get(conn, _POINT, _AREA_SCOPE, "p.id", scope, point_id, "point")


# --- meters -------------------------------------------------------------------------------------------------


def list_meters(
    conn: psycopg.Connection,
    scope: Scope,
    *,
    site: str | None,
    medium: str | None,
    include_retired: bool,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    params = {**scope_params(scope), "site": site_filter(conn, scope, site), "medium": medium}
    where = [
        _AREA_SCOPE,
        "(%(site)s::int IS NULL OR m.site_id = %(site)s)",
        "(%(medium)s::text IS NULL OR m.medium = %(medium)s)",
    ]
    if not include_retired:
        where.append("m.retired_at IS NULL")
    return _list(conn, _METER, where, params, "m.id", after, limit)


def get_meter(conn: psycopg.Connection, scope: Scope, meter_id: int) -> dict[str, Any]:
    return _get(conn, _METER, _AREA_SCOPE, "m.id", scope, meter_id, "meter")
