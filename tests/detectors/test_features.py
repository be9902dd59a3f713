"""Feature alignment, lags and window statistics, batch and online."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from detectors.features import FeatureSpec, OnlineFeatures, align, build_features, point_of

SPEC = FeatureSpec(points=("temp_c", "voc_ppm"), lags=(1, 2), windows=(3,), stats=("mean", "std", "min", "max"))


def _readings(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts", "point", "value"])


def test_names_follow_points_then_lags_then_windows():
    assert SPEC.names[:7] == (
        "temp_c",
        "temp_c__lag1",
        "temp_c__lag2",
        "temp_c__mean3",
        "temp_c__std3",
        "temp_c__min3",
        "temp_c__max3",
    )
    assert len(SPEC.names) == 14
    assert {point_of(name) for name in SPEC.names} == {"temp_c", "voc_ppm"}
    assert SPEC.memory == 3


def test_spec_round_trips_through_a_dict():
    assert FeatureSpec.from_dict(SPEC.to_dict()) == SPEC


@pytest.mark.parametrize("bad", [{"stats": ("median",)}, {"lags": (0,)}, {"windows": (0,)}, {"include_raw": False}])
def test_invalid_specs_are_refused(bad):
    with pytest.raises(ValueError):
        FeatureSpec(points=("a",), **bad)


def test_align_averages_within_a_step_and_holds_gaps_only_up_to_the_limit():
    readings = _readings(
        [
            ("2026-01-01T00:00:00.2Z", "temp_c", 20.0),
            ("2026-01-01T00:00:00.7Z", "temp_c", 22.0),  # same 1-s step: mean 21
            ("2026-01-01T00:00:01.1Z", "voc_ppm", 5.0),
            ("2026-01-01T00:00:04.0Z", "temp_c", 30.0),
            ("2026-01-01T00:00:04.5Z", "co_ppm", 9.0),  # not an area point: ignored
        ]
    )
    grid = align(readings, FeatureSpec(points=("temp_c", "voc_ppm", "h2_ppm"), fill_limit=1))
    assert list(grid.columns) == ["temp_c", "voc_ppm", "h2_ppm"]
    assert len(grid) == 5
    # Step 0 holds the mean, step 1 the held value (fill_limit=1), steps 2-3 nothing, step 4 the new value.
    assert grid["temp_c"].iloc[0] == 21.0 and grid["temp_c"].iloc[1] == 21.0
    assert grid["temp_c"].iloc[2:4].isna().all()
    assert grid["temp_c"].iloc[4] == 30.0
    assert grid["voc_ppm"].iloc[1] == 5.0 and grid["voc_ppm"].iloc[2] == 5.0 and math.isnan(grid["voc_ppm"].iloc[3])
    assert grid["h2_ppm"].isna().all()


def test_align_reindexes_to_the_requested_window():
    readings = _readings([("2026-01-01T00:00:05Z", "temp_c", 1.0)])
    spec = FeatureSpec(points=("temp_c",), freq="1s")
    start, end = pd.Timestamp("2026-01-01T00:00:00Z"), pd.Timestamp("2026-01-01T00:00:10Z")
    grid = align(readings, spec, start=start, end=end)
    assert len(grid) == 10 and grid.index[-1] == pd.Timestamp("2026-01-01T00:00:09Z")  # end is excluded
    assert grid["temp_c"].notna().sum() == 1


def test_window_statistics_by_hand():
    grid = pd.DataFrame({"temp_c": [1.0, 2.0, 6.0, 3.0], "voc_ppm": [0.0, 0.0, 0.0, 0.0]})
    features = build_features(grid, SPEC)
    assert features["temp_c__lag1"].tolist()[1:] == [1.0, 2.0, 6.0]
    assert features["temp_c__mean3"].isna().tolist() == [True, True, False, False]
    assert features["temp_c__mean3"].iloc[2] == pytest.approx(3.0)
    assert features["temp_c__std3"].iloc[2] == pytest.approx(np.std([1.0, 2.0, 6.0]))
    assert features["temp_c__min3"].iloc[3] == 2.0 and features["temp_c__max3"].iloc[3] == 6.0


def test_features_never_look_ahead():
    rng = np.random.default_rng(1)
    grid = pd.DataFrame({"temp_c": rng.normal(size=50), "voc_ppm": rng.normal(size=50)})
    before = build_features(grid, SPEC)
    changed = grid.copy()
    changed.loc[30:, "temp_c"] += 100.0
    after = build_features(changed, SPEC)
    pd.testing.assert_frame_equal(before.iloc[:30], after.iloc[:30])
    assert not np.allclose(before.iloc[30]["temp_c__mean3"], after.iloc[30]["temp_c__mean3"])


def test_a_gap_makes_the_window_missing_not_partial():
    grid = pd.DataFrame({"temp_c": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0], "voc_ppm": [0.0] * 6})
    features = build_features(grid, SPEC)
    assert features["temp_c__mean3"].isna().tolist() == [True, True, True, True, False, False]


def test_online_features_equal_batch_features():
    rng = np.random.default_rng(7)
    values = rng.normal(size=(80, 2))
    values[rng.random(values.shape) < 0.05] = np.nan
    grid = pd.DataFrame(values, columns=list(SPEC.points))
    batch = build_features(grid, SPEC)
    online = OnlineFeatures(SPEC)
    for i, row in enumerate(grid.to_dict("records")):
        vector = online.push({k: None if math.isnan(v) else v for k, v in row.items()})
        expected = batch.iloc[i]
        for name in SPEC.names:
            if math.isnan(expected[name]):
                assert vector[name] is None, (i, name)
            else:
                assert vector[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), (i, name)
