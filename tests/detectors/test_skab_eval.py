"""SKAB metrics against hand-computed cases and the leaderboard's null and perfect detectors."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.evaluation import skab


def test_binary_metrics_by_hand():
    counts = skab.binary_counts(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1]))
    assert counts == skab.Counts(tp=2, tn=1, fp=1, fn=1)
    assert counts.f1 == pytest.approx(2 / (2 + (1 + 1) / 2))  # tsad: TP / (TP + (FN + FP) / 2)
    assert counts.far == pytest.approx(50.0)  # FP / (FP + TN), percent
    assert counts.mar == pytest.approx(100 / 3)  # FN / (FN + TP), percent


def test_counts_are_summed_over_files_before_the_ratios():
    # Micro-averaging, as tsad sums TP/TN/FP/FN over the list of files.
    a = skab.binary_counts(np.array([1, 0]), np.array([1, 1]))
    b = skab.binary_counts(np.array([1, 1, 1, 0]), np.array([1, 0, 0, 0]))
    total = a + b
    assert (total.tp, total.tn, total.fp, total.fn) == (2, 1, 1, 2)
    assert total.f1 == pytest.approx(2 / (2 + 1.5))
    assert total.f1 != pytest.approx((a.f1 + b.f1) / 2)


def test_empty_denominators_give_zero_not_an_error():
    assert skab.Counts().f1 == 0.0 and skab.Counts().far == 0.0 and skab.Counts().mar == 0.0


def test_null_and_perfect_detectors_match_the_leaderboard(skab_root):
    files, _ = skab.find_files(skab_root / "data")
    board = {row["algorithm"]: row for row in skab.load_leaderboard(skab_root / "data")}
    null = perfect = skab.Counts()
    for item in files:
        truth = item.frame["anomaly"].to_numpy()[skab.TRAIN_ROWS :]
        null += skab.binary_counts(truth, np.zeros_like(truth))
        perfect += skab.binary_counts(truth, truth)
    assert (round(null.f1, 2), round(null.far, 2), round(null.mar, 2)) == (
        board["Null detector"]["F1"],
        board["Null detector"]["FAR_pct"],
        board["Null detector"]["MAR_pct"],
    )
    assert (perfect.f1, perfect.far, perfect.mar) == (
        board["Perfect detector"]["F1"],
        board["Perfect detector"]["FAR_pct"],
        board["Perfect detector"]["MAR_pct"],
    )


def test_files_are_found_and_split_as_the_protocol_says(skab_root):
    files, free = skab.find_files(skab_root)
    assert len(files) == 16 and free is not None and "anomaly-free" in free.name
    assert [f.name for f in files[:3]] == ["data/valve1/0.csv", "data/valve1/1.csv", "data/valve1/2.csv"]
    assert files[0].sensors == [
        "Accelerometer1RMS",
        "Accelerometer2RMS",
        "Current",
        "Pressure",
        "Temperature",
        "Thermocouple",
        "Voltage",
        "Volume Flow RateRMS",
    ]
