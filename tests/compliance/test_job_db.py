"""The compliance job against the real PostgreSQL: HJ 212 readings with flags -> results, findings, alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml

from cli.plantfile import apply_full, load_full
from compliance.__main__ import evaluate_and_alarm
from compliance.job import ComplianceJob
from compliance.service import load_compliance, results
from core.model import Severity
from core.plant import apply_plant
from core.yamlconf import ConfigError
from tests.ingest.hj212_support import hj212_plant

pytestmark = pytest.mark.db
TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2025, 6, 10, tzinfo=TZ)  # the job's clock is a parameter: a fixed day, any year boundary far


def outfall(site: str, **over) -> dict:
    return {
        "code": "ww-main",
        "site": site,
        "name": "总排口",
        "medium": "water",
        "regime": "indirect",
        "pollutants": [{"pollutant": "w01018", "point": "ww-logger-000/cod_mg_l", "interval_s": 60}],
        "flow_point": "ww-logger-000/flow_l_s",
        "permit": {
            "number": "91320400MA1TEST001",
            "valid_from": "2020-01-01",
            "limits": [{"pollutant": "w01018", "max": 100, "averaging": "hour"}],
            "annual_totals": {"w00000": 500},
        },
        "totals": [{"pollutant": "w00000", "point": "ww-logger-000/outflow_1h_m3"}],
        **over,
    }


def plant_file(tmp_path, site: str, **over) -> str:
    data = hj212_plant(site, loggers=1).model_dump(mode="json", exclude_none=True)
    data["outfalls"] = [outfall(site, **over)]
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def insert(conn: psycopg.Connection, key: str, values: list[tuple[datetime, float, str | None]]) -> None:
    pid = conn.execute(
        "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = 'ww-logger-000' AND p.key = %s",
        (key,),
    ).fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, %s)",
            [(t, pid, v, 0 if f in (None, "N") else 2) for t, v, f in values],
        )
        cur.executemany(
            "INSERT INTO reading_flag (point_id, time, flag) VALUES (%s, %s, %s)",
            [(pid, t, f) for t, v, f in values if f is not None],
        )


def test_outfall_section_is_checked_against_the_plant(tmp_path, site: str) -> None:
    path = plant_file(tmp_path, site, flow_point="ww-logger-000/no_such_m3")
    with pytest.raises(ConfigError) as info:
        load_full(path)
    assert "no point 'ww-logger-000/no_such_m3'" in str(info.value)


def test_job_judges_hourly_means_of_valid_data_and_totals_and_raises_alarms(
    tmp_path, database_url: str, site: str
) -> None:
    full = load_full(plant_file(tmp_path, site))
    ten = DAY.replace(hour=10)
    with psycopg.connect(database_url) as conn:
        apply_full(conn=conn, full=full, source="test")
        # 10:00-10:59: COD 100 with flow 1 L/s for 30 min, then 140 with flow 3 L/s; 10 calibration values of 500
        cod = [(ten + timedelta(minutes=m), 100.0 if m < 30 else 140.0, "N") for m in range(60) if m % 6]
        cod += [(ten + timedelta(minutes=m), 500.0, "C") for m in range(0, 60, 6)]
        cod += [(ten + timedelta(hours=1, minutes=m), 50.0, "N") for m in range(60)]
        cod += [(ten + timedelta(hours=2), 50.0, "N")]
        insert(conn, "cod_mg_l", cod)
        insert(conn, "flow_l_s", [(t, 1.0 if t < ten + timedelta(minutes=30) else 3.0, "N") for t, _, _ in cod])
        # hourly discharge totals this year: 24 x 25 m3 = 600 m3 > 500 permitted (the D-flagged 900 left out)
        insert(
            conn,
            "outflow_1h_m3",
            [(DAY + timedelta(minutes=15 * h), 25.0, "N") for h in range(24)]
            + [(DAY + timedelta(hours=7), 900.0, "D")],
        )
        conn.commit()
        job = ComplianceJob()
        now = ten + timedelta(hours=2, minutes=5)
        found = evaluate_and_alarm(conn, job, now=now.astimezone(UTC))
        stored = results(conn=conn, site=site)
        alarms = conn.execute("SELECT rule, severity, condition_active FROM alarm ORDER BY rule").fetchall()
        again = evaluate_and_alarm(conn, job, now=now.astimezone(UTC))
    by_rule = [(f.rule, f.severity) for f in found]
    assert ("compliance.exceedance.w01018.hour", Severity.HIGH) in by_rule
    assert by_rule.count(("compliance.exceedance.w01018.hour", Severity.NORMAL)) == 1  # cleared at 12:00
    assert ("compliance.total.w00000.year", Severity.HIGH) in by_rule
    hour_rows = {r[3].astimezone(TZ).hour: r for r in stored if r[2] == "hour"}
    # flow-weighted over the 50 valid values: (25 x 100 x 1 + 25 x 140 x 3) / (25 + 75) = 130
    assert hour_rows[10][4] == pytest.approx(130.0) and hour_rows[10][5:9] == (50, 60, True, True)
    assert hour_rows[11][4] == pytest.approx(50.0) and hour_rows[11][8] is False
    assert hour_rows[10][9] == "permit"
    total = next(f for f in found if f.rule == "compliance.total.w00000.year")
    assert total.value == pytest.approx(600.0)
    assert ("compliance.total.w00000.year", 3, True) in alarms  # the alarm engine recorded it (HIGH = 3)
    assert again == []  # nothing new since the watermark


def test_plain_plant_files_still_apply_without_a_compliance_section(database_url: str, site: str) -> None:
    with psycopg.connect(database_url) as conn:
        summary = apply_plant(conn=conn, plant=hj212_plant(site, loggers=1), source="test")
        assert summary.changed
        assert conn.execute("SELECT count(*) FROM compliance_config").fetchone()[0] == 0


def test_the_example_plant_file_applies(database_url: str) -> None:
    from tests.support import REPO_ROOT

    full = load_full(REPO_ROOT / "examples" / "hj212-plant.yaml")
    with psycopg.connect(database_url) as conn:
        summary = apply_full(conn=conn, full=full, source="test")
        loggers = conn.execute("SELECT mn, st FROM hj212_logger ORDER BY mn").fetchall()
        revision, section = load_compliance(conn=conn)
    assert summary.changed and revision > 0
    assert [o.code for o in section.outfalls] == ["ww-final", "rto-stack"]
    assert loggers == [("0100CZ01ENV0000000000001", "32"), ("0100CZ01ENV0000000000002", "31")]


def test_treatment_equipment_stopped_is_a_finding(tmp_path, database_url: str, site: str) -> None:
    full = load_full(plant_file(tmp_path, site, equipment=[{"name": "提升泵", "point": "ww-logger-000/pump_rs_code"}]))
    ten = DAY.replace(hour=10)
    with psycopg.connect(database_url) as conn:
        apply_full(conn=conn, full=full, source="test")
        insert(
            conn,
            "pump_rs_code",
            [
                (ten, 1.0, None),
                (ten + timedelta(minutes=20), 0.0, None),
                (ten + timedelta(minutes=25), 0.0, None),
                (ten + timedelta(minutes=40), 3.0, None),
                (ten + timedelta(minutes=50), 1.0, None),
            ],
        )
        conn.commit()
        found = ComplianceJob().run_once(conn, now=(ten + timedelta(hours=1)).astimezone(UTC))
    states = [
        (f.severity, f.value, f.ts.astimezone(TZ).minute) for f in found if f.rule == "compliance.equipment.state"
    ]
    assert states == [(Severity.HIGH, 0.0, 20), (Severity.LOW, 3.0, 40), (Severity.NORMAL, 1.0, 50)]
    assert "提升泵: stopped" in next(f.message for f in found if f.severity is Severity.HIGH)
