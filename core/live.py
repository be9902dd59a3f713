"""Read models of the live feed (api.hub): the latest value of points and the plant registry, read on an
asynchronous connection (tuple rows), and LISTEN on the NOTIFY channels of core.channels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

_LATEST = """
    SELECT p.id, r.time, r.value, r.quality FROM unnest(%s::int[]) AS p(id)
    CROSS JOIN LATERAL (SELECT time, value, quality FROM reading
                        WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r"""


@dataclass(frozen=True, slots=True)
class PlantRows:
    """The active plant as the live feed indexes it.

    ``points``: (point id, site id, area id, process type, site code, device code, key, unit);
    ``areas``: (area id, site id, area code, process type) of the active areas; ``sites``: (site id, code).
    """

    points: list[tuple[Any, ...]]
    areas: list[tuple[Any, ...]]
    sites: list[tuple[Any, ...]]


async def listen(conn: psycopg.AsyncConnection, channels: Iterable[str]) -> None:
    """LISTEN on each channel (names from core.channels, never from input)."""
    for channel in channels:
        await conn.execute(f"LISTEN {channel}")


async def latest_values(conn: psycopg.AsyncConnection, point_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The latest reading of each point that has one: ``point_id``, ``time``, ``value``, ``quality``."""
    cur = await conn.execute(_LATEST, (sorted(point_ids),))
    rows = await cur.fetchall()
    return [{"point_id": pid, "time": t, "value": v, "quality": q} for pid, t, v, q in rows]


async def plant_rows(conn: psycopg.AsyncConnection) -> PlantRows:
    """The active points and areas, and every site."""
    points = await (
        await conn.execute(
            "SELECT p.id, d.site_id, d.area_id, a.process_type, s.code, d.code, p.key, p.unit FROM point p "
            "JOIN device d ON d.id = p.device_id JOIN area a ON a.id = d.area_id "
            "JOIN site s ON s.id = d.site_id "
            "WHERE p.retired_at IS NULL AND d.retired_at IS NULL"
        )
    ).fetchall()
    areas = await (
        await conn.execute("SELECT id, site_id, code, process_type FROM area WHERE retired_at IS NULL")
    ).fetchall()
    sites = await (await conn.execute("SELECT id, code FROM site")).fetchall()
    return PlantRows(list(points), list(areas), list(sites))
