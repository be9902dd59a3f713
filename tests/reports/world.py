"""A month of known alarm history (March 2026) in the API test world (tests/api/conftest.py): alarms raised,
acknowledged, shelved and cleared through the alarm engine, interlock commands with device acknowledgements, a
bypass, a flood, a stale-data alarm, readings around the first alarm, an offline event and dead letters.
The figures the reports must show are in ``KNOWN``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from alerts import commands as machine
from alerts import flows, service, store
from alerts.models import Actor
from core.model import Finding, Severity, SubjectRef
from detectors.service import apply_rules
from detectors.specs import RuleSection
from tests.api import alarm_world
from tests.api.conftest import SITE

T = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
MONTH = "2026-03"
RULES = {
    "rules": [
        *alarm_world.RULES["rules"],
        {
            "id": "dev.stale",
            "name": "数据中断",
            "name_en": "No data",
            "type": "stale",
            "select": {},
            "severity": "medium",
        },
    ]
}
OPERATOR = Actor("user:operator", "operator")
MANAGER = Actor("user:ehs_manager", "ehs_manager")
FLOOD_ALARMS = 11
#: A, B, C, A2, the system alarm of the refused horn, S, and the flood
KNOWN = {"annunciated": 6 + FLOOD_ALARMS, "readings_around_a": 70, "top_source": f"{SITE}/formation/gas-01/h2_ppm"}


def finding(
    rule: str,
    severity: Severity,
    at: datetime,
    *,
    area: str = "formation",
    device: str | None = "gas-01",
    point: str | None = "h2_ppm",
    value: float | None = 450.0,
    kind: str | None = None,
    name: str = "氢气浓度高",
    name_en: str = "Hydrogen high",
) -> Finding:
    return Finding(
        rule=rule,
        detector="test",
        subject=SubjectRef(SITE, area, device, point),
        severity=severity,
        ts=at,
        value=value,
        message=f"{rule} {severity.name.lower()}",
        details={
            "finding_id": f"f-{uuid.uuid4().hex}",
            "previous": 0,
            "name": name,
            "name_en": name_en,
            **({"type": kind} if kind else {}),
        },
    )


def _alarm(conn: psycopg.Connection, f: Finding) -> int:
    service.apply_findings(conn=conn, findings=[f], now=f.ts)
    return conn.execute(
        "SELECT id FROM alarm WHERE rule = %s AND source = %s ORDER BY id DESC LIMIT 1", (f.rule, f.subject.key)
    ).fetchone()[0]


def _clear(conn: psycopg.Connection, f: Finding, at: datetime) -> None:
    service.apply_findings(
        conn=conn,
        now=at,
        findings=[
            Finding(
                rule=f.rule,
                detector="test",
                subject=f.subject,
                severity=Severity.NORMAL,
                ts=at,
                message="normal",
                details={"finding_id": f"f-{uuid.uuid4().hex}"},
            )
        ],
    )


def _device_answers(conn: psycopg.Connection, alarm_id: int, statuses: list[str], at: datetime) -> str:
    # records made now by the database's default, dated when the alarm happened (as they would have been)
    conn.execute("UPDATE interlock_command SET created_at = %s WHERE alarm_id = %s", (at, alarm_id))
    conn.execute("UPDATE notification_outbox SET created_at = %s WHERE alarm_id = %s", (at, alarm_id))
    command = conn.execute("SELECT * FROM interlock_command WHERE alarm_id = %s", (alarm_id,)).fetchone()
    command_id, site, device = str(command[0]), command[1], command[3]
    row = store.fetch_one(conn, "SELECT * FROM interlock_command WHERE id = %s", (command_id,))
    machine.mark_issued(
        conn=conn,
        command=row,
        now=at,
        payload={"id": command_id, "expires_at": int((at + timedelta(minutes=1)).timestamp() * 1000)},
    )
    for i, status in enumerate(statuses, 1):
        flows.apply_ack(
            conn=conn,
            site=site,
            device=device,
            ack={"id": command_id, "status": status, "detail": f"horn {status}"},
            now=at + timedelta(seconds=i),
        )
    return command_id


def build(url: str) -> dict[str, int | str]:
    """Write the month; return the ids of what the tests look at."""
    ids: dict[str, int | str] = {}
    with psycopg.connect(url) as conn:
        alarm_world.configure(conn)
        apply_rules(conn=conn, section=RuleSection.model_validate(RULES), source="test")
        point = conn.execute(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id JOIN site s ON "
            "s.id = d.site_id WHERE s.code = %s AND d.code = 'gas-01' AND p.key = 'h2_ppm'",
            (SITE,),
        ).fetchone()[0]
        with conn.cursor() as cur:  # one reading a minute from 40 minutes before to 40 after; 450 ppm from T
            cur.executemany(
                "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, 0)",
                [(T + timedelta(minutes=m), point, 450.0 if 0 <= m <= 10 else 0.5) for m in range(-40, 41)],
            )
        # A: hydrogen high, plan level 2 sounds the horn on gas-02; the operator acknowledges; it clears
        a = finding("gas.h2", Severity.HIGH, T)
        ids["a"] = _alarm(conn, a)
        ids["a_command"] = _device_answers(conn, ids["a"], ["accepted", "done"], T + timedelta(seconds=1))
        service.acknowledge(
            conn=conn, alarm_id=ids["a"], actor=OPERATOR, now=T + timedelta(minutes=2), comment="到现场检查"
        )
        _clear(conn, a, T + timedelta(minutes=10))
        # B: carbon monoxide, shelved by the EHS manager
        b = finding(
            "gas.co",
            Severity.HIGH,
            T + timedelta(days=1),
            device="gas-02",
            point="co_ppm",
            value=60,
            name="一氧化碳高",
            name_en="CO high",
        )
        ids["b"] = _alarm(conn, b)
        service.shelve(
            conn=conn,
            alarm_id=ids["b"],
            actor=MANAGER,
            reason="传感器更换",
            now=T + timedelta(days=1, minutes=5),
            duration=timedelta(hours=2),
        )
        # C: pH at the wastewater station (a compliance area: regulators see it)
        c = finding(
            "water.ph",
            Severity.MEDIUM,
            T + timedelta(days=2),
            area="wastewater",
            device="ww-01",
            point="ph_ph",
            value=9.4,
            name="pH 偏高",
            name_en="pH high",
        )
        ids["c"] = _alarm(conn, c)
        service.acknowledge(conn=conn, alarm_id=ids["c"], actor=OPERATOR, now=T + timedelta(days=2, minutes=3))
        _clear(conn, c, T + timedelta(days=2, minutes=30))
        # A2: hydrogen again; the horn refuses
        a2 = finding("gas.h2", Severity.HIGH, T + timedelta(days=3))
        ids["a2"] = _alarm(conn, a2)
        ids["a2_command"] = _device_answers(conn, ids["a2"], ["rejected"], T + timedelta(days=3, seconds=1))
        # a bypass of the horn: requested by the operator, approved by the EHS manager
        bypass = flows.request_bypass(
            conn=conn,
            site=SITE,
            device="gas-02",
            actor=OPERATOR,
            reason="更换喇叭",
            duration=timedelta(hours=4),
            now=T + timedelta(days=4),
        )
        flows.approve_bypass(conn=conn, bypass_id=bypass["id"], actor=MANAGER, now=T + timedelta(days=4, minutes=10))
        ids["bypass"] = bypass["id"]
        # S: gas-02 stops sending (a device-level health alarm), after going offline
        conn.execute(
            "INSERT INTO device_status_event (device_id, time, status) SELECT d.id, %s, 'offline' FROM "
            "device d JOIN site s ON s.id = d.site_id WHERE s.code = %s AND d.code = 'gas-02'",
            (T + timedelta(days=5), SITE),
        )
        ids["s"] = _alarm(
            conn,
            finding(
                "dev.stale",
                Severity.MEDIUM,
                T + timedelta(days=5, minutes=1),
                device="gas-02",
                point=None,
                value=None,
                kind="stale",
                name="数据中断",
                name_en="No data",
            ),
        )
        # two messages of gas-01 refused by ingest
        for n in range(2):
            conn.execute(
                "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, site_code, "
                "device_code) VALUES (%s, %s, 'x', 1, 'out_of_range', %s, 'gas-01')",
                (T + timedelta(days=6, minutes=n), f"ehs/v1/{SITE}/gas-01/telemetry", SITE),
            )
        # a flood at the wastewater station: 11 pH alarms of 11 points within 10 minutes
        for n in range(FLOOD_ALARMS):
            _alarm(
                conn,
                finding(
                    "water.ph",
                    Severity.MEDIUM,
                    T + timedelta(days=7, seconds=30 * n),
                    area="wastewater",
                    device="ww-01",
                    point=f"ph_{n}",
                    value=9.5,
                    name="pH 偏高",
                    name_en="pH high",
                ),
            )
        ids["flood"] = conn.execute("SELECT max(id) FROM alarm_flood").fetchone()[0]
        conn.commit()
    return ids
