"""Gap filling: spread the energy a counter recorded across a gap over the missing 15-minute intervals.

A meter that was silent for a while still tells us, by its counter at both ends, how much energy crossed the gap
(``delta``). What is unknown is only *when*. ``distribute`` answers that with a shape and scales the shape to
``delta``, so the total is conserved exactly and no interval is negative:

1. **The meter's own typical profile.** For every missing slot, the same time of week in the nearest weeks of
   ``history`` (before and after the gap, whatever is known; nearer weeks weigh more), falling back to the same
   time of day on the nearest days, and finally to a flat shape. The intervals bordering the gap correct it: if
   today ran 20 % above the typical week just before the gap, the slots near that edge are scaled up (the
   correction fades with the gap's length). Time of week in UTC equals time of week in any
   fixed-offset zone (China, Korea), so shifts and weekends line up without knowing the site's time zone.
2. **Siblings** (other meters of the same medium or area, or of another medium on the same process: the
   "cross-device, cross-medium" modelling the plant asks for). A sibling that covers the gap and tracked this meter
   well before it (a straight-line fit of this meter on the sibling, R² at least ``MIN_SIBLING_R2``) contributes
   its fitted values during the gap, weighted by its R² against the profile. This catches what a typical week
   cannot: a line stopped for a day, an extra shift.

The function is pure (no I/O, no flags); the caller marks the filled intervals ``estimated``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

SLOT = pd.Timedelta(minutes=15)
#: Same time of week, this many weeks away on either side of the gap; weight 1/k for k weeks away.
WEEKS = 8
#: Edge correction: the intervals right before and after the gap tell how far today runs above or below the
#: typical week; that ratio, interpolated across the gap, scales the profile with weight EDGE / (n + EDGE), so it
#: matters for short gaps and fades for long ones.
EDGE = 4
#: Fallback: same time of day, this many days away on either side; weight 1/(2k).
DAYS = 7
#: A sibling counts only if a straight-line fit of this meter on it explained this much of the variance.
MIN_SIBLING_R2 = 0.5
#: Sibling fits look at this much aligned history (nearest to the gap first).
SIBLING_WINDOW = pd.Timedelta(days=28)
#: Below this many aligned intervals a sibling fit is not trusted.
MIN_SIBLING_POINTS = 96


def distribute(
    delta: float,
    slots: pd.DatetimeIndex,
    history: pd.Series | None = None,
    siblings: Mapping[str, pd.Series] | None = None,
) -> pd.Series:
    """Energy per slot for a gap whose counter advanced by ``delta`` (>= 0) across ``slots``.

    ``history`` is this meter's interval energy indexed by interval start (may be ``None``/empty or hold NaN);
    ``siblings`` other meters' interval energy covering the gap and the time before it. Returns a Series indexed
    by ``slots``, every value >= 0, summing to ``delta`` (the last slot absorbs the rounding residual).
    """
    delta = float(delta)
    if not math.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    if not isinstance(slots, pd.DatetimeIndex):
        raise TypeError("slots must be a pandas.DatetimeIndex")
    n = len(slots)
    if n == 0:
        if delta > 0:
            raise ValueError("a positive delta needs at least one slot")
        return pd.Series([], index=slots, dtype=float)
    if delta == 0.0:
        return pd.Series(np.zeros(n), index=slots)
    utc_slots = _utc(slots)
    shape = _shape(utc_slots, _clean(history), {k: _clean(v) for k, v in (siblings or {}).items()})
    return pd.Series(_scale(delta, shape), index=slots)


def _utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _clean(series: pd.Series | None) -> pd.Series | None:
    """Finite, non-negative values on a unique, sorted UTC index; None when nothing is left."""
    if series is None or len(series) == 0 or not isinstance(series.index, pd.DatetimeIndex):
        return None
    values = pd.to_numeric(series, errors="coerce").astype(float)
    values = values[np.isfinite(values.to_numpy())].clip(lower=0.0)
    if values.empty:
        return None
    values.index = _utc(values.index)
    values = values[values.index.notna()]
    values = values[~values.index.duplicated(keep="last")].sort_index()
    return values


def _shape(slots: pd.DatetimeIndex, history: pd.Series | None, siblings: Mapping[str, pd.Series | None]) -> np.ndarray:
    """Non-negative weights per slot (any scale); all ones when nothing is known."""
    profile = _profile(slots, history)
    if profile is not None:
        profile = profile * _edge_factor(slots, history)
    sibling = _sibling_estimate(slots, history, siblings)
    if sibling is not None:
        estimate, r2 = sibling
        if profile is None:
            profile = estimate
        else:
            profile = (1.0 - r2) * profile + r2 * estimate
    if profile is None:
        return np.ones(len(slots))
    profile = np.clip(profile, 0.0, None)
    if not np.isfinite(profile).all() or profile.sum() <= 0:
        return np.ones(len(slots))
    return profile


def _weighted_lookup(
    slots: pd.DatetimeIndex, history: pd.Series, step: pd.Timedelta, count: int, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Σ weight·value and Σ weight over history at slots ± k·step, k = 1..count (known values only)."""
    total = np.zeros(len(slots))
    weights = np.zeros(len(slots))
    for k in range(1, count + 1):
        for sign in (-1, 1):
            found = history.reindex(slots + sign * k * step).to_numpy()
            known = np.isfinite(found)
            total[known] += weight / k * found[known]
            weights[known] += weight / k
    return total, weights


