"""energy.gapfill.distribute: exact totals, nothing negative, the profile and the siblings used (issue #13)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energy.gapfill import distribute
from tests.fuzzing import budget

T0 = pd.Timestamp("2024-03-04 00:00", tz="UTC")  # a Monday


def _slots(start: pd.Timestamp, n: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="15min")


def _weekly(days: int, start: pd.Timestamp = T0) -> pd.Series:
    """A plant that runs 08:00-20:00 on weekdays (40 kWh per interval) and idles otherwise (4 kWh)."""
    index = _slots(start, days * 96)
    busy = (index.day_of_week < 5) & (index.hour >= 8) & (index.hour < 20)
    return pd.Series(np.where(busy, 40.0, 4.0), index=index)


history_values = st.lists(st.one_of(st.floats(0, 1e6), st.just(float("nan")), st.floats(-10, 0)), max_size=3 * 96)


@budget(300)
@given(
    delta=st.one_of(st.just(0.0), st.floats(0, 1e9), st.floats(0, 1e-300)),
    n=st.integers(1, 200),
    offset=st.integers(0, 1000),
    values=history_values,
    tz=st.sampled_from([None, "UTC", "Asia/Shanghai"]),
    sibling=history_values,
    sibling_shift=st.integers(-400, 400),
    sibling_naive=st.booleans(),
)
def test_conserves_the_delta_never_negative_and_keeps_the_index(
    delta, n, offset, values, tz, sibling, sibling_shift, sibling_naive
) -> None:
    start = T0 + pd.Timedelta(minutes=15 * offset)
    slots = _slots(start, n)
    if tz is None:
        slots = slots.tz_localize(None)
    elif tz != "UTC":
        slots = slots.tz_convert(tz)
    history = pd.Series(values, index=_slots(T0 - pd.Timedelta(minutes=15 * len(values)), len(values)), dtype=float)
    sib_index = _slots(T0 + pd.Timedelta(minutes=15 * sibling_shift), len(sibling))
    siblings = {
        "s": pd.Series(sibling, index=sib_index.tz_localize(None) if sibling_naive else sib_index, dtype=float),
        "copy": history * 2,
    }
    out = distribute(delta, slots, history, siblings)
    assert out.index.equals(slots)
    assert (out.to_numpy() >= 0).all()
    assert np.isfinite(out.to_numpy()).all()
    assert math.isclose(math.fsum(out.to_numpy()), delta, rel_tol=1e-12, abs_tol=1e-300)


def test_empty_history_is_linear_and_a_one_slot_gap_gets_everything() -> None:
    slots = _slots(T0, 8)
    assert distribute(16.0, slots).tolist() == [2.0] * 8
    assert distribute(16.0, slots, pd.Series(dtype=float)).tolist() == [2.0] * 8
    assert distribute(7.5, _slots(T0, 1), _weekly(14)).tolist() == [7.5]
    assert distribute(0.0, slots, _weekly(14)).tolist() == [0.0] * 8


def test_refuses_negative_or_non_finite_delta_and_a_delta_without_slots() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="delta"):
            distribute(bad, _slots(T0, 4))
    with pytest.raises(ValueError, match="slot"):
        distribute(1.0, pd.DatetimeIndex([], tz="UTC"))
    assert distribute(0.0, pd.DatetimeIndex([], tz="UTC")).empty


def test_a_day_long_gap_follows_the_weekly_profile() -> None:
    series = _weekly(35)
    gap = _slots(pd.Timestamp("2024-03-20 00:00", tz="UTC"), 96)  # a Wednesday in the third week
    truth = series.reindex(gap)
    out = distribute(float(truth.sum()), gap, series.drop(gap))
    np.testing.assert_allclose(out.to_numpy(), truth.to_numpy(), rtol=1e-9)
    linear = np.full(96, truth.sum() / 96)
    assert np.abs(out - truth).max() < 1e-9 < np.abs(linear - truth.to_numpy()).max()


def test_a_gap_with_history_only_after_it_uses_that() -> None:
    series = _weekly(21)
    gap = _slots(T0 + pd.Timedelta(hours=6), 16)  # Monday 06:00-10:00 of the first week: nothing before
    truth = series.reindex(gap)
    out = distribute(float(truth.sum()), gap, series.drop(gap))
    np.testing.assert_allclose(out.to_numpy(), truth.to_numpy(), rtol=1e-9)


def test_a_well_correlated_sibling_shapes_a_gap_the_profile_cannot_foresee() -> None:
    rng = np.random.default_rng(7)
    index = _slots(T0, 21 * 96)
    sibling = pd.Series(rng.uniform(1.0, 50.0, len(index)), index=index)  # no weekly pattern at all
    meter = 2.0 * sibling + 3.0
    gap = index[10 * 96 : 10 * 96 + 16]
    truth = meter.reindex(gap)
    with_sibling = distribute(float(truth.sum()), gap, meter.drop(gap), {"oven-2": sibling})
    without = distribute(float(truth.sum()), gap, meter.drop(gap))
    err_with = float(np.sqrt(((with_sibling - truth) ** 2).mean()))
    err_without = float(np.sqrt(((without - truth) ** 2).mean()))
    assert err_with < 0.2 * err_without
    assert math.isclose(with_sibling.sum(), truth.sum(), rel_tol=1e-12)


def test_an_unrelated_or_incomplete_sibling_is_ignored() -> None:
    series = _weekly(35)
    gap = _slots(pd.Timestamp("2024-03-20 00:00", tz="UTC"), 96)
    truth = series.reindex(gap)
    rng = np.random.default_rng(3)
    noise = pd.Series(rng.uniform(0, 100, len(series)), index=series.index)
    holey = series.copy()
    holey[gap[5]] = np.nan
    out = distribute(float(truth.sum()), gap, series.drop(gap), {"noise": noise, "holey": holey * 3})
    np.testing.assert_allclose(out.to_numpy(), truth.to_numpy(), rtol=1e-9)


def test_the_intervals_bordering_a_short_gap_tilt_it() -> None:
    series = _weekly(35)
    gap = _slots(pd.Timestamp("2024-03-20 02:00", tz="UTC"), 4)  # night: typical 4 kWh per interval
    series[gap[0] - pd.Timedelta(minutes=15)] = 4.0
    series[gap] = [5.0, 6.0, 7.0, 8.0]  # the load ramps up across the gap
    series[gap[-1] + pd.Timedelta(minutes=15)] = 9.0
    truth = series.reindex(gap)
    out = distribute(float(truth.sum()), gap, series.drop(gap))
    assert (np.diff(out.to_numpy()) > 0).all()
    assert np.abs(out - truth).sum() < np.abs(truth.mean() - truth).sum()
