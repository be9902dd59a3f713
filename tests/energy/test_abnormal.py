"""energy.abnormal: the four abnormal-consumption decisions and their findings, on plain series."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from core.model import Severity
from energy.abnormal import (
    Kind,
    above_band,
    above_profile,
    learn_night_base,
    learn_standby,
    night_base_load,
    night_means,
    running_while_stopped,
    to_finding,
)
from energy.baseline import fit_baseline

TZ = "Asia/Shanghai"


def _quarter_hours(start: str, n: int) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start, tz=TZ).tz_convert("UTC"), periods=n, freq="15min")


def _days_model():
    rng = np.random.default_rng(5)
    days = pd.date_range("2024-05-01", periods=40, freq="D", tz=TZ)
    prod = pd.DataFrame({"production": rng.uniform(80, 120, 40)}, index=days)
    energy = 500 + 4 * prod["production"] + rng.normal(0, 10, 40)
    return fit_baseline(energy, prod, granularity="daily")


def test_above_band_needs_the_last_periods_all_above_the_upper_edge() -> None:
    model = _days_model()
    days = pd.date_range("2024-07-01", periods=5, freq="D", tz=TZ)
    band = model.band(pd.DataFrame({"production": [100.0] * 5}, index=days))  # expected 900 each
    upper = float(band["upper"].iloc[0])
    assert 900 < upper < 960
    normal = pd.Series([900.0, 910, 890, 905, 899], index=days)
    assert above_band(normal, band, meter="M-OVEN-1", unit="kWh") is None
    one_spike = pd.Series([900.0, 910, 890, 905, upper + 50], index=days)
    assert above_band(one_spike, band, meter="M-OVEN-1", unit="kWh") is None
    assert above_band(one_spike, band, meter="M-OVEN-1", unit="kWh", persist=1) is not None
    waste = pd.Series([900.0, 910, upper + 1, upper + 30, upper + 60], index=days)
    found = above_band(waste, band, meter="M-OVEN-1", unit="kWh", device="oven-1", area="drying")
    assert found is not None and found.kind is Kind.ABOVE_BAND
    assert found.periods == 3 and found.since == days[2] and found.until == days[4]
    assert found.expected == pytest.approx(float(band["expected"].iloc[2:].sum()))
    assert found.actual == pytest.approx(3 * upper + 91)
    gap = waste.drop(days[3])  # a missing day breaks the run: only the last day remains above
    assert above_band(gap, band, meter="M", unit="kWh") is None


def test_running_while_stopped_uses_the_learned_standby() -> None:
    idx = _quarter_hours("2024-06-03 00:00", 96)
    output = pd.Series([30.0] * 64 + [0.0] * 32, index=idx)  # production stops at 16:00
    energy = pd.Series(np.where(output > 0, 60.0, 2.0), index=idx)
    standby = learn_standby(energy, output)
    assert standby == pytest.approx(2.0)
    assert running_while_stopped(energy, output, standby=standby, meter="M-INJ-3", unit="kWh") is None
    hot = energy.copy()
    hot.iloc[-5:] = 25.0  # the last 5 stopped intervals draw 25 kWh: the machine was left heating
    found = running_while_stopped(hot, output, standby=standby, meter="M-INJ-3", unit="kWh", device="inj-3")
    assert found is not None and found.kind is Kind.RUNNING_WHILE_STOPPED
    assert found.periods == 5 and found.expected == pytest.approx(10.0) and found.actual == pytest.approx(125.0)
    assert found.device == "inj-3" and found.since == idx[-5]
    producing = output.copy()
    producing.iloc[-2:] = 1.0  # output resumed: not abnormal
    assert running_while_stopped(hot, producing, standby=standby, meter="M-INJ-3", unit="kWh") is None
    assert learn_standby(energy.iloc[:70], output.iloc[:70]) is None  # too few stopped intervals to learn from
    holed = hot.drop(idx[-3])  # a missing interval breaks the run: only the last 2 are contiguous
    assert running_while_stopped(holed, output, standby=standby, meter="M-INJ-3", unit="kWh") is None
    assert running_while_stopped(holed, output, standby=standby, meter="M-INJ-3", unit="kWh", persist=2).periods == 2
    with pytest.raises(ValueError):
        running_while_stopped(hot, output, standby=2.0, meter="M", unit="kWh", factor=0.5)


def _air(nights: int, night_level: float, last_night_level: float | None = None) -> pd.Series:
    idx = _quarter_hours("2024-06-01 00:00", nights * 96)
    local = idx.tz_convert(TZ)
    busy = (local.hour >= 8) & (local.hour < 20)
    values = np.where(busy, 50.0, night_level)
    if last_night_level is not None:
        last = local.date == local.date[-1]
        values = np.where(last & ~busy, last_night_level, values)
    return pd.Series(values, index=idx)


def test_night_base_load_learns_the_median_and_flags_a_leak() -> None:
    history = _air(14, 6.0)
    learned = learn_night_base(history, tz=TZ)
    assert learned == pytest.approx(6.0)
    assert night_base_load(_air(15, 6.0), learned=learned, tz=TZ, meter="M-AIR", unit="m3") is None
    leak = _air(15, 6.0, last_night_level=9.0)
    found = night_base_load(leak, learned=learned, tz=TZ, meter="M-AIR", unit="m3", device="compressor-2")
    assert found is not None and found.kind is Kind.NIGHT_BASE_LOAD
    assert found.periods == 16  # 01:00-05:00 local, 15-minute intervals
    assert found.expected == pytest.approx(96.0) and found.actual == pytest.approx(144.0)
    assert pd.Timestamp(found.since).tz_convert(TZ).strftime("%Y-%m-%d %H:%M") == "2024-06-15 01:00"
    slight = _air(15, 6.0, last_night_level=7.0)  # 17 % above: under the 30 % factor
    assert night_base_load(slight, learned=learned, tz=TZ, meter="M-AIR", unit="m3") is None
    assert learn_night_base(_air(3, 6.0), tz=TZ) is None


def test_an_incomplete_night_does_not_count() -> None:
    series = _air(3, 6.0)
    local = series.index.tz_convert(TZ)
    holed = series[~((local.date == local.date[-1]) & (local.hour == 2))]
    assert len(night_means(series, tz=TZ)) == 3
    assert len(night_means(holed, tz=TZ)) == 2


def test_to_finding_names_meter_device_and_expected_value() -> None:
    model = _days_model()
    days = pd.date_range("2024-07-01", periods=2, freq="D", tz=TZ)
    band = model.band(pd.DataFrame({"production": [100.0, 100.0]}, index=days))
    found = above_band(
        pd.Series([2000.0, 2100.0], index=days), band, meter="M-OVEN-1", unit="kWh", device="oven-1", area="drying"
    )
    now = datetime(2024, 7, 2, 12, tzinfo=UTC)
    finding = to_finding(found, site="demo", now=now)
    assert finding.rule == "energy.above_band" and finding.detector == "energy"
    assert finding.subject.key == "demo/drying/oven-1/M-OVEN-1"
    assert finding.severity is Severity.HIGH  # more than twice the expected energy
    assert finding.details["expected"] == pytest.approx(found.expected)
    assert finding.details["device"] == "oven-1" and finding.details["unit"] == "kWh"
    assert "oven-1" in finding.message and "预期" in finding.message and "expected" in finding.message
    mild = above_band(pd.Series([1000.0, 1000.0], index=days), band, meter="M-OVEN-1", unit="kWh")
    assert to_finding(mild, site="demo", now=now).severity is Severity.MEDIUM


def _weeks_of_hours(actual_last: list[float]) -> pd.Series:
    """Three weeks and three hours of 100 kWh an hour; the last three hours' slots were 110 one week earlier and
    90 two weeks earlier; the last three hours are ``actual_last``."""
    index = pd.date_range(pd.Timestamp("2026-10-05 08:00", tz=TZ).tz_convert("UTC"), periods=3 * 168 + 3, freq="h")
    hourly = pd.Series(100.0, index=index)
    hourly.iloc[-3 - 168 : -168] = 110.0
    hourly.iloc[-3 - 2 * 168 : -2 * 168] = 90.0
    hourly.iloc[-3:] = actual_last
    return hourly


def test_above_profile_hand_computed() -> None:
    # same hour of the week in the three earlier weeks: 110, 90, 100 -> median 100, MAD 10; the band's upper edge
    # is max(1.2 x 100, 100 + 3 x 1.4826 x 10) = 144.478
    kw = {"meter": "e-drying", "unit": "kWh", "weeks": 3, "device": "dry-em-01", "area": "drying"}
    found = above_profile(_weeks_of_hours([150.0, 145.0, 150.0]), persist=3, **kw)
    assert found is not None and found.kind is Kind.ABOVE_PROFILE
    assert (found.expected, found.actual, found.periods) == (300.0, 445.0, 3)
    assert found.since == _weeks_of_hours([0, 0, 0]).index[-3]
    assert (found.meter, found.device, found.area) == ("e-drying", "dry-em-01", "drying")
    # 144 is inside the band: the run is two hours, short of three
    assert above_profile(_weeks_of_hours([150.0, 144.0, 150.0]), persist=3, **kw) is None
    # without the MAD term the edge is 1.2 x 100 = 120
    assert above_profile(_weeks_of_hours([150.0, 121.0, 150.0]), persist=3, spread=0.0, **kw).periods == 3
    assert above_profile(_weeks_of_hours([150.0, 120.0, 150.0]), persist=3, spread=0.0, **kw) is None
    # an unmeasured hour breaks the run; too little history decides nothing
    assert above_profile(_weeks_of_hours([150.0, np.nan, 150.0]), persist=2, **kw) is None
    short = _weeks_of_hours([150.0, 150.0, 150.0]).iloc[-(168 + 3) :]
    assert above_profile(short, persist=3, **kw) is None
    assert above_profile(short, persist=3, **{**kw, "min_weeks": 1}) is not None
    # a small absolute excess does not count
    assert above_profile(_weeks_of_hours([150.0, 150.0, 150.0]), persist=3, min_excess=60.0, **kw) is None
    finding = to_finding(found, site="cz", now=datetime(2026, 10, 27, tzinfo=UTC))
    assert finding.rule == "energy.above_profile" and finding.details["expected"] == 300.0
    assert finding.subject.point == "e-drying" and finding.severity is Severity.MEDIUM
