"""Liveness and readiness (no authentication: for load balancers and orchestrators; no counters here)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Conn

router = APIRouter()

#: A service whose heartbeat is older than this is reported as stale.
HEARTBEAT_STALE_S = 30


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The API process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(conn: Conn) -> JSONResponse:
    """Ready when the database answers; lists whether each service's heartbeat is fresh (details: /system)."""
    rows = conn.execute("SELECT service, instance, extract(epoch FROM now() - updated_at) AS age_s "
                        "FROM service_heartbeat ORDER BY service, instance").fetchall()
    services = [{"service": r["service"], "instance": r["instance"], "stale": r["age_s"] > HEARTBEAT_STALE_S}
                for r in rows]
    return JSONResponse({"status": "ready", "database": "ok", "services": services})
