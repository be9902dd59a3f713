"""The NAB scorer against hand-computed cases and against NAB's published results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from detectors.evaluation import nab

STANDARD = nab.CostMatrix(tp=1.0, fp=0.11, fn=1.0)
LOW_FN = nab.CostMatrix(tp=1.0, fp=0.11, fn=2.0)


def _series(n: int = 100, windows: list[tuple[int, int]] | None = None) -> nab.LabelledSeries:
    index = pd.date_range("2014-01-01", periods=n, freq="5min")
    return nab.LabelledSeries("toy.csv", index, np.zeros(n), [(40, 49)] if windows is None else windows)


def _score(series: nab.LabelledSeries, rows: list[int], cost: nab.CostMatrix = STANDARD) -> float:
    weights, window_id = nab.sweep_weights(series, cost)
    detected = np.zeros(len(series.values), dtype=bool)
    detected[rows] = True
    return nab.score_at(weights, window_id, detected, cost.fn).score


def test_probationary_length_follows_nab():
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(2495) == 374  # floor(0.15 * 2495)
    assert nab.probationary_length(22695) == 750  # capped at 0.15 * 5000


def test_scaled_sigmoid_published_points():
    # Values quoted in NAB's sweeper.py docstring.
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(3.0) == -1.0


def test_detection_at_left_edge_scores_one_tp_weight():
    assert _score(_series(), [40]) == pytest.approx(1.0)


def test_late_detection_scores_less():
    # Row 49 of window (40, 49): position -(49-49+1)/10 = -0.1; (2/(1+e^-0.5) - 1) / 0.98661 = 0.248242.
    assert _score(_series(), [49]) == pytest.approx(0.248242, abs=1e-6)


def test_only_earliest_detection_in_a_window_counts():
    assert _score(_series(), [45, 46, 47, 49]) == pytest.approx(_score(_series(), [45]))


def test_missed_window_and_false_positive_before_any_window():
    # Row 20: no window before it, so the full FP weight -0.11; the window is missed: -1.
    assert _score(_series(), [20]) == pytest.approx(-1.11)


def test_false_positive_after_a_window_is_discounted_by_distance():
    # Row 55: |49 - 55| / (10 - 1) = 0.667 past the window; (2/(1+e^3.333) - 1) * 0.11 = -0.102422.
    assert _score(_series(), [40, 55]) == pytest.approx(1.0 - 0.102422, abs=1e-6)
    # Row 50 just after the window costs less: 1/9 past -> -0.029793.
    assert _score(_series(), [40, 50]) == pytest.approx(1.0 - 0.029793, abs=1e-6)


def test_probationary_rows_are_never_scored():
    assert _score(_series(), [10]) == pytest.approx(-1.0)
    assert _score(_series(), [10], LOW_FN) == pytest.approx(-2.0)


def test_sweep_matches_direct_scoring_at_every_threshold():
    series = _series(windows=[(30, 39), (70, 79)])
    rng = np.random.default_rng(3)
    scores = rng.random(100)
    weights, window_id = nab.sweep_weights(series, STANDARD)
    table = nab.sweep(weights, window_id, scores, STANDARD.fn)
    assert table[0].threshold == 1.1 and table[0].score == pytest.approx(-2.0)
    for row in table[1:]:
        direct = nab.score_at(weights, window_id, scores >= row.threshold, STANDARD.fn)
        assert row.score == pytest.approx(direct.score)
        assert (row.tp, row.fp) == (direct.tp, direct.fp)


def test_optimiser_picks_the_threshold_that_isolates_the_true_detection():
    series = _series()
    scores = np.full(100, 0.2)
    scores[40] = 0.9  # earliest row of the window
    scores[80] = 0.6  # a false positive, below the true one
    result = nab.score_corpus([series], [scores], {"standard": STANDARD})["standard"]
    assert result.threshold == 0.9
    assert result.raw == pytest.approx(1.0)
    assert result.normalised == pytest.approx(100.0)


def test_normalisation_maps_null_to_zero_and_perfect_to_hundred():
    assert nab.normalise(-116.0, null=-116.0, perfect=116.0) == 0.0
    assert nab.normalise(116.0, null=-116.0, perfect=116.0) == 100.0
    assert nab.normalise(46.6344501971, null=-116.0, perfect=116.0) == pytest.approx(70.10, abs=0.005)


# -- against the published NAB results ---------------------------------------------------------------


def test_null_detector_raw_and_normalised_scores_on_the_corpus(nab_root):
    corpus = nab.load_corpus(nab_root)
    profiles = nab.load_profiles(nab_root)
    published = json.loads((nab_root / "config" / "thresholds.json").read_text())["null"]
    results = nab.score_corpus(corpus, [np.full(len(s.values), 0.5) for s in corpus], profiles)
    for name, result in results.items():
        assert result.raw == pytest.approx(published[name]["score"])  # -116, -116, -232
        assert result.raw == pytest.approx(nab.null_score(corpus, profiles[name]))
        assert result.normalised == pytest.approx(0.0)


def test_window_and_probation_rows_match_published_null_counts(nab_root):
    corpus = {s.name: s for s in nab.load_corpus(nab_root)}
    # keep_default_na=False: pandas would otherwise read the detector name "null" as missing.
    published = pd.read_csv(nab_root / "results" / "null" / "null_standard_scores.csv", keep_default_na=False)
    published = published[published["Detector"] == "null"]
    assert len(published) == len(corpus) == 58
    for row in published.itertuples():
        weights, window_id = nab.sweep_weights(corpus[row.File], STANDARD)
        nothing = nab.score_at(weights, window_id, np.zeros(len(weights), dtype=bool), STANDARD.fn)
        assert (nothing.tn, nothing.fn) == (row.TN, row.FN), row.File
        assert nothing.score == pytest.approx(row.Score), row.File


def test_normalising_published_raw_totals_reproduces_final_results(nab_root):
    final = nab.load_published(nab_root)
    null = {}
    for profile in nab.PROFILES:
        totals = pd.read_csv(nab_root / "results" / "null" / f"null_{profile}_scores.csv").iloc[-1]
        null[profile] = float(totals["Score"])
    checked = 0
    for detector, expected in final.items():
        if detector == "random":
            # results/random/*_scores.csv cover 32 of the 58 files (Total_Count 164136), so their totals are
            # not the run behind final_results.json; every other detector's totals are.
            continue
        for profile in nab.PROFILES:
            path = nab_root / "results" / detector / f"{detector}_{profile}_scores.csv"
            raw = float(pd.read_csv(path).iloc[-1]["Score"])
            ours = nab.normalise(raw, null=null[profile], perfect=116.0)
            assert ours == pytest.approx(expected[nab.PROFILE_KEYS[profile]], abs=1e-6), (detector, profile)
            checked += 1
    assert checked >= 3 * 14
