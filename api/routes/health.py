"""Liveness, readiness, and the latest value of every point."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import Conn
from core import timeseries

router = APIRouter()

#: A service whose heartbeat is older than this is reported as stale.
HEARTBEAT_STALE_S = 30


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The API process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(conn: Conn) -> JSONResponse:
    """Ready when the database answers; lists each service's heartbeat and counters."""
    rows = conn.execute("SELECT service, instance, updated_at, counters, "
                        "extract(epoch FROM now() - updated_at) AS age_s FROM service_heartbeat "
                        "ORDER BY service, instance").fetchall()
    services = [{"service": r["service"], "instance": r["instance"], "updated_at": r["updated_at"].isoformat(),
                 "stale": r["age_s"] > HEARTBEAT_STALE_S, "counters": r["counters"]} for r in rows]
    return JSONResponse({"status": "ready", "database": "ok", "services": services})


class LatestValue(BaseModel):
    point_id: int
    site: str
    device: str
    key: str
    unit: str
    time: datetime
    value: float | None
    quality: int


@router.get("/api/v1/latest", response_model=list[LatestValue], tags=["readings"])
def latest(conn: Conn, site: str | None = Query(None, description="Only this site's points"),
           point_id: list[int] | None = Query(None, description="Only these points")) -> list[dict[str, Any]]:
    """The latest reading of every point (points that never reported are left out)."""
    return timeseries.latest(conn, point_ids=point_id, site=site)
