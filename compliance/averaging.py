"""Averaging the regulator's way: means of valid data only, per local hour and day (pure functions).

* Valid data: a value whose HJ 212 flag is N (or that came without a flag); F, M, S, D, C, T and B data are
  left out of every mean (HJ 212-2017 Table 8; domain/standards.md 2.7).
* Wastewater means are flow-weighted when the flow is known, C = sum(C_i*Q_i)/sum(Q_i) (HJ 212-2017 Appendix D:
  G = C*D, C = G/D), else arithmetic (also allowed by Appendix D).
* Flue gas: concentrations are corrected to the reference O2 sample by sample, C_ref = C*(21-O2_ref)/(21-O2)
  (HJ/T 75, GB 37822 for combustion devices: 3 %); an hour needs 45 valid minutes and a day 20 valid hours
  (domain/standards.md 2.11); the thresholds are parameters so a permit can set others.
* Wastewater of large-format Li-ion plants is judged on the benchmark drainage volume (环函〔2014〕170号):
  above the benchmark per 10^4 Ah, C_benchmark = C * Q_total / sum(Y_i * Q_i_benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

VALID_FLAGS = frozenset({"N"})


@dataclass(frozen=True, slots=True)
class Sample:
    ts: datetime  # aware
    value: float | None
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class PeriodMean:
    start: datetime  # local start of the hour or day (aware, in the site's zone)
    mean: float | None  # None when there is no valid value
    n_valid: int
    n_total: int
    valid: bool  # enough valid values for the period to count

    @property
    def invalid(self) -> int:
        return self.n_total - self.n_valid


def is_valid(sample: Sample, valid_flags: frozenset[str] = VALID_FLAGS) -> bool:
    return sample.value is not None and (sample.flag is None or sample.flag in valid_flags)


def o2_corrected(value: float, o2_pct: float, reference_pct: float) -> float | None:
    """Concentration at the reference O2; None when the measured O2 makes it meaningless (>= 21 %)."""
    if o2_pct >= 21.0 or o2_pct < 0:
        return None
    return value * (21.0 - reference_pct) / (21.0 - o2_pct)


def correct_series(
    samples: Sequence[Sample], o2: Sequence[Sample], reference_pct: float, valid_flags: frozenset[str] = VALID_FLAGS
) -> list[Sample]:
    """Correct each sample with the O2 sample of the same time; no valid O2 -> the sample is invalid ('D')."""
    by_time = {s.ts: s for s in o2}
    out = []
    for sample in samples:
        oxygen = by_time.get(sample.ts)
        corrected = None
        if sample.value is not None and oxygen is not None and is_valid(oxygen, valid_flags):
            corrected = o2_corrected(sample.value, oxygen.value, reference_pct)
        if corrected is None:
            out.append(Sample(sample.ts, sample.value, sample.flag if sample.flag not in (None, "N") else "D"))
        else:
            out.append(Sample(sample.ts, corrected, sample.flag))
    return out


def _bucket(ts: datetime, tz: ZoneInfo, period: str) -> datetime:
    local = ts.astimezone(tz)
    if period == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def means(
    samples: Iterable[Sample],
    *,
    period: str,
    tz: ZoneInfo,
    min_valid: int = 1,
    flow: Sequence[Sample] = (),
    valid_flags: frozenset[str] = VALID_FLAGS,
) -> list[PeriodMean]:
    """Mean of the valid samples per local hour or day (``period``), flow-weighted when ``flow`` is given.

    A sample whose flow is unknown or invalid at a flow-weighted outfall is left out (its volume is unknown).
    """
    flows = {s.ts: s for s in flow}
    buckets: dict[datetime, list[Sample]] = {}
    for sample in samples:
        buckets.setdefault(_bucket(sample.ts, tz, period), []).append(sample)
    out = []
    for start in sorted(buckets):
        group = buckets[start]
        good = [s for s in group if is_valid(s, valid_flags)]
        if flows:
            pairs = [(s.value, flows[s.ts].value) for s in good if s.ts in flows and is_valid(flows[s.ts], valid_flags)]
            volume = sum(q for _, q in pairs)
            mean = sum(c * q for c, q in pairs) / volume if volume > 0 else None
            n_valid = len(pairs)
        else:
            n_valid = len(good)
            mean = sum(s.value for s in good) / n_valid if n_valid else None
        out.append(PeriodMean(start, mean, n_valid, len(group), n_valid >= min_valid and mean is not None))
    return out


def daily_from_hourly(hourly: Sequence[PeriodMean], *, min_hours: int = 20) -> list[PeriodMean]:
    """Daily means as the mean of the valid hourly means (flue gas: at least 20 valid hours)."""
    days: dict[datetime, list[PeriodMean]] = {}
    for hour in hourly:
        days.setdefault(hour.start.replace(hour=0), []).append(hour)
    out = []
    for start in sorted(days):
        good = [h.mean for h in days[start] if h.valid and h.mean is not None]
        mean = sum(good) / len(good) if good else None
        out.append(PeriodMean(start, mean, len(good), len(days[start]), len(good) >= min_hours))
    return out


def invalid_seconds(
    samples: Sequence[Sample],
    *,
    start: datetime,
    end: datetime,
    interval_s: float,
    valid_flags: frozenset[str] = VALID_FLAGS,
) -> float:
    """Time in [start, end) without valid data: flagged or missing samples, each standing for ``interval_s``."""
    expected = (end - start).total_seconds() / interval_s
    valid = sum(1 for s in samples if start <= s.ts < end and is_valid(s, valid_flags))
    return max(expected - valid, 0.0) * interval_s


def benchmark_concentration(measured: float, *, drainage_m3: float, production: Sequence[tuple[float, float]]) -> float:
    """Concentration on the benchmark drainage basis (GB 30484-2013, 环函〔2014〕170号).

    ``production``: (output in 10^4 Ah, benchmark m3 per 10^4 Ah) per product. Below the benchmark volume the
    measured concentration stands; above it, C = C_measured * Q_total / sum(Y_i * Q_i,benchmark).
    """
    allowed = sum(y * q for y, q in production)
    if allowed <= 0 or drainage_m3 <= allowed:
        return measured
    return measured * drainage_m3 / allowed


@dataclass(frozen=True, slots=True)
class TotalCheck:
    total: float  # year to date, in the -Cou unit (kg, m3)
    permitted: float  # per year
    used: float  # total / permitted
    projected: float  # the year's total at the pace so far
    exceeded: bool
    on_pace_to_exceed: bool


def totals_by(
    samples: Iterable[Sample], *, tz: ZoneInfo, period: str, valid_flags: frozenset[str] = VALID_FLAGS
) -> dict[date, float]:
    """Sum of interval totals (-Cou) per local day (``period='day'``) or month (first day of the month)."""
    out: dict[date, float] = {}
    for sample in samples:
        if not is_valid(sample, valid_flags):
            continue
        local = sample.ts.astimezone(tz).date()
        key = local if period == "day" else local.replace(day=1)
        out[key] = out.get(key, 0.0) + sample.value
    return out


def annual_check(year_to_date: float, permitted: float, *, through: date) -> TotalCheck:
    """Compare the year-to-date total (through the end of ``through``) with the permitted annual total."""
    first = date(through.year, 1, 1)
    days_in_year = (date(through.year + 1, 1, 1) - first).days
    elapsed = (through - first).days + 1
    projected = year_to_date * days_in_year / elapsed
    return TotalCheck(
        year_to_date, permitted, year_to_date / permitted, projected, year_to_date > permitted, projected > permitted
    )
