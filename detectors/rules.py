"""Rule detectors behind the one interface of ``detectors.base`` (STYLE.md B4).

Every detector scores one subject: higher is worse, 1.0 is the configured (first) limit, ``None`` when it cannot
judge (no value, not enough history). Deciding (levels, deadband, delays) is the trigger's job. Point detectors
read ``x[tag]``; device-health detectors read the engine's ``seen``/``online``/``invalid`` observations and are
scored on the engine's monotonic clock at every tick as well (``ticks = True``), because silence produces no
reading to score.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from detectors.base import Detector, finite
from detectors.specs import Expr

Obs = Mapping[str, float | None]


class _PointDetector(Detector):
    """A detector of one point's value ``x[tag]``; a missing or non-finite value is not judged."""

    tag: str

    def inputs(self) -> tuple[str, ...]:
        return (self.tag,)

    def _value(self, x: Obs) -> float | None:
        return finite(x.get(self.tag))


class Limit(_PointDetector):
    """Distance beyond a limit: ``1 + (value - limit) / scale`` on the high side (mirrored on the low side).

    ``scale`` only converts engineering units to the score; the trigger's thresholds and deadband are
    converted with ``score_of``, so any positive scale gives the same decisions.
    """

    key = "limit"
    immediate: ClassVar[bool] = True

    def __init__(self, *, tag: str, limit: float, side: str = "high", scale: float = 1.0) -> None:
        self.tag = tag
        self.limit = limit
        self.side = side
        self.scale = scale

    def score_of(self, value: float) -> float:
        """The score of a value in engineering units."""
        beyond = value - self.limit if self.side == "high" else self.limit - value
        return 1.0 + beyond / self.scale

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        value = self._value(x)
        return None if value is None else self.score_of(value)

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "temp_c", "limit": 60.0, "scale": 60.0}
        yield {"tag": "dew_point_c", "limit": -35.0, "side": "low", "scale": 35.0}

    @classmethod
    def example_anomaly(cls, params: dict[str, Any], typical: Obs) -> list[Obs]:
        tag, step = params["tag"], (50.0 if params.get("side", "high") == "high" else -50.0)
        return [{**typical, tag: (typical[tag] or 0.0) + step}]


class RateOfRise(_PointDetector):
    """Rate of change per second over about ``window_s``, divided by the first level's rate.

    The reference is the newest sample at least ``window_s`` old (else the oldest one at least half the window
    old); with no reference inside ``max_span_s`` (a gap in the data) there is no rate to judge.
    """

    key = "rate_of_rise"
    warm: ClassVar[bool] = True  # the engine teaches it recent readings at start (``Engine.warm_up``)

    def __init__(
        self, *, tag: str, window_s: float, per_s: float, direction: str = "rise", max_span_s: float | None = None
    ) -> None:
        self.tag = tag
        self.window_s = window_s
        self.per_s = per_s
        self.direction = direction
        self.max_span_s = max_span_s
        self._samples: deque[tuple[float, float]] = deque()

    def _span_limit(self) -> float:
        return self.max_span_s or 4 * self.window_s

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        value = self._value(x)
        if value is None or not self._samples:
            return None
        now = ts.timestamp()
        ref = None
        for t, v in reversed(self._samples):
            if now - t >= self.window_s:
                ref = (t, v)
                break
        if ref is None:
            t, v = self._samples[0]
            ref = (t, v) if now - t >= self.window_s / 2 else None
        if ref is None or now - ref[0] > self._span_limit() or now <= ref[0]:
            return None
        rate = (value - ref[1]) / (now - ref[0])
        return (rate if self.direction == "rise" else -rate) / self.per_s

    def learn_one(self, x: Obs, ts: datetime) -> None:
        value = self._value(x)
        if value is None:
            return
        now = ts.timestamp()
        self._samples.append((now, value))
        # keep one sample older than the longest span we may look back, drop the rest
        while len(self._samples) > 2 and now - self._samples[1][0] > self._span_limit():
            self._samples.popleft()

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "cell_temp_c", "window_s": 3.0, "per_s": 1.0}


class Deviation(_PointDetector):
    """Departure from the median of the last ``window_s`` (units, or percent of the baseline).

    ``protect``: the engine stops teaching the baseline while the subject is not normal, so a slow leak is not
    learnt as the new normal (river's ``protect_anomaly_detector``).
    """

    key = "deviation"
    protect: ClassVar[bool] = True
    warm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        tag: str,
        window_s: float,
        level: float,
        direction: str = "rise",
        relative: bool = False,
        min_samples: int = 10,
    ) -> None:
        self.tag = tag
        self.window_s = window_s
        self.level = level
        self.direction = direction
        self.relative = relative
        self.min_samples = min_samples
        self._samples: deque[tuple[float, float]] = deque()

    def baseline(self) -> float | None:
        if len(self._samples) < self.min_samples:
            return None
        return statistics.median(v for _, v in self._samples)

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        value = self._value(x)
        base = self.baseline()
        if value is None or base is None:
            return None
        diff = value - base if self.direction == "rise" else base - value
        if self.relative:
            if base == 0:
                return None
            diff = 100.0 * diff / abs(base)
        return diff / self.level

    def learn_one(self, x: Obs, ts: datetime) -> None:
        value = self._value(x)
        if value is None:
            return
        now = ts.timestamp()
        self._samples.append((now, value))
        while self._samples and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "voc_ppm", "window_s": 60.0, "level": 5.0, "min_samples": 5}


