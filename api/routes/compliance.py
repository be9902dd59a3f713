"""The compliance overview (issue 17, the regulator's view): per site in the caller's scope, each outfall's
emissions against their limits today and this month, this month's exceedances, the open compliance and
treatment-plant alarms, the hazardous-waste status, and the newest archived reports. Read only.

Regulators see the outfalls whose points lie wholly in compliance areas of their sites (api/policy.py), the
alarms of those areas, and the reports their scope covers; a site named outside the scope answers 403.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.alarms import alarm_scope
from api.deps import AppClock, Conn, SiteFilter, require
from api.plant_read import site_filter
from api.policy import Permission, Principal
from compliance.overview import open_alarms, site_overview
from core.scope import sites as scope_sites
from hazwaste import compliance as hazwaste_compliance
from reports import archive
from reports.registry import readable_kinds

router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"])
Reader = Annotated[Principal, require(Permission.COMPLIANCE_READ)]


@router.get("/overview")
def overview(
    principal: Reader,
    conn: Conn,
    clock: AppClock,
    site: SiteFilter = None,
    reports: Annotated[int, Query(ge=0, le=50, description="newest archived reports per site")] = 10,
    day: Annotated[
        date | None,
        Query(
            ge=date(2000, 1, 1),
            le=date(2199, 12, 31),
            description="Look back: the overview at the end of this day (each site's calendar; a day not over "
            "yet is shown as of now), its month to that day",
        ),
    ] = None,
) -> dict[str, Any]:
    """Emissions against limits today (or ``day``) and this month, exceedances, open alarms, hazardous waste and
    the newest reports."""
    site_filter(conn, principal.scope, site)
    now = clock.now()
    ascope = alarm_scope(conn, principal.scope)
    areas = set(ascope.areas) if ascope.areas is not None else None
    sites = scope_sites(conn, site_ids=principal.scope.site_ids, code=site)
    out = []
    for s in sites:
        # emissions as of the end of ``day`` in the site's calendar; alarms, waste and reports are always current
        end = day and datetime.combine(day + timedelta(days=1), time(), ZoneInfo(s["timezone"]))
        past = end is not None and end <= now
        body = site_overview(
            conn,
            site=s["code"],
            timezone=s["timezone"],
            now=end if past else now,
            day=day if past else None,
            areas=areas,
        )
        outfall_areas = sorted({a for o in body["outfalls"] for a in o["areas"]})
        alarms = [
            a
            for a in open_alarms(conn, site=s["code"], outfall_areas=outfall_areas)
            if ascope.sees(a["site"], a["area"], site_level=True)
        ]
        hazwaste = (
            hazwaste_compliance.status(conn=conn, site_id=s["id"], now=now)
            if principal.can(Permission.HAZWASTE_READ)
            else None
        )
        files = (
            archive.list_files(
                conn,
                sites=ascope.sites,
                areas=ascope.areas,
                kinds=readable_kinds(principal.role),
                site=s["code"],
                limit=reports,
            )
            if principal.can(Permission.REPORTS_READ) and reports
            else None
        )
        out.append(
            {
                "site": s["code"],
                "name": s["name"],
                "name_en": s["name_en"],
                "timezone": s["timezone"],
                **body,
                "alarms": alarms,
                "hazwaste": hazwaste,
                "reports": files,
            }
        )
    return {"generated_at": now, "sites": out}
