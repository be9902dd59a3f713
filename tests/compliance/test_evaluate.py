"""Compliance findings (exceedance, trend warning, invalid data) from averaged data, against hand computations."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance.evaluate import Evaluator, projected_mean
from compliance.limits import Limit
from core.model import Severity, SubjectRef

TZ = ZoneInfo("Asia/Shanghai")
SUBJECT = SubjectRef("cz01", "voc_incinerator", "rto-cems-01", "nmhc_mg_m3")
T0 = datetime(2024, 5, 1, 1, 0, tzinfo=TZ)


def evaluator(**kw) -> Evaluator:
    return Evaluator(
        subject=SUBJECT,
        pollutant="a24088",
        limit=kw.pop("limit", Limit(pollutant="a24088", max=50, averaging="hour")),
        source="GB 30484-2013 v1",
        tz="Asia/Shanghai",
        interval_s=60,
        **kw,
    )


def test_projected_mean_of_a_rising_hour() -> None:
    # 40, 40.5, ... at minutes 0-4: the line 40 + 0.5 t continued to minute 59 averages 40 + 0.5 * 29.5 = 54.75
    points = [(m * 60.0, 40 + 0.5 * m) for m in range(5)]
    assert projected_mean(points, 3600, 60) == pytest.approx(54.75)
    assert projected_mean([(0.0, 10.0), (60.0, 10.0)], 3600, 60) == pytest.approx(10.0)


def test_warning_from_the_trend_then_exceedance_then_clear() -> None:
    ev = evaluator()
    found = []
    for m in range(60):  # hour 1: steady 40 mg/m3, 0.8 of the limit
        found += ev.feed(T0 + timedelta(minutes=m), 40.0, True)
    assert found == []
    rising = []
    for m in range(60):  # hour 2: 40 + 0.5 t -> mean 54.75
        rising += [(m, f) for f in ev.feed(T0 + timedelta(hours=1, minutes=m), 40 + 0.5 * m, True)]
    [(minute, warning)] = rising
    assert minute == 4 and warning.severity is Severity.MEDIUM  # warned with five points, mean still ~41
    assert warning.rule == "compliance.warning.a24088.hour" and warning.score == pytest.approx(54.75 / 50)
    close = ev.feed(T0 + timedelta(hours=2), 30.0, True)  # first value of hour 3 closes hour 2
    assert [(f.rule, f.severity) for f in close] == [
        ("compliance.exceedance.a24088.hour", Severity.HIGH),
        ("compliance.warning.a24088.hour", Severity.NORMAL),
    ]
    assert close[0].value == pytest.approx(54.75) and close[0].score == pytest.approx(1.095)
    assert close[0].subject == SUBJECT and "GB 30484-2013 v1" in close[0].message
    for m in range(1, 60):
        assert ev.feed(T0 + timedelta(hours=2, minutes=m), 30.0, True) == []
    [cleared] = ev.feed(T0 + timedelta(hours=3), 30.0, True)
    assert (cleared.rule, cleared.severity) == ("compliance.exceedance.a24088.hour", Severity.NORMAL)


def test_flagged_data_do_not_count_and_too_few_valid_values_is_a_finding() -> None:
    ev = evaluator(min_valid=45)
    for m in range(50):  # 80 mg/m3 but under calibration: not judged
        assert ev.feed(T0 + timedelta(minutes=m), 80.0, False) == []
    for m in range(50, 60):  # then ten valid values at 80: a warning
        ev.feed(T0 + timedelta(minutes=m), 80.0, True)
    invalid, warning = ev.feed(T0 + timedelta(hours=1), 10.0, True)
    assert (invalid.rule, invalid.severity) == ("compliance.invalid.a24088.hour", Severity.LOW)
    assert (warning.rule, warning.severity) == ("compliance.warning.a24088.hour", Severity.NORMAL)
    assert "10 valid of 60" in invalid.message
    for m in range(1, 60):
        ev.feed(T0 + timedelta(hours=1, minutes=m), 10.0, True)
    [back] = ev.feed(T0 + timedelta(hours=2), 10.0, True)
    assert (back.rule, back.severity) == ("compliance.invalid.a24088.hour", Severity.NORMAL)


def test_single_reading_limit_and_ph_range() -> None:
    single = evaluator(limit=Limit(pollutant="a24088", max=30, averaging="single"))
    [high] = single.feed(T0, 35.0, True)
    assert high.severity is Severity.HIGH and high.score == pytest.approx(35 / 30)
    assert single.feed(T0 + timedelta(minutes=1), 36.0, True) == []  # findings on change only
    assert single.feed(T0 + timedelta(minutes=2), 99.0, False) == []  # an invalid reading is not judged
    [normal] = single.feed(T0 + timedelta(minutes=3), 25.0, True)
    assert normal.severity is Severity.NORMAL
    ph = Evaluator(
        subject=SUBJECT,
        pollutant="w01001",
        limit=Limit(pollutant="w01001", min=6, max=9, averaging="day"),
        source="permit",
    )
    for h in range(24):
        ph.feed(T0.replace(hour=0) + timedelta(hours=h), 5.5 if h < 12 else 6.1, True)
    [low] = [
        f
        for f in ph.feed(T0.replace(hour=0) + timedelta(days=1), 7.0, True)
        if f.rule.startswith("compliance.exceedance")
    ]
    assert low.severity is Severity.HIGH and low.value == pytest.approx(5.8)  # daily mean (12 x 5.5 + 12 x 6.1) / 24
