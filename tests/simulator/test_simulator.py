"""The simulator: realistic shapes, counters that only increase, incidents in the documented order."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from core.plant import load_plant
from simulator import incidents
from simulator.plant import SimPlant
from simulator.signals import COUNTER_EPOCH_S, production_factor, production_hours
from tests.support import REPO_ROOT, shared_data_dir

DEMO = load_plant(REPO_ROOT / "examples" / "demo-plant.yaml")
T = COUNTER_EPOCH_S + 300 * 86_400.0
NREL = shared_data_dir() / "nrel-battery-failure-databank" / "Fractional_Calorimetry_Data.csv"


def _collect(
    plant: SimPlant, wanted: list[tuple[str, str]], start: float, seconds: int, step: float = 1.0
) -> dict[tuple[str, str], list[float]]:
    """Step the plant through time once, keeping the values of the wanted (device, key) points."""
    out: dict[tuple[str, str], list[float]] = {w: [] for w in wanted}
    for i in range(int(seconds / step)):
        for dev, values in plant.due(start + i * step):
            for device, key in wanted:
                if dev.code == device and values is not None:
                    out[(device, key)].append(values[key])
    return out


def _series(plant: SimPlant, device: str, key: str, start: float, seconds: int, step: float = 1.0) -> list[float]:
    return _collect(plant, [(device, key)], start, seconds, step)[(device, key)]


def test_every_point_reports_inside_its_valid_range() -> None:
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    ranges = {(d.code, p.key): p.range for s in DEMO.sites for a in s.areas for d in a.devices for p in d.points}
    seen = set()
    for step in range(120):
        for dev, values in plant.due(T + step):
            for key, value in values.items():
                lo, hi = ranges[(dev.code, key)]
                assert lo <= value <= hi, (dev.code, key, value)
                seen.add((dev.code, key))
    assert seen == set(ranges)


def test_counters_only_increase_and_continue_across_restarts() -> None:
    first = _series(SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0), "sub-main-01", "energy_kwh", T, 600)
    assert all(b > a for a, b in zip(first, first[1:], strict=False))
    rate = (first[-1] - first[0]) / ((len(first) - 1) * 10 / 3600)
    # a weekday's day shift (08:00 in Changzhou): above the yearly mean load (the nominal, 12.5 MW), not wildly so
    assert 1.0 * 12500 < rate < 1.5 * 12500
    later = _series(SimPlant(DEMO, seed=99, dropout=0.0, outage_per_hour=0.0), "sub-main-01", "energy_kwh", T + 600, 60)
    assert later[0] > first[-1]  # a restarted simulator does not reset the meter


def test_daily_cycle_integrates_to_the_production_hours() -> None:
    day = [production_factor(T + h * 3600) for h in range(24)]
    assert max(day) > 1.1 and min(day) < 0.9
    assert production_hours(T + 86_400) - production_hours(T) == pytest.approx(24.0, rel=1e-9)


def test_noise_is_reproducible_with_a_seed_and_varies() -> None:
    a = _series(SimPlant(DEMO, seed=3, dropout=0.0, outage_per_hour=0.0), "inj-env-01", "dew_point_c", T, 60)
    b = _series(SimPlant(DEMO, seed=3, dropout=0.0, outage_per_hour=0.0), "inj-env-01", "dew_point_c", T, 60)
    assert a == b and len(set(a)) > 5
    assert statistics.mean(a) == pytest.approx(-45, abs=2)


def test_dropouts_lose_some_samples() -> None:
    full = _series(SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0), "form-gas-01", "h2_ppm", T, 2000)
    lossy = _series(SimPlant(DEMO, dropout=0.05, outage_per_hour=0.0), "form-gas-01", "h2_ppm", T, 2000)
    assert len(full) == 2000 and 1800 < len(lossy) < 1990


def test_thermal_runaway_follows_the_gas_sequence_and_nrel_temperatures() -> None:
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    assert plant.start_incident("thermal_runaway", T) == "formation"
    points = [
        ("form-gas-01", "voc_ppm"),
        ("form-gas-01", "h2_ppm"),
        ("form-gas-01", "co_ppm"),
        ("form-fire-01", "smoke_pct_obs_m"),
        ("form-cab-01", "cell_temp_c"),
    ]
    series = _collect(plant, points, T, 600)

    def first_above(point: tuple[str, str], threshold: float) -> int:
        return next(i for i, v in enumerate(series[point]) if v > threshold)

    voc, h2, co, smoke = (first_above(p, t) for p, t in zip(points, (20, 100, 50, 0.5), strict=False))
    assert voc < h2 < co < smoke
    assert 120 <= smoke - h2 <= 480  # H2 2 to 8 minutes before smoke (standards.md 7.2)
    temps = series[("form-cab-01", "cell_temp_c")]
    rates = [b - a for a, b in zip(temps, temps[1:], strict=False)]
    assert max(temps) == pytest.approx(incidents.RUNAWAY_PEAK_C)
    assert any(r >= 1.0 for r in rates[:250])  # >= 1 degC/s before onset (GB 38031 criterion c)
    onset = next(i for i, v in enumerate(temps) if v >= incidents.RUNAWAY_ONSET_C)
    assert temps[onset + int(incidents.RUNAWAY_EVENT_S) + 1] == pytest.approx(incidents.RUNAWAY_PEAK_C)


def test_other_incidents() -> None:
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    plant.start_incident("electrolyte_leak", T)
    assert max(_series(plant, "inj-gas-01", "voc_ppm", T, 200)) > 100
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    plant.start_incident("rto_failure", T)
    both = _collect(plant, [("rto-01", "chamber_temp_c"), ("rto-cems-01", "nmhc_mg_m3")], T, 400, step=2.0)
    chamber, nmhc = both[("rto-01", "chamber_temp_c")], both[("rto-cems-01", "nmhc_mg_m3")]
    assert chamber[-1] < 600 and max(nmhc) > 50  # stack NMHC above the GB 30484 limit
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    plant.start_incident("ph_excursion", T)
    ph = _series(plant, "ww-outlet-01", "ph_ph", T, 600, step=10.0)
    assert min(ph) < 6.0 and ph[-1] > 7.0 and "ph_excursion" not in plant.incidents
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    plant.start_incident("meter_stop", T)
    assert _series(plant, "form-em-01", "energy_kwh", T, 60) == []
    assert plant.clear_incident("meter_stop") == ["meter_stop"]
    assert _series(plant, "form-em-01", "energy_kwh", T + 60, 30)
    plant = SimPlant(DEMO, dropout=0.0, outage_per_hour=0.0)
    plant.start_incident("sensor_flatline", T)
    assert len(set(_series(plant, "wh-env-01", "temp_c", T, 100))) == 1
    assert len(set(_series(plant, "wh-env-01", "humidity_pct", T + 100, 100))) > 1


def test_unknown_incident_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown incident"):
        SimPlant(DEMO).start_incident("meteor", T)


@pytest.mark.skipif(not NREL.exists(), reason="the NREL databank folder is not present")
def test_runaway_constants_are_the_databank_medians() -> None:
    rows = list(csv.reader(NREL.open(encoding="utf-8")))
    header, data = rows[1], [r for r in rows[2:] if r[4] == "Heater (Non-ISC)"]

    def median(column: str) -> float:
        i = header.index(column)
        values = []
        for row in data:
            try:
                values.append(float(row[i]))
            except ValueError:  # blank, "-" or "None": not measured in that test
                pass
        return statistics.median(values)

    assert median("Avg-Cell-Temp-At-Trigger-degC") == pytest.approx(incidents.RUNAWAY_ONSET_C, abs=0.05)
    assert median("Heater-Time-On-s") == pytest.approx(incidents.HEATING_TO_ONSET_S, abs=0.05)
    assert median("Average-Event-Length-s") == pytest.approx(incidents.RUNAWAY_EVENT_S, abs=0.05)


def test_data_folder_is_outside_the_repository() -> None:
    assert not (REPO_ROOT / "data").exists() and not Path(NREL).is_relative_to(REPO_ROOT)
