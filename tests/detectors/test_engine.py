"""The engine: voting across an area, findings only on change, state across restarts and configuration changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from core.clock import FrozenClock
from core.model import Severity
from detectors.engine import Engine
from detectors.specs import RuleSection
from tests.detectors.test_rules import T0, engine, index

AREA = {"temp_c": (-50, 1200), "smoke_pct_obs_m": (0, 20), "co_ppm": (0, 1000)}
SMOKE = {
    "id": "smoke",
    "name": "烟雾",
    "type": "limit",
    "select": {"key": "smoke_pct_obs_m"},
    "high": [{"at": 0.5, "severity": "high"}],
}
HEAT = {
    "id": "heat.rise",
    "name": "温升",
    "type": "rate_of_rise",
    "select": {"key": "temp_c"},
    "window_s": 1,
    "levels": [{"at": 0.5, "severity": "high"}],
}
FIRE = {
    "id": "fire.confirmed",
    "name": "火灾确认",
    "type": "vote",
    "severity": "critical",
    "select": {},
    "expr": {"all": [{"rule": "smoke"}, {"any": [{"rule": "heat.rise"}, {"key": "co_ppm", "above": 50}]}]},
}


def _points(idx):
    return {(d.code, k): p.id for d in idx.devices.values() for k, p in d.points.items()}


def test_vote_smoke_and_heat_rise_or_co() -> None:
    clock = FrozenClock(T0)
    idx = index(AREA, devices=2)
    pid = _points(idx)
    eng = engine([SMOKE, HEAT, FIRE], idx, clock)

    def step(*rows, dt=1.0):
        clock.advance(dt)
        now = T0 + timedelta(seconds=clock.monotonic())
        return {(f.rule, f.subject.key): f.severity for f in eng.evaluate([(now, p, v, 0) for p, v in rows])}

    assert step((pid[("dev-0", "smoke_pct_obs_m")], 0.8)) == {
        ("smoke", "s1/formation/dev-0/smoke_pct_obs_m"): Severity.HIGH
    }  # smoke alone: no vote
    assert step((pid[("dev-1", "co_ppm")], 20.0)) == {}  # CO below 50: still no vote
    found = step((pid[("dev-1", "co_ppm")], 80.0))  # CO on another device, same area
    assert found == {("fire.confirmed", "s1/formation"): Severity.CRITICAL}
    # CO older than max_age (30 s) no longer votes; the engine's tick notices without a new reading
    clock.advance(31)
    assert {(f.rule, f.severity) for f in eng.tick()} == {("fire.confirmed", Severity.NORMAL)}


def test_two_out_of_three_across_cabinets() -> None:
    idx = index({"temp_c": (-50, 1200)}, devices=3)
    vote = {
        "id": "hot.2oo3",
        "name": "2oo3 高温",
        "type": "vote",
        "severity": "critical",
        "select": {},
        "expr": {"k_of": 2, "of": [{"key": "temp_c", "above": 60}]},
    }
    clock = FrozenClock(T0)
    eng = engine([vote], idx, clock)
    assert eng.evaluate([(T0, 1, 70.0, 0), (T0, 2, 40.0, 0), (T0, 3, 45.0, 0)]) == []
    [finding] = eng.evaluate([(T0, 2, 65.0, 0)])
    assert finding.rule == "hot.2oo3" and finding.severity == Severity.CRITICAL and finding.subject.area


def test_findings_only_on_change_even_at_high_rates() -> None:
    eng = engine(
        [
            {
                "id": "hot",
                "name": "高温",
                "type": "limit",
                "select": {"key": "temp_c"},
                "high": [{"at": 60, "severity": "high"}],
            }
        ]
    )
    rows = [(T0 + timedelta(milliseconds=i), 1, 61.0 + (i % 5), 0) for i in range(5000)]
    assert [f.severity for f in eng.evaluate(rows)] == [Severity.HIGH]


def test_restore_after_restart_lets_the_return_to_normal_be_seen() -> None:
    rules = [
        {
            "id": "hot",
            "name": "高温",
            "type": "limit",
            "select": {"key": "temp_c"},
            "high": [{"at": 60, "severity": "high"}],
        }
    ]
    eng = engine(rules)
    assert eng.restore([("hot", "s1/formation/dev-0/temp_c", Severity.HIGH), ("gone", "x", Severity.LOW)]) == 1
    assert eng.evaluate([(T0, 1, 61.0, 0)]) == []  # still high: nothing new to say
    [finding] = eng.evaluate([(T0 + timedelta(seconds=1), 1, 20.0, 0)])
    assert finding.severity == Severity.NORMAL and finding.details["previous"] == int(Severity.HIGH)


def test_adopt_keeps_unchanged_bindings_and_closes_removed_ones() -> None:
    hot = {
        "id": "hot",
        "name": "高温",
        "type": "limit",
        "select": {"key": "temp_c"},
        "high": [{"at": 60, "severity": "high"}],
    }
    dtdt = {
        "id": "dtdt",
        "name": "温升",
        "type": "rate_of_rise",
        "select": {"key": "temp_c"},
        "window_s": 1,
        "levels": [{"at": 1.0, "severity": "critical"}],
    }
    clock = FrozenClock(T0)
    old = engine([hot, dtdt], clock=clock)
    old.evaluate([(T0, 1, 30.0, 0)])
    assert {f.rule for f in old.evaluate([(T0 + timedelta(seconds=1), 1, 65.0, 0)])} == {"hot", "dtdt"}
    new = Engine(
        RuleSection.model_validate({"rules": [{**hot, "high": [{"at": 70, "severity": "high"}]}]}),
        index(),
        clock=clock,
        revision=2,
    )
    closed = new.adopt(old)
    assert [(f.rule, f.severity) for f in closed] == [("dtdt", Severity.NORMAL)]
    assert new.active() == {("hot", "s1/formation/dev-0/temp_c"): Severity.HIGH}
    [finding] = new.evaluate([(T0 + timedelta(seconds=2), 1, 66.0, 0)])  # below the new limit of 70
    assert finding.severity == Severity.NORMAL and finding.details["rule_revision"] == 2


def test_warm_up_after_a_restart_keeps_a_leak_alarm_and_clears_it_when_the_leak_ends() -> None:
    """A baseline taught only what came before the alarm: neither stuck for ever nor cleared by the leak itself."""
    voc = {
        "id": "voc",
        "name": "VOC 升高",
        "type": "deviation",
        "select": {"key": "voc_ppm"},
        "window_s": 600,
        "min_samples": 5,
        "levels": [{"at": 5, "severity": "medium"}],
    }
    idx = index({"voc_ppm": (0, 2000)})
    eng = engine([voc], idx)
    points, span = eng.history_needed()
    assert points == [1] and span == timedelta(seconds=600)
    raised = T0 + timedelta(seconds=60)
    history = {
        1: [(T0 + timedelta(seconds=s), 2.0 + (s % 3) * 0.1) for s in range(0, 60, 5)]
        + [(raised + timedelta(seconds=s), 30.0) for s in range(0, 30, 5)]
    }
    key = ("voc", "s1/formation/dev-0/voc_ppm")
    assert eng.warm_up(history, until={key: raised}) == 1
    eng.restore([(*key, Severity.MEDIUM, raised)])
    later = raised + timedelta(seconds=40)
    assert eng.evaluate([(later, 1, 31.0, 0)]) == []  # the leak goes on: still an alarm
    [back] = eng.evaluate([(later + timedelta(seconds=5), 1, 2.1, 0)])
    assert back.severity == Severity.NORMAL


def test_a_silent_device_stays_silent_across_a_restart() -> None:
    clock = FrozenClock(T0)
    stale = {"id": "silent", "name": "数据中断", "type": "stale", "select": {}, "intervals": 3, "severity": "medium"}
    eng = engine([stale], index(interval_s=5), clock)
    eng.restore([("silent", "s1/formation/dev-0", Severity.MEDIUM, T0)])
    clock.advance(1)
    assert eng.tick() == []  # not "heard at start": the alarm does not clear by itself
    [heard] = eng.evaluate([(T0, 1, 20.0, 0)])
    assert heard.severity == Severity.NORMAL


def test_a_ratio_leaf_votes_on_each_device_own_divisor() -> None:
    """An adsorber's removal efficiency below 80 % while it is loaded: outlet / inlet of the same device."""
    idx = index({"voc_in_mg_m3": (0, 5000), "voc_out_mg_m3": (0, 5000)}, devices=2)
    pid = _points(idx)
    rule = {
        "id": "adsorber.efficiency",
        "name": "去除效率低",
        "type": "vote",
        "per": "device",
        "severity": "high",
        "select": {},
        "expr": {
            "all": [{"key": "voc_in_mg_m3", "above": 20}, {"key": "voc_out_mg_m3", "per": "voc_in_mg_m3", "above": 0.2}]
        },
    }
    clock = FrozenClock(T0)
    eng = engine([rule], idx, clock)

    def step(**values: float) -> dict:
        clock.advance(1)
        now = T0 + timedelta(seconds=clock.monotonic())
        rows = [
            (now, pid[(dev, key)], v, 0)
            for name, v in values.items()
            for dev, key in [(f"dev-{name[1]}", "voc_in_mg_m3" if name[0] == "i" else "voc_out_mg_m3")]
        ]
        return {(f.subject.device, f.severity) for f in eng.evaluate(rows)}

    assert step(i0=100.0, o0=10.0, i1=100.0, o1=10.0) == set()  # 90 %: fine
    assert step(o0=30.0) == {("dev-0", Severity.HIGH)}  # 70 % on dev-0 only
    assert step(o1=19.0) == set()  # dev-1 81 %: its own inlet divides
    assert step(i0=0.0) == {("dev-0", Severity.NORMAL)}  # no load, no ratio: no vote
    with pytest.raises(ValidationError, match="per divides"):
        RuleSection.model_validate({"rules": [{**rule, "expr": {"rule": "x", "per": "voc_in_mg_m3"}}]})
