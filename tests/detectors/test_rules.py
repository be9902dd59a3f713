"""Each rule type at its edges, through the engine as it runs in ingest: deadband, on/off delays, hysteresis,
missing data, clock jumps, and the conformance checks of STYLE.md B4 for every rule detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.clock import FrozenClock
from core.model import PointKind, Severity
from core.plant import PlantConfig
from core.registry import DeviceInfo, PlantIndex, PointInfo
from detectors.engine import Engine
from detectors.specs import RuleSection
from detectors.trigger import Level, Trigger

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def index(
    points: dict[str, tuple[float, float]] | None = None,
    *,
    devices: int = 1,
    interval_s: float = 1.0,
    unit: dict[str, str] | None = None,
) -> PlantIndex:
    """A plant index of ``devices`` devices in area "formation" with the given point keys and ranges."""
    points = points or {"temp_c": (-50, 1200)}
    devs = {}
    pid = 1
    for d in range(devices):
        code = f"dev-{d}"
        info = DeviceInfo(d + 1, "s1", code, "formation", "formation_cabinet", interval_s)
        for key, (lo, hi) in points.items():
            info.points[key] = PointInfo(
                pid, key, PointKind.GAUGE, lo, hi, key.split("_")[0], (unit or {}).get(key, key.rsplit("_", 1)[1])
            )
            pid += 1
        devs[("s1", code)] = info
    return PlantIndex(devs, 1)


def engine(rules: list[dict], idx: PlantIndex | None = None, clock: FrozenClock | None = None) -> Engine:
    return Engine(RuleSection.model_validate({"rules": rules}), idx or index(), clock=clock or FrozenClock(T0))


def feed(
    eng: Engine, values: list[float | None], *, point: int = 1, step_s: float = 1.0, start: datetime = T0
) -> list[str | None]:
    """Feed one value per step to ``point``; return the severity emitted at each step (or None)."""
    out = []
    for i, value in enumerate(values):
        found = eng.evaluate([(start + timedelta(seconds=i * step_s), point, value, 0)])
        out.append(str(found[-1].severity) if found else None)
    return out


LIMIT = {
    "id": "cell.hot",
    "name": "电芯温度高",
    "type": "limit",
    "select": {"key": "temp_c"},
    "deadband": 1.0,
    "high": [{"at": 55, "severity": "high"}, {"at": 60, "severity": "critical"}],
}


def test_limit_levels_deadband_and_hysteresis() -> None:
    eng = engine([LIMIT])
    assert feed(eng, [50, 55, 59.9, 60, 59.5, 59.0, 58.9, 54.5, 54.0, 53.9]) == [
        None,
        "high",
        None,
        "critical",
        None,
        "high",
        None,
        None,
        "normal",
        None,
    ]
    #              ^ at the limit      ^ 59 is exactly HH - deadband: released   ^ 54 = H - 1: released


def test_limit_on_delay_and_off_delay() -> None:
    rule = {**LIMIT, "on_delay_s": 3, "off_delay_s": 2}
    eng = engine([rule])
    assert feed(eng, [56, 56, 50, 56, 56, 56, 56, 50, 56, 50, 50, 50]) == [
        None,
        None,
        None,
        None,
        None,
        None,
        "high",
        None,
        None,
        None,
        None,
        "normal",
    ]


def test_per_level_on_delay_keeps_each_levels_own_timer() -> None:
    rule = {
        "id": "dtdt",
        "name": "温升速率",
        "type": "rate_of_rise",
        "select": {"key": "temp_c"},
        "window_s": 1,
        "levels": [
            {"at": 0.2, "severity": "high", "on_delay_s": 10},
            {"at": 1.0, "severity": "critical", "on_delay_s": 3},
        ],
    }
    eng = engine([rule])
    temps = [30.0]
    for _ in range(8):
        temps.append(temps[-1] + 0.3)  # 0.3 degC/s: precursor for 8 s
    for _ in range(6):
        temps.append(temps[-1] + 1.5)  # then 1.5 degC/s
    out = feed(eng, temps)
    # the precursor level's own timer runs from step 1 (0.3 >= 0.2 degC/s) through the fast rise: 10 s -> step 11;
    # GB 38031 c): >= 1 degC/s for 3 s -> critical 3 s after the fast rise began (step 9 + 3 = 12)
    assert out[11] == "high" and out[12] == "critical" and set(out[:11]) == {None}


def test_low_limit_mirrors_the_high_limit() -> None:
    rule = {
        "id": "ph",
        "name": "pH 低",
        "type": "limit",
        "select": {"key": "ph_ph"},
        "deadband": 0.2,
        "low": [{"at": 6.0, "severity": "medium"}, {"at": 5.5, "severity": "high"}],
    }
    eng = engine([rule], index({"ph_ph": (0, 14)}))
    assert feed(eng, [7.4, 6.1, 6.0, 5.6, 5.5, 5.69, 5.7, 6.19, 6.2]) == [
        None,
        None,
        "medium",
        None,
        "high",
        None,
        "medium",
        None,
        "normal",
    ]


def test_missing_values_change_nothing_and_trigger_needs_data() -> None:
    eng = engine([{**LIMIT, "on_delay_s": 2}])
    assert feed(eng, [61, None, None, 61]) == [None, None, None, "critical"]
    assert feed(eng, [None, None], start=T0 + timedelta(seconds=10)) == [None, None]
    assert eng.active() == {("cell.hot", "s1/formation/dev-0/temp_c"): Severity.CRITICAL}


def test_late_readings_are_not_judged_and_a_clock_jump_restarts_the_detector() -> None:
    rule = {
        "id": "dtdt",
        "name": "温升速率",
        "type": "rate_of_rise",
        "select": {"key": "temp_c"},
        "window_s": 2,
        "levels": [{"at": 1.0, "severity": "critical", "on_delay_s": 2}],
    }
    eng = engine([rule])
    feed(eng, [30, 30.1, 30.2, 30.3])
    assert feed(eng, [99.0], start=T0 + timedelta(seconds=2)) == [None]  # late: ignored
    # the device clock jumps back an hour: the rate history restarts instead of computing a negative span
    back = T0 - timedelta(hours=1)
    assert feed(eng, [31, 33, 35, 37, 39], start=back) == [None, None, None, "critical", None]


def test_rate_needs_two_samples_inside_its_span() -> None:
    rule = {
        "id": "dtdt",
        "name": "温升速率",
        "type": "rate_of_rise",
        "select": {"key": "temp_c"},
        "window_s": 3,
        "levels": [{"at": 1.0, "severity": "critical"}],
    }
    eng = engine([rule])
    # one sample per 30 s (a gap): a 60 degC step is not a rate this rule can judge
    assert feed(eng, [30, 90, 150], step_s=30) == [None, None, None]


def test_gas_levels_in_pct_lel_on_a_ppm_point() -> None:
    rule = {
        "id": "h2",
        "name": "氢气",
        "type": "gas",
        "gas": "h2",
        "select": {"key": "h2_ppm"},
        "levels": [
            {"at": 1, "unit": "pct_lel", "severity": "high"},
            {"at": 10, "unit": "pct_lel", "severity": "critical"},
        ],
    }
    eng = engine([rule], index({"h2_ppm": (0, 40000)}))
    # LEL H2 = 40000 ppm: 1 %LEL = 400 ppm, 10 %LEL = 4000 ppm
    assert feed(eng, [399, 400, 3999, 4000]) == [None, "high", None, "critical"]


def test_gas_levels_above_25_pct_lel_are_refused() -> None:
    with pytest.raises(ValueError, match="25 %LEL"):
        RuleSection.model_validate(
            {
                "rules": [
                    {
                        "id": "h2",
                        "name": "氢气",
                        "type": "gas",
                        "gas": "h2",
                        "levels": [{"at": 30, "unit": "pct_lel", "severity": "high"}],
                    }
                ]
            }
        )


def test_deviation_from_baseline_is_protected_while_abnormal() -> None:
    rule = {
        "id": "voc",
        "name": "VOC 升高",
        "type": "deviation",
        "select": {"key": "voc_ppm"},
        "window_s": 60,
        "min_samples": 5,
        "levels": [{"at": 5, "severity": "medium"}, {"at": 20, "severity": "high"}],
    }
    eng = engine([rule], index({"voc_ppm": (0, 2000)}))
    out = feed(eng, [2, 2.2, 1.8, 2.1, 1.9, 2.0, 8, 8.5, 9, 30] + [9] * 40)
    assert out[:10] == [None] * 5 + [None, "medium", None, None, "high"]
    # the leak goes on for 40 s at 9 ppm: the baseline was not taught the leak, so it stays an alarm
    assert set(out[10:]) == {None, "medium"} and eng.active()


def test_voltage_drop_in_percent_of_baseline() -> None:
    rule = {
        "id": "v",
        "name": "电压骤降",
        "type": "deviation",
        "direction": "fall",
        "relative": True,
        "select": {"key": "cell_voltage_v"},
        "window_s": 60,
        "min_samples": 5,
        "levels": [{"at": 10, "severity": "high"}, {"at": 25, "severity": "critical"}],
    }
    eng = engine([rule], index({"cell_voltage_v": (0, 5)}))
    assert feed(eng, [3.4] * 6 + [3.1, 3.0, 2.5]) == [None] * 6 + [None, "high", "critical"]


def test_flatline_needs_the_whole_window_unchanged() -> None:
    rule = {
        "id": "stuck",
        "name": "传感器卡死",
        "type": "flatline",
        "select": {"key": "temp_c"},
        "window_s": 10,
        "severity": "low",
    }
    eng = engine([rule])
    assert feed(eng, [24.1] * 10 + [24.1, 24.2]) == [None] * 10 + ["low", "normal"]


def test_spike_counts_isolated_outliers_but_not_a_step() -> None:
    rule = {
        "id": "spiky",
        "name": "尖峰",
        "type": "spike",
        "select": {"key": "temp_c"},
        "samples": 10,
        "z": 6,
        "count": 2,
        "within_s": 100,
        "severity": "low",
        "min_scale": 0.05,
    }
    eng = engine([rule])
    base = [24.0, 24.1, 23.9, 24.0, 24.05, 23.95, 24.0, 24.1, 23.9, 24.0]
    assert feed(eng, base + [90, 24.0, 24.1, 95, 24.0]) == [None] * 14 + ["low"]
    eng = engine([rule])
    assert set(feed(eng, base + [60] * 20)) == {None}  # a step to a new level is not a spike


def test_stale_counts_silence_on_the_engine_clock_not_the_wall_clock() -> None:
    clock = FrozenClock(T0)
    eng = engine(
        [{"id": "silent", "name": "数据中断", "type": "stale", "select": {}, "intervals": 3, "severity": "medium"}],
        index(interval_s=5),
        clock,
    )
    clock.advance(14)
    assert eng.tick() == []
    clock.advance(1)
    [finding] = eng.tick()
    assert finding.severity == Severity.MEDIUM and finding.subject.key == "s1/formation/dev-0"
    eng.evaluate([(T0, 1, 20.0, 0)])  # heard again: back to normal at once
    assert eng.active() == {}
    clock.set(T0 + timedelta(days=3))  # the wall clock jumps: not silence
    assert eng.tick() == []


def test_offline_status_with_on_delay_fires_on_the_tick() -> None:
    from ingest.decoders import StatusChange

    clock = FrozenClock(T0)
    eng = engine(
        [{"id": "offline", "name": "离线", "type": "offline", "select": {}, "severity": "medium", "on_delay_s": 30}],
        clock=clock,
    )
    assert eng.evaluate([], statuses=[StatusChange(1, "offline", T0)]) == []
    clock.advance(29)
    assert eng.tick() == []
    clock.advance(1)
    assert [f.severity for f in eng.tick()] == [Severity.MEDIUM]
    [back] = eng.evaluate([], statuses=[StatusChange(1, "online", T0)])
    assert back.severity == Severity.NORMAL


def test_invalid_values_nulls_and_out_of_range_rejects() -> None:
    from ingest.decoders import Reason, Reject

    clock = FrozenClock(T0)
    eng = engine(
        [
            {
                "id": "bad",
                "name": "无效数据",
                "type": "invalid",
                "select": {},
                "count": 3,
                "within_s": 60,
                "severity": "low",
            }
        ],
        clock=clock,
    )
    reject = Reject("t", b"{}", 2, T0, Reason.OUT_OF_RANGE, "temp_c=9999 outside", "s1", "dev-0")
    assert eng.evaluate([(T0, 1, None, 2)]) == []
    assert eng.evaluate([], rejects=[reject]) == []
    [finding] = eng.evaluate([(T0 + timedelta(seconds=1), 1, None, 2)])
    assert finding.severity == Severity.LOW
    clock.advance(61)
    assert [f.severity for f in eng.tick()] == [Severity.NORMAL]


def test_trigger_restore_takes_up_a_severity_without_emitting() -> None:
    trigger = Trigger(levels=(Level(1.0, Severity.HIGH), Level(2.0, Severity.CRITICAL)))
    trigger.restore(Severity.CRITICAL)
    assert trigger.state_ == Severity.CRITICAL
    assert trigger.update(1.5, T0) == Severity.HIGH and trigger.update(0.5, T0) == Severity.NORMAL


def test_unbound_points_cost_one_lookup_and_bound_ones_find_their_rules() -> None:
    eng = engine([LIMIT], index({"temp_c": (-50, 1200), "humidity_pct": (0, 100)}, devices=3))
    assert eng.bound_points == 3
    rows = [(T0, pid, 99.0, 0) for pid in range(1, 7)]
    assert {f.subject.device for f in eng.evaluate(rows)} == {"dev-0", "dev-1", "dev-2"}


def test_plant_config_is_not_needed_to_build() -> None:
    assert PlantConfig  # the engine needs only the index (from the database), not the YAML
