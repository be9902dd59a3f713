"""Energy baselines (ISO 50006) judged by ASHRAE Guideline 14, with EnPIs, normalised savings and CUSUM.

A baseline is an ordinary least-squares regression of a meter's (or an area's) energy per period on its relevant
variables: production output, heating and cooling degree-days from the outdoor temperature, calendar (working
days, day type). ``fit_baseline`` fits it and **refuses** it (``BaselineRefused``, naming every failed check and
the figures) unless it meets ASHRAE Guideline 14's calibration criteria for the data's granularity
(domain/standards.md section 6.2, G14-2014 Annex B, with p model parameters including the intercept):

    CV(RMSE) = 100 · sqrt(Σ(yᵢ − ŷᵢ)² / (n − p)) / ȳ          NMBE = 100 · Σ(yᵢ − ŷᵢ) / ((n − p) · ȳ)

=============  ===========  ============  ============================================================
granularity    |NMBE| ≤     CV(RMSE) ≤    note
=============  ===========  ============  ============================================================
monthly        5 %          15 %          Guideline 14 monthly criteria
hourly         10 %         30 %          Guideline 14 hourly criteria
daily          10 %         30 %          Guideline 14 gives only monthly and hourly; daily (and
                                          15-minute) data is judged by the hourly, looser, limits
=============  ===========  ============  ============================================================

and at least ``MIN_POINTS`` periods (ISO 50006 practice: 10 to 12 baseline points; we ask 12 months, 30 days
or 14 days of hours) with more points than parameters. R² is reported; ISO 50006 sets no R² threshold (the
common 0.75 is implementers' practice), so ``min_r2`` is off unless a caller asks for it.

The regression uses ``numpy.linalg.lstsq`` and the prediction band Student's t from SciPy: scikit-learn is kept
in ``detectors/`` by the import-layer contract, and its ``LinearRegression`` has no prediction interval anyway.

Savings follow ISO 50006 normalisation: the baseline model is evaluated at the reporting period's relevant
variables; ``savings = Σ ŷ − Σ y`` and ``EnPI improvement = 1 − Σ y / Σ ŷ``; CUSUM is the running sum of
(ŷ − y), rising while the plant does better than its baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


class Granularity(StrEnum):
    MONTHLY = "monthly"
    DAILY = "daily"
    HOURLY = "hourly"


@dataclass(frozen=True, slots=True)
class Limits:
    """Guideline 14 acceptance limits, in percent."""

    nmbe_pct: float
    cv_rmse_pct: float


LIMITS: dict[Granularity, Limits] = {
    Granularity.MONTHLY: Limits(nmbe_pct=5.0, cv_rmse_pct=15.0),
    Granularity.HOURLY: Limits(nmbe_pct=10.0, cv_rmse_pct=30.0),
    Granularity.DAILY: Limits(nmbe_pct=10.0, cv_rmse_pct=30.0),
}
MIN_POINTS: dict[Granularity, int] = {Granularity.MONTHLY: 12, Granularity.DAILY: 30, Granularity.HOURLY: 14 * 24}


class BaselineRefused(ValueError):
    """The data do not support a baseline; ``reasons`` lists every failed check, ``metrics`` the figures."""

    def __init__(self, reasons: Sequence[str], metrics: dict[str, float] | None = None) -> None:
        super().__init__("baseline refused: " + "; ".join(reasons))
        self.reasons = list(reasons)
        self.metrics = dict(metrics or {})


def cv_rmse(actual: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray, p: int) -> float:
    """Guideline 14 CV(RMSE) in percent, with ``p`` model parameters."""
    y, yhat = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    n = len(y)
    if n <= p:
        raise ValueError(f"CV(RMSE) needs more points ({n}) than parameters ({p})")
    mean = float(y.mean())
    if mean <= 0:
        raise ValueError("CV(RMSE) needs a positive mean energy")
    return 100.0 * math.sqrt(float(np.sum((y - yhat) ** 2)) / (n - p)) / mean


def nmbe(actual: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray, p: int) -> float:
    """Guideline 14 NMBE in percent, with ``p`` model parameters (positive: the model under-predicts)."""
    y, yhat = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    n = len(y)
    if n <= p:
        raise ValueError(f"NMBE needs more points ({n}) than parameters ({p})")
    mean = float(y.mean())
    if mean <= 0:
        raise ValueError("NMBE needs a positive mean energy")
    return 100.0 * float(np.sum(y - yhat)) / ((n - p) * mean)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A fitted, accepted baseline: ``energy ≈ intercept + Σ coefficients[v] · v``."""

    variables: tuple[str, ...]
    intercept: float
    coefficients: dict[str, float]
    granularity: Granularity
    n: int
    cv_rmse_pct: float
    nmbe_pct: float
    r2: float
    #: residual standard error sqrt(SSE / (n − p))
    residual_std: float
    #: (XᵀX)⁻¹ of the design matrix with the intercept column first; for the prediction band
    xtx_inv: tuple[tuple[float, ...], ...]
    mean_energy: float
    period_start: str | None = None
    period_end: str | None = None
    limits: Limits = field(default_factory=lambda: LIMITS[Granularity.MONTHLY])

    @property
    def p(self) -> int:
        return len(self.variables) + 1

    def _design(self, variables: pd.DataFrame) -> np.ndarray:
        missing = [v for v in self.variables if v not in variables.columns]
        if missing:
            raise ValueError(f"relevant variables missing: {', '.join(missing)}")
        x = variables.loc[:, list(self.variables)].to_numpy(dtype=float)
        if not np.isfinite(x).all():
            raise ValueError("relevant variables hold missing or non-finite values")
        return np.column_stack([np.ones(len(x)), x])

    def predict(self, variables: pd.DataFrame) -> pd.Series:
        """Expected energy per period for these relevant variables (same index)."""
        beta = np.array([self.intercept, *(self.coefficients[v] for v in self.variables)])
        return pd.Series(self._design(variables) @ beta, index=variables.index, name="expected")

    def band(self, variables: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
        """``expected``, ``lower``, ``upper``: the two-sided prediction interval of a new period's energy.

        ``ŷ ± t(1 − α/2, n − p) · s · sqrt(1 + x₀ᵀ (XᵀX)⁻¹ x₀)`` — the interval for one new observation, not for
        the mean, since one period's actual energy is what gets compared with it.
        """
        if not 0 < confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
        x = self._design(variables)
        inv = np.asarray(self.xtx_inv)
        leverage = np.einsum("ij,jk,ik->i", x, inv, x)
        half = float(stats.t.ppf(0.5 + confidence / 2, self.n - self.p)) * self.residual_std * np.sqrt(1 + leverage)
        expected = self.predict(variables).to_numpy()
        return pd.DataFrame(
            {"expected": expected, "lower": expected - half, "upper": expected + half}, index=variables.index
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for storing and for the API)."""
        return {
            "variables": list(self.variables),
            "intercept": self.intercept,
            "coefficients": self.coefficients,
            "granularity": self.granularity.value,
            "n": self.n,
            "cv_rmse_pct": self.cv_rmse_pct,
            "nmbe_pct": self.nmbe_pct,
            "r2": self.r2,
            "residual_std": self.residual_std,
            "xtx_inv": [list(r) for r in self.xtx_inv],
            "mean_energy": self.mean_energy,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "limits": {"nmbe_pct": self.limits.nmbe_pct, "cv_rmse_pct": self.limits.cv_rmse_pct},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        variables = tuple(str(v) for v in data["variables"])
        coefficients = {str(k): float(v) for k, v in data["coefficients"].items()}
        if set(coefficients) != set(variables):
            raise ValueError("coefficients do not match the variables")
        inv = tuple(tuple(float(c) for c in row) for row in data["xtx_inv"])
        if len(inv) != len(variables) + 1 or any(len(r) != len(variables) + 1 for r in inv):
            raise ValueError("xtx_inv has the wrong shape")
        return cls(
            variables=variables,
            intercept=float(data["intercept"]),
            coefficients=coefficients,
            granularity=Granularity(data["granularity"]),
            n=int(data["n"]),
            cv_rmse_pct=float(data["cv_rmse_pct"]),
            nmbe_pct=float(data["nmbe_pct"]),
            r2=float(data["r2"]),
            residual_std=float(data["residual_std"]),
            xtx_inv=inv,
            mean_energy=float(data["mean_energy"]),
            period_start=data.get("period_start"),
            period_end=data.get("period_end"),
            limits=Limits(**data["limits"]),
        )


def fit_baseline(
    energy: pd.Series,
    variables: pd.DataFrame,
    *,
    granularity: Granularity | str,
    limits: Limits | None = None,
    min_points: int | None = None,
    min_r2: float | None = None,
) -> Baseline:
    """Fit energy per period on the relevant variables (columns of ``variables``, same index as ``energy``).

    Raises ``BaselineRefused`` with every reason when the data are unusable or the fit fails Guideline 14.
    """
    granularity = Granularity(granularity)
    limits = limits or LIMITS[granularity]
    min_points = MIN_POINTS[granularity] if min_points is None else min_points
    names = tuple(str(c) for c in variables.columns)
    if len(set(names)) != len(names):
        raise BaselineRefused(["relevant variable names repeat"])
    data = pd.concat([energy.rename("__energy__"), variables], axis=1, join="inner")
    y = data["__energy__"].to_numpy(dtype=float)
    x = data.loc[:, list(names)].to_numpy(dtype=float)
    reasons: list[str] = []
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        bad = [
            str(i) for i, ok in zip(data.index, np.isfinite(np.column_stack([y, x])).all(axis=1), strict=True) if not ok
        ]
        reasons.append(f"missing or non-finite values in periods {', '.join(bad[:5])}")
    if (y < 0).any():
        reasons.append("negative energy")
    n, p = len(y), len(names) + 1
    if n < max(min_points, p + 1):
        reasons.append(f"{n} periods; a {granularity.value} baseline needs at least {max(min_points, p + 1)}")
    if reasons:
        raise BaselineRefused(reasons)
    if y.mean() <= 0:
        raise BaselineRefused(["no energy in the baseline period"])
    design = np.column_stack([np.ones(n), x])
    beta, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < p:
        constant = [v for i, v in enumerate(names) if np.ptp(x[:, i]) == 0]
        detail = f" (constant: {', '.join(constant)})" if constant else " (collinear variables)"
        raise BaselineRefused([f"the relevant variables do not determine the model{detail}"])
    fitted = design @ beta
    sse = float(np.sum((y - fitted) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    metrics = {
        "cv_rmse_pct": cv_rmse(y, fitted, p),
        "nmbe_pct": nmbe(y, fitted, p),
        "r2": 1.0 - sse / sst if sst > 0 else 1.0,
        "n": float(n),
    }
    if metrics["cv_rmse_pct"] > limits.cv_rmse_pct:
        reasons.append(
            f"CV(RMSE) {metrics['cv_rmse_pct']:.1f} % above {limits.cv_rmse_pct:g} % "
            f"(ASHRAE Guideline 14, {granularity.value})"
        )
    if abs(metrics["nmbe_pct"]) > limits.nmbe_pct:
        reasons.append(
            f"NMBE {metrics['nmbe_pct']:.2f} % outside ±{limits.nmbe_pct:g} % "
            f"(ASHRAE Guideline 14, {granularity.value})"
        )
    if min_r2 is not None and metrics["r2"] < min_r2:
        reasons.append(f"R² {metrics['r2']:.3f} below {min_r2:g}")
    if reasons:
        raise BaselineRefused(reasons, metrics)
    inv = np.linalg.pinv(design.T @ design)
    return Baseline(
        variables=names,
        intercept=float(beta[0]),
        coefficients={v: float(b) for v, b in zip(names, beta[1:], strict=True)},
        granularity=granularity,
        n=n,
        cv_rmse_pct=metrics["cv_rmse_pct"],
        nmbe_pct=metrics["nmbe_pct"],
        r2=metrics["r2"],
        residual_std=math.sqrt(sse / (n - p)),
        xtx_inv=tuple(tuple(map(float, r)) for r in inv),
        mean_energy=float(y.mean()),
        period_start=str(data.index[0]),
        period_end=str(data.index[-1]),
        limits=limits,
    )


# --- relevant variables ----------------------------------------------------------------------------------------


def degree_days(
    outdoor_c: pd.Series,
    *,
    freq: str = "D",
    heating_base_c: float = 18.0,
    cooling_base_c: float = 18.0,
    tz: str | None = None,
) -> pd.DataFrame:
    """Heating and cooling degree-days (``hdd``, ``cdd``) per period from outdoor temperatures.

    Daily mean method: each calendar day's mean temperature T gives ``max(0, base − T)`` heating and
    ``max(0, T − base)`` cooling degree-days; the days are then summed per ``freq`` period (``"D"``, ``"MS"``...).
    ``tz`` makes "calendar day" the site's day when the index is in UTC.
    """
    temps = pd.to_numeric(outdoor_c, errors="coerce").dropna()
    if temps.empty:
        raise ValueError("no outdoor temperatures")
    if tz is not None and isinstance(temps.index, pd.DatetimeIndex) and temps.index.tz is not None:
        temps.index = temps.index.tz_convert(tz)
    daily = temps.resample("D").mean().dropna()
    out = pd.DataFrame({"hdd": (heating_base_c - daily).clip(lower=0), "cdd": (daily - cooling_base_c).clip(lower=0)})
    return out if freq == "D" else out.resample(freq).sum()


def working_days(
    index: pd.DatetimeIndex, holidays: Sequence[str] = (), workdays: Sequence[str] = (), freq: str = "MS"
) -> pd.Series:
    """Working days per period: Monday to Friday, minus ``holidays``, plus make-up ``workdays`` (调休)."""
    if len(index) == 0:
        return pd.Series([], dtype=float)
    tz = index.tz
    days = pd.date_range(
        index.min().normalize(),
        (index.max() + pd.tseries.frequencies.to_offset(freq)).normalize() - pd.Timedelta(days=1),
        freq="D",
        tz=tz,
    )
    off = {pd.Timestamp(h).date() for h in holidays}
    on = {pd.Timestamp(w).date() for w in workdays}
    flags = pd.Series(
        [(d.date() in on) or (d.day_of_week < 5 and d.date() not in off) for d in days], index=days, dtype=float
    )
    return flags.resample(freq).sum().reindex(index, fill_value=0.0).rename("working_days")


# --- performance -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Savings:
    """Normalised savings over a reporting period (ISO 50006)."""

    expected: float
    actual: float

    @property
    def savings(self) -> float:
        return self.expected - self.actual

    @property
    def improvement(self) -> float:
        """EnPI improvement ``1 − actual / expected`` (0.08 = 8 % less than the baseline predicts)."""
        return 1.0 - self.actual / self.expected if self.expected else float("nan")


def _aligned(model: Baseline, energy: pd.Series, variables: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    data = pd.concat([energy.rename("__energy__"), variables], axis=1, join="inner")
    if data.empty:
        raise ValueError("no period has both energy and relevant variables")
    actual = data["__energy__"].astype(float)
    if not np.isfinite(actual.to_numpy()).all():
        raise ValueError("reporting energy holds missing values")
    return actual, model.predict(data.drop(columns="__energy__"))


def normalised_savings(model: Baseline, energy: pd.Series, variables: pd.DataFrame) -> Savings:
    """Baseline evaluated at the reporting period's variables vs the actual energy."""
    actual, expected = _aligned(model, energy, variables)
    return Savings(expected=math.fsum(expected.to_numpy()), actual=math.fsum(actual.to_numpy()))


def cusum(model: Baseline, energy: pd.Series, variables: pd.DataFrame) -> pd.Series:
    """Running Σ(expected − actual) per period: rising = saving against the baseline, falling = wasting."""
    actual, expected = _aligned(model, energy, variables)
    return (expected - actual).cumsum().rename("cusum")


def enpi_ratio(energy: pd.Series, output: pd.Series) -> pd.Series:
    """Measured-ratio EnPI: energy per unit of output per period; NaN where there was no output."""
    data = pd.concat([energy.rename("energy"), output.rename("output")], axis=1, join="inner").astype(float)
    out = data["output"].where(data["output"] > 0)
    return (data["energy"] / out).rename("enpi")
