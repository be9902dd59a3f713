"""The online univariate novelty detector: warm-up, level and shape novelty, learning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.univariate import MAX_SCORE, NeighbourNovelty

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _feed(detector: NeighbourNovelty, values, start: int = 0) -> list[float | None]:
    scores = []
    for i, value in enumerate(values, start):
        ts = T0 + timedelta(minutes=5 * i)
        scores.append(detector.score_one({"v": float(value)}, ts))
        detector.learn_one({"v": float(value)}, ts)
    return scores


def _daily(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10 + 3 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 0.1, n)


def test_none_until_warmed_up():
    detector = NeighbourNovelty(tag="v", warmup=50, history=100)
    scores = _feed(detector, _daily(60))
    assert all(s is None for s in scores[:50])
    assert all(s is not None for s in scores[50:])


def test_level_shift_is_reported_at_onset_and_then_learnt():
    values = _daily(1200)
    values[1000:] += 8.0
    detector = NeighbourNovelty(tag="v", warmup=300, history=800)
    scores = np.array(_feed(detector, values)[300:], dtype=float)
    before, onset, after = scores[:700], scores[700], scores[720:]
    assert onset > 20 * before.max()
    assert onset > 20 * after.max()  # a new level is novel once, not for ever


def test_shape_change_without_new_values_is_scored():
    # A sine that suddenly runs 12x faster stays inside its usual range: only the shape is new.
    t = np.arange(2000)
    values = np.where(t < 1500, np.sin(2 * np.pi * t / 288), np.sin(2 * np.pi * t / 24))
    detector = NeighbourNovelty(tag="v", warmup=300, history=1200, context_s=0.0, shape=8)
    scores = np.array(_feed(detector, values)[300:], dtype=float)
    assert scores[1200:1260].max() > 2 * scores[:1200].max()


def test_constant_signal_that_changes_gets_a_capped_score():
    detector = NeighbourNovelty(tag="v", warmup=20, history=50)
    _feed(detector, [5.0] * 40)
    assert detector.score_one({"v": 5.0}, T0) == 0.0
    assert detector.score_one({"v": 6.0}, T0) == pytest.approx(MAX_SCORE)


def test_missing_value_is_not_learnt():
    detector = NeighbourNovelty(tag="v", warmup=5, history=50)
    _feed(detector, range(10))
    seen = detector.n_seen_
    assert detector.score_one({}, T0) is None
    detector.learn_one({"v": None}, T0)
    assert detector.n_seen_ == seen


def test_the_time_of_day_context_raises_a_value_that_is_unusual_for_its_hour():
    # A day shift: high from 08:00 to 18:00, low at night, five days of 5-min samples.
    rng = np.random.default_rng(2)
    steps = np.arange(5 * 288)
    hours = (steps % 288) / 12
    values = np.where((hours >= 8) & (hours < 18), 10.0, 0.0) + rng.normal(0, 0.1, len(steps))
    detector = NeighbourNovelty(tag="v", warmup=288)
    _feed(detector, values)
    day6 = T0 + timedelta(days=5)
    # 8.0 is 2 from the day level and 8 from the night level: equally new overall, far newer at 03:00.
    at_noon = detector.score_one({"v": 8.0}, day6 + timedelta(hours=12))
    at_3am = detector.score_one({"v": 8.0}, day6 + timedelta(hours=3))
    assert at_3am == pytest.approx(2.0 * at_noon, rel=0.05)  # sqrt(8 / 2): the geometric mean
    without_context = NeighbourNovelty(tag="v", warmup=288, context_s=0.0)
    _feed(without_context, values)
    assert without_context.score_one({"v": 8.0}, day6 + timedelta(hours=3)) == pytest.approx(
        without_context.score_one({"v": 8.0}, day6 + timedelta(hours=12))
    )
