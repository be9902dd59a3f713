"""Alarm records in the API test world: an alarm configuration for its plant (tests/api/conftest.py) and real
alarms raised through ``alerts.service.apply_findings``, as the ingest stage would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from alerts import config_store, flows, service
from alerts.config import AlertSection
from alerts.models import Actor
from core.model import Finding, Severity, SubjectRef
from detectors.service import apply_rules
from detectors.specs import RuleSection
from tests.api.conftest import OTHER, SITE

RULES = {
    "rules": [
        {
            "id": "gas.h2",
            "name": "氢气",
            "name_en": "Hydrogen",
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
            "levels": [{"at": 50, "severity": "high"}],
        },
        {
            "id": "gas.latch",
            "name": "氢气 (锁存)",
            "type": "gas",
            "gas": "h2",
            "select": {"key": "h2_ppm"},
            "levels": [{"at": 1000, "severity": "high"}],
        },
        {
            "id": "water.ph",
            "name": "pH",
            "type": "limit",
            "select": {"key": "ph_ph"},
            "high": [{"at": 9, "severity": "medium"}],
        },
    ]
}

ALERTS = {
    "alarms": {
        "rules": {
            "gas.h2": {"action": "开启排风, 检查泄漏", "action_en": "Start the exhaust, look for the leak"},
            "gas.latch": {"latching": True, "class": "safety"},
        }
    },
    "actuators": [
        {"device": "gas-02", "site": SITE, "actions": ["alarm.sound", "alarm.silence"], "simulated": True},
        {"device": "gas-01", "site": OTHER, "actions": ["alarm.sound"]},
    ],
    "response_plans": [
        {
            "area": "formation",
            "site": SITE,
            "name": "化成预案",
            "name_en": "Formation plan",
            "levels": [
                {
                    "level": 2,
                    "name": "二级",
                    "name_en": "Level 2",
                    "min_severity": "high",
                    "rules": ["gas.*"],
                    "interlocks": [{"device": "gas-02", "action": "alarm.sound"}],
                    "notify": {"roles": ["shift_leader"], "channels": ["wecom"]},
                    "evacuation": {
                        "zh": "沿东侧通道撤离",
                        "en": "Leave by the east corridor",
                        "route": "东门",
                        "route_en": "East door",
                        "assembly_point": "1 号集合点",
                        "assembly_point_en": "Assembly point 1",
                    },
                }
            ],
        }
    ],
}


def configure(conn: psycopg.Connection) -> None:
    """Apply the rule set and the alarm configuration (actuators, a graded plan for s1/formation)."""
    apply_rules(conn=conn, section=RuleSection.model_validate(RULES), source="test")
    config_store.apply_config(conn=conn, section=AlertSection.model_validate(ALERTS), source="test")


def raise_alarm(
    conn: psycopg.Connection,
    *,
    site: str = SITE,
    area: str = "formation",
    device: str = "gas-01",
    point: str = "h2_ppm",
    rule: str = "gas.h2",
    severity: Severity = Severity.HIGH,
    at: datetime | None = None,
) -> int:
    """Raise an alarm through the alarm engine; return its id."""
    at = at or datetime.now(UTC)
    finding = Finding(
        rule=rule,
        detector="test",
        subject=SubjectRef(site, area, device, point),
        severity=severity,
        ts=at,
        value=450.0,
        message=f"{rule} {severity.name.lower()}",
        details={
            "finding_id": f"f-{uuid.uuid4().hex}",
            "previous": 0,
            "name": "氢气浓度高",
            "name_en": "Hydrogen high",
        },
    )
    service.apply_findings(conn=conn, findings=[finding], now=at)
    return conn.execute(
        "SELECT id FROM alarm WHERE rule = %s AND source = %s AND closed_at IS NULL", (rule, finding.subject.key)
    ).fetchone()[0]


def clear_alarm(conn: psycopg.Connection, alarm_id: int, at: datetime | None = None) -> None:
    """The condition of an alarm returns to normal."""
    site, area, device, point, rule = conn.execute(
        "SELECT site, area, device, point, rule FROM alarm WHERE id = %s", (alarm_id,)
    ).fetchone()
    at = at or datetime.now(UTC)
    service.apply_findings(
        conn=conn,
        now=at,
        findings=[
            Finding(
                rule=rule,
                detector="test",
                subject=SubjectRef(site, area, device, point),
                severity=Severity.NORMAL,
                ts=at,
                message="back to normal",
                details={"finding_id": f"f-{uuid.uuid4().hex}"},
            )
        ],
    )


def alarm_in_state(url: str, state: str, *, point: str | None = None) -> int:
    """A fresh alarm of s1/formation in ``state``: active_unacked, shelved, out_of_service, latched_acked."""
    ops = Actor("user:seed", "ehs_manager")
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        rule = "gas.latch" if state == "latched_acked" else "gas.h2"
        alarm_id = raise_alarm(conn, rule=rule, point=point or f"p-{uuid.uuid4().hex[:8]}", at=now)
        if state == "shelved":
            service.shelve(
                conn=conn, alarm_id=alarm_id, actor=ops, reason="sensor swap", now=now, duration=timedelta(hours=1)
            )
        elif state == "out_of_service":
            service.remove_from_service(
                conn=conn, alarm_id=alarm_id, actor=ops, reason="calibration", permit="PTW-1", now=now
            )
        elif state == "latched_acked":
            service.acknowledge(conn=conn, alarm_id=alarm_id, actor=ops, now=now)
            clear_alarm(conn, alarm_id, now + timedelta(seconds=1))
        conn.commit()
    return alarm_id


def bypass_request(url: str, requested_by: str = "user:viewer") -> int:
    """A bypass of s1/gas-02 requested by someone who cannot approve it."""
    with psycopg.connect(url) as conn:
        row = flows.request_bypass(
            conn=conn,
            site=SITE,
            device="gas-02",
            actor=Actor(requested_by, "operator"),
            reason="sensor replacement",
            duration=timedelta(hours=1),
            now=datetime.now(UTC),
        )
        conn.commit()
    return row["id"]


def drill_alarm(url: str) -> int:
    """A drill of s1/formation level 2, started by an EHS manager; its alarm id."""
    with psycopg.connect(url) as conn:
        alarm = flows.start_drill(
            conn=conn,
            site=SITE,
            area="formation",
            level=2,
            actor=Actor("user:seed", "ehs_manager"),
            reason="quarterly drill",
            now=datetime.now(UTC),
        )
        conn.commit()
    return alarm["id"]


def seed(url: str) -> dict[str, int | str]:
    """Configuration, an alarm of each kind the routes are called on, a command and a flood; their ids."""
    with psycopg.connect(url) as conn:
        configure(conn)
        ids: dict[str, int | str] = {"alarm": raise_alarm(conn)}
        ids["command"] = str(
            conn.execute("SELECT id FROM interlock_command WHERE alarm_id = %s", (ids["alarm"],)).fetchone()[0]
        )
        ids["flood"] = conn.execute(
            "INSERT INTO alarm_flood (site, area, started_at, alarm_count, peak_per_window, first_alarm_id) "
            "VALUES (%s, 'formation', now(), 11, 11, %s) RETURNING id",
            (SITE, ids["alarm"]),
        ).fetchone()[0]
        ids["alarm_config"] = conn.execute("SELECT max(id) FROM alarm_config").fetchone()[0]
        conn.commit()
    return ids
