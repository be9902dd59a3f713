"""Limits as versioned data, and the regulator's averaging, against hand computations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compliance.averaging import (
    Sample,
    annual_check,
    benchmark_concentration,
    correct_series,
    daily_from_hourly,
    invalid_seconds,
    means,
    o2_corrected,
    totals_by,
)
from compliance.limits import Averaging, Limit, LimitSet, current, effective_limits, load_standards

TZ = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=TZ)


# --- limits ---------------------------------------------------------------------------------------------------


def test_standard_tables_load_and_resolve_per_regime() -> None:
    sets = load_standards()
    assert {s.standard for s in sets} == {"GB 30484-2013", "GB 37822-2019"}
    indirect = effective_limits(
        sets, standards=["GB 30484-2013"], medium="water", regime="indirect", at=date(2024, 5, 1)
    )
    assert indirect[("w01018", Averaging.DAY)][0].max == 150
    assert indirect[("w01001", Averaging.DAY)][0].min == 6 and indirect[("w01001", Averaging.DAY)][0].max == 9
    assert indirect[("w01018", Averaging.DAY)][1] == "GB 30484-2013 v1"
    direct = effective_limits(sets, standards=["GB 30484-2013"], medium="water", regime="direct", at=date(2024, 5, 1))
    assert direct[("w01018", Averaging.DAY)][0].max == 70
    fugitive = effective_limits(sets, standards=["GB 37822-2019"], medium="air", regime="fugitive", at=date(2024, 5, 1))
    assert fugitive[("a24088", Averaging.HOUR)][0].max == 10 and fugitive[("a24088", Averaging.SINGLE)][0].max == 30
    special = effective_limits(
        sets, standards=["GB 37822-2019"], medium="air", regime="fugitive_special", at=date(2024, 5, 1)
    )
    assert special[("a24088", Averaging.HOUR)][0].max == 6 and special[("a24088", Averaging.SINGLE)][0].max == 20
    assert (
        effective_limits(sets, standards=["GB 30484-2013"], medium="water", regime="direct", at=date(2014, 2, 28)) == {}
    )  # not yet in force


def test_permit_overrides_and_new_versions_apply_from_their_date(tmp_path: Path) -> None:
    sets = load_standards()
    newer = LimitSet.model_validate(
        {
            **sets[0].model_dump(),
            "version": 2,
            "valid_from": date(2030, 1, 1),
            "limits": [
                {"medium": "water", "regime": "indirect", "pollutant": "w01018", "max": 100, "averaging": "day"}
            ],
        }
    )
    both = [*sets, newer]
    assert current(both, "GB 30484-2013", date(2029, 12, 31)).version == 1
    assert current(both, "GB 30484-2013", date(2030, 1, 1)).version == 2
    limits = effective_limits(both, standards=["GB 30484-2013"], medium="water", regime="indirect", at=date(2030, 6, 1))
    assert limits[("w01018", Averaging.DAY)] == (newer.limits[0], "GB 30484-2013 v2")
    permit = [Limit(pollutant="w01018", max=120, averaging="day")]
    limits = effective_limits(
        sets, standards=["GB 30484-2013"], medium="water", regime="indirect", at=date(2024, 5, 1), permit=permit
    )
    assert limits[("w01018", Averaging.DAY)] == (permit[0], "permit")
    assert limits[("w21003", Averaging.DAY)][0].max == 30  # the rest still from the standard


@pytest.mark.parametrize(
    ("limit", "value", "score", "exceeded"),
    [
        (Limit(pollutant="w01018", max=150), 165.0, 1.1, True),
        (Limit(pollutant="w01018", max=150), 150.0, 1.0, False),  # at the limit is compliant
        (Limit(pollutant="w01001", min=6, max=9), 9.9, 1.1, True),
        (Limit(pollutant="w01001", min=6, max=9), 5.0, 1.2, True),
        (Limit(pollutant="w01001", min=6, max=9), 7.0, 6 / 7, False),
    ],
)
def test_limit_score_is_one_at_the_limit(limit: Limit, value: float, score: float, exceeded: bool) -> None:
    assert limit.score(value) == pytest.approx(score)
    assert limit.exceeded(value) is exceeded


# --- averaging ------------------------------------------------------------------------------------------------


def test_hourly_mean_leaves_out_flagged_data() -> None:
    samples = [
        Sample(at(8, 0), 10.0, "N"),
        Sample(at(8, 20), 20.0, None),
        Sample(at(8, 40), 90.0, "M"),
        Sample(at(9, 0), 30.0, "C"),
        Sample(at(9, 30), None, "N"),
    ]
    hours = means(samples, period="hour", tz=TZ)
    assert [(h.start, h.mean, h.n_valid, h.n_total, h.valid) for h in hours] == [
        (at(8), 15.0, 2, 3, True),
        (at(9), None, 0, 2, False),
    ]


def test_wastewater_mean_is_flow_weighted() -> None:
    samples = [Sample(at(8, 0), 10.0, "N"), Sample(at(8, 30), 20.0, "N"), Sample(at(8, 45), 50.0, "N")]
    flow = [Sample(at(8, 0), 1.0, "N"), Sample(at(8, 30), 3.0, "N"), Sample(at(8, 45), 2.0, "D")]
    [hour] = means(samples, period="hour", tz=TZ, flow=flow)
    assert hour.mean == pytest.approx((10 * 1 + 20 * 3) / 4)  # 17.5; the third has no valid flow
    assert hour.n_valid == 2


def test_days_are_local_days() -> None:
    samples = [
        Sample(datetime(2024, 5, 1, 15, 30, tzinfo=UTC), 1.0),
        Sample(datetime(2024, 5, 1, 16, 30, tzinfo=UTC), 3.0),
    ]
    days = means(samples, period="day", tz=TZ)  # 23:30 and 00:30 Beijing time
    assert [(d.start.date(), d.mean) for d in days] == [(date(2024, 5, 1), 1.0), (date(2024, 5, 2), 3.0)]


def test_o2_correction() -> None:
    assert o2_corrected(100.0, 11.0, 3.0) == pytest.approx(180.0)  # 100 * (21 - 3) / (21 - 11)
    assert o2_corrected(100.0, 21.0, 3.0) is None
    series = correct_series(
        [Sample(at(8, 0), 100.0, "N"), Sample(at(8, 1), 100.0, "N")],
        [Sample(at(8, 0), 11.0, "N"), Sample(at(8, 1), 11.0, "D")],
        3.0,
    )
    assert series[0] == Sample(at(8, 0), pytest.approx(180.0), "N")
    assert series[1].flag == "D"  # no valid O2: not a valid value


def test_flue_gas_hour_needs_45_valid_minutes_and_a_day_20_valid_hours() -> None:
    minutes = [Sample(at(8, m), 10.0, "N" if m < 44 else "D") for m in range(60)]
    [hour] = means(minutes, period="hour", tz=TZ, min_valid=45)
    assert hour.n_valid == 44 and not hour.valid
    minutes = [Sample(at(8, m), 10.0, "N" if m < 45 else "D") for m in range(60)]
    assert means(minutes, period="hour", tz=TZ, min_valid=45)[0].valid
    hourly = means([Sample(at(h), float(h), "N" if h < 20 else "F") for h in range(24)], period="hour", tz=TZ)
    [day] = daily_from_hourly(hourly, min_hours=20)
    assert day.valid and day.n_valid == 20 and day.mean == pytest.approx(sum(range(20)) / 20)
    [short] = daily_from_hourly(hourly[1:], min_hours=20)
    assert not short.valid and short.n_valid == 19


def test_invalid_data_time() -> None:
    samples = [Sample(at(8, m), 1.0, "N" if m < 50 else "M") for m in range(58)]  # 2 minutes missing too
    assert invalid_seconds(samples, start=at(8), end=at(9), interval_s=60) == 600.0


def test_benchmark_drainage_volume() -> None:
    # new enterprise: 0.8 m3 per 10^4 Ah; 1,000 x 10^4 Ah made; 1,000 m3 discharged (above the 800 allowed)
    assert benchmark_concentration(50.0, drainage_m3=1000.0, production=[(1000.0, 0.8)]) == pytest.approx(62.5)
    assert benchmark_concentration(50.0, drainage_m3=700.0, production=[(1000.0, 0.8)]) == 50.0
    # two products: 500 x 0.8 + 500 x 1.0 = 900 allowed; 1,080 discharged -> x 1.2
    assert benchmark_concentration(10.0, drainage_m3=1080.0, production=[(500.0, 0.8), (500.0, 1.0)]) == pytest.approx(
        12.0
    )


def test_totals_per_day_and_month_and_against_the_annual_permit() -> None:
    samples = [Sample(at(h, day=d), 2.0, "N") for d in (1, 2) for h in range(24)] + [Sample(at(5, day=2), 99.0, "D")]
    # one value per hour of 1 and 2 May; the D-flagged total is left out
    assert totals_by(samples, tz=TZ, period="day") == {date(2024, 5, 1): 48.0, date(2024, 5, 2): 48.0}
    assert totals_by(samples, tz=TZ, period="month") == {date(2024, 5, 1): 96.0}
    check = annual_check(6000.0, 20000.0, through=date(2024, 3, 31))  # 91 of 366 days (leap year)
    assert check.used == pytest.approx(0.3)
    assert check.projected == pytest.approx(6000 * 366 / 91)  # 24,131.9 kg > 20,000
    assert check.on_pace_to_exceed and not check.exceeded
    assert annual_check(20001.0, 20000.0, through=date(2024, 12, 31)).exceeded
