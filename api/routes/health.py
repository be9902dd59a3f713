"""Liveness and readiness (no authentication: for load balancers and orchestrators; no counters here)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Conn
from core.liveness import heartbeats

router = APIRouter()

#: A service whose heartbeat is older than this is reported as stale.
HEARTBEAT_STALE_S = 30


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The API process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(conn: Conn) -> JSONResponse:
    """Ready when the database answers; lists whether each service's heartbeat is fresh and which of its parts
    (threads) are stuck or dead (details: /api/v1/system/health)."""
    rows = heartbeats(conn)
    services = [
        {
            "service": r["service"],
            "instance": r["instance"],
            "stale": r["age_s"] > HEARTBEAT_STALE_S,
            "stuck": stuck_parts((r["counters"] or {}).get("stuck", [])),
        }
        for r in rows
    ]
    return JSONResponse({"status": "ready", "database": "ok", "services": services})


def stuck_parts(value: object) -> list[str]:
    """The parts a heartbeat names as stuck or dead (``counters.stuck``, e.g. ``["record"]``)."""
    return [str(v) for v in value] if isinstance(value, list) else []
