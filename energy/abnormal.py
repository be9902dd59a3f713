"""Abnormal energy consumption: pure decisions, each naming the meter, the device and the expected value.

Three checks (issue #13, item 7; the plant's sources name drying ovens, injection machines and compressed air):

``energy.above_band``             the actual energy stayed above the upper edge of the baseline's prediction band
                                  (``energy.baseline.Baseline.band``) for ``persist`` consecutive periods
``energy.running_while_stopped``  production output was zero while the meter kept drawing more than its learned
                                  standby level, for ``persist`` consecutive intervals (an oven left heating, an
                                  injection machine idling hot)
``energy.night_base_load``        a compressed-air meter's night-time base load (its quietest hours, when the
                                  plant is idle and only leaks draw air) is above the level learned from past
                                  nights by ``factor``
``energy.above_profile``          a meter's hourly energy above its own typical profile (the median of the same
                                  site-local hour of the week in earlier weeks, band ``factor`` × median or
                                  ``spread`` scaled MADs, whichever is wider) for ``persist`` consecutive hours

Every decision returns ``None`` (nothing abnormal, or not enough data to judge) or an ``Abnormal`` with the
expected and actual energy over the abnormal stretch; ``to_finding`` turns it into a ``core.model.Finding`` for the
alarm engine (the composition root records it with ``alerts.service.apply_findings``). The functions never read
the database, so they are tested on plain series.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import pandas as pd

from core.model import Finding, Severity, SubjectRef


class Kind(StrEnum):
    ABOVE_BAND = "energy.above_band"
    RUNNING_WHILE_STOPPED = "energy.running_while_stopped"
    NIGHT_BASE_LOAD = "energy.night_base_load"
    ABOVE_PROFILE = "energy.above_profile"


TITLES: dict[Kind, tuple[str, str]] = {
    Kind.ABOVE_BAND: ("能耗超出基线预测区间", "Energy above the baseline's prediction band"),
    Kind.RUNNING_WHILE_STOPPED: ("停产期间仍在耗能", "Consuming energy while production is stopped"),
    Kind.NIGHT_BASE_LOAD: ("夜间压缩空气基础负荷偏高", "Night-time compressed-air base load too high"),
    Kind.ABOVE_PROFILE: ("能耗高于该表典型负荷曲线", "Energy well above the meter's typical weekly profile"),
}


@dataclass(frozen=True, slots=True)
class Abnormal:
    """One abnormal-consumption decision: what, where, since when, and expected vs actual over the stretch."""

    kind: Kind
    meter: str
    since: datetime
    until: datetime
    expected: float
    actual: float
    unit: str
    device: str | None = None
    area: str | None = None
    periods: int = 1

    @property
    def excess(self) -> float:
        return self.actual - self.expected

    @property
    def ratio(self) -> float:
        return self.actual / self.expected if self.expected > 0 else math.inf

    def message(self) -> str:
        zh, en = TITLES[self.kind]
        where = self.device or self.meter
        return (
            f"{zh}：{where} 实际 {self.actual:.1f} {self.unit}，预期 {self.expected:.1f} {self.unit} / "
            f"{en}: {where} actual {self.actual:.1f} {self.unit}, expected {self.expected:.1f} {self.unit}"
        )


def _trailing_run(flags: np.ndarray) -> int:
    """Length of the run of True at the end of ``flags``."""
    if len(flags) == 0 or not flags[-1]:
        return 0
    falses = np.flatnonzero(~flags)
    return len(flags) if len(falses) == 0 else len(flags) - 1 - int(falses[-1])


def _contiguous_tail(index: pd.Index, run: int) -> int:
    """Shorten a trailing run so that it has no hole: consecutive periods one step apart (the smallest step of
    the index); a missing interval breaks a run even when both sides were flagged."""
    if run <= 1 or len(index) < 2:
        return run
    steps = pd.Series(index).diff().iloc[1:]
    step = steps.min()
    tail = steps.iloc[-(run - 1) :].to_numpy()
    holes = np.flatnonzero(tail != step)
    return run if len(holes) == 0 else run - 1 - int(holes[-1])


def _finite(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce").astype(float)
    return values[np.isfinite(values.to_numpy())]


def above_band(
    actual: pd.Series,
    band: pd.DataFrame,
    *,
    meter: str,
    unit: str,
    persist: int = 2,
    device: str | None = None,
    area: str | None = None,
) -> Abnormal | None:
    """Actual energy above ``band["upper"]`` in each of the last ``persist`` periods (both on the same index).

    ``band`` comes from ``Baseline.band(variables)`` and defines the periods; a period without an actual value
    breaks the run.
    """
    if persist < 1:
        raise ValueError("persist must be at least 1")
    data = band[["expected", "upper"]].join(actual.rename("actual"), how="left").sort_index()
    flags = (data["actual"] > data["upper"]).to_numpy() & np.isfinite(data.to_numpy()).all(axis=1)
    run = _trailing_run(flags)
    if run < persist:
        return None
    stretch = data.iloc[-run:]
    return Abnormal(
        Kind.ABOVE_BAND,
        meter,
        stretch.index[0],
        stretch.index[-1],
        expected=math.fsum(stretch["expected"]),
        actual=math.fsum(stretch["actual"]),
        unit=unit,
        device=device,
        area=area,
        periods=run,
    )


def learn_standby(
    energy: pd.Series, output: pd.Series, *, quantile: float = 0.9, min_intervals: int = 16
) -> float | None:
    """Standby energy per interval: the ``quantile`` of energy in past intervals with zero output.

    ``None`` when the history holds fewer than ``min_intervals`` stopped intervals (too little to learn from).
    """
    data = pd.concat([_finite(energy).rename("e"), _finite(output).rename("o")], axis=1, join="inner")
    idle = data.loc[data["o"] <= 0, "e"]
    if len(idle) < min_intervals:
        return None
    return float(np.quantile(idle.to_numpy(), quantile))


def running_while_stopped(
    energy: pd.Series,
    output: pd.Series,
    *,
    standby: float,
    meter: str,
    unit: str,
    persist: int = 4,
    factor: float = 1.5,
    min_excess: float = 0.0,
    device: str | None = None,
    area: str | None = None,
) -> Abnormal | None:
    """Zero output and energy above ``factor × standby`` (and ``standby + min_excess``) in the last ``persist``
    intervals (same index for ``energy`` and ``output``; missing intervals break the run)."""
    if persist < 1 or factor < 1 or standby < 0:
        raise ValueError("persist >= 1, factor >= 1 and standby >= 0 are required")
    data = pd.concat([_finite(energy).rename("e"), _finite(output).rename("o")], axis=1, join="inner").sort_index()
    limit = max(standby * factor, standby + min_excess)
    flags = ((data["o"] <= 0) & (data["e"] > limit)).to_numpy()
    run = _contiguous_tail(data.index, _trailing_run(flags))
    if run < persist:
        return None
    stretch = data.iloc[-run:]
    return Abnormal(
        Kind.RUNNING_WHILE_STOPPED,
        meter,
        stretch.index[0],
        stretch.index[-1],
        expected=standby * run,
        actual=math.fsum(stretch["e"]),
        unit=unit,
        device=device,
        area=area,
        periods=run,
    )


def night_means(energy: pd.Series, *, tz: str, hours: tuple[int, int] = (1, 5)) -> pd.Series:
    """Mean energy per interval in each night's window [hours[0], hours[1]) site-local time, by night (date).

    Only complete nights count (every interval of the window present), so a half-reported night cannot look
    quiet or busy.
    """
    start, end = hours
    if not 0 <= start < end <= 24:
        raise ValueError("night hours must satisfy 0 <= start < end <= 24")
    values = _finite(energy)
    if values.empty:
        return pd.Series([], dtype=float)
    local = values.copy()
    local.index = values.index.tz_convert(tz) if values.index.tz is not None else values.index.tz_localize(tz)
    window = local[(local.index.hour >= start) & (local.index.hour < end)]
    if window.empty:
        return pd.Series([], dtype=float)
    step = pd.Series(local.index).diff().dropna().min() if len(local) > 1 else pd.Timedelta(minutes=15)
    expected = int(pd.Timedelta(hours=end - start) / step)
    grouped = window.groupby(window.index.date)
    counts = grouped.size()
    means = grouped.mean()
    return means[counts >= expected]


def learn_night_base(
    energy: pd.Series, *, tz: str, hours: tuple[int, int] = (1, 5), min_nights: int = 7
) -> float | None:
    """Learned night base load per interval: the median of past complete nights' means (robust to a few nights
    with a leak or overtime); ``None`` with fewer than ``min_nights`` nights."""
    nights = night_means(energy, tz=tz, hours=hours)
    if len(nights) < min_nights:
        return None
    return float(nights.median())


def night_base_load(
    energy: pd.Series,
    *,
    learned: float,
    tz: str,
    meter: str,
    unit: str,
    hours: tuple[int, int] = (1, 5),
    factor: float = 1.3,
    min_excess: float = 0.0,
    device: str | None = None,
    area: str | None = None,
) -> Abnormal | None:
    """The latest complete night's mean base load above ``factor × learned`` (and ``learned + min_excess``).

    Meant for compressed-air meters (flow or the compressors' electricity): at night the plant is idle and what
    remains is leaks. The result gives expected and actual energy over that night's window.
    """
    if learned < 0 or factor < 1:
        raise ValueError("learned >= 0 and factor >= 1 are required")
    nights = night_means(energy, tz=tz, hours=hours)
    if nights.empty:
        return None
    night, mean = nights.index[-1], float(nights.iloc[-1])
    if mean <= max(learned * factor, learned + min_excess):
        return None
    window = pd.Timedelta(hours=hours[1] - hours[0])
    zone = pd.Timestamp(night).tz_localize(tz)
    since = zone + pd.Timedelta(hours=hours[0])
    local = energy.index.tz_convert(tz) if energy.index.tz is not None else energy.index.tz_localize(tz)
    intervals = int(((local >= since) & (local < since + window)).sum())
    return Abnormal(
        Kind.NIGHT_BASE_LOAD,
        meter,
        since.to_pydatetime(),
        (since + window).to_pydatetime(),
        expected=learned * intervals,
        actual=mean * intervals,
        unit=unit,
        device=device,
        area=area,
        periods=intervals,
    )


WEEK = pd.Timedelta(days=7)


def profile_band(
    hourly: pd.Series, *, weeks: int = 4, min_weeks: int = 2, factor: float = 1.2, spread: float = 3.0
) -> pd.DataFrame:
    """Expected energy and the band's upper edge for every hour of ``hourly`` (complete hours' energy indexed by
    hour start; NaN or absent = not measured), from the same hour ``1..weeks`` weeks earlier.

    ``expected`` is the median of those earlier values, ``upper`` is ``max(factor × median, median + spread ×
    1.4826 × MAD)``; both NaN where fewer than ``min_weeks`` earlier values exist. Using the same absolute hour
    one week back keeps the site-local hour of the week (fixed-offset zones; a DST shift moves it by an hour).
    """
    if weeks < 1 or not 1 <= min_weeks <= weeks or factor < 1 or spread < 0:
        raise ValueError("weeks >= min_weeks >= 1, factor >= 1 and spread >= 0 are required")
    values = _finite(hourly)
    past = (
        np.column_stack([values.reindex(hourly.index - k * WEEK).to_numpy() for k in range(1, weeks + 1)])
        if len(hourly)
        else np.empty((0, weeks))
    )
    enough = np.isfinite(past).sum(axis=1) >= min_weeks
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(past, axis=1) if len(past) else np.empty(0)
        mad = np.nanmedian(np.abs(past - median[:, None]), axis=1) if len(past) else np.empty(0)
    upper = np.maximum(median * factor, median + spread * 1.4826 * mad)
    return pd.DataFrame(
        {"expected": np.where(enough, median, np.nan), "upper": np.where(enough, upper, np.nan)}, index=hourly.index
    )


def above_profile(
    hourly: pd.Series,
    *,
    meter: str,
    unit: str,
    persist: int = 3,
    weeks: int = 4,
    min_weeks: int = 2,
    factor: float = 1.2,
    spread: float = 3.0,
    min_excess: float = 0.0,
    device: str | None = None,
    area: str | None = None,
) -> Abnormal | None:
    """Energy above the meter's typical weekly profile (``profile_band``) in each of the last ``persist`` hours of
    ``hourly`` (an hourly index; an hour without energy or without enough history breaks the run). An hour also
    needs ``min_excess`` above its expected energy to count, so a meter that is nearly idle is not judged on noise.
    """
    if persist < 1 or min_excess < 0:
        raise ValueError("persist >= 1 and min_excess >= 0 are required")
    data = profile_band(hourly, weeks=weeks, min_weeks=min_weeks, factor=factor, spread=spread)
    data["actual"] = pd.to_numeric(hourly, errors="coerce").astype(float)
    data = data.sort_index()
    with np.errstate(invalid="ignore"):
        flags = (
            (data["actual"] > data["upper"]) & (data["actual"] > data["expected"] + min_excess)
        ).to_numpy() & np.isfinite(data.to_numpy()).all(axis=1)
    run = _contiguous_tail(data.index, _trailing_run(flags))
    if run < persist:
        return None
    stretch = data.iloc[-run:]
    return Abnormal(
        Kind.ABOVE_PROFILE,
        meter,
        stretch.index[0],
        stretch.index[-1],
        expected=math.fsum(stretch["expected"]),
        actual=math.fsum(stretch["actual"]),
        unit=unit,
        device=device,
        area=area,
        periods=run,
    )


def severity(result: Abnormal, *, high_ratio: float = 2.0) -> Severity:
    """MEDIUM for an abnormal stretch, HIGH when the actual energy is at least ``high_ratio`` × expected."""
    return Severity.HIGH if result.ratio >= high_ratio else Severity.MEDIUM


def to_finding(result: Abnormal, *, site: str, now: datetime, caused_by: str | None = None) -> Finding:
    """The decision as a finding for the alarm engine (rules ``energy.*``; the plant's alarm rules route them)."""
    name, name_en = TITLES[result.kind]
    subject = SubjectRef(site=site, area=result.area, device=result.device, point=result.meter)
    return Finding(
        rule=result.kind.value,
        detector="energy",
        subject=subject,
        severity=severity(result),
        ts=now,
        score=result.ratio if math.isfinite(result.ratio) else None,
        value=result.actual,
        message=result.message(),
        caused_by=caused_by,
        details={
            "name": name,
            "name_en": name_en,
            "type": "energy",
            "plan": [],
            "meter": result.meter,
            "device": result.device,
            "expected": result.expected,
            "actual": result.actual,
            "unit": result.unit,
            "since": result.since.isoformat(),
            "until": result.until.isoformat(),
            "periods": result.periods,
            "finding_id": f"{result.kind.value}:{subject.key}:{now.isoformat()}",
        },
    )
