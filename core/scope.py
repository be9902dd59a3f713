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
