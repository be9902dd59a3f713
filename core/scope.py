"""A caller's scope in the codes that domain records carry: site codes and ``site/area`` keys.

Domain records (alarms, commands, bypasses, audit entries) name their site and area by code, while the API's
scope (api.policy.Scope) holds site ids and process types. ``resolve`` converts once per request (the one
site-id-to-code conversion, ``site_codes``), and domain functions take the result and filter in SQL
(``sql``) or check one record (``sees``).

Site-level records: an alarm without an area (hazardous-waste manifest and declaration alarms, a site's
declarations) belongs to the whole site, so anyone with the site in scope sees it, callers limited to some
processes (regulators) too: ``site_level=True``. Other records without an area (a whole-site report, which holds
every area's data) stay hidden from process-limited callers (the default). Seeing is not acting: actions on an
alarm check the strict scope (``alerts.service``), so process-limited callers read site-level alarms only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from core import db
from core.errors import Forbidden, NotFound


@dataclass(frozen=True, slots=True)
class CodeScope:
    """What a caller may see: site codes and ``site/area`` keys (None: no limit)."""

    sites: list[str] | None = None
    areas: list[str] | None = None

    @classmethod
    def everything(cls) -> CodeScope:
        return cls(None, None)

    def sees(self, site: str, area: str | None, *, site_level: bool = False) -> bool:
        """True when the record of ``site`` and ``area`` is in scope; ``site_level``: a record without an area
        belongs to the whole site (visible with the site in scope)."""
        if self.sites is not None and site not in self.sites:
            return False
        if self.areas is None or (site_level and not area):
            return True
        return f"{site}/{area or ''}" in self.areas

    def sql(self, site: str = "site", area: str = "area", *, site_level: bool = False) -> tuple[str, dict[str, Any]]:
        """A WHERE term on the columns ``site`` and ``area`` and its parameters (``scope_sites``, ``scope_areas``)."""
        return (
            f"(%(scope_sites)s::text[] IS NULL OR {site} = ANY(%(scope_sites)s::text[])) AND "
            f"(%(scope_areas)s::text[] IS NULL OR {site} || '/' || coalesce({area}, '') = "
            f"ANY(%(scope_areas)s::text[]){f' OR {area} IS NULL' if site_level else ''})",
            {"scope_sites": self.sites, "scope_areas": self.areas},
        )


def site_codes(conn: psycopg.Connection, site_ids: Iterable[int] | None) -> list[str] | None:
    """The codes of these sites, sorted (None stays None: every site)."""
    if site_ids is None:
        return None
    return [
        r["code"]
        for r in db.fetch_all(conn, "SELECT code FROM site WHERE id = ANY(%s) ORDER BY code", (sorted(site_ids),))
    ]


def area_codes(conn: psycopg.Connection, area_ids: Iterable[int]) -> list[str]:
    """The codes of these areas (sorted, once each)."""
    return [
        r["code"]
        for r in db.fetch_all(
            conn, "SELECT DISTINCT code FROM area WHERE id = ANY(%s) ORDER BY code", (sorted(set(area_ids)),)
        )
    ]


def sites(conn: psycopg.Connection, *, site_ids: Iterable[int] | None, code: str | None = None) -> list[dict[str, Any]]:
    """The sites (``id``, ``code``, ``name``, ``name_en``, ``timezone``) among ``site_ids`` (None: every site),
    only ``code`` if given, by code."""
    return db.fetch_all(
        conn,
        """SELECT id, code, name, name_en, timezone FROM site
           WHERE (%(ids)s::int[] IS NULL OR id = ANY(%(ids)s::int[]))
             AND (%(code)s::text IS NULL OR code = %(code)s) ORDER BY code""",
        {"ids": None if site_ids is None else sorted(site_ids), "code": code},
    )


def resolve(conn: psycopg.Connection, *, site_ids: Iterable[int] | None, processes: Iterable[str] | None) -> CodeScope:
    """The code scope of site ids and process types (None: no limit)."""
    sites = site_codes(conn, site_ids)
    areas = None
    if processes is not None:
        ids = None if site_ids is None else sorted(site_ids)
        areas = [
            r["key"]
            for r in db.fetch_all(
                conn,
                "SELECT s.code || '/' || a.code AS key FROM area a JOIN site s ON s.id = a.site_id "
                "WHERE a.process_type = ANY(%s) AND (%s::int[] IS NULL OR s.id = ANY(%s::int[]))",
                (sorted(processes), ids, ids),
            )
        ]
    return CodeScope(sites, areas)


def site_by_code(conn: psycopg.Connection, code: str, *, site_ids: Iterable[int] | None) -> dict[str, Any]:
    """A site named in a request (``id``, ``code``, ``timezone``): Forbidden (403) when it is not one of
    ``site_ids`` (None: every site), NotFound (404) when there is no such site."""
    row = db.fetch_one(conn, "SELECT id, code, timezone FROM site WHERE code = %s", (code,))
    if site_ids is not None and (row is None or row["id"] not in set(site_ids)):
        raise Forbidden(f"site {code!r} is not in your scope")
    if row is None:
        raise NotFound(f"no site {code!r}")
    return row


def check_site(conn: psycopg.Connection, scope: CodeScope, code: str | None) -> None:
    """A request naming a site (a code) outside the scope is refused (403), an unknown site is not found (404)."""
    if code is None:
        return
    if scope.sites is not None and code not in scope.sites:
        raise Forbidden(f"site {code!r} is not in your scope")
    if db.fetch_one(conn, "SELECT 1 AS found FROM site WHERE code = %s", (code,)) is None:
        raise NotFound(f"no site {code!r}")


_POINTS = """
    SELECT s.code AS site, a.code AS area, d.code AS device, d.kind AS device_kind, p.key, p.quantity
    FROM point p JOIN device d ON d.id = p.device_id JOIN area a ON a.id = d.area_id JOIN site s ON s.id = d.site_id
    WHERE p.retired_at IS NULL AND d.retired_at IS NULL
      AND (%(sites)s::int[] IS NULL OR s.id = ANY(%(sites)s))
      AND (%(processes)s::text[] IS NULL OR a.process_type = ANY(%(processes)s))"""
_AREAS = """
    SELECT s.code AS site, a.code AS area FROM area a JOIN site s ON s.id = a.site_id
    WHERE (%(sites)s::int[] IS NULL OR s.id = ANY(%(sites)s))
      AND (%(processes)s::text[] IS NULL OR a.process_type = ANY(%(processes)s))"""
_DEVICES = """
    SELECT s.code AS site, d.code AS device
    FROM device d JOIN area a ON a.id = d.area_id JOIN site s ON s.id = d.site_id
    WHERE (%(sites)s::int[] IS NULL OR s.id = ANY(%(sites)s))
      AND (%(processes)s::text[] IS NULL OR a.process_type = ANY(%(processes)s))"""


@dataclass(frozen=True, slots=True)
class PlantView:
    """The plant within site ids and process types: the active points (``site``, ``area``, ``device``,
    ``device_kind``, ``key``, ``quantity``), and the (site code, area code) and (site code, device code) pairs."""

    points: list[dict[str, Any]]
    areas: set[tuple[str, str]]
    devices: set[tuple[str, str]]


def plant_view(
    conn: psycopg.Connection, *, site_ids: Iterable[int] | None, processes: Iterable[str] | None
) -> PlantView:
    """What a scope of site ids and process types (None: no limit) sees of the plant."""
    params = {
        "sites": None if site_ids is None else sorted(site_ids),
        "processes": None if processes is None else sorted(processes),
    }
    return PlantView(
        db.fetch_all(conn, _POINTS, params),
        {(r["site"], r["area"]) for r in db.fetch_all(conn, _AREAS, params)},
        {(r["site"], r["device"]) for r in db.fetch_all(conn, _DEVICES, params)},
    )


def recipients_for(conn: psycopg.Connection, names: Iterable[str], site: str | None) -> set[str]:
    """Of these usernames, the active users whose sites include ``site`` (a code; None: those of every site)."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    return {
        r["username"]
        for r in db.fetch_all(
            conn,
            """
        SELECT u.username FROM app_user u
        WHERE u.username = ANY(%(names)s) AND u.disabled_at IS NULL
          AND (u.all_sites OR EXISTS (SELECT 1 FROM site s WHERE s.code = %(site)s AND s.id = ANY(u.site_ids)))""",
            {"names": wanted, "site": site},
        )
    }
