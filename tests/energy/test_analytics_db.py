"""Stored baselines and the abnormal-consumption job against the real PostgreSQL.

``energy_interval`` comes from the energy core's migration 0050 (issue #13, another branch); until that is merged
the fixture creates it exactly as the shared interface specifies, only if it is absent.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.energy_abnormal_cmd import evaluate_once
from core import audit
from core.model import Severity
from core.plant import PlantConfig, apply_plant
from energy import abnormal_job
from energy.baseline import BaselineRefused, fit_baseline
from energy.baseline_store import NotFound, baseline_history, current_baseline, set_baseline
from energy.summary import summary
from tests.fuzzing import budget

pytestmark = pytest.mark.db
TZ = "Asia/Shanghai"

INTERVAL_DDL = """
CREATE TABLE IF NOT EXISTS energy_interval (
    meter_id integer REFERENCES meter (id),
    start timestamptz NOT NULL,
    quantity double precision NOT NULL CHECK (quantity >= 0),
    quality text NOT NULL CHECK (quality IN ('measured', 'estimated', 'missing')),
    PRIMARY KEY (meter_id, start)
)"""


def _plant(site: str) -> PlantConfig:
    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": site,
                    "name": f"测试厂 {site}",
                    "areas": [
                        {
                            "code": "pack",
                            "name": "PACK",
                            "process": "pack",
                            "devices": [
                                {
                                    "code": "pack-air-01",
                                    "name": "PACK 压缩空气表",
                                    "kind": "flow_meter",
                                    "points": [{"key": "air_nm3", "name": "压缩空气累计量", "quantity": "volume"}],
                                },
                                {
                                    "code": "pack-em-01",
                                    "name": "PACK 电表",
                                    "kind": "power_meter",
                                    "points": [{"key": "energy_kwh", "name": "电能", "quantity": "energy"}],
                                },
                            ],
                        }
                    ],
                    "meters": [
                        {
                            "code": "air-pack",
                            "name": "PACK 压缩空气",
                            "medium": "compressed_air",
                            "point": "pack-air-01/air_nm3",
                            "area": "pack",
                        },
                        {
                            "code": "e-pack",
                            "name": "PACK 用电",
                            "medium": "electricity",
                            "point": "pack-em-01/energy_kwh",
                            "area": "pack",
                        },
                    ],
                }
            ]
        }
    )


@pytest.fixture
def plant(conn: psycopg.Connection, site: str) -> str:
    apply_plant(conn=conn, plant=_plant(site), source="test")
    conn.execute(INTERVAL_DDL)
    return site


def _meter_id(conn: psycopg.Connection, code: str) -> int:
    return conn.execute("SELECT id FROM meter WHERE code = %s", (code,)).fetchone()[0]


def _model(scale: float = 1.0):
    months = pd.date_range("2024-01-01", periods=12, freq="MS", tz=TZ)
    x = np.arange(1.0, 13.0)
    energy = pd.Series(scale * (100 + 5 * x) + 2 * np.array([1, -1, -1, 1] * 3), index=months)
    return fit_baseline(energy, pd.DataFrame({"production": x}, index=months), granularity="monthly")


def test_a_baseline_whose_figures_round_to_negative_zero_is_audited_intact(
    conn: psycopg.Connection, plant: str
) -> None:
    """NMBE of -0.00001 % rounds to -0.0, which JSONB gives back as 0.0: the audit chain still verifies (the audit
    hashes its canonical form; no workaround here any more)."""
    model = dataclasses.replace(_model(), nmbe_pct=-0.00001, r2=-0.0)
    set_baseline(conn=conn, site=plant, meter="e-pack", model=model, reason="-0.0", actor="alice")
    assert conn.execute("SELECT detail->>'nmbe_pct' FROM audit_entry WHERE action = 'energy.baseline'").fetchone() == (
        "0.0",
    )
    assert audit.verify(conn)[1] == []


def test_rebaselining_supersedes_and_is_audited(conn: psycopg.Connection, plant: str) -> None:
    first = set_baseline(conn=conn, site=plant, meter="e-pack", model=_model(), reason="2024 基线", actor="alice")
    second = set_baseline(
        conn=conn, site=plant, meter="e-pack", model=_model(1.2), reason="新增第二条产线", actor="bob"
    )
    now = current_baseline(conn=conn, site=plant, meter="e-pack", granularity="monthly")
    assert now is not None and now.id == second and now.reason == "新增第二条产线" and now.created_by == "bob"
    assert now.model.coefficients["production"] == pytest.approx(6.0)
    history = baseline_history(conn=conn, site=plant, meter="e-pack")
    assert [h.id for h in history] == [second, first]
    assert history[1].superseded_by == second and history[1].superseded_at is not None
    entries = conn.execute(
        "SELECT action, actor, detail->>'reason', detail->>'replaces' FROM audit_entry "
        "WHERE target LIKE 'energy_baseline:%%' ORDER BY seq"
    ).fetchall()
    assert entries == [
        ("energy.baseline", "alice", "2024 基线", None),
        ("energy.rebaseline", "bob", "新增第二条产线", str(first)),
    ]
    assert audit.verify(conn)[1] == []
    assert current_baseline(conn=conn, site=plant, area="pack", granularity="monthly") is None
    # one current baseline per (meter, granularity), enforced by the database too
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        conn.execute("UPDATE energy_baseline SET superseded_at = NULL, superseded_by = NULL WHERE id = %s", (first,))


def test_bad_targets_and_reasons_are_refused(conn: psycopg.Connection, plant: str) -> None:
    with pytest.raises(NotFound, match="no meter 'nope'"):
        set_baseline(conn=conn, site=plant, meter="nope", model=_model(), reason="x", actor="a")
    with pytest.raises(ValueError, match="reason"):
        set_baseline(conn=conn, site=plant, meter="e-pack", model=_model(), reason="  ", actor="a")
    with pytest.raises(ValueError, match="exactly one"):
        set_baseline(conn=conn, site=plant, meter="e-pack", area="pack", model=_model(), reason="x", actor="a")


def _write_air(
    conn: psycopg.Connection, meter_id: int, start: datetime, days: int, night: float, last_night: float | None = None
) -> datetime:
    index = pd.date_range(start, periods=days * 96, freq="15min", tz="UTC")
    local = index.tz_convert(TZ)
    busy = (local.hour >= 8) & (local.hour < 20)
    values = np.where(busy, 80.0, night)
    if last_night is not None:
        values = np.where((local.date == local.date[-1]) & ~busy, last_night, values)
    with conn.cursor().copy("COPY energy_interval (meter_id, start, quantity, quality) FROM STDIN") as copy:
        for ts, v in zip(index, values, strict=True):
            copy.write_row((meter_id, ts.to_pydatetime(), float(v), "measured"))
    return index[-1].to_pydatetime() + timedelta(minutes=15)


def _only_the_night_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # the synthetic leak also lifts the night hours above the meter's weekly profile (energy.above_profile,
    # tested in test_incidents_caught.py); these tests are about the night base load alone
    monkeypatch.setenv("EHS_ENERGY_ABNORMAL_PROFILE_EXCLUDE", '["air-pack"]')


def test_a_night_time_air_leak_raises_an_alarm_once_and_clears(
    conn: psycopg.Connection, plant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_the_night_check(monkeypatch)
    air = _meter_id(conn, "air-pack")
    start = datetime(2024, 5, 31, 16, tzinfo=UTC)  # 2024-06-01 00:00 local
    end = _write_air(conn, air, start, 15, night=6.0)
    assert abnormal_job.evaluate(conn=conn, now=end) == []
    # the next night draws 10 m³ per interval instead of 6: a leak
    conn.execute("DELETE FROM energy_interval WHERE meter_id = %s AND start >= %s", (air, end - timedelta(days=1)))
    end = _write_air(conn, air, end - timedelta(days=1), 1, night=6.0, last_night=10.0)
    raised = evaluate_once(conn=conn, now=end)
    assert len(raised) == 1
    f = raised[0]
    assert f.rule == "energy.night_base_load" and f.severity is Severity.MEDIUM
    assert f.subject.device == "pack-air-01" and f.subject.point == "air-pack" and f.subject.area == "pack"
    assert f.details["expected"] == pytest.approx(16 * 6.0) and f.details["actual"] == pytest.approx(16 * 10.0)
    assert f.details["unit"] == "nm3"
    alarm = conn.execute("SELECT state, rule FROM alarm WHERE rule = 'energy.night_base_load'").fetchone()
    assert alarm is not None and alarm[0] == "active_unacked"
    listed = abnormal_job.current_abnormal(conn=conn, site=plant)
    assert [(r["meter"], r["name"], r["expected"], r["actual"]) for r in listed] == [
        ("air-pack", "PACK 压缩空气", pytest.approx(96.0), pytest.approx(160.0))
    ]
    # the energy summary's "abnormal" list holds it with its figures (not only the balance and demand findings)
    (shown,) = summary(conn, site=plant, now=end)["abnormal"]
    assert shown["meter"] == "air-pack" and shown["name"] == "PACK 压缩空气" and shown["area"] == "pack"
    assert shown["rule"] == "energy.night_base_load" and shown["unit"] == "nm3"
    assert shown["expected"] == pytest.approx(96.0) and shown["actual"] == pytest.approx(160.0)
    assert abnormal_job.evaluate(conn=conn, now=end + timedelta(hours=1)) == []  # no repeat while unchanged
    # a normal night follows: the finding returns to normal and the list empties
    end2 = _write_air(conn, air, end, 1, night=6.0)
    cleared = evaluate_once(conn=conn, now=end2)
    assert [(c.rule, c.severity) for c in cleared] == [("energy.night_base_load", Severity.NORMAL)]
    state = conn.execute("SELECT state FROM alarm WHERE rule = 'energy.night_base_load'").fetchone()[0]
    assert state == "cleared_unacked"  # returned to normal, still to be acknowledged (ISA-18.2)
    assert abnormal_job.current_abnormal(conn=conn, site=plant) == []
    assert summary(conn, site=plant, now=end2)["abnormal"] == []


def test_missing_intervals_and_short_history_decide_nothing(conn: psycopg.Connection, plant: str) -> None:
    air = _meter_id(conn, "air-pack")
    end = _write_air(conn, air, datetime(2024, 5, 31, 16, tzinfo=UTC), 4, night=6.0, last_night=30.0)
    assert abnormal_job.evaluate(conn=conn, now=end) == []  # 3 earlier nights: too few to learn from
    conn.execute("UPDATE energy_interval SET quality = 'missing' WHERE meter_id = %s", (air,))
    assert abnormal_job.decisions(conn, end) == []


@budget(25)
@given(
    coefs=st.lists(st.floats(-50, 50, allow_subnormal=False), min_size=1, max_size=3),
    noise=st.floats(0, 3),
    seed=st.integers(0, 2**16),
)
def test_any_accepted_baseline_round_trips_through_the_database_exactly(
    conn: psycopg.Connection, plant: str, coefs, noise, seed
) -> None:
    rng = np.random.default_rng(seed)
    months = pd.date_range("2023-01-01", periods=24, freq="MS", tz=TZ)
    variables = pd.DataFrame({f"v{i}": rng.uniform(0, 10, 24) for i in range(len(coefs))}, index=months)
    energy = (
        1000 + variables.to_numpy() @ np.array(coefs) + rng.normal(0, noise, 24)
        if noise
        else 1000 + variables.to_numpy() @ np.array(coefs)
    )
    try:
        model = fit_baseline(pd.Series(energy, index=months), variables, granularity="monthly")
    except BaselineRefused:
        return
    with conn.transaction(force_rollback=True):
        set_baseline(conn=conn, site=plant, area="pack", model=model, reason="property", actor="hypothesis")
        stored = current_baseline(conn=conn, site=plant, area="pack", granularity="monthly")
        assert stored is not None and stored.model == model
        probe = variables.iloc[:3]
        pd.testing.assert_frame_equal(stored.model.band(probe), model.band(probe))
        assert audit.verify(conn)[1] == []


def test_no_interval_table_yet_means_no_decision(
    conn: psycopg.Connection, plant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_the_night_check(monkeypatch)
    air = _meter_id(conn, "air-pack")
    end = _write_air(conn, air, datetime(2024, 5, 31, 16, tzinfo=UTC), 15, night=6.0, last_night=12.0)
    assert len(abnormal_job.decisions(conn, end)) == 1
    with conn.transaction(force_rollback=True):
        conn.execute("ALTER TABLE energy_interval RENAME TO energy_interval_hidden")
        assert abnormal_job.decisions(conn, end) == []


def test_the_alerts_worker_evaluates_periodically(database_url: str, site: str) -> None:
    """The loop the alerts worker runs (alerts/__main__.py) records a leak as an alarm by itself."""
    import threading

    from alerts.__main__ import evaluate_energy
    from energy.abnormal_job import AbnormalSettings
    from tests.support import wait_for

    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=_plant(site), source="test")
        conn.execute(INTERVAL_DDL)
        last_midnight = pd.Timestamp.now(tz=TZ).normalize().tz_convert("UTC").to_pydatetime()
        _write_air(
            conn, _meter_id(conn, "air-pack"), last_midnight - timedelta(days=15), 15, night=6.0, last_night=12.0
        )
    stop = threading.Event()
    thread = threading.Thread(target=evaluate_energy, args=(database_url, AbnormalSettings(evaluate_s=0.2), stop))
    thread.start()
    try:

        def alarm():
            with psycopg.connect(database_url) as conn:
                return conn.execute("SELECT severity FROM alarm WHERE rule = 'energy.night_base_load'").fetchone()

        wait_for(lambda: alarm() is not None, timeout=60, message="the night-base-load alarm")
        assert alarm() == (int(Severity.HIGH),)  # twice the learned base load
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_other_energy_findings_in_the_state_table_are_left_alone(conn: psycopg.Connection, plant: str) -> None:
    """The energy core's balance findings share energy_finding_state; this job must not clear them."""
    conn.execute(
        "INSERT INTO energy_finding_state (rule, subject, site, severity, message, updated_at) "
        "VALUES ('energy.balance', %s, %s, 2, 'loss 12 %%', now())",
        (f"{plant}/e-main", plant),
    )
    assert abnormal_job.evaluate(conn=conn, now=datetime(2024, 6, 1, tzinfo=UTC)) == []
    assert conn.execute("SELECT severity FROM energy_finding_state WHERE rule = 'energy.balance'").fetchone() == (2,)