class Vote(Detector):
    """Evaluate a voting expression over leaf counts ``x["leaf<i>"]`` (true members of leaf i, None = no data).

    Score 1.0 when the expression holds; below it, ``votes / k`` for a ``k_of`` at the top, else 0.
    """

    key = "vote"
    immediate: ClassVar[bool] = True
    partial: ClassVar[bool] = True

    def __init__(self, *, expr: Expr) -> None:
        self.expr = expr

    def inputs(self) -> tuple[str, ...]:
        return tuple(f"leaf{i}" for i, _ in enumerate(self.expr.leaves()))

    def explain(self, x: Obs, top: int = 3) -> list[tuple[str, float]]:
        """The leaves that voted, most votes first."""
        votes = [(name, n) for name in self.inputs() if (n := finite(x.get(name))) is not None and n >= 1]
        return sorted(votes, key=lambda item: -item[1])[:top]

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"expr": Expr(k_of=1, of=[Expr(key="smoke_bool", above=0.5), Expr(rule="co_high")])}

    @classmethod
    def example_normal(cls, params: dict[str, Any], rows: Sequence[Obs]) -> list[Obs]:
        return [dict.fromkeys(row, 0.0) for row in rows]  # no leaf holds

    def _leaf_index(self) -> dict[int, int]:
        return {id(leaf): i for i, leaf in enumerate(self.expr.leaves())}

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        index = self._leaf_index()

        def count(node: Expr) -> tuple[float, bool]:
            """(votes, known): votes of a leaf are its true members; a composite casts one vote if it holds."""
            if node.rule is not None or node.key is not None:
                n = finite(x.get(f"leaf{index[id(node)]}"))
                return (0.0, False) if n is None else (float(n), True)
            parts = [count(p) for p in (node.all or node.any or node.of or [])]
            known = any(k for _, k in parts)
            if node.all is not None:
                holds = all(v >= 1 for v, _ in parts)
            elif node.any is not None:
                holds = any(v >= 1 for v, _ in parts)
            else:
                holds = sum(v for v, _ in parts) >= (node.k_of or 1)
            return (1.0 if holds else 0.0), known

        votes, known = count(self.expr)
        if not known:
            return None
        if votes >= 1:
            return 1.0
        if self.expr.k_of is not None and self.expr.of is not None:
            total = sum(count(p)[0] for p in self.expr.of)
            return min(total / self.expr.k_of, 0.99)
        return 0.0


class Stale(Detector):
    """Seconds since the device was last heard, divided by ``limit_s`` (N publishing intervals)."""

    key = "stale"
    ticks: ClassVar[bool] = True
    immediate: ClassVar[bool] = True

    def __init__(self, *, limit_s: float) -> None:
        self.limit_s = limit_s
        self._last: datetime | None = None

    def inputs(self) -> tuple[str, ...]:
        return ("seen",)

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        last = ts if x.get("seen") else self._last
        return None if last is None else max(0.0, (ts - last).total_seconds()) / self.limit_s

    def learn_one(self, x: Obs, ts: datetime) -> None:
        if x.get("seen") and (self._last is None or ts > self._last):
            self._last = ts

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"limit_s": 30.0}

    @classmethod
    def example_normal(cls, params: dict[str, Any], rows: Sequence[Obs]) -> list[Obs]:
        return [{"seen": 1.0} for _ in rows]

    @classmethod
    def example_anomaly(cls, params: dict[str, Any], typical: Obs) -> list[Obs]:
        return [{} for _ in range(5)]  # silence


class Offline(Detector):
    """1.0 while the device's status says offline, 0.0 while online (telemetry also counts as online)."""

    key = "offline"
    ticks: ClassVar[bool] = True
    immediate: ClassVar[bool] = True

    def __init__(self) -> None:
        self._online: float | None = None

    def inputs(self) -> tuple[str, ...]:
        return ("online",)

    @classmethod
    def example_normal(cls, params: dict[str, Any], rows: Sequence[Obs]) -> list[Obs]:
        return [{"online": 1.0} for _ in rows]

    @classmethod
    def example_anomaly(cls, params: dict[str, Any], typical: Obs) -> list[Obs]:
        return [{"online": 0.0}]

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        online = x.get("online", self._online)
        return None if online is None else (0.0 if online else 1.0)

    def learn_one(self, x: Obs, ts: datetime) -> None:
        if x.get("online") is not None:
            self._online = x["online"]


