"""System health: database, TimescaleDB, configuration revision, and each service's heartbeat and counters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Conn, require
from api.policy import Permission, Principal
from api.routes.health import HEARTBEAT_STALE_S, stuck_parts
from core.db import timescaledb_enabled
from core.liveness import heartbeats
from core.registry import current_revision

router = APIRouter(prefix="/api/v1/system", tags=["system"])
Reader = Annotated[Principal, require(Permission.SYSTEM_READ)]


class ServiceRead(BaseModel):
    service: str
    instance: str
    started_at: datetime
    updated_at: datetime
    age_s: float
    stale: bool
    #: Parts (threads) of the process that are stuck or dead, e.g. ``["record"]``; details in ``counters.liveness``.
    stuck: list[str]
    counters: dict[str, Any]


class HealthRead(BaseModel):
    database: str
    timescaledb: bool
    config_revision: int
    services: list[ServiceRead]


@router.get("/health", response_model=HealthRead)
def health(principal: Reader, conn: Conn):
    """Heartbeats and counters of ingest and the other services (stale after 30 s of silence), with the parts of
    each that are stuck or dead."""
    rows = heartbeats(conn)
    for row in rows:
        row["stale"] = row["age_s"] > HEARTBEAT_STALE_S
        row["stuck"] = stuck_parts((row["counters"] or {}).get("stuck"))
    revision = current_revision(conn)
    return {"database": "ok", "timescaledb": timescaledb_enabled(conn), "config_revision": revision, "services": rows}
