"""Multivariate feature vectors for an area: points aligned on a time grid, lags, trailing window statistics."""

# Pure pandas/numpy. ``build_features`` works on a whole history (training, evaluation); ``OnlineFeatures``
# computes the same vector for the newest grid row from a small buffer (streaming scoring), and the tests
# hold the two to the same numbers. Every statistic is *trailing* (it uses the current row and the ones
# before it, never later rows), so a feature never looks ahead, and a window that is not yet full gives
# NaN, which the detectors turn into "not ready" (None).

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

#: Window statistics we know how to compute both in batch and online.
STATS = ("mean", "std", "min", "max")
_SEP = "__"


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """How to turn an area's points into feature vectors.

    Parameters
    ----------
    points
        Point keys of the area, in a fixed order (e.g. ``("oven_temp_c", "exhaust_voc_ppm")``).
    freq
        Grid step as a pandas offset alias (``"1s"``, ``"1min"``); readings are averaged per step.
    fill_limit
        Number of grid steps a point's last value is held when it has no reading (slow or report-by-
        exception sensors); beyond that the value is missing and the vector is not scored.
    lags
        Lags in grid steps; ``lags=(1,)`` adds ``<point>__lag1``.
    windows
        Trailing window lengths in grid steps for ``stats``; ``windows=(30,)`` adds ``<point>__mean30``.
    stats
        Window statistics, a subset of ``STATS``.
    include_raw
        Whether the aligned values themselves are features.
    """

    points: tuple[str, ...]
    freq: str = "1s"
    fill_limit: int = 0
    lags: tuple[int, ...] = ()
    windows: tuple[int, ...] = ()
    stats: tuple[str, ...] = ("mean",)
    include_raw: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.stats) - set(STATS)
        if unknown:
            raise ValueError(f"unknown window statistics {sorted(unknown)}; known: {STATS}")
        if any(k < 1 for k in self.lags) or any(w < 1 for w in self.windows):
            raise ValueError("lags and windows are positive numbers of grid steps")
        if not self.include_raw and not self.lags and not self.windows:
            raise ValueError("a feature spec must produce at least one feature")

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in the order ``build_features`` produces them."""
        names: list[str] = []
        for point in self.points:
            if self.include_raw:
                names.append(point)
            names.extend(f"{point}{_SEP}lag{k}" for k in self.lags)
            names.extend(f"{point}{_SEP}{stat}{w}" for w in self.windows for stat in self.stats)
        return tuple(names)

    @property
    def memory(self) -> int:
        """Grid rows the online computation must keep (the current one included)."""
        return max([1, *(k + 1 for k in self.lags), *self.windows])

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSpec:
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()})


def point_of(feature: str) -> str:
    """Return the point key a feature name was built from (``"h2_ppm__mean30"`` -> ``"h2_ppm"``)."""
    return feature.split(_SEP, 1)[0]


def align(
    readings: pd.DataFrame, spec: FeatureSpec, *, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Put long-format readings (columns ``ts``, ``point``, ``value``) on the spec's grid, in [start, end).

    Each grid row is labelled by the start of its step and holds the mean of the readings in the step;
    gaps are filled forward for at most ``fill_limit`` steps. Points of the spec that never reported are
    all-NaN columns, so the column set is always ``spec.points``.
    """
    frame = readings.loc[readings["point"].isin(spec.points), ["ts", "point", "value"]]
    wide = (
        frame.assign(ts=pd.to_datetime(frame["ts"], utc=True))
        .pivot_table(index="ts", columns="point", values="value", aggfunc="mean")
        .reindex(columns=list(spec.points))
    )
    grid = wide.resample(spec.freq).mean()
    if start is not None or end is not None:
        # The window is half-open, [start, end), like the history query that produced the readings.
        lo = pd.Timestamp(start).floor(spec.freq) if start is not None else grid.index.min()
        hi = pd.Timestamp(end) if end is not None else grid.index.max() + pd.Timedelta(spec.freq)
        grid = grid.reindex(pd.date_range(lo, hi, freq=spec.freq, inclusive="left", name="ts"))
    if spec.fill_limit > 0:
        grid = grid.ffill(limit=spec.fill_limit)
    grid.columns.name = None
    return grid


def build_features(grid: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Compute the spec's features for every row of an aligned grid (rows are grid steps)."""
    columns: dict[str, pd.Series] = {}
    for point in spec.points:
        values = grid[point].astype(float) if point in grid else pd.Series(np.nan, index=grid.index)
        if spec.include_raw:
            columns[point] = values
        for k in spec.lags:
            columns[f"{point}{_SEP}lag{k}"] = values.shift(k)
        for w in spec.windows:
            # min_periods=w: a window with a missing value is missing, as online (no partial windows).
            rolling = values.rolling(w, min_periods=w)
            for stat in spec.stats:
                # ddof=0 so that a window of one gives 0, and online and batch agree exactly.
                series = rolling.std(ddof=0) if stat == "std" else getattr(rolling, stat)()
                columns[f"{point}{_SEP}{stat}{w}"] = series
    return pd.DataFrame(columns, index=grid.index)[list(spec.names)]


@dataclass(slots=True)
class OnlineFeatures:
    """Streaming twin of ``build_features``: push one grid row at a time, get its feature vector."""

    spec: FeatureSpec
    _rows: deque[tuple[float, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self._rows = deque(maxlen=self.spec.memory)

    def push(self, row: Mapping[str, float | None]) -> dict[str, float | None]:
        """Append the newest grid row (point -> value, missing allowed) and return its features."""
        values = tuple(_as_float(row.get(point)) for point in self.spec.points)
        self._rows.append(values)
        return self.current()

    def current(self) -> dict[str, float | None]:
        """Features of the newest row; None where a value, lag or window is missing."""
        history = np.array(self._rows, dtype=float).reshape(len(self._rows), len(self.spec.points))
        out: dict[str, float | None] = {}
        for j, point in enumerate(self.spec.points):
            column = history[:, j]
            if self.spec.include_raw:
                out[point] = _finite(column[-1]) if len(column) else None
            for k in self.spec.lags:
                out[f"{point}{_SEP}lag{k}"] = _finite(column[-1 - k]) if len(column) > k else None
            for w in self.spec.windows:
                window = column[-w:]
                full = len(window) == w and not np.isnan(window).any()
                for stat in self.spec.stats:
                    out[f"{point}{_SEP}{stat}{w}"] = _window_stat(window, stat) if full else None
        return out


def _window_stat(window: np.ndarray, stat: str) -> float:
    if stat == "std":
        return float(np.std(window))
    return float(getattr(np, stat)(window))


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