PRODUCTION_DDL = """
CREATE TABLE IF NOT EXISTS energy_production (
    id           bigserial PRIMARY KEY,
    area_id      integer NOT NULL REFERENCES area (id),
    start        timestamptz NOT NULL,
    "end"        timestamptz NOT NULL,
    quantity     double precision NOT NULL CHECK (quantity >= 0),
    unit         text NOT NULL CHECK (unit IN ('cells', 'packs', 'ah', 'kwh', 'pcs', 't')),
    source       text NOT NULL CHECK (source IN ('api', 'csv', 'counter')),
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ("end" > start),
    UNIQUE (area_id, start, "end", unit)
)"""


def _pack_line(
    conn: psycopg.Connection, start: datetime, days: int, *, hot_tail: int = 0, unknown_tail: bool = False
) -> datetime:
    """PACK produces 08:00-20:00 local (400 cells an hour, 50 kWh per interval) and idles at 2 kWh otherwise; the
    last ``hot_tail`` intervals of the (stopped) evening draw 20 kWh: the line was left running empty."""
    conn.execute(PRODUCTION_DDL)
    area = conn.execute("SELECT id FROM area WHERE code = 'pack'").fetchone()[0]
    meter = _meter_id(conn, "e-pack")
    slots = pd.date_range(start, periods=days * 96, freq="15min", tz="UTC")
    busy = (slots.tz_convert(TZ).hour >= 8) & (slots.tz_convert(TZ).hour < 20)
    energy = np.where(busy, 50.0, 2.0)
    if hot_tail:
        assert not busy[-hot_tail:].any()
        energy[-hot_tail:] = 20.0
    hours = slots[::4] if not unknown_tail else slots[:-8][::4]
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO energy_production (area_id, start, "end", quantity, unit, source, '
            "recorded_by) VALUES (%s, %s, %s, %s, 'cells', 'api', 't')",
            [
                (area, h.to_pydatetime(), (h + pd.Timedelta(hours=1)).to_pydatetime(), 400.0 if busy[i * 4] else 0.0)
                for i, h in enumerate(hours)
            ],
        )
        with cur.copy("COPY energy_interval (meter_id, start, quantity, quality) FROM STDIN") as copy:
            for ts, v in zip(slots, energy, strict=True):
                copy.write_row((meter, ts.to_pydatetime(), float(v), "measured"))
    return slots[-1].to_pydatetime() + timedelta(minutes=15)


