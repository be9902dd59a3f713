"""An in-memory index of the active plant registry, for the hot path (no query per reading)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from core.db import execute
from core.model import PointKind


@dataclass(frozen=True, slots=True)
class PointInfo:
    id: int
    key: str
    kind: PointKind
    valid_min: float
    valid_max: float
    quantity: str
    unit: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: int
    site: str
    code: str
    area: str
    kind: str
    interval_s: float
    points: dict[str, PointInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlantIndex:
    """Devices by (site code, device code), and the config revision the index was built from."""

    devices: dict[tuple[str, str], DeviceInfo]
    revision: int
    points: dict[int, tuple[DeviceInfo, PointInfo]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for device in self.devices.values():
            for point in device.points.values():
                self.points[point.id] = (device, point)


def only_sites(index: PlantIndex, sites: list[str] | None) -> PlantIndex:
    """The part of ``index`` that belongs to ``sites`` (all of it when None)."""
    if not sites:
        return index
    wanted = set(sites)
    return PlantIndex({key: d for key, d in index.devices.items() if d.site in wanted}, index.revision)


def current_revision(conn: psycopg.Connection) -> int:
    """The id of the newest configuration revision (0 when nothing was applied yet)."""
    return execute(conn, "SELECT coalesce(max(id), 0) FROM config_revision").fetchone()[0]


def load_index(conn: psycopg.Connection) -> PlantIndex:
    """Build the index of every active device and point."""
    revision = current_revision(conn)
    devices: dict[tuple[str, str], DeviceInfo] = {}
    rows = execute(
        conn,
        """
        SELECT s.code, d.id, d.code, a.code, d.kind, d.interval_s,
               p.id, p.key, p.kind, p.valid_min, p.valid_max, p.quantity, p.unit
        FROM device d JOIN site s ON s.id = d.site_id JOIN area a ON a.id = d.area_id
        LEFT JOIN point p ON p.device_id = d.id AND p.retired_at IS NULL
        WHERE d.retired_at IS NULL
        ORDER BY d.id, p.id""",
    ).fetchall()
    for site, dev_id, dev_code, area, kind, interval, pid, key, pkind, vmin, vmax, qty, unit in rows:
        device = devices.get((site, dev_code))
        if device is None:
            device = devices[(site, dev_code)] = DeviceInfo(dev_id, site, dev_code, area, kind, interval)
        if pid is not None:
            device.points[key] = PointInfo(
                pid,
                key,
                PointKind(pkind),
                float("-inf") if vmin is None else vmin,
                float("inf") if vmax is None else vmax,
                qty,
                unit,
            )
    return PlantIndex(devices, revision)
