"""The compliance detectors implement the one detector interface (STYLE.md B4) without importing it (the
compliance package may import only core): checked here as virtual subclasses of ``detectors.base.Detector``."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from compliance.evaluate import PeriodLimit, TrendProjection
from detectors.base import Detector

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CASES = [
    pytest.param(cls, params, id=f"{cls.key}-{i}")
    for cls in (PeriodLimit, TrendProjection)
    for i, params in enumerate(cls.example_params())
]


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_compliance_detectors_obey_the_detector_contract(cls, params) -> None:
    Detector.register(cls)
    detector = cls(**params)
    assert isinstance(detector, Detector)
    for name in ("score_one", "learn_one", "prepare", "get_params", "example_params"):
        assert callable(getattr(detector, name))
    assert {k: detector.get_params()[k] for k in params} == params
    assert all(getattr(detector, k) is v for k, v in params.items())
    assert cls.key.replace("_", "").isalnum() and cls.version >= 1
    detector.prepare()
    assert detector.score_one({}, T0) is None  # missing features: None, not an error
    detector.score_one({"value": 1.0, "valid": 1.0, "extra": 5.0}, T0)  # extra features do not crash
    scores = []
    for minute in range(190):  # a spike in the third hour
        x = {"value": 500.0 if 120 <= minute < 130 else 10.0, "valid": 1.0}
        ts = T0 + timedelta(minutes=minute)
        scores.append(detector.score_one(x, ts))
        assert detector.learn_one(x, ts) is None
    judged = [s for s in scores if s is not None]
    assert judged and max(judged) > judged[0]  # a spike scores higher than the baseline
    copy = pickle.loads(pickle.dumps(detector))
    x, ts = {"value": 20.0, "valid": 1.0}, T0 + timedelta(minutes=241)
    assert copy.score_one(x, ts) == detector.score_one(x, ts)
