"""Meter profiles of the simulated plant and its energy-waste incidents: monotone counters with the expected shape
(shifts, weekends, formation feedback, chillers on the weather, night-time compressed-air base load, production
counters), a meter tree whose parents count their children plus losses, and incidents that change what they
should (and nothing else)."""

from __future__ import annotations

import pytest

from core.model import PointKind
from core.plant import load_plant
from simulator import energy, incidents
from simulator.plant import LINE_LOSS, SimPlant
from simulator.signals import COUNTER_EPOCH_S
from tests.support import REPO_ROOT

DEMO = load_plant(REPO_ROOT / "examples" / "demo-plant.yaml")
H = 3600.0
#: Wednesday 2026-10-28 00:00 UTC = 08:00 in Changzhou, the start of a weekday day shift.
WED_0800 = COUNTER_EPOCH_S + 300 * 86_400.0
SITE = DEMO.sites[0].code


def _plant() -> SimPlant:
    return SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)


def _use(plant: SimPlant, device: str, key: str, start: float, end: float) -> float:
    return plant.counter_value(SITE, device, key, end) - plant.counter_value(SITE, device, key, start)


def _counters() -> list[tuple[str, str, float]]:
    return [
        (d.code, p.key, p.nominal or 1.0)
        for s in DEMO.sites
        for a in s.areas
        for d in a.devices
        for p in d.points
        if p.kind == PointKind.COUNTER
    ]


def test_every_counter_only_increases_without_spikes_over_a_week() -> None:
    plant = _plant()
    counters = _counters()
    assert len(counters) >= 25
    for device, key, nominal in counters:
        values = [plant.counter_value(SITE, device, key, WED_0800 + i * 900.0) for i in range(8 * 96)]
        steps = [b - a for a, b in zip(values, values[1:], strict=False)]
        assert min(steps) >= 0, (device, key)
        assert max(steps) <= 3 * nominal / 4, (device, key)  # never more than 3x the mean rate


def test_a_profile_averages_its_nominal_over_the_year() -> None:
    for profile in energy.PROFILES:
        counter = energy.ProfileCounter(profile, 1000.0, 0.0, seed=5)
        year = counter.consumed(COUNTER_EPOCH_S + 365 * 86_400.0) / (365 * 24)
        assert year == pytest.approx(1000.0, rel=0.01), profile


def test_shifts_nights_and_weekends() -> None:
    line = energy.ProfileCounter("line", 1400.0, 0.0, seed=1)
    day = line.rate_per_h(WED_0800 + 3 * H)  # Wednesday 11:00
    night = line.rate_per_h(WED_0800 + 19 * H)  # Thursday 03:00
    sunday = line.rate_per_h(WED_0800 + 4 * 86_400.0 + 3 * H)
    assert night < 0.85 * day and sunday < 0.4 * day and sunday > 0
    air = energy.ProfileCounter("compressed_air", 4800.0, 0.0, seed=2)
    assert 0 < air.rate_per_h(WED_0800 + 19 * H) < air.rate_per_h(WED_0800 + 3 * H)  # leakage is the base load
    cells = energy.ProfileCounter("production", 2200.0, 0.0, seed=3)
    assert cells.rate_per_h(WED_0800 + 4 * 86_400.0 + 3 * H) < 0.2 * cells.rate_per_h(WED_0800 + 3 * H)


def test_formation_cabinets_feed_energy_back_every_third_hour() -> None:
    formation = energy.ProfileCounter("formation", 2400.0, 0.0, seed=4)
    hours = [formation.rate_per_h(WED_0800 + h * H) for h in range(9)]  # inside the day shift
    for i in range(0, 9, 3):
        cycle = hours[i : i + 3]
        assert min(cycle) < 0.5 * max(cycle)
    assert sorted(hours)[:3] == sorted(hours[i] for i in range(9) if hours[i] < 0.5 * max(hours))


def test_chillers_follow_the_outdoor_temperature() -> None:
    import numpy as np

    july = COUNTER_EPOCH_S + 200 * 86_400.0 + 6 * H  # 20 July, 14:00 local
    january = COUNTER_EPOCH_S + 15 * 86_400.0 + 20 * H  # 16 January, 04:00 local
    temps = energy.outdoor_temp_c(np.array([july, january]))
    assert temps[0] > 28 and temps[1] < 5
    chiller = energy.ProfileCounter("chiller", 1100.0, 0.0, seed=6)
    assert chiller.rate_per_h(july) > 3 * chiller.rate_per_h(january)
    # the weather station reports the temperature the chillers follow (for degree-day baselines)
    for t, expected in ((july, temps[0]), (january, temps[1])):
        station = next(v for d, v in _plant().due(t) if d.code == "weather-01" and v is not None)
        assert station["outdoor_temp_c"] == pytest.approx(expected, abs=1.0)


def test_parent_meters_count_their_children_and_a_loss() -> None:
    plant = _plant()
    start, end = WED_0800, WED_0800 + 86_400.0
    for site in DEMO.sites:
        for parent in site.meters:
            kids = [m for m in site.meters if m.parent == parent.code]
            if not kids:
                continue
            whole = _use(plant, *parent.point.split("/"), start, end)
            parts = sum(_use(plant, *k.point.split("/"), start, end) for k in kids)
            assert parts * (1 + LINE_LOSS) < whole, parent.code
            if parent.medium == "electricity":  # almost everything on the incomer is sub-metered
                assert whole < parts * 1.05, parent.code
    main = _use(plant, "sub-main-01", "energy_kwh", start, end)
    assert 12_500 * 24 * 0.9 < main < 12_500 * 24 * 1.6  # a weekday: above the yearly mean


