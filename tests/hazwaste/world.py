"""A hazardous-waste test site: a plant with a scale, a catalogue of battery-plant waste and two stores."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from core.plant import PlantConfig, apply_plant
from hazwaste.catalogue import HazwasteSection, apply_section

SECTION = {
    "storage_limit_days": 365,
    "unit_class": "key",
    "producer_name": "示例电池有限公司",
    "producer_contact": "0512-00000000",
    "waste_types": [
        {
            "code": "electrolyte",
            "name": "废电解液",
            "waste_code": "900-404-06",
            "form": "liquid",
            "constituents": "DMC, EMC, LiPF6",
            "incompatible_with": ["waste-acid"],
            "processes": ["injection"],
        },
        {"code": "carbon", "name": "废活性炭", "waste_code": "900-039-49", "processes": ["coating"]},
        {"code": "packaging", "name": "废包装桶", "waste_code": "900-041-49", "processes": ["injection"]},
        {"code": "waste-acid", "name": "废酸", "waste_code": "900-349-34", "form": "liquid"},
    ],
    "facilities": [
        {"code": "GEN-1", "name": "注液车间", "kind": "generation", "area": "formation"},
        {"code": "WH-1", "name": "危废库 1", "kind": "warehouse", "capacity_kg": 1000, "area": "hw-store"},
        {"code": "WH-2", "name": "危废库 2", "kind": "warehouse", "capacity_kg": 5000, "area": "hw-store"},
    ],
}


@dataclass
class HwWorld:
    site: str
    site_id: int
    types: dict[str, int]
    scale_point: int


def seed(conn: psycopg.Connection, site: str) -> HwWorld:
    """Create the site with its catalogue inside the caller's transaction."""
    plant = PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": site,
                    "name": "危废测试厂",
                    "areas": [
                        {
                            "code": "hw-store",
                            "name": "危废库",
                            "process": "hazwaste_store",
                            "devices": [
                                {
                                    "code": "scale-1",
                                    "name": "地磅",
                                    "kind": "scale",
                                    "points": [
                                        {"key": "weight_kg", "name": "重量", "quantity": "mass", "kind": "gauge"}
                                    ],
                                }
                            ],
                        },
                        {"code": "formation", "name": "化成", "process": "formation"},
                    ],
                }
            ]
        }
    )
    apply_plant(conn=conn, plant=plant, source="test")
    apply_section(conn=conn, section=HazwasteSection.model_validate({"hazwaste": [{"site": site, **SECTION}]}))
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (site,)).fetchone()[0]
    types = dict(conn.execute("SELECT code, id FROM hw_waste_type WHERE site_id = %s", (site_id,)).fetchall())
    point = conn.execute(
        "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.site_id = %s AND d.code = 'scale-1'",
        (site_id,),
    ).fetchone()[0]
    return HwWorld(site, site_id, types, point)
