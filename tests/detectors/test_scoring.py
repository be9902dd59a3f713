"""The grid accumulator of the streaming stage (pure): steps, averaging, hold, late readings, silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors.features import FeatureSpec
from detectors.scoring import GridAccumulator

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SPEC = FeatureSpec(points=("a.x", "b.y"), freq="1min", fill_limit=1)


def test_a_step_closes_when_a_later_reading_arrives_and_holds_the_mean():
    acc = GridAccumulator(SPEC)
    assert acc.add("a.x", T0 + timedelta(seconds=5), 1.0) == []
    assert acc.add("a.x", T0 + timedelta(seconds=35), 3.0) == []
    assert acc.add("b.y", T0 + timedelta(seconds=50), 7.0) == []
    closed = acc.add("a.x", T0 + timedelta(seconds=65), 10.0)
    assert closed == [(T0, {"a.x": 2.0, "b.y": 7.0})]


def test_silent_points_are_held_for_fill_limit_steps_then_missing():
    acc = GridAccumulator(SPEC)
    acc.add("a.x", T0, 1.0)
    acc.add("b.y", T0, 5.0)
    closed = acc.add("a.x", T0 + timedelta(minutes=3), 2.0)
    assert [row for _, row in closed] == [
        {"a.x": 1.0, "b.y": 5.0},
        {"a.x": 1.0, "b.y": 5.0},
        {"a.x": None, "b.y": None},
    ]
    assert [step for step, _ in closed] == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]


def test_late_readings_of_a_closed_step_are_counted_not_used():
    acc = GridAccumulator(SPEC)
    acc.add("a.x", T0 + timedelta(minutes=1), 1.0)
    assert acc.add("a.x", T0 + timedelta(seconds=10), 99.0) == []
    assert acc.late == 1


def test_the_clock_closes_a_silent_area_after_the_grace():
    acc = GridAccumulator(SPEC)
    acc.add("a.x", T0 + timedelta(seconds=10), 4.0, arrived=T0 + timedelta(seconds=10))
    grace = timedelta(seconds=5)
    assert acc.flush(T0 + timedelta(seconds=62), grace) == []  # the step has not ended + grace
    closed = acc.flush(T0 + timedelta(seconds=66), grace)
    assert closed == [(T0, {"a.x": 4.0, "b.y": None})]
    assert acc.flush(T0 + timedelta(hours=1), grace) == []  # silence itself emits nothing more


def test_a_steady_stream_of_old_data_is_not_cut_by_the_clock():
    # Buffered data forwarded after an outage: hours old, but arriving continuously.
    acc = GridAccumulator(SPEC)
    now = T0 + timedelta(hours=5)
    closed = []
    for i in range(12):
        ts = T0 + timedelta(seconds=10 * i)
        closed += acc.add("a.x", ts, float(i), arrived=now)
        closed += acc.flush(now + timedelta(seconds=1), timedelta(seconds=2))
    assert acc.late == 0
    assert closed == [(T0, {"a.x": 2.5, "b.y": None})]


def test_lateness_keeps_a_slower_device_in_its_step():
    acc = GridAccumulator(SPEC, lateness=timedelta(seconds=5))
    acc.add("a.x", T0 + timedelta(seconds=30), 1.0)
    assert acc.add("a.x", T0 + timedelta(seconds=62), 2.0) == []  # 2 s past the end: still open
    assert acc.add("b.y", T0 + timedelta(seconds=58), 8.0) == []  # the slower device's reading counts
    closed = acc.add("a.x", T0 + timedelta(seconds=66), 3.0)
    assert closed == [(T0, {"a.x": 1.0, "b.y": 8.0})] and acc.late == 0


def test_a_long_silence_emits_only_what_the_features_need():
    spec = FeatureSpec(points=("a.x",), freq="1s", windows=(3,), include_raw=False)
    acc = GridAccumulator(spec)
    acc.add("a.x", T0, 1.0)
    closed = acc.add("a.x", T0 + timedelta(hours=1), 2.0)
    assert len(closed) == 1 + spec.memory
    assert closed[0] == (T0, {"a.x": 1.0})
    assert all(row == {"a.x": None} for _, row in closed[1:])
    assert closed[-1][0] == T0 + timedelta(hours=1) - timedelta(seconds=1)


@pytest.mark.parametrize("freq", ["1s", "10s", "1min"])
def test_steps_are_aligned_to_the_epoch(freq):
    acc = GridAccumulator(FeatureSpec(points=("a.x",), freq=freq))
    acc.add("a.x", T0 + timedelta(milliseconds=1500), 1.0)
    step, _ = acc.add("a.x", T0 + timedelta(hours=2), 1.0)[0]
    assert (step - datetime(1970, 1, 1, tzinfo=UTC)) % acc.step == timedelta(0)
