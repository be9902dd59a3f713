"""Compliance evaluation: averaged values against limits, trend warnings and invalid-data time, as findings.

Two detectors follow the one detector interface (``detectors.base.Detector``: ``score_one`` then
``learn_one`` per observation, higher is worse, 1.0 is the limit, None when it cannot judge; this package may
import only ``core``, so they implement the interface rather than inherit it, and the contract test checks them):

* ``PeriodLimit`` scores a closed averaging period (hour or day mean of valid data; or every valid reading for
  a single-reading limit) when the first observation of the next period arrives;
* ``TrendProjection`` scores the running period's projected mean: the valid values so far plus a least-squares
  line through them for the rest of the period, so a warning comes before the mean crosses the limit.

``Evaluator`` feeds one outfall pollutant's samples to both and turns their scores into findings on change
(exceedance HIGH, warning MEDIUM, too little valid data LOW), the same ``core.model.Finding`` every detector
emits, so alarms, plans and notifications follow unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from compliance.limits import Averaging, Limit
from core.model import Finding, Severity, SubjectRef

_PERIOD = {Averaging.HOUR: timedelta(hours=1), Averaging.DAY: timedelta(days=1)}


def period_start(ts: datetime, averaging: Averaging, tz: ZoneInfo) -> datetime:
    local = ts.astimezone(tz)
    if averaging is Averaging.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class _Interface:
    key: ClassVar[str]
    version: ClassVar[int] = 1

    def prepare(self) -> None:
        """Nothing to load."""

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}


class PeriodLimit(_Interface):
    """Score of each closed averaging period: mean of valid values / limit (or each valid single reading).

    Observation ``x``: ``{"value": float, "valid": 1.0 or 0.0}`` and optionally ``"weight"`` (the flow, for
    flow-weighted wastewater means; a valid value without a known weight is left out). A period with fewer than
    ``min_valid`` valid values is not judged (None); ``last_`` keeps (period start, mean, valid count, count) of
    the last period.
    """

    key = "compliance_period_limit"

    def __init__(
        self,
        *,
        limit_min: float | None = None,
        limit_max: float | None = None,
        averaging: str = "hour",
        tz: str = "Asia/Shanghai",
        min_valid: int = 1,
    ) -> None:
        self.limit_min = limit_min
        self.limit_max = limit_max
        self.averaging = averaging
        self.tz = tz
        self.min_valid = min_valid
        self._start: datetime | None = None
        self._sum = 0.0
        self._weights = 0.0
        self._valid = 0
        self._count = 0
        self.last_: tuple[datetime, float | None, int, int] | None = None

    def _limit(self) -> Limit:
        if getattr(self, "_lim", None) is None:
            self._lim = Limit(pollutant="any", min=self.limit_min, max=self.limit_max, averaging=self.averaging)
        return self._lim

    def score_one(self, x: Mapping[str, float | None], ts: datetime) -> float | None:
        value, valid = x.get("value"), x.get("valid")
        if value is None or valid is None:
            return None
        averaging = Averaging(self.averaging)
        if averaging is Averaging.SINGLE:
            return self._limit().score(value) if valid else None
        start = period_start(ts, averaging, ZoneInfo(self.tz))
        if self._start is None or start <= self._start:
            return None
        mean = self._sum / self._weights if self._valid and self._weights > 0 else None
        self.last_ = (self._start, mean, self._valid, self._count)
        if mean is None or self._valid < self.min_valid:
            return None
        return self._limit().score(mean)

    def learn_one(self, x: Mapping[str, float | None], ts: datetime) -> None:
        value, valid = x.get("value"), x.get("valid")
        if value is None or valid is None or Averaging(self.averaging) is Averaging.SINGLE:
            return None
        start = period_start(ts, Averaging(self.averaging), ZoneInfo(self.tz))
        if self._start is None or start > self._start:
            self._start, self._sum, self._weights, self._valid, self._count = start, 0.0, 0.0, 0, 0
        elif start < self._start:
            return None  # late data belongs to a period already judged
        self._count += 1
        weight = x.get("weight", 1.0)
        if valid and weight is not None and weight >= 0:
            self._sum += value * weight
            self._weights += weight
            self._valid += 1
        return None

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"limit_max": 50.0, "averaging": "hour"}
        yield {"limit_min": 6.0, "limit_max": 9.0, "averaging": "single"}


class TrendProjection(_Interface):
    """Projected mean of the running period / limit, from the valid values so far and their linear trend."""

    key = "compliance_trend"

    def __init__(
        self,
        *,
        limit_max: float = 1.0,
        averaging: str = "hour",
        tz: str = "Asia/Shanghai",
        interval_s: float = 60.0,
        min_points: int = 5,
    ) -> None:
        self.limit_max = limit_max
        self.averaging = averaging
        self.tz = tz
        self.interval_s = interval_s
        self.min_points = min_points
        self._start: datetime | None = None
        self._points: list[tuple[float, float]] = []

    def score_one(self, x: Mapping[str, float | None], ts: datetime) -> float | None:
        value, valid = x.get("value"), x.get("valid")
        if value is None or not valid or self.limit_max <= 0:
            return None
        start = period_start(ts, Averaging(self.averaging), ZoneInfo(self.tz))
        points = [] if self._start is None or start != self._start else list(self._points)
        points.append(((ts - start).total_seconds(), value))
        if len(points) < self.min_points:
            return None
        return (
            projected_mean(points, _PERIOD[Averaging(self.averaging)].total_seconds(), self.interval_s) / self.limit_max
        )

    def learn_one(self, x: Mapping[str, float | None], ts: datetime) -> None:
        value, valid = x.get("value"), x.get("valid")
        if value is None or not valid:
            return None
        start = period_start(ts, Averaging(self.averaging), ZoneInfo(self.tz))
        if self._start != start:
            self._start, self._points = start, []
        self._points.append(((ts - start).total_seconds(), value))
        return None

    @classmethod
    def example_params(cls) -> Iterator[dict[str, Any]]:
        yield {"limit_max": 50.0, "averaging": "hour", "interval_s": 60.0, "min_points": 3}


def projected_mean(points: list[tuple[float, float]], period_s: float, interval_s: float) -> float:
    """Mean over the period of the observed values plus a least-squares line at the remaining sample times.

    ``points``: (seconds since the period start, value). The remaining sample times are every ``interval_s``
    after the last observation, up to the end of the period.
    """
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0
    last = max(t for t, _ in points)
    future = []
    t = last + interval_s
    while t < period_s:
        future.append(mean_v + slope * (t - mean_t))
        t += interval_s
    return (sum(v for _, v in points) + sum(future)) / (n + len(future))


@dataclass
class _State:
    severity: Severity = Severity.NORMAL


@dataclass(frozen=True, slots=True)
class PeriodResult:
    """A closed averaging period (or a single reading beyond a single-reading limit) and its verdict."""

    pollutant: str
    averaging: str
    start: datetime
    value: float | None
    n_valid: int
    n_total: int
    valid: bool
    exceeded: bool
    limit: Limit
    source: str


@dataclass
class Evaluator:
    """Findings for one pollutant of one outfall against one limit: exceedance, warning, invalid data."""

    subject: SubjectRef
    pollutant: str
    limit: Limit
    source: str
    tz: str = "Asia/Shanghai"
    interval_s: float = 60.0
    min_valid: int = 1
    warn_at: float = 1.0  # projected mean / limit at which the warning starts
    _period: PeriodLimit = field(init=False)
    _trend: TrendProjection | None = field(init=False)
    _states: dict[str, _State] = field(default_factory=dict, init=False)
    _judged: datetime | None = field(default=None, init=False)
    #: closed periods since the caller last took them (``take_results``)
    results: list[PeriodResult] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._period = PeriodLimit(
            limit_min=self.limit.min,
            limit_max=self.limit.max,
            averaging=self.limit.averaging.value,
            tz=self.tz,
            min_valid=self.min_valid,
        )
        self._trend = (
            None
            if self.limit.averaging is Averaging.SINGLE or self.limit.max is None
            else TrendProjection(
                limit_max=self.limit.max, averaging=self.limit.averaging.value, tz=self.tz, interval_s=self.interval_s
            )
        )

    def rule(self, kind: str) -> str:
        return f"compliance.{kind}.{self.pollutant}.{self.limit.averaging.value}"

    def take_results(self) -> list[PeriodResult]:
        out, self.results = self.results, []
        return out

    def feed(self, ts: datetime, value: float | None, valid: bool, weight: float | None = 1.0) -> list[Finding]:
        """Score, then learn, one sample (in time order); return the findings it causes."""
        x = {"value": value, "valid": 1.0 if valid else 0.0, "weight": weight}
        out: list[Finding] = []
        score = self._period.score_one(x, ts)
        if self.limit.averaging is Averaging.SINGLE:
            if score is not None:
                if self.limit.exceeded(value):
                    self.results.append(
                        PeriodResult(self.pollutant, "single", ts, value, 1, 1, True, True, self.limit, self.source)
                    )
                out += self._edge(
                    "exceedance",
                    Severity.HIGH if self.limit.exceeded(value) else Severity.NORMAL,
                    ts,
                    score,
                    value,
                    f"{self.pollutant} reading {value:g} against {self._bounds()} ({self.source})",
                )
        elif self._period.last_ is not None and self._period.last_[0] != self._judged:
            start, mean, n_valid, count = self._period.last_
            self._judged = start
            what = f"{self.pollutant} {self.limit.averaging.value} from {start:%Y-%m-%d %H:%M}"
            out += self._edge(
                "invalid",
                Severity.NORMAL if score is not None else Severity.LOW,
                ts,
                None,
                mean,
                f"{what}: {n_valid} valid of {count} values (at least {self.min_valid} needed)",
            )
            self.results.append(
                PeriodResult(
                    self.pollutant,
                    self.limit.averaging.value,
                    start,
                    mean,
                    n_valid,
                    count,
                    score is not None,
                    score is not None and self.limit.exceeded(mean),
                    self.limit,
                    self.source,
                )
            )
            if score is not None:
                exceeded = self.limit.exceeded(mean)
                out += self._edge(
                    "exceedance",
                    Severity.HIGH if exceeded else Severity.NORMAL,
                    ts,
                    score,
                    mean,
                    f"{what}: mean {mean:.4g} against {self._bounds()} ({self.source})",
                )
            out += self._edge("warning", Severity.NORMAL, ts, None, mean, f"{what}: period closed")
        if self._trend is not None:
            projected = self._trend.score_one(x, ts)
            exceeding = self._states.get(self.rule("exceedance"), _State()).severity > Severity.NORMAL
            if projected is not None and not exceeding:
                mean = projected * (self.limit.max or 0)
                out += self._edge(
                    "warning",
                    Severity.MEDIUM if projected >= self.warn_at else Severity.NORMAL,
                    ts,
                    projected,
                    mean,
                    f"{self.pollutant} {self.limit.averaging.value} mean "
                    f"projected at {mean:.4g} against {self._bounds()} ({self.source})",
                )
            self._trend.learn_one(x, ts)
        self._period.learn_one(x, ts)
        return out

    def _bounds(self) -> str:
        lo, hi = self.limit.min, self.limit.max
        return (
            f"{lo:g}-{hi:g}"
            if lo is not None and hi is not None
            else (f"<= {hi:g}" if hi is not None else f">= {lo:g}")
        )

    def _edge(
        self, kind: str, severity: Severity, ts: datetime, score: float | None, value: float | None, message: str
    ) -> list[Finding]:
        rule = self.rule(kind)
        state = self._states.setdefault(rule, _State())
        if state.severity == severity:
            return []
        state.severity = severity
        return [
            Finding(
                rule=rule,
                detector=f"compliance_{kind}",
                subject=self.subject,
                severity=severity,
                ts=ts,
                score=score,
                value=value,
                message=message,
                details={
                    "pollutant": self.pollutant,
                    "limit_min": self.limit.min,
                    "limit_max": self.limit.max,
                    "averaging": self.limit.averaging.value,
                    "source": self.source,
                },
            )
        ]
