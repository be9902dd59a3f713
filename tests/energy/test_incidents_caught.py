"""The simulator's energy-waste incidents are caught by the energy checks, on the real PostgreSQL.

The demo plant (examples/demo-plant.yaml) is applied, the simulator's meter profiles and incidents are driven as
pure functions of time (``SimPlant.counter_value``, a failed sub-meter's register held at its value when it
failed, as ``SimPlant.due`` publishes it) to produce counter readings every 15 minutes, those go into ``reading``
through the energy core's counter path, and then the energy job (intervals, balance) and the abnormal-consumption
job run as they do in ``ehs up``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from cli.energy_abnormal_cmd import evaluate_once
from core.db import execute
from core.plant import apply_plant, load_plant
from energy.__main__ import run_once
from energy.abnormal_job import AbnormalSettings, decisions
from energy.readings import store_counter_readings
from simulator.plant import SimPlant
from simulator.signals import COUNTER_EPOCH_S
from tests.support import REPO_ROOT

pytestmark = pytest.mark.db
DEMO = load_plant(REPO_ROOT / "examples" / "demo-plant.yaml")
SITE = DEMO.sites[0].code
H = 3600.0
SLOT = 900.0
#: Wednesday 2026-10-28 00:00 in Changzhou (Asia/Shanghai), a weekday.
WED_0000 = COUNTER_EPOCH_S + 300 * 86_400.0 - 8 * H


def _sim() -> SimPlant:
    return SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)


def _points(conn: psycopg.Connection, meters: list[str]) -> dict[str, tuple[str, str, int]]:
    """meter code -> (device, key, point id) of the demo plant's meters."""
    by_code = {m.code: m for m in DEMO.sites[0].meters}
    out = {}
    for code in meters:
        device, key = by_code[code].point.split("/", 1)
        pid = execute(
            conn,
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = %s AND p.key = %s",
            (device, key),
        ).fetchone()[0]
        out[code] = (device, key, pid)
    return out


def _write(
    conn: psycopg.Connection,
    sim: SimPlant,
    points: dict[str, tuple[str, str, int]],
    start: float,
    end: float,
    frozen: dict[str, float] | None = None,
) -> None:
    """Counter readings every 15 minutes in [start, end]; ``frozen``: meter -> the time its register stuck."""
    frozen = frozen or {}
    rows = []
    for code, (device, key, pid) in points.items():
        t = start
        while t <= end:
            at = min(t, frozen[code]) if code in frozen else t
            rows.append((datetime.fromtimestamp(t, UTC), pid, sim.counter_value(SITE, device, key, at)))
            t += SLOT
    store_counter_readings(conn, rows)


def _children(parent: str) -> list[str]:
    return [m.code for m in DEMO.sites[0].meters if m.parent == parent]


@pytest.fixture
def demo(conn: psycopg.Connection) -> psycopg.Connection:
    apply_plant(conn=conn, plant=DEMO, source="test")
    return conn


def _open(conn: psycopg.Connection, rule: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT f.meter, a.state FROM energy_finding_state f JOIN alarm a ON a.rule = f.rule "
        "WHERE f.rule = %s AND f.severity > 0",
        (rule,),
    ).fetchall()


def test_compressed_air_leak_raises_the_night_base_load(demo: psycopg.Connection) -> None:
    # The demo's leak (a burst hose, 2000 Nm³/h, on a 4800 Nm³/h station that runs a night shift) lifts the night
    # flow by about 40 %: above the default factor 1.3 of the learned base load
    sim = _sim()
    points = _points(demo, ["ca-main", *_children("ca-main")])
    leak_at = WED_0000 + 13 * 86_400.0 - 2 * H  # 22:00 on the evening before the 13th night
    now = WED_0000 + 13 * 86_400.0 + 6 * H  # 06:00 after it
    _write(demo, sim, points, WED_0000, leak_at)
    run_once(demo, now=datetime.fromtimestamp(leak_at, UTC))
    assert evaluate_once(conn=demo, now=datetime.fromtimestamp(leak_at, UTC)) == []  # twelve normal nights
    sim.start_incident("compressed_air_leak", leak_at)
    _write(demo, sim, points, leak_at + SLOT, now)
    run_once(demo, now=datetime.fromtimestamp(now, UTC))
    raised = evaluate_once(conn=demo, now=datetime.fromtimestamp(now, UTC))
    assert [(f.rule, f.subject.point) for f in raised] == [("energy.night_base_load", "ca-main")]
    assert raised[0].details["actual"] > 1.3 * raised[0].details["expected"]
    assert _open(demo, "energy.night_base_load") == [("ca-main", "active_unacked")]


