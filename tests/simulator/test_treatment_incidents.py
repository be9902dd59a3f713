"""The simulator's treatment-plant incidents (issue 15) trip the rules of examples/hj212-plant.yaml.

The MQTT simulator plays the example's controller points (RTO chamber, coating line, VOC collection fan, carbon
adsorber) and the HJ 212 simulator the stack logger's main-fan run state (SB1-RS); their values, on a simulated
clock, are judged by the one rule engine over the rules applied to a real database and loaded as ingest loads
them (``tests.compliance.test_treatment_health.Plant``). The engine rather than the whole MQTT pipeline: the
rules' on-delays (60 s for the RTO, 300 s for the adsorber) would make a real-time run take minutes."""

from __future__ import annotations

import pytest

from cli.plantfile import load_full
from core.model import Severity
from simulator.hj212 import state_of
from simulator.plant import SimPlant
from tests.compliance.test_treatment_health import SITE, Plant
from tests.support import REPO_ROOT

pytestmark = pytest.mark.db
START = 1_780_000_000.0  # simulated epoch seconds
WATCHED = {"rto.chamber_cold", "voc.collection_stopped", "adsorber.breakthrough", "adsorber.efficiency_low"}


class Scene:
    """The simulated plant and the rule engine on one simulated clock."""

    def __init__(self, url: str) -> None:
        self.plant = Plant(url)
        self.sim = SimPlant(
            load_full(REPO_ROOT / "examples" / "hj212-plant.yaml").plant, dropout=0.0, outage_per_hour=0.0, seed=3
        )
        self.now = START
        self.incident: str | None = None

    def run(self, seconds: float, dt: float = 5.0) -> dict:
        found: dict = {}
        for _ in range(int(seconds / dt)):
            self.now += dt
            values = {
                (device.code, key): value
                for device, sample in self.sim.due(self.now)
                if sample is not None
                for key, value in sample.items()
            }
            values[("rto-logger-01", "fan_rs_code")] = float(state_of("SB1", self.incident))
            found.update(self.plant.step(values, dt))
        return {k: v for k, v in found.items() if k[0] in WATCHED}

    def start(self, name: str) -> str:
        self.incident = name
        return self.sim.start_incident(name, self.now)


@pytest.fixture
def scene(database_url: str) -> Scene:
    return Scene(database_url)


def test_the_hj212_loggers_are_not_played_over_mqtt_and_the_collection_fan_starts_running(scene: Scene) -> None:
    codes = {code for _site, code in scene.sim.devices}
    assert "rto-logger-01" not in codes and "ww-logger-01" not in codes  # simulator.hj212 plays them
    assert {"rto-plc-01", "coat-line-01", "voc-fan-01", "adsorber-01"} <= codes
    assert scene.sim.actuators.actuators[(SITE, "voc-fan-01")].on  # its state point's nominal is 1
    assert scene.run(900) == {}  # a quarter of an hour of normal running raises none of the rules


def test_rto_trip_raises_rto_chamber_cold(scene: Scene) -> None:
    assert scene.run(300) == {}
    assert scene.start("rto_trip") == "rto"
    assert scene.run(60) == {}  # still above 760 degC
    assert scene.run(240) == {("rto.chamber_cold", f"{SITE}/rto"): Severity.HIGH}


def test_adsorber_breakthrough_raises_the_adsorber_rules(scene: Scene) -> None:
    assert scene.run(600) == {}
    assert scene.start("adsorber_breakthrough") == "coating-voc"
    found = scene.run(1800)
    assert found[("adsorber.breakthrough", f"{SITE}/coating-voc/adsorber-01")] == Severity.HIGH
    assert found[("adsorber.efficiency_low", f"{SITE}/coating-voc/adsorber-01")] == Severity.HIGH


def test_collection_fan_stop_raises_voc_collection_stopped_until_the_line_stops(scene: Scene) -> None:
    assert scene.run(120) == {}
    assert scene.start("collection_fan_stop") == "coating-voc"
    assert not scene.sim.actuators.actuators[(SITE, "voc-fan-01")].on  # tripped
    assert scene.run(30) == {("voc.collection_stopped", f"{SITE}/coating-voc"): Severity.CRITICAL}
    # the response plan's interlock stops the line (here set directly: the command path has tests of its own)
    scene.sim.actuators.actuators[(SITE, "coat-line-01")].on = False
    assert scene.run(30) == {("voc.collection_stopped", f"{SITE}/coating-voc"): Severity.NORMAL}