def _profile(slots: pd.DatetimeIndex, history: pd.Series | None) -> np.ndarray | None:
    """Typical energy per slot from the same time of week (then time of day) elsewhere in the history.

    Slots inside the gap are never in ``history`` (the caller removed them), and slots that are absent simply do
    not count, so the method never reads the values it is estimating.
    """
    if history is None:
        return None
    history = history[~history.index.isin(slots)]
    if history.empty:
        return None
    week_sum, week_w = _weighted_lookup(slots, history, pd.Timedelta(weeks=1), WEEKS, 1.0)
    day_sum, day_w = _weighted_lookup(slots, history, pd.Timedelta(days=1), DAYS, 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(
            week_w > 0,
            week_sum / np.where(week_w > 0, week_w, 1.0),
            np.where(day_w > 0, day_sum / np.where(day_w > 0, day_w, 1.0), np.nan),
        )
    if np.isnan(estimate).all():
        return None
    # Slots with neither a weekly nor a daily match take the mean of the others (neutral weight).
    return np.where(np.isnan(estimate), np.nanmean(estimate), estimate)


def _edge_factor(slots: pd.DatetimeIndex, history: pd.Series | None) -> np.ndarray | float:
    """Per-slot factor from the actual/typical ratio at the two intervals bordering the gap (1 if unknown)."""
    if history is None:
        return 1.0
    ratios = []
    for edge in (slots[0] - SLOT, slots[-1] + SLOT):
        actual = history.get(edge)
        if actual is None or not np.isfinite(actual):
            return 1.0
        typical = _profile(pd.DatetimeIndex([edge]), history)  # _profile leaves the edge itself out
        if typical is None or typical[0] <= 0:
            return 1.0
        ratios.append(min(float(actual) / float(typical[0]), 10.0))
    n = len(slots)
    position = (np.arange(n) + 1) / (n + 1)
    ratio = (1 - position) * ratios[0] + position * ratios[1]
    weight = EDGE / (n + EDGE)
    return (1 - weight) + weight * ratio


def _sibling_estimate(
    slots: pd.DatetimeIndex, history: pd.Series | None, siblings: Mapping[str, pd.Series | None]
) -> tuple[np.ndarray, float] | None:
    """Fitted values during the gap from the best-fitting sibling, with its R²; None if none qualifies."""
    if history is None or not siblings:
        return None
    best: tuple[np.ndarray, float] | None = None
    history = history[~history.index.isin(slots)]
    for series in siblings.values():
        if series is None:
            continue
        during = series.reindex(slots).to_numpy()
        if not np.isfinite(during).all():
            continue  # a sibling must cover the whole gap
        aligned = pd.concat([history, series], axis=1, join="inner").dropna()
        near = aligned[(aligned.index >= slots[0] - SIBLING_WINDOW) & (aligned.index <= slots[-1] + SIBLING_WINDOW)]
        if len(near) < MIN_SIBLING_POINTS:
            continue
        x = near.iloc[:, 1].to_numpy()
        y = near.iloc[:, 0].to_numpy()
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        slope, intercept = np.polyfit(x, y, 1)
        fitted = slope * x + intercept
        r2 = 1.0 - float(np.sum((y - fitted) ** 2)) / float(np.sum((y - y.mean()) ** 2))
        if slope <= 0 or r2 < MIN_SIBLING_R2:
            continue
        if best is None or r2 > best[1]:
            best = (np.clip(slope * during + intercept, 0.0, None), r2)
    return best


def _scale(delta: float, shape: np.ndarray) -> np.ndarray:
    """``delta`` split in proportion to ``shape``; exact total, nothing negative."""
    total = float(shape.sum())
    values = np.full(len(shape), delta / len(shape)) if total <= 0 else delta * (shape / total)
    residual = delta - math.fsum(values)
    # The last slot absorbs the rounding residual; if that would make it negative, the largest slot does.
    target = len(values) - 1 if values[-1] + residual >= 0 else int(np.argmax(values))
    values[target] = max(values[target] + residual, 0.0)
    return values
