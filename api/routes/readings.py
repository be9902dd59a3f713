"""Readings: latest values, raw and bucketed history of one point, CSV export (audited)."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from api import plant_read
from api.deps import After, ApiConfig, AppClock, Conn, PathId, SiteFilter, require
from api.errors import Invalid
from api.policy import Permission, Principal
from api.queries import decode_cursor, encode_cursor
from api.schemas import DbId
from api.schemas.readings import LatestValue, ReadingsRead
from core import audit, timeseries
from core.scope import area_codes

router = APIRouter(prefix="/api/v1", tags=["readings"])
Reader = Annotated[Principal, require(Permission.READINGS_READ)]
Exporter = Annotated[Principal, require(Permission.READINGS_EXPORT)]
Start = Annotated[AwareDatetime | None, Query(description="From (RFC 3339 with offset); default: an hour before end")]
End = Annotated[AwareDatetime | None, Query(description="Until, exclusive (RFC 3339 with offset); default: now")]

_WIDTH = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    end = end or now
    if not _EARLIEST <= end <= _LATEST:
        raise Invalid("must lie between 1970 and 2200", field="query.end")
    start = start or end - timedelta(hours=1)
    if not _EARLIEST <= start <= _LATEST:
        raise Invalid("must lie between 1970 and 2200", field="query.start")
    if start >= end:
        raise Invalid("must be before end", field="query.start")
    return start, end


@router.get("/latest", response_model=list[LatestValue])
def latest(
    request: Request,
    principal: Reader,
    conn: Conn,
    api: ApiConfig,
    site: SiteFilter = None,
    point_id: Annotated[
        list[DbId] | None, Query(max_length=500, description="Only these points (at most 500: URLs stay short)")
    ] = None,
):
    """The latest reading of every point you may see (points that never reported are left out).

    Served from the live feed's cache, which follows committed readings (at most one WebSocket reading interval
    behind); read from the database while the feed is not connected. The ``X-Latest-Source`` header says which.
    """
    plant_read.site_filter(conn, principal.scope, site)
    body = (
        request.app.state.hub.latest_json(principal, point_ids=point_id, site=site) if api.latest_from_cache else None
    )
    if body is not None:
        return Response(body, media_type="application/json", headers={"X-Latest-Source": "live"})
    rows = timeseries.latest(
        conn,
        point_ids=point_id,
        site=site,
        site_ids=principal.scope.sites_param(),
        processes=principal.scope.processes_param(),
    )
    # serialised directly: 10,000 rows through response-model validation would cost more than the query
    return Response(orjson.dumps(rows), media_type="application/json", headers={"X-Latest-Source": "database"})


@router.get("/points/{point_id}/readings", response_model=ReadingsRead)
def readings(
    point_id: PathId,
    principal: Reader,
    conn: Conn,
    api: ApiConfig,
    clock: AppClock,
    start: Start = None,
    end: End = None,
    bucket: Annotated[Literal["raw", "1m", "1h"], Query(description="raw, or aggregate per minute/hour")] = "raw",
    limit: Annotated[int, Query(ge=1, le=10000, description="Raw readings per page")] = 1000,
    after: After = None,
):
    """History of one point: raw readings (paged), or per-minute/hour aggregates with gaps shown as gaps.

    Aggregates come per UTC-aligned bucket, for every bucket that overlaps [start, end), each over all of its
    readings (also when start or end falls inside it).
    """
    point = plant_read.get_point(conn, principal.scope, point_id)
    start, end = _window(start, end, clock.now())
    out = {"point_id": point_id, "unit": point["unit"], "bucket": bucket, "start": start, "end": end}
    if bucket != "raw":
        buckets = math.ceil((end - start) / _WIDTH[bucket]) + 1
        if buckets > api.readings_max_rows:
            raise Invalid(
                f"{buckets} buckets of {bucket} is more than {api.readings_max_rows}; "
                "narrow the range or use a coarser bucket",
                field="query.bucket",
            )
        rows = timeseries.bucketed(conn, point_id=point_id, start=start, end=end, bucket=bucket)
        out["buckets"] = [
            {
                "time": r["bucket"],
                "min": r["value_min"],
                "max": r["value_max"],
                "avg": r["value_avg"],
                "last": r["value_last"],
                "count": r["n"],
            }
            for r in rows
        ]
        return out
    cursor = decode_cursor(after, datetime.fromisoformat)
    first = max(start, cursor[0] + _MICRO) if cursor else start
    rows = timeseries.raw(conn, point_id=point_id, start=first, end=end, limit=limit + 1) if first < end else []
    out["readings"] = [{"time": t, "value": v, "quality": q} for t, v, q in rows[:limit]]
    if len(rows) > limit:
        out["next"] = encode_cursor(rows[limit - 1][0].isoformat())
    return out


@router.get(
    "/exports/readings",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV, one row per reading"}},
)
def export_readings(
    principal: Exporter,
    conn: Conn,
    api: ApiConfig,
    clock: AppClock,
    point_id: Annotated[list[DbId], Query(min_length=1, max_length=100)],
    start: Start = None,
    end: End = None,
) -> Response:
    """Raw readings of up to 100 points as CSV (recorded in the audit record as an export)."""
    points = [plant_read.get_point(conn, principal.scope, pid) for pid in dict.fromkeys(point_id)]
    start, end = _window(start, end, clock.now())
    rows = timeseries.raw_export(
        conn, point_ids=[p["id"] for p in points], start=start, end=end, limit=api.export_max_rows + 1
    )
    if len(rows) > api.export_max_rows:
        raise Invalid(f"more than {api.export_max_rows} readings; narrow the range", field="query.start")
    info = {p["id"]: p for p in points}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "point_id", "site", "device", "key", "unit", "value", "quality"])
    for r in rows:
        p = info[r["point_id"]]
        writer.writerow(
            [
                r["time"].isoformat(),
                r["point_id"],
                p["site"],
                p["device"],
                p["key"],
                p["unit"],
                "" if r["value"] is None else repr(r["value"]),
                r["quality"],
            ]
        )
    sites = sorted({p["site"] for p in points})
    areas = set(area_codes(conn, {p["area_id"] for p in points}))
    audit.append(
        conn,
        actor=principal.actor,
        action="export.readings",
        target="readings",
        site=sites[0] if len(sites) == 1 else None,
        area=next(iter(areas)) if len(sites) == 1 and len(areas) == 1 else None,
        detail={
            "points": list(info),
            "sites": sorted({p["site"] for p in points}),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "rows": len(rows),
        },
    )
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="readings.csv"'}
    )
