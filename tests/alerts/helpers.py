"""A small plant with rules, actuators and a graded response plan, for the alarm tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts import config_store
from alerts.config import AlertConfig
from cli.plantfile import FullPlant, MainFile, SafetySections, apply_full
from core.model import Finding, Severity, SubjectRef
from core.plant import PlantConfig

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

GAS = [
    {"key": "h2_ppm", "name": "氢气", "quantity": "h2", "range": [0, 40000], "nominal": 0.5},
    {"key": "co_ppm", "name": "一氧化碳", "quantity": "co", "range": [0, 1000], "nominal": 1},
]


def plant_dict(site: str) -> dict:
    return {
        "sites": [
            {
                "code": site,
                "name": f"测试厂 {site}",
                "areas": [
                    {
                        "code": "formation",
                        "name": "化成",
                        "process": "formation",
                        "devices": [
                            {
                                "code": "gas-01",
                                "name": "气体 1",
                                "kind": "gas_detector",
                                "interval_s": 1,
                                "points": GAS,
                            },
                            {
                                "code": "gas-02",
                                "name": "气体 2",
                                "kind": "gas_detector",
                                "interval_s": 1,
                                "points": GAS,
                            },
                            {
                                "code": "cab-01",
                                "name": "化成柜 1",
                                "kind": "formation_cabinet",
                                "interval_s": 1,
                                "points": [
                                    {
                                        "key": "cell_temp_c",
                                        "name": "电芯温度",
                                        "quantity": "temperature",
                                        "range": [-40, 1000],
                                        "nominal": 30,
                                    }
                                ],
                            },
                            {
                                "code": "fan-01",
                                "name": "排风机",
                                "kind": "exhaust_fan",
                                "interval_s": 5,
                                "points": [
                                    {"key": "fan_running_bool", "name": "运行", "quantity": "state", "nominal": 0}
                                ],
                            },
                            {
                                "code": "spr-01",
                                "name": "喷淋 (真实)",
                                "kind": "sprinkler",
                                "interval_s": 5,
                                "points": [
                                    {"key": "sprinkler_on_bool", "name": "喷淋", "quantity": "state", "nominal": 0}
                                ],
                            },
                            {
                                "code": "spr-sim",
                                "name": "喷淋 (仿真孪生)",
                                "kind": "sprinkler",
                                "interval_s": 5,
                                "points": [
                                    {"key": "sprinkler_on_bool", "name": "喷淋", "quantity": "state", "nominal": 0}
                                ],
                            },
                        ],
                    }
                ],
            }
        ]
    }


SAFETY = {
    "rules": [
        {
            "id": "cell.hot",
            "name": "电芯温度高",
            "name_en": "Cell hot",
            "type": "limit",
            "select": {"key": "cell_temp_c"},
            "high": [{"at": 55, "severity": "high"}, {"at": 60, "severity": "critical"}],
        },
        {
            "id": "gas.h2",
            "name": "氢气",
            "type": "gas",
            "gas": "h2",
            "select": {"key": "h2_ppm"},
            "levels": [{"at": 400, "severity": "high"}, {"at": 4000, "severity": "critical"}],
        },
        {
            "id": "gas.co",
            "name": "一氧化碳",
            "type": "gas",
            "gas": "co",
            "select": {"key": "co_ppm"},
            "levels": [{"at": 50, "severity": "medium"}],
        },
        {"id": "dev.stale", "name": "数据中断", "type": "stale", "select": {}, "severity": "medium"},
        {"id": "dev.offline", "name": "离线", "type": "offline", "select": {}, "severity": "medium"},
        {
            "id": "fire.confirmed",
            "name": "火灾确认",
            "type": "vote",
            "severity": "critical",
            "select": {},
            "expr": {"all": [{"rule": "gas.h2"}, {"rule": "gas.co"}]},
        },
    ],
    "alarms": {
        "rules": {
            "fire.confirmed": {"latching": True, "class": "safety"},
            "dev.stale": {"suppressed_by": [{"rule": "dev.offline", "scope": "device"}]},
            "gas.co": {"suppressed_by": [{"rule": "fire.confirmed", "scope": "area"}]},
        }
    },
    "actuators": [
        {"device": "fan-01"},
        {"device": "spr-01"},
        {"device": "spr-sim", "simulated": True},
        {"device": "cab-*"},
    ],
    "response_plans": [
        {
            "area": "formation",
            "name": "化成预案",
            "name_en": "Formation plan",
            "levels": [
                {
                    "level": 2,
                    "name": "二级",
                    "min_severity": "high",
                    "rules": ["gas.*", "cell.hot"],
                    "interlocks": [{"device": "fan-01", "action": "exhaust_fan.on"}],
                    "notify": {"roles": ["shift_leader"], "channels": ["wecom"]},
                },
                {
                    "level": 1,
                    "name": "一级",
                    "min_severity": "critical",
                    "rules": ["cell.hot", "fire.confirmed"],
                    "interlocks": [
                        {"device": "$source", "action": "charge.stop"},
                        {"device": "spr-*", "action": "sprinkler.on", "params": {"zone": 1}},
                    ],
                    "notify": {"roles": ["ehs_manager", "fire_brigade"], "channels": ["sms"]},
                    "evacuation": {"zh": "立即撤离", "en": "Leave now", "route": "东门", "route_en": "East door"},
                },
            ],
        }
    ],
}


def full_plant(site: str, safety: dict | None = None) -> FullPlant:
    main = MainFile.model_validate({**plant_dict(site), **(safety or SAFETY)})
    plant = PlantConfig.model_validate(main.model_dump(include=set(PlantConfig.model_fields)))
    sections = SafetySections.model_validate(main.model_dump(include=set(SafetySections.model_fields), by_alias=True))
    return FullPlant(plant, sections)


def apply(conn: psycopg.Connection, site: str, safety: dict | None = None) -> AlertConfig:
    apply_full(conn=conn, full=full_plant(site, safety), source="test")
    return config_store.load_config(conn=conn)


def finding(
    site: str,
    rule: str,
    severity: Severity,
    *,
    device: str | None = "gas-01",
    point: str | None = "h2_ppm",
    at: datetime = T0,
    previous: Severity = Severity.NORMAL,
    value: float | None = None,
    area: str = "formation",
) -> Finding:
    return Finding(
        rule=rule,
        detector="test",
        subject=SubjectRef(site, area, device, point),
        severity=severity,
        ts=at,
        value=value,
        message=f"{rule} {severity}",
        details={
            "finding_id": f"f-{rule}-{at.timestamp()}-{int(severity)}",
            "previous": int(previous),
            "name": rule,
            "name_en": rule,
        },
    )


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
