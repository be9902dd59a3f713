"""Simulated devices refuse forged, redirected, tampered and expired commands, obey valid ones once, report their
state, and the physics responds: a fan and a closed valve end a leak, a sprinkler cools a runaway cell, a
stopped coating line unloads the incinerator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.commands import device_key, new_command, signed
from simulator.plant import SimPlant
from simulator.signals import COUNTER_EPOCH_S
from tests.simulator.test_simulator import DEMO, _collect

SECRET = "s3cret"
T = COUNTER_EPOCH_S + 300 * 86_400.0


def _plant(**kw) -> SimPlant:
    return SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0, secret=SECRET, **kw)


def _command(
    device: str,
    action: str,
    *,
    at: float = T,
    ttl_s: float = 60,
    key_of: str | None = None,
    secret: str = SECRET,
    changes: dict | None = None,
) -> bytes:
    body = signed(
        new_command(action=action, params={}, issued_at=datetime.fromtimestamp(at, UTC), ttl=timedelta(seconds=ttl_s)),
        device_key(secret, "cz01", key_of or device),
    )
    return orjson.dumps({**body, **(changes or {})})


def _replies(plant: SimPlant, device: str, payload: bytes, now: float = T) -> list[dict]:
    return [orjson.loads(r) for r in plant.actuators.handle("cz01", device, payload, now)]


def test_a_valid_command_is_accepted_then_done_with_the_new_state() -> None:
    plant = _plant()
    [accepted] = _replies(plant, "form-fan-01", _command("form-fan-01", "exhaust_fan.on"))
    assert accepted["status"] == "accepted" and accepted["state"]["on"] is False
    assert plant.actuators.finish(T + 1.0) == []  # the fan takes 2 s to spin up
    [(actuator, done)] = plant.actuators.finish(T + 2.0)
    assert orjson.loads(done)["status"] == "done" and orjson.loads(done)["state"]["on"] is True
    values = {d.code: v for d, v in plant.due(T + 3.0)}
    assert values["form-fan-01"]["fan_running_bool"] == 1.0  # and it says so in its telemetry


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("forged", "bad signature"),
        ("other device", "bad signature"),
        ("tampered", "bad signature"),
        ("expired", "expired"),
        ("future", "future"),
        ("unsupported", "cannot valve.close"),
        ("missing", "missing"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(case: str, why: str) -> None:
    plant = _plant()
    payload = {
        "forged": lambda: _command("form-fan-01", "exhaust_fan.on", secret="guessed"),
        "other device": lambda: _command("form-fan-01", "exhaust_fan.on", key_of="form-sprinkler-01"),
        "tampered": lambda: _command("form-fan-01", "exhaust_fan.on", changes={"action": "exhaust_fan.off"}),
        "expired": lambda: _command("form-fan-01", "exhaust_fan.on", at=T - 120, ttl_s=60),
        "future": lambda: _command("form-fan-01", "exhaust_fan.on", at=T + 3600),
        "unsupported": lambda: _command("form-fan-01", "valve.close"),
        "missing": lambda: orjson.dumps({"id": "c1", "action": "exhaust_fan.on"}),
    }[case]()
    [reply] = _replies(plant, "form-fan-01", payload)
    assert reply["status"] == "rejected" and why in reply["detail"]
    assert plant.actuators.finish(T + 10) == [] and not plant.actuators.actuators[("cz01", "form-fan-01")].on


def test_a_repeated_command_is_acknowledged_again_but_done_once() -> None:
    plant = _plant()
    payload = _command("inj-valve-01", "valve.close")
    first = _replies(plant, "inj-valve-01", payload)
    assert _replies(plant, "inj-valve-01", payload, now=T + 1) == first  # a retry: same id, same answer
    assert len(plant.actuators.finish(T + 10)) == 1
    assert _replies(plant, "inj-valve-01", b"not json") == []  # no id: nothing to answer


def test_fan_and_valve_end_an_electrolyte_leak() -> None:
    plant = _plant()
    plant.start_incident("electrolyte_leak", T)
    before = _collect(plant, [("inj-gas-01", "voc_ppm")], T, 120)[("inj-gas-01", "voc_ppm")]
    assert before[-1] > 100
    for device, action in (("inj-fan-01", "exhaust_fan.on"), ("inj-valve-01", "valve.close")):
        _replies(plant, device, _command(device, action, at=T + 120), now=T + 120)
    plant.actuators.finish(T + 130)
    after = _collect(plant, [("inj-gas-01", "voc_ppm")], T + 130, 120)[("inj-gas-01", "voc_ppm")]
    assert after[-1] < 5 and after[0] > after[-1]


def test_a_sprinkler_cools_a_runaway_cell_and_a_stopped_cabinet_stops_charging() -> None:
    plant = _plant()
    plant.start_incident("thermal_runaway", T)
    hot = _collect(plant, [("form-cab-01", "cell_temp_c")], T, 300)[("form-cab-01", "cell_temp_c")]
    assert max(hot) > 500
    _replies(plant, "form-sprinkler-01", _command("form-sprinkler-01", "sprinkler.on", at=T + 300), now=T + 300)
    _replies(plant, "form-cab-01", _command("form-cab-01", "charge.stop", at=T + 300), now=T + 300)
    plant.actuators.finish(T + 301)
    later = _collect(plant, [("form-cab-01", "cell_temp_c"), ("form-cab-01", "current_a")], T + 301, 180)
    assert later[("form-cab-01", "cell_temp_c")][-1] < 60 and set(later[("form-cab-01", "current_a")]) == {0.0}


def test_stopping_the_coating_line_unloads_the_incinerator() -> None:
    plant = _plant()
    plant.start_incident("rto_failure", T)
    nmhc = _collect(plant, [("rto-cems-01", "nmhc_mg_m3")], T, 300, step=10)[("rto-cems-01", "nmhc_mg_m3")]
    assert nmhc[-1] > 50
    _replies(plant, "coat-line-01", _command("coat-line-01", "line.stop", at=T + 300), now=T + 300)
    plant.actuators.finish(T + 302)
    after = _collect(plant, [("rto-cems-01", "nmhc_mg_m3")], T + 302, 300, step=10)[("rto-cems-01", "nmhc_mg_m3")]
    assert after[-1] < 20


def test_a_forged_command_cannot_plant_an_id_or_flush_the_real_ones() -> None:
    plant = _plant()
    real = orjson.loads(_command("inj-valve-01", "valve.close"))
    planted = orjson.dumps({**real, "sig": "0" * 64})
    assert _replies(plant, "inj-valve-01", planted)[0]["status"] == "rejected"
    assert _replies(plant, "inj-valve-01", orjson.dumps(real))[0]["status"] == "accepted"  # the real one still works
    plant.actuators.finish(T + 10)
    for i in range(1_500):  # junk that used to push real ids out of a 1,000-entry FIFO
        _replies(
            plant,
            "inj-valve-01",
            _command("inj-valve-01", "valve.open", secret="guessed", changes={"id": f"junk-{i}"}),
            now=T + 11,
        )
    assert _replies(plant, "inj-valve-01", orjson.dumps(real), now=T + 12)[0]["status"] == "done"  # retry: same answer
    reopen = _command("inj-valve-01", "valve.open", at=T + 13)
    _replies(plant, "inj-valve-01", reopen, now=T + 13)
    plant.actuators.finish(T + 30)
    plant.actuators.actuators[("cz01", "inj-valve-01")].commands.seen.clear()  # the device forgot the ids
    [replayed] = _replies(plant, "inj-valve-01", orjson.dumps(real), now=T + 31)  # the captured valve.close
    assert replayed["status"] == "rejected" and "replayed" in replayed["detail"]
    assert plant.actuators.finish(T + 60) == [] and plant.actuators.actuators[("cz01", "inj-valve-01")].on


def test_a_forgery_reusing_an_accepted_id_gets_no_answer() -> None:
    plant = _plant()
    real = orjson.loads(_command("form-fan-01", "exhaust_fan.on"))
    assert _replies(plant, "form-fan-01", orjson.dumps(real))[0]["status"] == "accepted"
    assert _replies(plant, "form-fan-01", orjson.dumps({**real, "action": "exhaust_fan.off"}), now=T + 1) == []
