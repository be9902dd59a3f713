"""Calibration, sign convention, drift following and explanations of the pyod/scikit-learn adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from detectors import registry
from detectors.adapters import ModelDetector, PyodECOD, PyodIForest, PyodPCA, SklearnIsolationForest

FEATURES = ("a", "b", "c")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _gaussian(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cov = [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return pd.DataFrame(rng.multivariate_normal([0, 0, 0], cov, size=n), columns=list(FEATURES))


def test_limit_is_the_chosen_quantile_of_training_scores():
    train = _gaussian()
    detector = PyodPCA(features=FEATURES, threshold_quantile=1.0, margin=1.0).fit(train)
    scores = detector.score_frame(train)
    assert scores.max() == pytest.approx(1.0)
    assert np.median(scores) == pytest.approx(0.0, abs=1e-9)


def test_margin_moves_the_limit_away_from_the_median():
    train = _gaussian()
    tight = PyodPCA(features=FEATURES, threshold_quantile=1.0, margin=1.0).fit(train)
    loose = PyodPCA(features=FEATURES, threshold_quantile=1.0, margin=2.0).fit(train)
    np.testing.assert_allclose(loose.score_frame(train), tight.score_frame(train) / 2.0)


def test_scikit_learn_sign_is_inverted_once():
    # pyod's IForest wraps the same scikit-learn forest and reports -(score_samples - offset): after our
    # affine calibration both adapters must agree exactly, and outliers must score higher than inliers.
    train, probe = _gaussian(seed=1), _gaussian(50, seed=2)
    probe.loc[0] = [6.0, -6.0, 6.0]
    ours = SklearnIsolationForest(features=FEATURES, random_state=3).fit(train).score_frame(probe)
    pyods = PyodIForest(features=FEATURES, random_state=3).fit(train).score_frame(probe)
    np.testing.assert_allclose(ours, pyods, rtol=1e-9, atol=1e-12)
    assert ours[0] == ours.max()


def test_transductive_models_score_rows_independently():
    train, probe = _gaussian(seed=4), _gaussian(30, seed=5)
    detector = PyodECOD(features=FEATURES).fit(train)
    batch = detector.score_frame(probe)
    single = [detector.score_one(row, T0) for row in probe.to_dict("records")]
    np.testing.assert_allclose(batch, single)
    # Appending far outliers to the batch must not change the other rows' scores.
    with_outliers = pd.concat([probe, pd.DataFrame([[9.0, 9.0, 9.0]] * 20, columns=list(FEATURES))])
    np.testing.assert_allclose(detector.score_frame(with_outliers)[:30], batch)


def test_score_frame_marks_incomplete_rows_nan():
    detector = PyodPCA(features=FEATURES).fit(_gaussian())
    probe = pd.DataFrame({"a": [0.0, np.nan], "b": [0.0, 0.0], "c": [0.0, 0.0]})
    scores = detector.score_frame(probe)
    assert np.isfinite(scores[0]) and np.isnan(scores[1])


def test_fit_refuses_too_little_data_and_missing_columns():
    with pytest.raises(ValueError):
        PyodPCA(features=FEATURES).fit(_gaussian(5))
    with pytest.raises(KeyError):
        PyodPCA(features=(*FEATURES, "d")).fit(_gaussian())


def _drifting(detector: ModelDetector, steps: int, slope: float) -> list[float]:
    scores = []
    for i in range(steps):
        x = {"a": slope * i, "b": slope * i, "c": 0.0}
        ts = T0 + timedelta(seconds=i)
        scores.append(detector.score_one(x, ts))
        detector.learn_one(x, ts)
    return scores


def test_drift_following_reference_learns_slow_drift_but_not_a_jump():
    train = _gaussian()
    static = PyodPCA(features=FEATURES, threshold_quantile=1.0).fit(train)
    following = PyodPCA(features=FEATURES, threshold_quantile=1.0, drift_tau=20.0).fit(train)
    slope = 0.01
    assert max(_drifting(static, 600, slope)) > 1.0  # static: slow drift ends in alarm
    assert max(_drifting(following, 600, slope)) < 1.0  # following: drift is learnt
    reference = following.baseline_.copy()
    jump = {"a": 50.0, "b": -50.0, "c": 0.0}
    for i in range(100):
        ts = T0 + timedelta(seconds=1000 + i)
        assert following.score_one(jump, ts) > 1.0
        following.learn_one(jump, ts)
    np.testing.assert_array_equal(following.baseline_, reference)  # anomalies are never learnt


def test_explanation_names_the_broken_feature():
    detector = PyodPCA(features=FEATURES).fit(_gaussian())
    # a and b are correlated in training; breaking that relation is the anomaly, c is normal.
    explanation = detector.explain({"a": 3.0, "b": -3.0, "c": 0.1}, top=3)
    assert {name for name, _ in explanation[:2]} == {"a", "b"}
    assert explanation[2][0] == "c" and explanation[2][1] < explanation[1][1]


@pytest.mark.parametrize(
    ("key", "column"),
    [("pyod_iforest", "IForest"), ("pyod_pca", "PCA"), ("pyod_hbos", "HBOS"), ("pyod_ecod", "ECOD")],
)
def test_adapters_reproduce_pyod_benchmark_roc_on_cardio(pyod_benchmark_root, key, column):
    # pyod notebooks/benchmark.py: 60/40 split, standardised, fit on train, ROC-AUC on test.
    data = pd.read_csv(pyod_benchmark_root / "odds_csv" / "cardio.csv")
    published = pd.read_csv(pyod_benchmark_root / "notebooks" / "roc.csv").set_index("Data").loc["cardio", column]
    x, y = data.drop(columns="label"), data["label"].to_numpy()
    x_train, x_test, _, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    cls = registry.get(key)
    detector = cls(features=tuple(x.columns), random_state=0).fit(x_train)
    auc = roc_auc_score(y_test, detector.score_frame(x_test))
    assert auc == pytest.approx(float(published), abs=0.05), f"{key}: ROC-AUC {auc:.3f} vs published {published:.3f}"
