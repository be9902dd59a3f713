"""energy.baseline against hand computations: regression, Guideline 14 metrics and limits, band, savings, CUSUM."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from energy.baseline import (
    Baseline,
    BaselineRefused,
    Granularity,
    cusum,
    cv_rmse,
    degree_days,
    enpi_ratio,
    fit_baseline,
    nmbe,
    normalised_savings,
    working_days,
)

MONTHS = pd.date_range("2024-01-01", periods=12, freq="MS", tz="Asia/Shanghai")
X = np.arange(1.0, 13.0)  # production, 1..12 kilo-cells
SIGNS = np.array([1, -1, -1, 1] * 3, float)  # Σ e = 0 and Σ e·x = 0: OLS recovers 100 + 5x exactly


def _monthly(amplitude: float) -> tuple[pd.Series, pd.DataFrame]:
    energy = pd.Series(100.0 + 5.0 * X + amplitude * SIGNS, index=MONTHS)
    return energy, pd.DataFrame({"production": X}, index=MONTHS)


def test_metrics_follow_the_guideline_formulas() -> None:
    # y = 10, 20, 30; ŷ = 9, 18, 30; p = 1: Σ(y − ŷ) = 3, Σ(y − ŷ)² = 5, ȳ = 20, n − p = 2
    assert nmbe([10, 20, 30], [9, 18, 30], 1) == pytest.approx(100 * 3 / (2 * 20))
    assert cv_rmse([10, 20, 30], [9, 18, 30], 1) == pytest.approx(100 * math.sqrt(5 / 2) / 20)
    with pytest.raises(ValueError, match="more points"):
        cv_rmse([1, 2], [1, 2], 2)


def test_monthly_fit_matches_the_hand_computation() -> None:
    energy, variables = _monthly(2.0)
    model = fit_baseline(energy, variables, granularity="monthly")
    assert model.intercept == pytest.approx(100.0)
    assert model.coefficients == {"production": pytest.approx(5.0)}
    # residuals ±2 in all 12 months: SSE = 48, n − p = 10, ȳ = 100 + 5·6.5 = 132.5
    assert model.cv_rmse_pct == pytest.approx(100 * math.sqrt(48 / 10) / 132.5)
    assert model.nmbe_pct == pytest.approx(0.0, abs=1e-9)
    sxx = float(np.sum((X - 6.5) ** 2))  # 143
    assert model.r2 == pytest.approx(1 - 48 / (25 * sxx + 48))  # SST = slope² Sxx + SSE (orthogonal residuals)
    assert model.residual_std == pytest.approx(math.sqrt(4.8))
    # 95 % prediction band at x = x̄: ŷ ± t(0.975, 10) · s · sqrt(1 + 1/n); at x = 20: leverage 1/n + (20 − 6.5)²/Sxx
    t = 2.2281388519649385
    band = model.band(pd.DataFrame({"production": [6.5, 20.0]}))
    assert band["expected"].tolist() == pytest.approx([132.5, 200.0])
    half = band["upper"] - band["expected"]
    assert half.iloc[0] == pytest.approx(t * math.sqrt(4.8) * math.sqrt(1 + 1 / 12))
    assert half.iloc[1] == pytest.approx(t * math.sqrt(4.8) * math.sqrt(1 + 1 / 12 + 13.5**2 / sxx))
    assert (band["expected"] - band["lower"]).tolist() == pytest.approx(half.tolist())


def test_a_noisy_monthly_model_is_refused_with_the_monthly_limit_named() -> None:
    energy, variables = _monthly(30.0)  # CV(RMSE) = 100·sqrt(12·900/10)/132.5 = 24.8 %
    with pytest.raises(BaselineRefused) as info:
        fit_baseline(energy, variables, granularity=Granularity.MONTHLY)
    assert info.value.metrics["cv_rmse_pct"] == pytest.approx(100 * math.sqrt(1080) / 132.5)
    assert info.value.reasons == ["CV(RMSE) 24.8 % above 15 % (ASHRAE Guideline 14, monthly)"]


def test_the_same_scatter_passes_the_hourly_limits_which_are_looser() -> None:
    energy, variables = _monthly(30.0)
    model = fit_baseline(energy, variables, granularity="hourly", min_points=12)
    assert model.cv_rmse_pct == pytest.approx(24.8, abs=0.05)
    assert model.limits.cv_rmse_pct == 30.0 and model.limits.nmbe_pct == 10.0


def test_a_biased_model_fails_nmbe() -> None:
    # Guideline 14's NMBE is ~0 for OLS on its own data; a stored model checked on new data can be biased.
    energy, variables = _monthly(2.0)
    assert nmbe(energy * 1.08, energy, 2) == pytest.approx(100 * 0.08 * energy.sum() / (10 * energy.mean() * 1.08))


@pytest.mark.parametrize(
    ("energy", "variables", "words"),
    [
        (
            pd.Series(np.arange(11.0) + 1, index=MONTHS[:11]),
            pd.DataFrame({"p": np.arange(11.0)}, index=MONTHS[:11]),
            "11 periods; a monthly baseline needs at least 12",
        ),
        (pd.Series(np.arange(12.0) + 1, index=MONTHS), pd.DataFrame({"p": np.ones(12)}, index=MONTHS), "constant: p"),
        (
            pd.Series([np.nan] + list(np.arange(11.0) + 1), index=MONTHS),
            pd.DataFrame({"p": X}, index=MONTHS),
            "missing or non-finite values in periods 2024-01-01",
        ),
        (pd.Series(-np.arange(12.0), index=MONTHS), pd.DataFrame({"p": X}, index=MONTHS), "negative energy"),
        (pd.Series(np.arange(12.0) + 1, index=MONTHS), pd.DataFrame({"a": X, "b": 2 * X}, index=MONTHS), "collinear"),
    ],
)
def test_unusable_data_are_refused_with_a_reason(energy, variables, words) -> None:
    with pytest.raises(BaselineRefused, match=words):
        fit_baseline(energy, variables, granularity="monthly")


def test_savings_enpi_improvement_and_cusum_by_hand() -> None:
    energy, variables = _monthly(2.0)
    model = fit_baseline(energy, variables, granularity="monthly")
    report_idx = pd.date_range("2025-01-01", periods=3, freq="MS", tz="Asia/Shanghai")
    report_vars = pd.DataFrame({"production": [10.0, 12.0, 14.0]}, index=report_idx)  # expected 150, 160, 170
    actual = pd.Series([140.0, 165.0, 153.0], index=report_idx)
    result = normalised_savings(model, actual, report_vars)
    assert result.expected == pytest.approx(480.0)
    assert result.actual == pytest.approx(458.0)
    assert result.savings == pytest.approx(22.0)
    assert result.improvement == pytest.approx(1 - 458 / 480)
    assert cusum(model, actual, report_vars).tolist() == pytest.approx([10.0, 5.0, 22.0])
    with pytest.raises(ValueError, match="relevant variables missing: production"):
        model.predict(pd.DataFrame({"other": [1.0]}))


def test_stored_form_round_trips() -> None:
    energy, variables = _monthly(2.0)
    model = fit_baseline(energy, variables, granularity="monthly")
    again = Baseline.from_dict(model.to_dict())
    assert again == model
    probe = pd.DataFrame({"production": [3.0, 30.0]})
    pd.testing.assert_frame_equal(again.band(probe), model.band(probe))


def test_degree_days_working_days_and_ratio_enpi() -> None:
    hours = pd.date_range("2024-07-01", periods=48, freq="h", tz="Asia/Shanghai")
    temps = pd.Series([10.0] * 24 + [25.0] * 24, index=hours)
    dd = degree_days(temps)
    assert dd["hdd"].tolist() == [8.0, 0.0] and dd["cdd"].tolist() == [0.0, 7.0]
    assert degree_days(temps, freq="MS").loc[:, ["hdd", "cdd"]].iloc[0].tolist() == [8.0, 7.0]
    months = pd.date_range("2024-09-01", periods=2, freq="MS")
    # September 2024: 21 weekdays; 16-17 Sep holiday (Mid-Autumn), 14 Sep a make-up working Saturday → 20
    wd = working_days(months, holidays=["2024-09-16", "2024-09-17"], workdays=["2024-09-14"])
    assert wd.tolist() == [20.0, 23.0]
    ratio = enpi_ratio(pd.Series([100.0, 50.0], index=months), pd.Series([20.0, 0.0], index=months))
    assert ratio.iloc[0] == 5.0 and math.isnan(ratio.iloc[1])


def test_a_two_variable_baseline_recovers_production_and_cooling() -> None:
    rng = np.random.default_rng(11)
    days = pd.date_range("2024-06-01", periods=60, freq="D")
    variables = pd.DataFrame({"production": rng.uniform(50, 100, 60), "cdd": rng.uniform(0, 10, 60)}, index=days)
    energy = 200 + 3 * variables["production"] + 12 * variables["cdd"] + rng.normal(0, 5, 60)
    model = fit_baseline(energy, variables, granularity="daily")
    assert model.coefficients["production"] == pytest.approx(3.0, abs=0.2)
    assert model.coefficients["cdd"] == pytest.approx(12.0, abs=1.0)
    assert model.cv_rmse_pct < 2.0