def test_compressed_air_leak_raises_the_night_base_load() -> None:
    normal, leaking = _plant(), _plant()
    night = WED_0800 + 17 * H  # Thursday 01:00 local
    assert leaking.start_incident("compressed_air_leak", night) == "utilities"
    window = (night + H, night + 3 * H)
    extra_air = _use(leaking, "air-comp-01", "air_nm3", *window) - _use(normal, "air-comp-01", "air_nm3", *window)
    assert extra_air == pytest.approx(2 * incidents.AIR_LEAK_NM3_H, rel=1e-6)
    extra_kwh = _use(leaking, "air-comp-01", "energy_kwh", *window) - _use(normal, "air-comp-01", "energy_kwh", *window)
    assert extra_kwh == pytest.approx(2 * incidents.AIR_LEAK_NM3_H * incidents.AIR_SPECIFIC_KWH_PER_NM3, rel=1e-6)
    # the incomer sees the compressor's extra power; the PACK sub-meter sees nothing (the leak is upstream)
    main = ("sub-main-01", "energy_kwh")
    extra_main = _use(leaking, *main, *window) - _use(normal, *main, *window)
    assert extra_main == pytest.approx(extra_kwh * (1 + LINE_LOSS), rel=1e-6)
    assert _use(leaking, "pack-air-01", "air_nm3", *window) == pytest.approx(
        _use(normal, "pack-air-01", "air_nm3", *window), abs=1e-3
    )
    # cleared: the register keeps what leaked (no step down), and the rate is normal again
    before = leaking.counter_value(SITE, "air-comp-01", "air_nm3", night + 4 * H)
    assert leaking.clear_incident("compressed_air_leak", night + 4 * H) == ["compressed_air_leak"]
    assert leaking.counter_value(SITE, "air-comp-01", "air_nm3", night + 4 * H) == pytest.approx(before, abs=1e-3)
    later = (night + 5 * H, night + 6 * H)
    assert _use(leaking, "air-comp-01", "air_nm3", *later) == pytest.approx(
        _use(normal, "air-comp-01", "air_nm3", *later), abs=1e-3
    )


def _published(
    plant: SimPlant,
    wanted: list[tuple[str, str]],
    start: float,
    seconds: float,
    step: float = 10.0,
) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {w: [] for w in wanted}
    for i in range(int(seconds / step)):
        for dev, values in plant.due(start + i * step):
            for device, key in wanted:
                if dev.code == device and values is not None:
                    out[(device, key)].append(values[key])
    return out


def test_oven_door_open_cools_the_oven_and_wastes_power_and_steam() -> None:
    normal, wasting = _plant(), _plant()
    t0 = WED_0800 + 2 * H
    assert wasting.start_incident("oven_door_open", t0) == "drying"
    points = [
        ("dry-oven-01", "temp_c"),
        ("dry-oven-01", "pressure_pa"),
        ("dry-em-01", "energy_kwh"),
        ("dry-steam-01", "steam_t"),
        ("coat-em-01", "energy_kwh"),
    ]
    got = _published(wasting, points, t0, 1200)
    ref = _published(normal, points, t0, 1200)
    assert got[("dry-oven-01", "temp_c")][-1] == pytest.approx(48.0, abs=0.5)
    assert got[("dry-oven-01", "pressure_pa")][-1] > 100_000
    waste_kwh = (got[("dry-em-01", "energy_kwh")][-1] - got[("dry-em-01", "energy_kwh")][0]) - (
        ref[("dry-em-01", "energy_kwh")][-1] - ref[("dry-em-01", "energy_kwh")][0]
    )
    assert waste_kwh == pytest.approx(incidents.OVEN_DOOR_EXTRA_KW * (1190 - 60) / 3600, rel=0.02)
    assert got[("dry-steam-01", "steam_t")][-1] > ref[("dry-steam-01", "steam_t")][-1]
    assert got[("coat-em-01", "energy_kwh")] == ref[("coat-em-01", "energy_kwh")]  # nothing else changes


def test_a_failed_submeter_stops_counting_while_its_parent_counts_on() -> None:
    normal, broken = _plant(), _plant()
    t0 = WED_0800 + 2 * H
    assert broken.start_incident("submeter_failure", t0) == "formation"
    points = [("form-em-01", "energy_kwh"), ("sub-main-01", "energy_kwh")]
    got = _published(broken, points, t0, 1800)
    ref = _published(normal, points, t0, 1800)
    assert len(set(got[("form-em-01", "energy_kwh")])) == 1  # stuck, still reporting
    assert ref[("form-em-01", "energy_kwh")][-1] > ref[("form-em-01", "energy_kwh")][0]
    assert got[("sub-main-01", "energy_kwh")] == ref[("sub-main-01", "energy_kwh")]  # the incomer counts on
    stuck = got[("form-em-01", "energy_kwh")][-1]
    broken.clear_incident("submeter_failure", t0 + 1800)
    after = _published(broken, [("form-em-01", "energy_kwh")], t0 + 1800, 60)[("form-em-01", "energy_kwh")]
    assert after[0] > stuck  # repaired: the register reads the true total again (no reset)


def test_energy_waste_incidents_are_listed() -> None:
    for name in ("oven_door_open", "compressed_air_leak", "submeter_failure"):
        spec = incidents.INCIDENTS[name]
        assert spec.title and spec.title_en and spec.duration_s is None
    with pytest.raises(ValueError, match="unknown meter profile"):
        energy.shape("nuclear", energy.np.zeros(1))
