"""Every registered detector, with each of its example parameter sets, obeys the contract (STYLE.md B4)."""

from __future__ import annotations

import functools
import math
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from detectors import registry
from detectors.adapters import ModelDetector
from detectors.base import Detector

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CASES = [
    pytest.param(cls, params, id=f"{key}-{i}")
    for key, cls in registry.all().items()
    for i, params in enumerate(cls.example_params())
]


def _inputs(params: dict[str, Any]) -> tuple[str, ...]:
    return tuple(params["features"]) if "features" in params else (params["tag"],)


def _normal_rows(names: tuple[str, ...], n: int, seed: int) -> pd.DataFrame:
    """Correlated, slowly oscillating normal data: what a healthy area looks like."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.sin(2 * np.pi * t / 50)
    columns = {name: 10 * (j + 1) + base * (j + 1) + rng.normal(0, 0.2, n) for j, name in enumerate(names)}
    return pd.DataFrame(columns)


def _train(detector: Detector, names: tuple[str, ...], seed: int = 0) -> Detector:
    rows = _normal_rows(names, 300, seed)
    if isinstance(detector, ModelDetector):
        return detector.fit(rows)
    for i, row in enumerate(rows.to_dict("records")):
        detector.score_one(row, T0 + timedelta(seconds=i))
        detector.learn_one(row, T0 + timedelta(seconds=i))
    return detector


@functools.cache
def _trained_blob(cls: type[Detector], frozen: tuple[tuple[str, Any], ...]) -> bytes:
    params = dict(frozen)
    return pickle.dumps(_train(cls(**params), _inputs(params)))


def _trained(cls: type[Detector], params: dict[str, Any]) -> Detector:
    """A fresh copy of a trained detector (training once per case keeps the suite fast)."""
    return pickle.loads(_trained_blob(cls, tuple(sorted(params.items()))))


def _typical(names: tuple[str, ...]) -> dict[str, float]:
    return {k: float(v) for k, v in _normal_rows(names, 301, seed=99).iloc[-1].items()}


NEXT_TS = T0 + timedelta(seconds=300)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_constructor_stores_parameters_unchanged(cls, params):
    detector = cls(**params)
    for name, value in params.items():
        assert getattr(detector, name) is value
    stored = detector.get_params()
    assert {k: stored[k] for k in params} == params


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_key_is_stable_snake_case(cls, params):
    assert cls.key.replace("_", "").isalnum() and cls.key == cls.key.lower()
    assert isinstance(cls.version, int) and cls.version >= 1


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_untrained_detector_is_not_ready(cls, params):
    detector = cls(**params)
    assert detector.score_one(_typical(_inputs(params)), T0) is None


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_missing_feature_gives_none_not_an_exception(cls, params):
    detector = _trained(cls, params)
    names = _inputs(params)
    typical = _typical(names)
    assert detector.score_one(typical, NEXT_TS) is not None
    for name in names:
        without = {k: v for k, v in typical.items() if k != name}
        assert detector.score_one(without, NEXT_TS) is None
        assert detector.score_one({**typical, name: None}, NEXT_TS) is None
        assert detector.score_one({**typical, name: math.nan}, NEXT_TS) is None


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_extra_features_do_not_change_the_score(cls, params):
    detector = _trained(cls, params)
    typical = _typical(_inputs(params))
    plain = detector.score_one(typical, NEXT_TS)
    assert detector.score_one({**typical, "unknown_point_c": 1e9, "other_ppm": None}, NEXT_TS) == plain


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_pickle_round_trip_gives_the_same_score(cls, params):
    detector = _trained(cls, params)
    typical = _typical(_inputs(params))
    copy = pickle.loads(pickle.dumps(detector))
    assert copy.score_one(typical, NEXT_TS) == detector.score_one(typical, NEXT_TS)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_same_seed_gives_the_same_scores(cls, params):
    names = _inputs(params)
    first, second = _train(cls(**params), names), _train(cls(**params), names)
    probes = _normal_rows(names, 20, seed=5).to_dict("records")
    scores = [(first.score_one(p, NEXT_TS), second.score_one(p, NEXT_TS)) for p in probes]
    assert all(a == b for a, b in scores)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_spike_scores_above_baseline(cls, params):
    detector = _trained(cls, params)
    names = _inputs(params)
    typical = _typical(names)
    spike = {**typical, names[0]: typical[names[0]] + 50.0}
    baseline = detector.score_one(typical, NEXT_TS)
    spiked = detector.score_one(spike, NEXT_TS)
    assert isinstance(spiked, float) and math.isfinite(spiked)
    assert spiked > baseline


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_score_one_does_not_learn(cls, params):
    detector = _trained(cls, params)
    typical = _typical(_inputs(params))
    before = detector.score_one(typical, NEXT_TS)
    for _ in range(5):
        detector.score_one({k: v + 50.0 for k, v in typical.items()}, NEXT_TS)
    assert detector.score_one(typical, NEXT_TS) == before


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_learn_one_returns_none(cls, params):
    detector = _trained(cls, params)
    typical = _typical(_inputs(params))
    detector.score_one(typical, NEXT_TS)
    assert detector.learn_one(typical, NEXT_TS) is None
    assert detector.learn_one({}, NEXT_TS) is None


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_explain_names_the_spiked_point_first(cls, params):
    detector = _trained(cls, params)
    names = _inputs(params)
    typical = _typical(names)
    explanation = detector.explain({**typical, names[0]: typical[names[0]] + 50.0})
    assert explanation and explanation[0][0] == names[0]
    assert detector.explain({}) == []
