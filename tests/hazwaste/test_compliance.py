"""Compliance findings through the alarm engine: storage time, capacity, incompatibility, manifests overdue,
declarations due, the stage model; edge-triggered (only changes), and back to normal."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cli.hazwaste_cmd import evaluate_once
from core.model import Severity
from hazwaste import compliance, ledger, manifests
from tests.hazwaste.world import seed
from tests.support import unique_code

pytestmark = pytest.mark.db
SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=SH)


def _stored(conn, w, kind="carbon", kg=100.0, store="WH-2", at=T0) -> int:
    cid = ledger.create_container(
        conn=conn,
        site_id=w.site_id,
        code=unique_code("C-"),
        waste_type_id=w.types[kind],
        container_type="drum",
        volume_l=200,
    )
    ledger.record(conn=conn, container_id=cid, stage="generation", at=at, quantity_kg=kg, handler="a", recorded_by="t")
    ledger.record(conn=conn, container_id=cid, stage="storage_in", at=at, handler="a", facility=store, recorded_by="t")
    return cid


def _by_rule(findings, rule):
    return [(f.subject.device, f.severity) for f in findings if f.rule == rule]


def _file_declarations(conn, w, *periods):
    for period in periods:
        conn.execute(
            "INSERT INTO hw_declaration (site_id, period, filed_at, filed_by) VALUES (%s, %s, now(), 't')",
            (w.site_id, period),
        )


def test_storage_time_warns_at_270_and_330_and_alarms_at_365_days(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _file_declarations(conn, w, *(f"2026-{m:02d}" for m in range(1, 13)), "2025", "2026", "2027")
    cid = _stored(conn, w)
    code = f"container:{ledger.get_container(conn=conn, container_id=cid)['code']}"
    seen = []
    for days in (269, 270, 300, 330, 364, 365, 400):
        findings = evaluate_once(conn=conn, now=T0 + timedelta(days=days), use_dwell=False)
        seen.append((days, _by_rule(findings, "hazwaste.storage_time")))
    assert seen == [
        (269, []),
        (270, [(code, Severity.LOW)]),
        (300, []),
        (330, [(code, Severity.MEDIUM)]),
        (364, []),
        (365, [(code, Severity.HIGH)]),
        (400, []),
    ]
    alarm = conn.execute(
        "SELECT state, severity, area, device FROM alarm WHERE rule = 'hazwaste.storage_time'"
    ).fetchone()
    assert alarm == ("active_unacked", int(Severity.HIGH), "hw-store", code)
    ledger.record(
        conn=conn, container_id=cid, stage="storage_out", at=T0 + timedelta(days=401), handler="a", recorded_by="t"
    )
    findings = evaluate_once(conn=conn, now=T0 + timedelta(days=402), use_dwell=False)
    assert _by_rule(findings, "hazwaste.storage_time") == [(code, Severity.NORMAL)]
    assert conn.execute("SELECT condition_active FROM alarm WHERE rule = 'hazwaste.storage_time'").fetchone() == (
        False,
    )


def test_a_site_limit_shorter_than_a_year(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    conn.execute(
        "UPDATE hw_site_setting SET storage_limit_days = 90, warn_days = '{60}' WHERE site_id = %s", (w.site_id,)
    )
    _stored(conn, w)
    conds = [
        c
        for c in compliance.conditions(conn=conn, now=T0 + timedelta(days=90), dwell=False)
        if c.rule == "hazwaste.storage_time"
    ]
    assert [c.severity for c in conds] == [Severity.HIGH]


def test_store_capacity_and_incompatible_storage(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _stored(conn, w, "carbon", 600.0, "WH-1")
    _stored(conn, w, "packaging", 320.0, "WH-1")  # 920 of 1000 kg
    now = T0 + timedelta(days=1)
    conds = {(c.rule, c.subject.device): c.severity for c in compliance.conditions(conn=conn, now=now, dwell=False)}
    assert conds[("hazwaste.capacity", "facility:WH-1")] == Severity.MEDIUM
    assert ("hazwaste.capacity", "facility:WH-2") not in conds
    _stored(conn, w, "carbon", 100.0, "WH-1")
    # the catalogue changes after the fact: carbon is now declared incompatible with packaging
    conn.execute("UPDATE hw_waste_type SET incompatible_with = '{packaging}' WHERE id = %s", (w.types["carbon"],))
    conds = {(c.rule, c.subject.device): c for c in compliance.conditions(conn=conn, now=now, dwell=False)}
    assert conds[("hazwaste.capacity", "facility:WH-1")].severity == Severity.HIGH
    incompatible = conds[("hazwaste.incompatible", "facility:WH-1")]
    assert incompatible.severity == Severity.HIGH and "carbon/packaging" in incompatible.message.replace(
        "packaging/carbon", "carbon/packaging"
    )


def test_overdue_manifest_becomes_an_alarm(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    cid = _stored(conn, w, "electrolyte", 50.0)
    ledger.record(
        conn=conn, container_id=cid, stage="storage_out", at=T0 + timedelta(days=1), handler="a", recorded_by="t"
    )
    mid = manifests.create(
        conn=conn,
        site_id=w.site_id,
        waste_type_id=w.types["electrolyte"],
        trip="T-9",
        carrier_name="c",
        vehicle_plate="苏E1",
        carrier_permit="p",
        receiver_name="r",
        receiver_licence="L",
        receiver_scope=["HW06"],
        method="disposal",
        container_ids=[cid],
        created_by="t",
        at=T0,
    )
    friday = datetime(2026, 1, 9, 15, 0, tzinfo=SH)
    for event in ("submit", "depart", "deliver"):
        manifests.apply_event(
            conn=conn,
            manifest_id=mid,
            event=event,
            at=friday,
            actor="t",
            number="20263205000999" if event == "submit" else None,
        )
    assert (
        _by_rule(
            evaluate_once(conn=conn, now=datetime(2026, 1, 16, 23, 0, tzinfo=SH), use_dwell=False),
            "hazwaste.manifest.receipt_overdue",
        )
        == []
    )
    found = evaluate_once(conn=conn, now=datetime(2026, 1, 17, 0, 0, tzinfo=SH), use_dwell=False)
    assert _by_rule(found, "hazwaste.manifest.receipt_overdue") == [(f"manifest:{mid}", Severity.HIGH)]
    assert (
        conn.execute(
            "SELECT count(*) FROM alarm WHERE rule = 'hazwaste.manifest.receipt_overdue' AND condition_active"
        ).fetchone()[0]
        == 1
    )


def test_declarations_due_by_the_15th_and_by_31_march(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _file_declarations(conn, w, "2026-01")

    def decl(day):
        return {
            (c.rule, c.subject.device): c.severity
            for c in compliance.conditions(conn=conn, now=day, dwell=False)
            if c.rule.startswith("hazwaste.declaration")
        }

    assert decl(datetime(2026, 3, 9, 12, tzinfo=SH)) == {}
    assert decl(datetime(2026, 3, 10, 12, tzinfo=SH)) == {
        ("hazwaste.declaration.monthly", "declaration:2026-02"): Severity.LOW
    }
    assert decl(datetime(2026, 3, 16, 12, tzinfo=SH)) == {
        ("hazwaste.declaration.monthly", "declaration:2026-02"): Severity.MEDIUM
    }
    _file_declarations(conn, w, "2026-02")
    assert decl(datetime(2026, 3, 26, 12, tzinfo=SH)) == {
        ("hazwaste.declaration.annual", "declaration:2025"): Severity.LOW
    }
    assert (
        decl(datetime(2026, 4, 1, 12, tzinfo=SH))[("hazwaste.declaration.annual", "declaration:2025")]
        == Severity.MEDIUM
    )
    conn.execute("UPDATE hw_site_setting SET unit_class = 'simplified' WHERE site_id = %s", (w.site_id,))
    _file_declarations(conn, w, "2025")
    assert decl(datetime(2026, 4, 15, 12, tzinfo=SH)) == {
        ("hazwaste.declaration.quarterly", "declaration:2026-Q1"): Severity.LOW
    }


def test_evaluation_reports_changes_only(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _stored(conn, w, "carbon", 950.0, "WH-1")
    now = datetime(2026, 3, 10, 12, tzinfo=SH)
    first = evaluate_once(conn=conn, now=now, use_dwell=False)
    assert {f.rule for f in first} == {"hazwaste.capacity", "hazwaste.declaration.monthly"}
    assert evaluate_once(conn=conn, now=now + timedelta(hours=1), use_dwell=False) == []
    events = conn.execute(
        "SELECT count(*) FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id WHERE a.rule LIKE 'hazwaste.%%'"
    ).fetchone()[0]
    assert events >= 2


def test_stage_model_findings_name_the_missing_step(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _file_declarations(conn, w, *(f"2026-{m:02d}" for m in range(1, 13)), "2025")
    t0 = datetime(2025, 6, 1, tzinfo=SH)
    for i in range(12):
        at = t0 + timedelta(days=i * 15)
        cid = _stored(conn, w, "carbon", 20.0, "WH-2", at=at)
        if i:
            ledger.record(
                conn=conn,
                container_id=cid,
                stage="storage_out",
                at=at + timedelta(days=8 + i % 4),
                handler="a",
                recorded_by="t",
            )
    found = [
        c for c in compliance.conditions(conn=conn, now=datetime(2026, 2, 1, tzinfo=SH)) if c.rule == "hazwaste.dwell"
    ]
    assert len(found) == 1 and "storage_out" in found[0].message


def test_the_alerts_worker_evaluates_periodically(database_url: str) -> None:
    """The loop the alerts worker runs (alerts/__main__.py) records the findings as alarms by itself."""
    import threading

    from alerts.__main__ import evaluate_hazwaste
    from hazwaste.settings import HazwasteSettings
    from tests.support import wait_for

    with psycopg.connect(database_url) as conn:
        w = seed(conn, unique_code("hw"))
        _stored(conn, w, at=datetime.now(SH) - timedelta(days=400))
    stop = threading.Event()
    thread = threading.Thread(target=evaluate_hazwaste, args=(database_url, HazwasteSettings(evaluate_s=0.2), stop))
    thread.start()
    try:

        def alarm():
            with psycopg.connect(database_url) as conn:
                return conn.execute("SELECT severity FROM alarm WHERE rule = 'hazwaste.storage_time'").fetchone()

        wait_for(lambda: alarm() is not None, timeout=60, message="the storage-time alarm")
        assert alarm() == (int(Severity.HIGH),)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
