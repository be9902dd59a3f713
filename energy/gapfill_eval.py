"""Evaluation of gap filling on a 15-minute kWh series (``ehs eval energy-gapfill``, issue #13).

Protocol: the file's ``Usage_kWh`` column becomes a cumulative counter. In the test period (from ``test_from``)
``gaps_per_length`` gaps of each length (1 h, 4 h, 24 h) are placed at seeded random positions, wholly inside the
test period. Each gap is evaluated on its own, with everything before and after it known (as when the counter
reading that closes a gap arrives): the counter delta across the gap is distributed by ``energy.gapfill.distribute``
(given the series without the gap's intervals as history) and, for comparison, linearly (equal shares). The removed
values are used only to score. RMSE is per 15-minute interval, pooled over all gaps (so long gaps weigh by their
interval count), and per gap length.

The file format is the steel-industry CSV (UCI "Steel Industry Energy Consumption"): a ``date`` column
``DD/MM/YYYY HH:MM`` stamping the *end* of each 15-minute interval, where the day's last interval (ending at
midnight) carries that same day's date with ``00:00``; and ``Usage_kWh``. Other columns are ignored (the reactive
power of the same meter would be missing in a real gap too, so it is not used).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from energy.gapfill import distribute

GAP_LENGTHS: dict[str, int] = {"1h": 4, "4h": 16, "24h": 96}
DEFAULT_TEST_FROM = "2018-10-01"
_STEP = timedelta(minutes=15)


class SeriesFileError(ValueError):
    """The file cannot be read as a 15-minute kWh series; the message names the line and the field."""

    def __init__(self, line: int, field_name: str, message: str) -> None:
        super().__init__(f"line {line}, field {field_name!r}: {message}")
        self.line = line
        self.field = field_name


def read_steel_csv(source: Path | str | bytes) -> pd.Series:
    """kWh per 15-minute interval, indexed by interval start (UTC-labelled), from a steel-industry CSV.

    Raises ``SeriesFileError`` (one line, with line number and field) for anything else: missing columns, bad
    dates or numbers, negative or non-finite energy, intervals out of order, duplicated or missing.
    """
    if isinstance(source, bytes):
        raw = source
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise SeriesFileError(0, "file", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SeriesFileError(line, "file", "not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise SeriesFileError(1, "header", f"not CSV: {exc}") from None
    if header is None:
        raise SeriesFileError(1, "header", "the file is empty")
    names = [h.strip() for h in header]
    for needed in ("date", "Usage_kWh"):
        if needed not in names:
            raise SeriesFileError(1, needed, "column missing from the header")
    i_date, i_kwh = names.index("date"), names.index("Usage_kWh")
    starts: list[datetime] = []
    values: list[float] = []
    previous: datetime | None = None
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= max(i_date, i_kwh):
                raise SeriesFileError(line, "date" if len(row) <= i_date else "Usage_kWh", "missing value")
            end = _parse_end(row[i_date].strip(), line)
            start = end - _STEP
            value = _parse_kwh(row[i_kwh].strip(), line)
            if previous is not None and start != previous + _STEP:
                what = "out of order or duplicated" if start <= previous else "missing intervals before it"
                raise SeriesFileError(
                    line, "date", f"{row[i_date].strip()!r} is not 15 minutes after the previous row ({what})"
                )
            previous = start
            starts.append(start)
            values.append(value)
    except csv.Error as exc:
        raise SeriesFileError(reader.line_num, "row", f"not CSV: {exc}") from None
    if not values:
        raise SeriesFileError(2, "date", "no data rows")
    return pd.Series(values, index=pd.DatetimeIndex(starts), name="kwh")


def _parse_end(text: str, line: int) -> datetime:
    try:
        stamp = datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise SeriesFileError(line, "date", f"{text[:40]!r} is not DD/MM/YYYY HH:MM") from None
    if stamp.minute % 15:
        raise SeriesFileError(line, "date", f"{text!r} is not on a 15-minute boundary")
    if stamp.hour == 0 and stamp.minute == 0:
        stamp += timedelta(days=1)  # the interval ending at midnight carries the day it belongs to
    return stamp


def _parse_kwh(text: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SeriesFileError(line, "Usage_kWh", f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise SeriesFileError(line, "Usage_kWh", f"{text!r} must be a finite number >= 0")
    return value


@dataclass(frozen=True, slots=True)
class GapScore:
    gaps: int
    intervals: int
    rmse_linear: float
    rmse_method: float

    @property
    def ratio(self) -> float:
        return self.rmse_method / self.rmse_linear if self.rmse_linear > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class GapfillResult:
    overall: GapScore
    by_gap: dict[str, GapScore]
    energy_conserved: bool
    max_conservation_error: float
    test_from: str
    seed: int
    gaps_per_length: int
    extra: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        def score(s: GapScore) -> dict[str, object]:
            return {
                "rmse_linear": round(s.rmse_linear, 4),
                "rmse_method": round(s.rmse_method, 4),
                "ratio": round(s.ratio, 4),
                "gaps": s.gaps,
                "intervals": s.intervals,
            }

        out: dict[str, object] = score(self.overall)
        out["by_gap"] = {name: score(s) for name, s in self.by_gap.items()}
        out["energy_conserved"] = self.energy_conserved
        out["max_conservation_error_kwh"] = self.max_conservation_error
        out.update(test_from=self.test_from, seed=self.seed, gaps_per_length=self.gaps_per_length, **self.extra)
        return out


def evaluate(
    series: pd.Series, *, test_from: str = DEFAULT_TEST_FROM, seed: int = 0, gaps_per_length: int = 200
) -> GapfillResult:
    """Run the protocol of the module docstring on ``series`` (kWh per 15-minute interval start)."""
    try:
        boundary = pd.Timestamp(test_from)
    except ValueError:
        raise ValueError(f"--test-from {test_from!r} is not a date") from None
    boundary = boundary.tz_localize("UTC") if boundary.tzinfo is None else boundary.tz_convert("UTC")
    index = series.index if series.index.tz is not None else series.index.tz_localize("UTC")
    series = pd.Series(series.to_numpy(dtype=float), index=index)
    counter = np.concatenate([[0.0], np.cumsum(series.to_numpy())])  # counter[i] = reading at start of interval i
    first = int(index.searchsorted(boundary))
    rng = np.random.default_rng(seed)
    sq_lin: dict[str, list[np.ndarray]] = {}
    sq_met: dict[str, list[np.ndarray]] = {}
    worst = 0.0
    conserved = True
    for name, length in GAP_LENGTHS.items():
        if len(series) - first < length:
            raise ValueError(
                f"the test period from {boundary.date()} holds fewer than {length} intervals "
                f"(the file ends {index[-1].date()}); pass an earlier --test-from"
            )
        sq_lin[name], sq_met[name] = [], []
        for _ in range(gaps_per_length):
            i0 = int(rng.integers(first, len(series) - length + 1))
            slots = index[i0 : i0 + length]
            true = series.to_numpy()[i0 : i0 + length]
            delta = float(counter[i0 + length] - counter[i0])
            history = series.drop(slots)
            filled = distribute(delta, slots, history)
            error = abs(math.fsum(filled.to_numpy()) - delta)
            worst = max(worst, error)
            if error > 1e-9 * max(1.0, delta) or (filled.to_numpy() < 0).any() or not filled.index.equals(slots):
                conserved = False
            sq_met[name].append((filled.to_numpy() - true) ** 2)
            sq_lin[name].append((np.full(length, delta / length) - true) ** 2)

    def score(lin: list[np.ndarray], met: list[np.ndarray], gaps: int) -> GapScore:
        a, b = np.concatenate(lin), np.concatenate(met)
        return GapScore(
            gaps=gaps, intervals=len(a), rmse_linear=float(np.sqrt(a.mean())), rmse_method=float(np.sqrt(b.mean()))
        )

    by_gap = {name: score(sq_lin[name], sq_met[name], gaps_per_length) for name in GAP_LENGTHS}
    overall = score(
        [x for v in sq_lin.values() for x in v],
        [x for v in sq_met.values() for x in v],
        gaps_per_length * len(GAP_LENGTHS),
    )
    return GapfillResult(
        overall=overall,
        by_gap=by_gap,
        energy_conserved=conserved,
        max_conservation_error=worst,
        test_from=str(boundary.date()),
        seed=seed,
        gaps_per_length=gaps_per_length,
    )