class Invalid(Detector):
    """Invalid samples (nulls, out-of-range values) in the last ``within_s``, divided by ``count``."""

    key = "invalid"
    ticks: ClassVar[bool] = True
    immediate: ClassVar[bool] = True

    def __init__(self, *, count: int, within_s: float) -> None:
        self.count = count
        self.within_s = within_s
        self._events: deque[tuple[datetime, float]] = deque()

    def inputs(self) -> tuple[str, ...]:
        return ("invalid",)

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        recent = sum(n for t, n in self._events if (ts - t).total_seconds() <= self.within_s)
        return (recent + (x.get("invalid") or 0.0)) / self.count

    def learn_one(self, x: Obs, ts: datetime) -> None:
        if x.get("invalid"):
            self._events.append((ts, float(x["invalid"])))
        while self._events and (ts - self._events[0][0]).total_seconds() > self.within_s:
            self._events.popleft()

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"count": 3, "within_s": 300.0}

    @classmethod
    def example_normal(cls, params: dict[str, Any], rows: Sequence[Obs]) -> list[Obs]:
        return [{"invalid": 0.0} for _ in rows]


class Flatline(_PointDetector):
    """How long the value has stayed within ``tolerance``, divided by ``window_s`` (a stuck transmitter)."""

    key = "flatline"
    warm: ClassVar[bool] = True

    def __init__(self, *, tag: str, window_s: float, tolerance: float = 0.0, min_samples: int = 5) -> None:
        self.tag = tag
        self.window_s = window_s
        self.tolerance = tolerance
        self.min_samples = min_samples
        self._run: tuple[datetime, float, float, int] | None = None  # since, low, high, samples

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        value = self._value(x)
        if value is None or self._run is None:
            return None
        since, low, high, n = self._run
        if max(high, value) - min(low, value) > self.tolerance:
            return 0.0
        if n + 1 < self.min_samples:
            return None
        return max(0.0, (ts - since).total_seconds()) / self.window_s

    def learn_one(self, x: Obs, ts: datetime) -> None:
        value = self._value(x)
        if value is None:
            return
        if self._run is not None:
            since, low, high, n = self._run
            low, high = min(low, value), max(high, value)
            if high - low <= self.tolerance:
                self._run = (since, low, high, n + 1)
                return
        self._run = (ts, value, value, 1)

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "temp_c", "window_s": 600.0}

    @classmethod
    def example_anomaly(cls, params: dict[str, Any], typical: Obs) -> list[Obs]:
        return [dict(typical) for _ in range(10)]  # the value stops moving


class Spike(_PointDetector):
    """Confirmed spikes in the last ``within_s``, divided by ``count``.

    A sample whose robust z-score (median and MAD of the recent history) exceeds ``z`` is a candidate; it is a
    spike only if the next sample is back near the median. If the next one is out as well, the signal has
    stepped to a new level (a real leak is a step, not a sensor fault) and both samples join the history.
    """

    key = "spike"
    warm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        tag: str,
        z: float = 8.0,
        samples: int = 30,
        count: int = 3,
        within_s: float = 600.0,
        min_scale: float = 0.0,
    ) -> None:
        self.tag = tag
        self.z = z
        self.samples = samples
        self.count = count
        self.within_s = within_s
        self.min_scale = min_scale
        self._history: deque[float] = deque(maxlen=samples)
        self._candidate: tuple[datetime, float] | None = None
        self._spikes: deque[datetime] = deque()

    def _outlier(self, value: float) -> bool | None:
        if len(self._history) < max(5, self.samples // 2):
            return None
        median = statistics.median(self._history)
        mad = statistics.median(abs(v - median) for v in self._history)
        scale = max(1.4826 * mad, self.min_scale, 1e-9 * max(1.0, abs(median)))
        return abs(value - median) / scale > self.z

    def _recent(self, ts: datetime) -> int:
        return sum(1 for t in self._spikes if (ts - t).total_seconds() <= self.within_s)

    def score_one(self, x: Obs, ts: datetime) -> float | None:
        value = self._value(x)
        if value is None:
            return None
        outlier = self._outlier(value)
        if outlier is None:
            return None
        confirmed = 1 if self._candidate is not None and not outlier else 0
        return (self._recent(ts) + confirmed) / self.count

    def learn_one(self, x: Obs, ts: datetime) -> None:
        value = self._value(x)
        if value is None:
            return
        outlier = self._outlier(value)
        if self._candidate is not None:
            if outlier:
                self._history.append(self._candidate[1])
                self._history.append(value)
            else:
                self._spikes.append(self._candidate[0])
                self._history.append(value)
            self._candidate = None
        elif outlier:
            self._candidate = (ts, value)
        else:
            self._history.append(value)
        while self._spikes and (ts - self._spikes[0]).total_seconds() > self.within_s:
            self._spikes.popleft()

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"tag": "temp_c", "samples": 10}

    @classmethod
    def example_anomaly(cls, params: dict[str, Any], typical: Obs) -> list[Obs]:
        tag = params["tag"]
        return [{**typical, tag: (typical[tag] or 0.0) + 50.0}, dict(typical)]  # out, then back: a spike


#: The rule detectors, registered with the models in ``detectors.registry`` (one registry for all).
RULE_DETECTORS: tuple[type[Detector], ...] = (
    Limit,
    RateOfRise,
    Deviation,
    Vote,
    Stale,
    Offline,
    Invalid,
    Flatline,
    Spike,
)
