"""Treatment-plant health as configured rules (issue 15): the example plant file's RTO, carbon-adsorber and VOC
collection rules, applied to the real database and loaded the way ingest loads them, judged by the one engine.

Each rule is shown raising its finding on the incident and staying quiet in the look-alike that is not one (a
planned RTO stop, a stopped line, a lightly loaded adsorber)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts import service as alert_service
from cli.plantfile import apply_full, load_full
from core.clock import FrozenClock
from core.model import Severity
from core.registry import load_index
from detectors import service as rule_service
from detectors.engine import Engine
from tests.support import REPO_ROOT

pytestmark = pytest.mark.db
T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SITE = "cz01-env"


class Plant:
    """The example plant in a real database, and an engine over its rules on a clock the test moves."""

    def __init__(self, url: str) -> None:
        with psycopg.connect(url) as conn:
            apply_full(conn=conn, full=load_full(REPO_ROOT / "examples" / "hj212-plant.yaml"), source="test")
            index = load_index(conn)
            _revision, rules = rule_service.load_rules(conn=conn)
            self.config = alert_service.load_config(conn=conn, index=index)
        self.clock = FrozenClock(T0)
        self.engine = Engine(rules, index, clock=self.clock)
        self.points = {(d.code, k): p.id for d in index.devices.values() for k, p in d.points.items()}

    def step(self, values: dict[tuple[str, str], float], dt: float = 5.0) -> dict[tuple[str, str], Severity]:
        """Advance the clock by ``dt`` seconds and feed one reading of each point at that time."""
        self.clock.advance(dt)
        now = T0 + timedelta(seconds=self.clock.monotonic())
        rows = [(now, self.points[key], value, 0) for key, value in values.items()]
        found = self.engine.evaluate(rows) + self.engine.tick()
        return {(f.rule, f.subject.key): f.severity for f in found}

    def run(self, values: dict[tuple[str, str], float], seconds: float, dt: float = 5.0) -> dict:
        """Keep ``values`` coming for ``seconds``; every change of state found meanwhile, the last one winning."""
        out: dict = {}
        for _ in range(int(seconds / dt)):
            out.update(self.step(values, dt))
        return out


@pytest.fixture
def plant(database_url: str) -> Plant:
    return Plant(database_url)


RTO = f"{SITE}/rto"
CHAMBER, FAN = ("rto-plc-01", "chamber_temp_c"), ("rto-logger-01", "fan_rs_code")


def test_rto_chamber_below_its_minimum_while_the_fan_runs_is_an_alarm_a_planned_stop_is_not(plant: Plant) -> None:
    assert plant.run({CHAMBER: 820.0, FAN: 1.0}, 120) == {}
    assert plant.run({CHAMBER: 300.0, FAN: 0.0}, 300) == {}  # stopped and cooled down: fine
    found = plant.run({CHAMBER: 700.0, FAN: 1.0}, 50)  # fan on, chamber cold
    assert found == {}  # not yet: 60 s on-delay
    assert plant.run({CHAMBER: 700.0, FAN: 1.0}, 30) == {("rto.chamber_cold", RTO): Severity.HIGH}
    assert plant.run({CHAMBER: 700.0, FAN: 4.0}, 10) == {("rto.chamber_cold", RTO): Severity.NORMAL}  # fan alarm


COATING = f"{SITE}/coating-voc"
LINE, VOC_FAN = ("coat-line-01", "line_running_bool"), ("voc-fan-01", "fan_running_bool")


def test_collection_fan_off_while_the_line_runs_is_critical_and_stops_the_line(plant: Plant) -> None:
    assert plant.run({LINE: 1.0, VOC_FAN: 1.0}, 60) == {}
    assert plant.run({LINE: 0.0, VOC_FAN: 0.0}, 60) == {}  # both stopped: nothing to collect
    assert plant.run({LINE: 1.0, VOC_FAN: 0.0}, 20) == {("voc.collection_stopped", COATING): Severity.CRITICAL}
    assert plant.run({LINE: 0.0, VOC_FAN: 0.0}, 10) == {("voc.collection_stopped", COATING): Severity.NORMAL}
    plan = plant.config.plans[(SITE, "coating-voc")]
    level = next(lv for lv in plan.levels if "voc.collection_stopped" in lv.rules)
    assert [(i.device, i.action) for i in level.interlocks] == [("coat-line-01", "line.stop")]


ADSORBER = f"{SITE}/coating-voc/adsorber-01"
IN, OUT = ("adsorber-01", "voc_in_mg_m3"), ("adsorber-01", "voc_out_mg_m3")


def test_adsorber_breakthrough_efficiency_below_80_percent_and_saturation_creeping_up(plant: Plant) -> None:
    assert plant.run({IN: 120.0, OUT: 4.0}, 3600, dt=60) == {}  # an hour of normal operation
    assert plant.run({IN: 30.0, OUT: 5.0}, 600, dt=60) == {}  # light load, 83 % removed: fine
    found = plant.run({IN: 120.0, OUT: 15.0}, 600, dt=60)
    assert found[("adsorber.breakthrough", ADSORBER)] == Severity.HIGH
    assert found[("adsorber.saturating", f"{ADSORBER}/voc_out_mg_m3")] == Severity.LOW
    assert ("adsorber.efficiency_low", ADSORBER) not in found  # 87.5 % removed: still >= 80 %
    # a lighter load (below the breakthrough rule's 50) that the carbon removes only 70 % of
    assert plant.run({IN: 40.0, OUT: 12.0}, 600, dt=60) == {
        ("adsorber.efficiency_low", ADSORBER): Severity.HIGH,
        ("adsorber.breakthrough", ADSORBER): Severity.NORMAL,
    }
    assert plant.run({IN: 120.0, OUT: 3.0}, 600, dt=60) == {
        ("adsorber.efficiency_low", ADSORBER): Severity.NORMAL,
        ("adsorber.saturating", f"{ADSORBER}/voc_out_mg_m3"): Severity.NORMAL,
    }  # carbon replaced
