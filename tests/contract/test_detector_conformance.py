"""Every registered detector, rules and models alike, with each of its example parameter sets, obeys the contract
(STYLE.md B4). What differs between detectors is read from the capabilities they declare (``detectors.base``)."""

from __future__ import annotations

import functools
import inspect
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


def _normal_rows(names: tuple[str, ...], n: int, seed: int) -> pd.DataFrame:
    """Correlated, slowly oscillating normal data: what a healthy area looks like."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.sin(2 * np.pi * t / 50)
    columns = {name: 10 * (j + 1) + base * (j + 1) + rng.normal(0, 0.2, n) for j, name in enumerate(names)}
    return pd.DataFrame(columns)


def _normal(cls: type[Detector], params: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    rows = _normal_rows(cls(**params).inputs(), n, seed).to_dict("records")
    return [dict(row) for row in cls.example_normal(params, rows)]


def _train(cls: type[Detector], params: dict[str, Any], seed: int = 0) -> Detector:
    detector = cls(**params)
    if cls.needs_fit:
        assert isinstance(detector, ModelDetector)
        return detector.fit(_normal_rows(detector.inputs(), 300, seed))
    for i, row in enumerate(_normal(cls, params, 300, seed)):
        detector.score_one(row, T0 + timedelta(seconds=i))
        detector.learn_one(row, T0 + timedelta(seconds=i))
    return detector


@functools.cache
def _trained_blob(cls: type[Detector], frozen: bytes) -> bytes:
    return pickle.dumps(_train(cls, pickle.loads(frozen)))


def _trained(cls: type[Detector], params: dict[str, Any]) -> Detector:
    """A fresh copy of a trained detector (training once per case keeps the suite fast)."""
    return pickle.loads(_trained_blob(cls, pickle.dumps(params)))


def _typical(cls: type[Detector], params: dict[str, Any]) -> dict[str, Any]:
    return {k: None if v is None else float(v) for k, v in _normal(cls, params, 301, seed=99)[-1].items()}


NEXT_TS = T0 + timedelta(seconds=300)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_constructor_stores_parameters_unchanged(cls, params):
    detector = cls(**params)
    for name, value in params.items():
        assert getattr(detector, name) is value
    stored = detector.get_params()
    assert {k: stored[k] for k in params} == params
    # the engine restarts a detector from its parameters after a clock jump
    assert cls(**stored).get_params() == stored


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_key_is_stable_snake_case(cls, params):
    assert cls.key.replace("_", "").isalnum() and cls.key == cls.key.lower()
    assert isinstance(cls.version, int) and cls.version >= 1


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_capabilities_are_declared_booleans(cls, params):
    for name in ("needs_fit", "warm", "protect", "ticks", "immediate", "partial"):
        assert type(getattr(cls, name)) is bool, name
    assert cls.needs_fit == issubclass(cls, ModelDetector)  # fitting is the model detectors' interface
    assert not (cls.needs_fit and (cls.warm or cls.immediate))  # a fitted model is neither taught nor ready
    inputs = cls(**params).inputs()
    assert inputs and all(isinstance(name, str) and name for name in inputs)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_untrained_detector_is_ready_only_if_it_says_so(cls, params):
    detector = cls(**params)
    score = detector.score_one(_typical(cls, params), T0)
    if cls.immediate:
        assert isinstance(score, float) and math.isfinite(score)
    else:
        assert score is None


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_missing_feature_gives_none_not_an_exception(cls, params):
    detector = _trained(cls, params)
    names = detector.inputs()
    typical = _typical(cls, params)
    assert detector.score_one(typical, NEXT_TS) is not None
    nothing = detector.score_one({}, NEXT_TS)
    if cls.ticks:  # silence is what it judges
        assert isinstance(nothing, float) and math.isfinite(nothing)
        return
    assert nothing is None
    assert detector.score_one(dict.fromkeys(names, math.nan), NEXT_TS) is None
    for name in names:
        without = {k: v for k, v in typical.items() if k != name}
        partial = [
            detector.score_one(without, NEXT_TS),
            detector.score_one({**typical, name: None}, NEXT_TS),
            detector.score_one({**typical, name: math.nan}, NEXT_TS),
        ]
        if cls.partial:
            assert all(isinstance(s, float) and math.isfinite(s) for s in partial)
        else:
            assert partial == [None, None, None]


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_extra_features_do_not_change_the_score(cls, params):
    detector = _trained(cls, params)
    typical = _typical(cls, params)
    plain = detector.score_one(typical, NEXT_TS)
    assert detector.score_one({**typical, "unknown_point_c": 1e9, "other_ppm": None}, NEXT_TS) == plain


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_pickle_round_trip_gives_the_same_score(cls, params):
    detector = _trained(cls, params)
    typical = _typical(cls, params)
    copy = pickle.loads(pickle.dumps(detector))
    assert copy.score_one(typical, NEXT_TS) == detector.score_one(typical, NEXT_TS)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_same_seed_gives_the_same_scores(cls, params):
    first, second = _train(cls, params), _train(cls, params)
    probes = _normal(cls, params, 20, seed=5)
    scores = [(first.score_one(p, NEXT_TS), second.score_one(p, NEXT_TS)) for p in probes]
    assert all(a == b for a, b in scores)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_anomaly_scores_above_baseline(cls, params):
    """A spike for most detectors; silence, a stuck value or a confirmed spike for the rules that judge those."""
    detector = _trained(cls, params)
    typical = _typical(cls, params)
    baseline = detector.score_one(typical, NEXT_TS)
    anomaly = cls.example_anomaly(params, typical)
    assert anomaly
    for i, x in enumerate(anomaly):
        ts = NEXT_TS + timedelta(seconds=i)
        scored = detector.score_one(x, ts)
        detector.learn_one(x, ts)
    assert isinstance(scored, float) and math.isfinite(scored)
    assert baseline is not None and scored > baseline


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_score_one_does_not_learn(cls, params):
    detector = _trained(cls, params)
    typical = _typical(cls, params)
    before = detector.score_one(typical, NEXT_TS)
    for _ in range(5):
        detector.score_one({k: v + 50.0 for k, v in typical.items()}, NEXT_TS)
    assert detector.score_one(typical, NEXT_TS) == before


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_learn_one_returns_none(cls, params):
    detector = _trained(cls, params)
    typical = _typical(cls, params)
    detector.score_one(typical, NEXT_TS)
    assert detector.learn_one(typical, NEXT_TS) is None
    assert detector.learn_one({}, NEXT_TS) is None


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_explain_names_the_spiked_point_first(cls, params):
    detector = _trained(cls, params)
    names = detector.inputs()
    typical = _typical(cls, params)
    explanation = detector.explain({**typical, names[0]: typical[names[0]] + 50.0})
    assert explanation and explanation[0][0] == names[0]
    assert detector.explain({}) == []


def _concrete_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= _concrete_subclasses(sub)
        if not inspect.isabstract(sub) and sub.__module__.startswith("detectors."):
            found.add(sub)
    return found


def test_one_registry_holds_every_detector() -> None:
    """No detector of the package escapes the registry (and so this suite): rules, models, univariate ones."""
    import detectors.engine  # noqa: F401 - every module that defines detectors is loaded by now

    registered = set(registry.all().values())
    assert _concrete_subclasses(Detector) - registered == set()
    keys = {cls.key for cls in registered}
    assert {"limit", "rate_of_rise", "vote", "stale", "spike", "pyod_pca", "nn_novelty"} <= keys
