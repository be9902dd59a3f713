"""``ehs eval energy-gapfill``: the steel-industry CSV reader (fuzzed) and the evaluation protocol."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energy.gapfill_eval import SeriesFileError, evaluate, read_steel_csv
from tests.fuzzing import budget

ROOT = Path(__file__).resolve().parents[2]
HEADER = "date,Usage_kWh,Lagging_Current_Reactive_Power_kVarh,NSM,WeekStatus\n"


def _csv(rows: list[tuple[str, str]]) -> bytes:
    return ("\ufeff" + HEADER + "".join(f"{d},{v},1.0,0,Weekday\n" for d, v in rows)).encode()


def _day(date: str, values: list[float]) -> list[tuple[str, str]]:
    """Rows of one day in the file's convention: 00:15 .. 23:45, then 00:00 with the same date."""
    stamps = [f"{date} {h:02d}:{m:02d}" for h in range(24) for m in (0, 15, 30, 45)][1:] + [f"{date} 00:00"]
    return list(zip(stamps, (str(v) for v in values), strict=True))


def test_reads_interval_starts_with_the_midnight_row_closing_its_own_day() -> None:
    data = _csv(_day("01/01/2018", [float(i) for i in range(96)]) + _day("02/01/2018", [1.0] * 96))
    series = read_steel_csv(data)
    assert len(series) == 192
    assert series.index[0] == pd.Timestamp("2018-01-01 00:00", tz="UTC")
    assert series.index[95] == pd.Timestamp("2018-01-01 23:45", tz="UTC")
    assert series.iloc[95] == 95.0
    assert series.index[-1] == pd.Timestamp("2018-01-02 23:45", tz="UTC")


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        ("01/01/2018 00:15,1\n01/01/2018 00:45,1\n", 3, "date", "missing intervals"),
        ("01/01/2018 00:15,1\n01/01/2018 00:15,1\n", 3, "date", "out of order or duplicated"),
        ("01/01/2018 00:15,1\n2018-01-01 00:30,1\n", 3, "date", "DD/MM/YYYY"),
        ("01/01/2018 00:15,1\n01/01/2018 00:30,-2\n", 3, "Usage_kWh", ">= 0"),
        ("01/01/2018 00:15,nan\n", 2, "Usage_kWh", ">= 0"),
        ("01/01/2018 00:15,1\n01/01/2018 00:30,abc\n", 3, "Usage_kWh", "not a number"),
        ("01/01/2018 00:15,1\n01/01/2018 00:31,1\n", 3, "date", "15-minute"),
        ("01/01/2018 00:15\n", 2, "Usage_kWh", "missing"),
        ("", 2, "date", "no data rows"),
    ],
)
def test_bad_rows_are_refused_with_line_and_field(body: str, line: int, field: str, words: str) -> None:
    with pytest.raises(SeriesFileError, match=words) as info:
        read_steel_csv(("date,Usage_kWh\n" + body).encode())
    assert (info.value.line, info.value.field) == (line, field)
    assert f"line {line}" in str(info.value)


def test_missing_column_and_empty_file() -> None:
    with pytest.raises(SeriesFileError, match="Usage_kWh.*column missing"):
        read_steel_csv(b"date,kwh\n01/01/2018 00:15,1\n")
    with pytest.raises(SeriesFileError, match="empty"):
        read_steel_csv(b"")
    with pytest.raises(SeriesFileError, match="UTF-8"):
        read_steel_csv(b"date,Usage_kWh\n\xff\xfe,1\n")


rowish = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "01/01/2018 00:15",
                "01/01/2018 00:30",
                "31/02/2018 10:00",
                "01/01/2018 00:00",
                "",
                "x",
                "01/01/2018 24:00",
                '"01/01/2018 00:45"',
            ]
        ),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=6), st.just("3.5")),
    ),
    max_size=8,
)


@budget(300)
@given(
    rows=rowish,
    junk=st.binary(max_size=60),
    header=st.sampled_from(["date,Usage_kWh", "Usage_kWh,date", "date;Usage_kWh", "a,b,date,Usage_kWh"]),
)
def test_reader_fuzz_returns_a_clean_series_or_a_located_error(rows, junk, header) -> None:
    data = (header + "\n" + "".join(f"{d},{v}\n" for d, v in rows)).encode() + junk
    try:
        series = read_steel_csv(data)
    except SeriesFileError as exc:
        assert exc.line >= 0 and exc.field and str(exc).startswith(f"line {exc.line}, field ")
        assert "\n" not in str(exc)
        return
    assert len(series) > 0
    assert (series.to_numpy() >= 0).all() and np.isfinite(series.to_numpy()).all()
    assert (np.diff(series.index.as_unit("s").asi8) == 15 * 60).all()


def _steady_weeks(weeks: int) -> pd.Series:
    index = pd.date_range("2018-06-04", periods=weeks * 7 * 96, freq="15min", tz="UTC")
    busy = (index.day_of_week < 5) & (index.hour >= 8) & (index.hour < 18)
    rng = np.random.default_rng(1)
    return pd.Series(np.where(busy, 50.0, 5.0) + rng.uniform(0, 1, len(index)), index=index)


def test_evaluation_beats_linear_and_conserves_energy_on_a_weekly_plant() -> None:
    result = evaluate(_steady_weeks(8), test_from="2018-07-09", seed=3, gaps_per_length=10)
    assert result.energy_conserved
    assert result.max_conservation_error < 1e-9
    assert result.overall.ratio < 0.3
    assert set(result.by_gap) == {"1h", "4h", "24h"}
    summary = result.summary()
    assert isinstance(summary["ratio"], float) and summary["by_gap"]["24h"]["gaps"] == 10
    again = evaluate(_steady_weeks(8), test_from="2018-07-09", seed=3, gaps_per_length=10)
    assert again.overall == result.overall
    other = evaluate(_steady_weeks(8), test_from="2018-07-09", seed=4, gaps_per_length=10)
    assert other.overall != result.overall


def test_a_test_period_past_the_end_is_refused() -> None:
    with pytest.raises(ValueError, match="earlier --test-from"):
        evaluate(_steady_weeks(2), test_from="2019-01-01")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "eval", "energy-gapfill", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )


def test_cli_prints_the_json_line_last_and_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    series = _steady_weeks(6)
    ends = series.index + pd.Timedelta(minutes=15)
    dates = [
        e.strftime("%d/%m/%Y %H:%M")
        if (e.hour, e.minute) != (0, 0)
        else (e - pd.Timedelta(days=1)).strftime("%d/%m/%Y 00:00")
        for e in ends
    ]
    good = tmp_path / "good.csv"
    good.write_bytes(_csv(list(zip(dates, (f"{v:.3f}" for v in series), strict=True))))
    done = _cli(str(good), "--test-from", "2018-07-02", "--seed", "5", "--gaps", "5")
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("rmse_linear", "rmse_method", "ratio"):
        assert isinstance(last[key], float) and math.isfinite(last[key])
    assert last["energy_conserved"] is True
    assert set(last["by_gap"]) == {"1h", "4h", "24h"}
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv([("01/01/2018 00:15", "1"), ("01/01/2018 00:30", "oops")]))
    refused = _cli(str(bad))
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: {bad}: line 3, field 'Usage_kWh': 'oops' is not a number"
