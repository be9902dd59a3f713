"""What every report needs from the database: the site (name, time zone), its areas, the revision of the
configuration and data a report used, and how fresh the data is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.db import execute
from core.errors import DomainError
from reports.model import Document, Params, tr


class ReportError(DomainError):
    """A report cannot be made as asked (unknown site, area, alarm...); ``status`` suggests the HTTP status."""

    status = 422


class NotFound(ReportError):
    status = 404


def rows(conn: psycopg.Connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def one(conn: psycopg.Connection, sql: str, params: Any = None) -> dict[str, Any] | None:
    found = rows(conn, sql, params)
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Site:
    id: int
    code: str
    name: str
    name_en: str | None
    timezone: str
    areas: dict[str, dict[str, Any]]  # code -> {name, name_en, process_type}

    def plant(self, lang: str) -> str:
        return (self.name_en or self.name) if lang == "en" else self.name

    def area_name(self, code: str | None, lang: str) -> str:
        area = self.areas.get(code or "")
        if area is None:
            return code or "—"
        return (area["name_en"] or area["name"]) if lang == "en" else area["name"]


def load_site(conn: psycopg.Connection, code: str) -> Site:
    site = one(conn, "SELECT id, code, name, name_en, timezone FROM site WHERE code = %s", (code,))
    if site is None:
        raise NotFound(f"no site {code!r}")
    areas = {
        a["code"]: a
        for a in rows(
            conn, "SELECT code, name, name_en, process_type FROM area WHERE site_id = %s ORDER BY code", (site["id"],)
        )
    }
    return Site(site["id"], site["code"], site["name"], site["name_en"], site["timezone"], areas)


def areas_of(site: Site, params: Params) -> list[str]:
    """The area codes a report covers: those asked for (each must exist), else every area of the site."""
    if not params.areas:
        return sorted(site.areas)
    unknown = sorted(set(params.areas) - set(site.areas))
    if unknown:
        raise ReportError(f"site {site.code} has no area {', '.join(unknown)}")
    return sorted(set(params.areas))


def revision(conn: psycopg.Connection) -> dict[str, Any]:
    """The configuration and data a report was made from: the latest plant configuration, rule set and alarm
    configuration revisions, and the newest alarm event and audit entry."""
    row = execute(
        conn,
        "SELECT (SELECT max(id) FROM config_revision), (SELECT max(id) FROM rule_set), "
        "(SELECT max(id) FROM alarm_config), (SELECT max(id) FROM alarm_event), "
        "(SELECT max(seq) FROM audit_entry)",
    ).fetchone()
    return dict(zip(("plant_config", "rule_set", "alarm_config", "alarm_event", "audit_seq"), row, strict=True))


def data_as_of(conn: psycopg.Connection, site: Site, until: datetime) -> datetime | None:
    """The newest reading of the site's points before ``until`` (one index probe per point), or None."""
    return execute(
        conn,
        "SELECT max(r.time) FROM point p JOIN device d ON d.id = p.device_id "
        "CROSS JOIN LATERAL (SELECT time FROM reading WHERE point_id = p.id AND time < %s "
        "ORDER BY time DESC LIMIT 1) r WHERE d.site_id = %s",
        (until, site.id),
    ).fetchone()[0]


def period_text(site: Site, params: Params) -> str:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(site.timezone)
    since, until = params.since.astimezone(tz), params.until.astimezone(tz)
    if (
        since.day == 1
        and until.day == 1
        and since.time() == until.time() == datetime.min.time()
        and (until.year * 12 + until.month) - (since.year * 12 + since.month) == 1
    ):
        return since.strftime("%Y-%m")
    return f"{since:%Y-%m-%d %H:%M} — {until:%Y-%m-%d %H:%M}"


def new_document(
    conn: psycopg.Connection, site: Site, params: Params, *, kind: str, title: str, areas: list[str], now: datetime
) -> Document:
    """A document with the parts every report has: plant, period, times, revision, scope."""
    return Document(
        kind=kind,
        title=title,
        lang=params.lang,
        plant=site.plant(params.lang),
        site=site.code,
        timezone=site.timezone,
        period=period_text(site, params),
        generated_at=now,
        data_as_of=data_as_of(conn, site, min(params.until, now)),
        params=params.as_json(),
        revision=revision(conn),
        areas=areas,
        notes=[tr(params.lang, f"时间均为 {site.timezone} 当地时间。", f"Times are local times of {site.timezone}.")],
    )