def test_a_line_running_while_production_is_stopped_is_caught(conn: psycopg.Connection, plant: str) -> None:
    start = datetime(2024, 6, 1, 14, tzinfo=UTC)  # 22:00 local: the data ends at 22:00 local, line stopped
    end = _pack_line(conn, start, 8, hot_tail=6)
    found = [(ref.meter, a) for ref, a in abnormal_job.decisions(conn, end)]
    assert len(found) == 1
    meter, abnormal = found[0]
    assert meter == "e-pack" and abnormal.kind.value == "energy.running_while_stopped"
    assert abnormal.periods == 6 and abnormal.expected == pytest.approx(12.0) and abnormal.actual == 120.0
    assert abnormal.device == "pack-em-01" and abnormal.unit == "kwh"
    findings = evaluate_once(conn=conn, now=end)
    assert [(f.rule, f.subject.point) for f in findings] == [("energy.running_while_stopped", "e-pack")]


def test_no_production_record_is_not_a_stop(conn: psycopg.Connection, plant: str) -> None:
    end = _pack_line(conn, datetime(2024, 6, 1, 14, tzinfo=UTC), 8, hot_tail=6, unknown_tail=True)
    assert abnormal_job.decisions(conn, end) == []
    normal_end = _pack_line(conn, datetime(2024, 6, 10, 14, tzinfo=UTC), 8)
    assert abnormal_job.decisions(conn, normal_end) == []
