"""Streaming univariate novelty detection for one point (NAB-style series), learnt online from the stream."""

# ``NeighbourNovelty`` asks of each new value how far it is from the nearest value seen before:
#
# * *level* novelty: the nearest value among the last ``history`` values ("never this high or low");
# * *context* novelty: the nearest value seen at about the same time of day (the value's own half-hour
#   and its neighbours) in the last ``context_days`` days - the time-of-day context that HTM's date
#   encoder gives the numenta detector (Ahmad et al. 2017);
# * optionally *shape* novelty: the distance of the last ``shape`` values to the nearest earlier
#   subsequence of the same length (the "discord" of matrix-profile methods, Yeh et al. 2016).
#
# Each distance is divided by the largest distance of its kind seen so far, so a ratio near 1 means "as new as
# the most novel thing this stream has shown", whatever the units and noise of the point; the ratios are
# combined by their geometric mean. A value close to something seen recently scores low whatever the hour;
# among values equally new overall, the one farther from what this time of day usually shows scores higher.
# ``limit`` is the combined ratio reported as 1.0.

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detectors.base import Detector

#: Scores are capped so that a change of a previously constant signal (novelty / 0) stays a finite number.
MAX_SCORE = 1e6
_DAY_S = 86400.0


class _Values:
    """A multiset of recent values with nearest-neighbour lookup (sorted list + arrival order)."""

    __slots__ = ("arrivals", "ordered")

    def __init__(self) -> None:
        self.arrivals: deque[tuple[float, float]] = deque()  # (epoch seconds, value), oldest first
        self.ordered: list[float] = []

    def nearest(self, value: float) -> float | None:
        if not self.ordered:
            return None
        i = bisect.bisect_left(self.ordered, value)
        candidates = self.ordered[max(0, i - 1) : i + 1]
        return min(abs(c - value) for c in candidates)

    def add(self, epoch: float, value: float) -> None:
        self.arrivals.append((epoch, value))
        bisect.insort(self.ordered, value)

    def drop_oldest(self) -> None:
        _, value = self.arrivals.popleft()
        del self.ordered[bisect.bisect_left(self.ordered, value)]


class NeighbourNovelty(Detector):
    """Level, time-of-day and (optionally) shape novelty of one point, learnt online.

    Parameters
    ----------
    tag
        The point key read from each observation.
    history
        Number of past values searched for the nearest level.
    context_s
        Width of a time-of-day bin in seconds; the value's bin and its two neighbours form its context.
        0 switches the context off.
    context_days
        Days of history kept per time-of-day bin.
    shape
        Subsequence length for shape novelty, in observations; 0 switches it off.
    warmup
        Observations learnt before the first score (None until then, and while a component has no
        history yet, e.g. no value at this time of day).
    limit
        Combined novelty ratio that maps to score 1.0.
    """

    key = "nn_novelty"

    def __init__(
        self,
        *,
        tag: str,
        history: int = 20000,
        context_s: float = 1800.0,
        context_days: float = 14.0,
        shape: int = 0,
        warmup: int = 100,
        limit: float = 0.06,
    ) -> None:
        self.tag = tag
        self.history = history
        self.context_s = context_s
        self.context_days = context_days
        self.shape = shape
        self.warmup = warmup
        self.limit = limit
        self.n_seen_ = 0
        self.maxima_: dict[str, float] = {}
        self.level_ = _Values()
        self.context_: dict[int, _Values] = {}
        self.recent_ = np.empty(0)
        self._last: tuple[datetime, dict[str, float | None]] | None = None

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "temp_c", "history": 200, "warmup": 30}
        yield {"tag": "temp_c", "history": 50, "context_s": 0.0, "shape": 3, "warmup": 10, "limit": 0.3}

    def inputs(self) -> tuple[str, ...]:
        return (self.tag,)

    def _value(self, x: Mapping[str, float | None]) -> float | None:
        value = x.get(self.tag)
        if value is None or not math.isfinite(value):
            return None
        return float(value)

    def _bins(self, epoch: float) -> list[int]:
        count = max(1, math.ceil(_DAY_S / self.context_s))
        here = int((epoch % _DAY_S) // self.context_s)
        return sorted({(here - 1) % count, here, (here + 1) % count})

    def _novelty(self, value: float, epoch: float) -> dict[str, float | None]:
        """Distance of the value (and newest subsequence) to the nearest neighbour of each kind."""
        out: dict[str, float | None] = {"level": self.level_.nearest(value)}
        if self.context_s > 0:
            near = [
                d
                for b in self._bins(epoch)
                if b in self.context_ and (d := self.context_[b].nearest(value)) is not None
            ]
            out["context"] = min(near) if near else None
        if self.shape >= 2:
            m, past = self.shape, self.recent_
            candidates = past[: len(past) - (m - 1)]
            if len(candidates) < m:
                out["shape"] = None
            else:
                newest = np.append(past[len(past) - (m - 1) :], value)
                windows = sliding_window_view(candidates, m)[-self.history :]
                out["shape"] = float(np.sqrt(np.min(((windows - newest) ** 2).sum(axis=1))))
        return out

    def score_one(self, x: Mapping[str, float | None], ts: datetime) -> float | None:
        """Return the novelty score of this value, or None while warming up or when the value is missing."""
        value = self._value(x)
        if value is None:
            return None
        novelty = self._novelty(value, ts.timestamp())
        self._last = (ts, novelty)
        if self.n_seen_ < self.warmup or any(d is None for d in novelty.values()):
            return None
        product = 1.0
        for kind, distance in novelty.items():
            product *= _ratio(distance, self.maxima_.get(kind, 0.0))
        combined = product ** (1.0 / len(novelty))
        return min(combined / self.limit, MAX_SCORE)

    def learn_one(self, x: Mapping[str, float | None], ts: datetime) -> None:
        """Add the value to every history and raise the running maxima of the distances."""
        value = self._value(x)
        if value is None:
            return None
        epoch = ts.timestamp()
        novelty = self._last[1] if self._last is not None and self._last[0] == ts else self._novelty(value, epoch)
        for kind, distance in novelty.items():
            if distance is not None:
                self.maxima_[kind] = max(self.maxima_.get(kind, 0.0), distance)
        self.level_.add(epoch, value)
        if len(self.level_.arrivals) > self.history:
            self.level_.drop_oldest()
        if self.context_s > 0:
            horizon = epoch - self.context_days * _DAY_S
            for b in self._bins(epoch):
                kept = self.context_.get(b)
                while kept is not None and kept.arrivals and kept.arrivals[0][0] < horizon:
                    kept.drop_oldest()
            here = int((epoch % _DAY_S) // self.context_s)
            self.context_.setdefault(here, _Values()).add(epoch, value)
        if self.shape >= 2:
            self.recent_ = np.append(self.recent_[-(self.history + 2 * self.shape - 1) :], value)
        self.n_seen_ += 1
        return None

    def explain(self, x: Mapping[str, float | None], top: int = 3) -> list[tuple[str, float]]:
        """A univariate detector has one contributor: its point."""
        value = self._value(x)
        return [] if value is None else [(self.tag, 1.0)][:top]


def _ratio(distance: float | None, largest: float) -> float:
    if distance is None:
        return 0.0
    if largest > 0:
        return distance / largest
    # Nothing has varied yet: any change is new without bound, no change is not new at all.
    return 0.0 if distance == 0 else MAX_SCORE