def test_a_failed_submeter_raises_the_balance_alarm_on_its_parent(demo: psycopg.Connection) -> None:
    sim = _sim()
    points = _points(demo, ["e-main", *_children("e-main")])
    start = WED_0000 + 2 * 86_400.0 + 9 * H  # Friday 09:00, the day shift
    failed_at = start + 2 * H
    _write(demo, sim, points, start, failed_at)
    _, findings = run_once(demo, now=datetime.fromtimestamp(failed_at + 60, UTC))
    assert findings == []  # the incomer balances against its sub-meters (within 8 %)
    sim.start_incident("submeter_failure", failed_at)
    end = failed_at + 2 * H
    _write(demo, sim, points, failed_at + SLOT, end, frozen={"e-formation": failed_at})
    _, findings = run_once(demo, now=datetime.fromtimestamp(end + 60, UTC))
    assert [(f.rule, f.details["meter"]) for f in findings] == [("energy.balance", "e-main")]
    assert _open(demo, "energy.balance") == [("e-main", "active_unacked")]


def _counter_meters() -> list[str]:
    """The demo plant's meters with a counter point (not the formula meters)."""
    return [m.code for m in DEMO.sites[0].meters if m.point]


def test_an_open_oven_door_raises_above_profile_on_the_drying_meter(demo: psycopg.Connection) -> None:
    # Two weeks of normal drying history, then the door is left open on a Wednesday at 10:00: +320 kW on the
    # drying sub-meter (the incomer counts it too, so the balance stays right, and drying records no production)
    sim = _sim()
    points = _points(demo, ["e-drying", "st-drying"])
    door_at = WED_0000 + 14 * 86_400.0 + 10 * H
    now = door_at + 4 * H
    _write(demo, sim, points, WED_0000, door_at)
    run_once(demo, now=datetime.fromtimestamp(door_at, UTC))
    assert evaluate_once(conn=demo, now=datetime.fromtimestamp(door_at, UTC)) == []
    sim.start_incident("oven_door_open", door_at)
    _write(demo, sim, points, door_at + SLOT, now)
    run_once(demo, now=datetime.fromtimestamp(now, UTC))
    raised = evaluate_once(conn=demo, now=datetime.fromtimestamp(now, UTC))
    by_meter = {f.details["meter"]: f for f in raised if f.rule == "energy.above_profile"}
    assert "e-drying" in by_meter
    drying = by_meter["e-drying"]
    assert drying.subject.device == "dry-em-01" and drying.details["periods"] >= 3
    assert drying.details["actual"] > 1.2 * drying.details["expected"]
    assert ("e-drying", "active_unacked") in _open(demo, "energy.above_profile")
    # the door is closed: the next hours are back on the profile and the finding clears
    sim.clear_incident("oven_door_open", now)
    later = now + 3 * H
    _write(demo, sim, points, now + SLOT, later)
    run_once(demo, now=datetime.fromtimestamp(later, UTC))
    cleared = evaluate_once(conn=demo, now=datetime.fromtimestamp(later, UTC))
    assert ("energy.above_profile", "e-drying", 0) in {(f.rule, f.subject.point, int(f.severity)) for f in cleared}


def test_three_normal_weeks_raise_no_above_profile(demo: psycopg.Connection) -> None:
    # Every counter meter of the demo plant, three normal weeks (shifts, weekends, the chillers following the
    # weather, formation feedback); evaluated every hour of the third week, the first one with two weeks of history
    sim = _sim()
    points = _points(demo, _counter_meters())
    end = WED_0000 + 21 * 86_400.0
    _write(demo, sim, points, WED_0000, end)
    run_once(demo, now=datetime.fromtimestamp(end, UTC))
    raised = []
    t = WED_0000 + 14 * 86_400.0 + H
    while t <= end:
        raised += [
            (f.details.get("meter"), f.details.get("since"))
            for f in evaluate_once(conn=demo, now=datetime.fromtimestamp(t, UTC))
            if f.rule == "energy.above_profile"
        ]
        t += H
    assert raised == []
    # the check did judge these meters: with no margin at all the noise alone lifts some of them above the median
    eager = AbnormalSettings(profile_hours=1, profile_factor=1.0, profile_spread=0.0)
    judged = decisions(demo, datetime.fromtimestamp(end, UTC), eager)
    assert any(found.kind == "energy.above_profile" for _ref, found in judged)
