"""A small energy plant for the tests: an incomer with two sub-meters, water, and a virtual remainder."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from core.db import execute
from core.plant import PlantConfig, apply_plant
from energy.readings import store_counter_readings
from tests.support import unique_code

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday; 08:00 Asia/Shanghai


def meter_point(
    code: str,
    key: str = "energy_kwh",
    quantity: str = "energy",
    nominal: float | None = 100.0,
    span: float | None = None,
) -> dict:
    point = {"key": key, "name": f"{code} 计数", "quantity": quantity, "nominal": nominal}
    if span is not None:
        point["range"] = [0, span]
    return {"code": code, "name": f"表 {code}", "kind": "energy_meter", "interval_s": 60, "points": [point]}


def plant(site: str, *, span: float | None = None) -> PlantConfig:
    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": site,
                    "name": f"能源测试厂 {site}",
                    "timezone": "Asia/Shanghai",
                    "areas": [
                        {
                            "code": "utilities",
                            "name": "公用工程",
                            "process": "utilities",
                            "devices": [
                                meter_point("em-main", span=span),
                                meter_point("wm-main", "water_m3", "volume", 5.0),
                            ],
                        },
                        {
                            "code": "coating",
                            "name": "涂布",
                            "process": "coating",
                            "devices": [
                                meter_point("em-coat", span=span),
                                meter_point("cnt-coat", "output_cells", "output", nominal=None),
                            ],
                            "production": ["cnt-coat/output_cells"],
                        },
                        {
                            "code": "drying",
                            "name": "烘烤",
                            "process": "drying",
                            "devices": [meter_point("em-dry", span=span)],
                        },
                    ],
                    "meters": [
                        {
                            "code": "e-main",
                            "name": "总进线",
                            "medium": "electricity",
                            "point": "em-main/energy_kwh",
                            "area": "utilities",
                        },
                        {
                            "code": "e-coat",
                            "name": "涂布用电",
                            "medium": "electricity",
                            "point": "em-coat/energy_kwh",
                            "parent": "e-main",
                            "area": "coating",
                        },
                        {
                            "code": "e-dry",
                            "name": "烘烤用电",
                            "medium": "electricity",
                            "point": "em-dry/energy_kwh",
                            "parent": "e-main",
                            "area": "drying",
                        },
                        {
                            "code": "e-rest",
                            "name": "未计量",
                            "medium": "electricity",
                            "formula": "e-main - e-coat - e-dry",
                            "area": "utilities",
                        },
                        {
                            "code": "w-main",
                            "name": "自来水",
                            "medium": "water",
                            "point": "wm-main/water_m3",
                            "area": "utilities",
                        },
                    ],
                }
            ]
        }
    )


class World:
    def __init__(self, conn: psycopg.Connection, *, span: float | None = None) -> None:
        self.conn = conn
        self.site = unique_code("en")
        apply_plant(conn=conn, plant=plant(self.site, span=span), source="test")
        self.meter = dict(
            execute(
                conn, "SELECT m.code, m.id FROM meter m JOIN site s ON s.id = m.site_id WHERE s.code = %s", (self.site,)
            ).fetchall()
        )
        self.point = dict(
            execute(
                conn,
                "SELECT m.code, m.point_id FROM meter m JOIN site s ON s.id = m.site_id "
                "WHERE s.code = %s AND m.point_id IS NOT NULL",
                (self.site,),
            ).fetchall()
        )
        self.point["cells"] = execute(
            conn,
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id "
            "JOIN site s ON s.id = d.site_id WHERE s.code = %s AND d.code = 'cnt-coat'",
            (self.site,),
        ).fetchone()[0]

    def readings(self, meter: str, rows: list[tuple[datetime, float]]) -> int:
        return store_counter_readings(self.conn, [(t, self.point[meter], v) for t, v in rows])

    def intervals(self, meter: str) -> list[tuple[datetime, float, str]]:
        return execute(
            self.conn,
            "SELECT start, quantity, quality FROM energy_interval WHERE meter_id = %s ORDER BY start",
            (self.meter[meter],),
        ).fetchall()
