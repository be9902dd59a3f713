"""Streaming univariate novelty detection for one point (NAB-style series), learnt online from the stream.

``NeighbourNovelty`` asks two questions of each new value: how far is it from the nearest value in the
recent history (level novelty), and how far is the shape of the last ``shape`` values from the nearest
earlier subsequence of the same length (shape novelty, the "discord" of matrix-profile methods, Yeh et
al. 2016)? Each distance is divided by the largest distance of its kind seen so far, so a score near 1
means "as new as the most novel thing this stream has shown", whatever the units and noise of the
point; the two ratios are combined by their geometric mean, which is high only when the level *and*
the shape are new. ``limit`` is the combined ratio reported as 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detectors.base import Detector

#: Scores are capped so that a change of a previously constant signal (novelty / 0) stays a finite number.
MAX_SCORE = 1e6


class NeighbourNovelty(Detector):
    """Level and shape novelty of one point relative to its own recent history (learnt online).

    Parameters
    ----------
    tag
        The point key read from each observation.
    history
        Number of past values (and subsequences) compared with the newest one.
    shape
        Length of the subsequence compared for shape novelty, in observations (>= 2).
    warmup
        Observations learnt before the first score (None until then).
    limit
        Combined novelty ratio that maps to score 1.0.
    """

    key = "nn_novelty"

    def __init__(
        self, *, tag: str, history: int = 1500, shape: int = 4, warmup: int = 100, limit: float = 0.12
    ) -> None:
        self.tag = tag
        self.history = history
        self.shape = shape
        self.warmup = warmup
        self.limit = limit
        self.n_seen_ = 0
        self.level_max_ = 0.0
        self.shape_max_ = 0.0
        self.buffer_ = np.empty(0)
        self._last: tuple[datetime, tuple[float | None, float | None]] | None = None

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "temp_c", "history": 200, "shape": 4, "warmup": 30}
        yield {"tag": "temp_c", "history": 50, "shape": 2, "warmup": 10, "limit": 0.3}

    def _value(self, x: Mapping[str, float | None]) -> float | None:
        value = x.get(self.tag)
        if value is None or not math.isfinite(value):
            return None
        return float(value)

    def _novelty(self, value: float) -> tuple[float | None, float | None]:
        """Distances of the value and of the newest subsequence to their nearest neighbours in history."""
        past = self.buffer_
        if len(past) == 0:
            return None, None
        level = float(np.min(np.abs(past[-self.history :] - value)))
        m = self.shape
        # Candidates end before the newest subsequence starts, so they never overlap it.
        candidates = past[: len(past) - (m - 1)]
        if len(candidates) < m:
            return level, None
        newest = np.append(past[len(past) - (m - 1) :], value)
        windows = sliding_window_view(candidates, m)[-self.history :]
        shape = float(np.sqrt(np.min(((windows - newest) ** 2).sum(axis=1))))
        return level, shape

    def _cached(self, value: float, ts: datetime) -> tuple[float | None, float | None]:
        if self._last is not None and self._last[0] == ts:
            return self._last[1]
        return self._novelty(value)

    def score_one(self, x: Mapping[str, float | None], ts: datetime) -> float | None:
        """Return the novelty score of this value, or None while warming up or when the value is missing."""
        value = self._value(x)
        if value is None:
            return None
        level, shape = self._novelty(value)
        self._last = (ts, (level, shape))
        if self.n_seen_ < self.warmup or level is None or shape is None:
            return None
        ratio = math.sqrt(_ratio(level, self.level_max_) * _ratio(shape, self.shape_max_))
        return min(ratio / self.limit, MAX_SCORE)

    def learn_one(self, x: Mapping[str, float | None], ts: datetime) -> None:
        """Add the value to the history and raise the running maxima of both distances."""
        value = self._value(x)
        if value is None:
            return None
        level, shape = self._cached(value, ts)
        if level is not None:
            self.level_max_ = max(self.level_max_, level)
        if shape is not None:
            self.shape_max_ = max(self.shape_max_, shape)
        keep = self.history + 2 * self.shape
        self.buffer_ = np.append(self.buffer_[-(keep - 1) :], value)
        self.n_seen_ += 1
        return None

    def explain(self, x: Mapping[str, float | None], top: int = 3) -> list[tuple[str, float]]:
        """A univariate detector has one contributor: its point."""
        value = self._value(x)
        return [] if value is None else [(self.tag, 1.0)][:top]


def _ratio(distance: float, largest: float) -> float:
    if largest > 0:
        return distance / largest
    # Nothing has varied yet: any change is new without bound, no change is not new at all.
    return 0.0 if distance == 0 else MAX_SCORE
