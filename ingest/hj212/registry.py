"""The HJ 212 loggers of the plant (from ``hj212_logger`` / ``hj212_field``), indexed by MN for the listener."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg

from core.db import execute
from core.registry import current_revision


@dataclass(frozen=True, slots=True)
class FieldPoint:
    point_id: int
    valid_min: float
    valid_max: float


@dataclass(frozen=True, slots=True)
class LoggerInfo:
    device_id: int
    site: str
    device: str
    tz: ZoneInfo
    mn: str
    password: str
    st: str | None
    #: (cn, CP item) -> point
    fields: dict[tuple[str, str], FieldPoint] = field(default_factory=dict)
    #: cn -> factors (the part before '-') that have at least one mapped item
    factors: dict[str, frozenset[str]] = field(default_factory=dict)
    #: point id -> point key (for the telemetry relayed to ingest, ``ingest.hj212.relay``)
    keys: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoggerIndex:
    loggers: dict[str, LoggerInfo]
    revision: int


def load_loggers(conn: psycopg.Connection) -> LoggerIndex:
    """Every active logger with its field mapping."""
    revision = current_revision(conn)
    rows = execute(
        conn,
        """
        SELECT l.device_id, s.code, d.code, s.timezone, l.mn, l.password, l.st,
               f.cn, f.field, f.point_id, p.valid_min, p.valid_max, p.key
        FROM hj212_logger l JOIN device d ON d.id = l.device_id JOIN site s ON s.id = d.site_id
        LEFT JOIN hj212_field f ON f.device_id = l.device_id
        LEFT JOIN point p ON p.id = f.point_id AND p.retired_at IS NULL
        WHERE l.retired_at IS NULL AND d.retired_at IS NULL
        ORDER BY l.device_id""",
    ).fetchall()
    loggers: dict[str, LoggerInfo] = {}
    for device_id, site, device, tz, mn, pw, st, cn, item, point_id, vmin, vmax, key in rows:
        info = loggers.get(mn)
        if info is None:
            info = loggers[mn] = LoggerInfo(device_id, site, device, ZoneInfo(tz), mn, pw, st)
        if cn is not None and point_id is not None:
            info.fields[(cn, item)] = FieldPoint(
                point_id, float("-inf") if vmin is None else vmin, float("inf") if vmax is None else vmax
            )
            info.keys[point_id] = key
    for info in loggers.values():
        by_cn: dict[str, set[str]] = {}
        for cn, item in info.fields:
            by_cn.setdefault(cn, set()).add(item.split("-")[0])
        info.factors.update({cn: frozenset(f) for cn, f in by_cn.items()})
    return LoggerIndex(loggers, revision)
