"""Ledgers equal a direct computation from the raw readings; tariff bands across seasons and midnight; cost;
balance and its findings; the Sankey flow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from core.model import Severity
from energy import balance, intervals
from energy.ledger import LedgerError, ledger
from energy.tariffs import DEFAULT_TARIFF, Schedule, TariffSpec, load_tariff_file, save_tariff
from tests.energy.world import T0, World

TZ = ZoneInfo("Asia/Shanghai")
RATES = {"e-coat": 2.0, "e-dry": 3.0}  # kWh per minute; e-main = children + 1.5 (loss/unmetered)


def _counter(minute: int, rate: float) -> float:
    return 1000.0 + rate * minute + (minute // 60) % 3  # uneven hours, exact at every 5 minutes


def _fill(w: World, hours: int = 48) -> None:
    minutes = range(0, hours * 60 + 1, 5)
    for code, rate in RATES.items():
        w.readings(code, [(T0 + timedelta(minutes=m), _counter(m, rate)) for m in minutes])
    w.readings("e-main", [(T0 + timedelta(minutes=m), _counter(m, 6.5)) for m in minutes])
    intervals.refresh(w.conn, now=T0 + timedelta(hours=hours, minutes=3), site=w.site)


def _direct(minute0: int, minute1: int, rate: float) -> float:
    return _counter(minute1, rate) - _counter(minute0, rate)


def test_meter_and_virtual_meter_equal_the_counter_differences(conn) -> None:
    w = World(conn)
    _fill(w)
    # T0 is 08:00 local: the local day 2026-03-03 is minutes 960..2400 after T0
    rows = ledger(
        conn,
        site=w.site,
        start=datetime(2026, 3, 3, tzinfo=TZ),
        end=datetime(2026, 3, 4, tzinfo=TZ),
        bucket="day",
        by="meter",
    )
    got = {r.key: r for r in rows}
    assert got["e-coat"].quantity == pytest.approx(_direct(960, 2400, 2.0))
    assert got["e-main"].quantity == pytest.approx(_direct(960, 2400, 6.5))
    assert got["e-rest"].quantity == pytest.approx(
        _direct(960, 2400, 6.5) - _direct(960, 2400, 2.0) - _direct(960, 2400, 3.0)
    )
    assert got["e-main"].measured == 96 and got["e-main"].missing == 0
    assert got["e-main"].kgce == pytest.approx(got["e-main"].quantity * 0.1229)
    assert got["e-main"].bucket_start == datetime(2026, 3, 3, tzinfo=TZ)


def test_areas_add_up_to_the_site_without_double_counting(conn) -> None:
    w = World(conn)
    _fill(w)
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=7)
    areas = {
        r.key: r.quantity
        for r in ledger(conn, site=w.site, start=start, end=end, bucket="hour", by="area", medium="electricity")
        if r.bucket_start == T0 + timedelta(hours=3)
    }
    assert areas["coating"] == pytest.approx(_direct(180, 240, 2.0))
    assert areas["utilities"] == pytest.approx(_direct(180, 240, 6.5) - _direct(180, 240, 2.0) - _direct(180, 240, 3.0))
    site = ledger(conn, site=w.site, start=start, end=end, bucket="hour", by="site", medium="electricity")
    assert sum(r.quantity for r in site) == pytest.approx(_direct(60, 420, 6.5))
    assert sum(
        r.quantity
        for r in ledger(conn, site=w.site, start=start, end=end, bucket="hour", by="area", medium="electricity")
    ) == pytest.approx(_direct(60, 420, 6.5))


def test_buckets_agree_and_windows_widen_to_whole_buckets(conn) -> None:
    w = World(conn)
    _fill(w)
    lo, hi = datetime(2026, 3, 3, 5, 7, tzinfo=TZ), datetime(2026, 3, 3, 9, 50, tzinfo=TZ)  # unaligned
    hours = ledger(conn, site=w.site, start=lo, end=hi, bucket="hour", by="meter", medium="electricity")
    quarters = ledger(conn, site=w.site, start=lo, end=hi, bucket="15min", by="meter", medium="electricity")
    assert {r.bucket_start for r in hours} == {datetime(2026, 3, 3, h, tzinfo=TZ) for h in range(5, 10)}
    for code in ("e-main", "e-coat"):
        assert sum(r.quantity for r in hours if r.key == code) == pytest.approx(
            sum(r.quantity for r in quarters if r.key == code)
        )
    month = ledger(conn, site=w.site, start=lo, end=hi, bucket="month", by="medium")
    assert [r.bucket_start for r in month if r.medium == "electricity"] == [datetime(2026, 3, 1, tzinfo=TZ)]
    days = ledger(
        conn,
        site=w.site,
        start=datetime(2026, 3, 1, tzinfo=TZ),
        end=datetime(2026, 4, 1, tzinfo=TZ),
        bucket="day",
        by="medium",
    )
    year = ledger(conn, site=w.site, start=lo, end=hi, bucket="year", by="medium")
    for medium in ("electricity", "water"):
        total = sum(r.quantity for r in days if r.medium == medium)
        assert sum(r.quantity for r in month if r.medium == medium) == pytest.approx(total)
        assert sum(r.quantity for r in year if r.medium == medium) == pytest.approx(total)
        assert sum(r.measured for r in month if r.medium == medium) == sum(
            r.measured for r in days if r.medium == medium
        )
    with pytest.raises(LedgerError):
        ledger(conn, site=w.site, start=hi, end=lo, bucket="hour", by="meter")
    with pytest.raises(LedgerError):
        ledger(conn, site=w.site, start=lo, end=hi, bucket="week", by="meter")


# --- tariffs ----------------------------------------------------------------------------------------------


def _band(schedule: Schedule, local: datetime) -> str | None:
    return schedule.band_at(local.replace(tzinfo=TZ).astimezone(UTC))


def test_jiangsu_bands_across_season_and_midnight_boundaries() -> None:
    s = Schedule([load_tariff_file(DEFAULT_TARIFF)], "Asia/Shanghai")
    assert _band(s, datetime(2024, 6, 30, 23, 45)) == "flat"
    assert _band(s, datetime(2024, 7, 1, 0, 0)) == "valley"
    assert _band(s, datetime(2024, 7, 1, 10, 0)) == "critical"
    assert _band(s, datetime(2024, 6, 30, 10, 0)) == "peak"
    assert _band(s, datetime(2024, 8, 31, 14, 45)) == "critical"
    assert _band(s, datetime(2024, 9, 1, 14, 45)) == "flat"
    assert _band(s, datetime(2024, 12, 31, 23, 59)) == "flat"
    assert _band(s, datetime(2025, 1, 1, 7, 45)) == "valley"
    assert _band(s, datetime(2025, 1, 1, 8, 0)) == "peak"
    assert _band(s, datetime(2023, 12, 31, 12, 0)) is None  # before valid_from: no tariff


def test_tariff_validity_switches_at_local_midnight() -> None:
    a = TariffSpec(
        code="a",
        name="a",
        medium="electricity",
        valid_from=date(2024, 1, 1),
        valid_to=date(2024, 3, 1),
        prices={"flat": 1.0},
    )
    b = TariffSpec(code="b", name="b", medium="electricity", valid_from=date(2024, 3, 1), prices={"flat": 2.0})
    s = Schedule([b, a], "Asia/Shanghai")
    starts = pd.DatetimeIndex([datetime(2024, 2, 29, 23, 45, tzinfo=TZ), datetime(2024, 3, 1, 0, 0, tzinfo=TZ)])
    assert s.price(starts.tz_convert("UTC"))[1].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "bad, says",
    [
        (
            {
                "periods": [
                    {"season": "x", "months": [1], "from": "08:00", "to": "12:00", "band": "peak"},
                    {"season": "y", "months": [1], "from": "11:00", "to": "13:00", "band": "flat"},
                ]
            },
            "overlap",
        ),
        ({"periods": [{"season": "x", "months": [1], "from": "22:00", "to": "02:00", "band": "valley"}]}, "midnight"),
        ({"prices": {"peak": 1.0}}, "no price for band"),
        ({"periods": [{"season": "x", "months": [13], "from": "08:00", "to": "09:00", "band": "peak"}]}, "less than"),
    ],
)
def test_bad_tariffs_are_refused_with_the_reason(bad: dict, says: str) -> None:
    spec = {
        "code": "t",
        "name": "t",
        "medium": "electricity",
        "valid_from": "2024-01-01",
        "prices": {"peak": 1.0, "flat": 0.5},
        **bad,
    }
    with pytest.raises(ValueError, match=says):
        TariffSpec.model_validate(spec)


def test_interval_cost_is_quantity_times_the_band_price(conn) -> None:
    w = World(conn)
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
    save_tariff(conn=conn, site_id=site_id, spec=load_tariff_file(DEFAULT_TARIFF), actor="test")
    _fill(w, hours=24)
    rows = conn.execute(
        "SELECT start, quantity, band, cost_cny FROM energy_interval WHERE meter_id = %s AND quality = 'measured'",
        (w.meter["e-coat"],),
    ).fetchall()
    prices = {"peak": 1.0208, "flat": 0.6965, "valley": 0.3722}
    for start, quantity, band, cost in rows:
        hour = start.astimezone(TZ).hour  # March: non-summer
        expect = "valley" if hour < 8 else "peak" if hour < 11 or 17 <= hour < 21 else "flat"
        assert band == expect
        assert cost == pytest.approx(quantity * prices[band])
    total = ledger(conn, site=w.site, start=T0, end=T0 + timedelta(hours=24), bucket="day", by="meter")
    day_cost = sum(r.cost for r in total if r.key == "e-coat")
    assert day_cost == pytest.approx(
        sum(
            r[3]
            for r in conn.execute(
                "SELECT start, quantity, band, cost_cny FROM energy_interval WHERE meter_id = %s AND start >= %s "
                "AND start < %s",
                (w.meter["e-coat"], datetime(2026, 3, 1, 16, tzinfo=UTC), datetime(2026, 3, 3, 16, tzinfo=UTC)),
            ).fetchall()
        )
    )


# --- balance ----------------------------------------------------------------------------------------------


def test_balance_rows_and_flow(conn) -> None:
    w = World(conn)
    _fill(w, hours=6)
    rows = balance.balance(conn, site=w.site, start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2), bucket="hour")
    assert len(rows) == 1 and rows[0]["meter"] == "e-main"
    assert rows[0]["loss"] == pytest.approx(_direct(60, 120, 6.5) - _direct(60, 120, 2.0) - _direct(60, 120, 3.0))
    assert rows[0]["loss_pct"] == pytest.approx(100 * rows[0]["loss"] / rows[0]["parent"])
    f = balance.flow(conn, site=w.site, start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2))
    links = {(x["source"], x["target"]): x["value"] for x in f["links"]}
    assert links[("meter:e-main", "meter:e-coat")] == pytest.approx(_direct(60, 120, 2.0))
    assert links[("meter:e-main", "loss:e-main")] == pytest.approx(rows[0]["loss"])
    assert links[("meter:e-coat", "area:coating")] == pytest.approx(_direct(60, 120, 2.0))


def test_imbalance_above_its_limit_for_the_hold_time_raises_then_clears(conn) -> None:
    w = World(conn)
    _fill(w, hours=4)  # loss = 1.5 / 6.5 = 23 %
    conn.execute(
        "INSERT INTO energy_balance_limit (meter_id, loss_pct_max, hold_minutes) VALUES (%s, 30, 60)",
        (w.meter["e-main"],),
    )
    now = T0 + timedelta(hours=4, minutes=3)
    assert balance.evaluate(conn, site=w.site, now=now) == []  # 23 % < 30 %: nothing changes
    conn.execute("UPDATE energy_balance_limit SET loss_pct_max = 10")
    found = balance.evaluate(conn, site=w.site, now=now)
    assert [(f.rule, f.severity) for f in found] == [("energy.balance", Severity.MEDIUM)]
    assert "e-main" in found[0].message and found[0].subject.device == "em-main"
    assert balance.evaluate(conn, site=w.site, now=now) == []  # edge-triggered
    conn.execute("UPDATE energy_balance_limit SET loss_pct_max = 50")
    assert [f.severity for f in balance.evaluate(conn, site=w.site, now=now)] == [Severity.NORMAL]


def test_demand_heading_past_the_contract_warns(conn) -> None:
    w = World(conn)
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
    spec = load_tariff_file(DEFAULT_TARIFF).model_copy(
        update={"contracted_max_kw": 300.0, "valid_from": date(2026, 1, 1)}
    )
    save_tariff(conn=conn, site_id=site_id, spec=spec, actor="test")
    # e-main runs at 6.5 kWh/min = 390 kW, above 300 kW
    w.readings("e-main", [(T0 + timedelta(minutes=m), 6.5 * m) for m in range(0, 21)])
    found = balance.evaluate(conn, site=w.site, now=T0 + timedelta(minutes=20))
    assert [(f.rule, f.severity) for f in found] == [("energy.demand", Severity.MEDIUM)]
    assert found[0].value == pytest.approx(390.0)


def test_a_new_tariff_reprices_intervals_already_computed(conn) -> None:
    w = World(conn)
    _fill(w, hours=6)
    before = ledger(conn, site=w.site, start=T0, end=T0 + timedelta(hours=6), bucket="hour", by="meter")
    assert all(r.cost is None for r in before)
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
    save_tariff(
        conn=conn,
        site_id=site_id,
        actor="test",
        spec=TariffSpec(
            code="flat", name="平价", medium="electricity", valid_from=date(2026, 1, 1), prices={"flat": 0.5}
        ),
    )
    intervals.refresh(conn, now=T0 + timedelta(hours=6, minutes=3), site=w.site)
    after = ledger(conn, site=w.site, start=T0, end=T0 + timedelta(hours=6), bucket="hour", by="meter")
    coat = [r for r in after if r.key == "e-coat"]
    assert coat and all(r.cost == pytest.approx(0.5 * r.quantity) for r in coat)
    water = [r for r in after if r.key == "w-main"]
    assert all(r.cost is None for r in water)


# --- two-part tariff ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("two_part", "charge"),
    [
        # e-main's largest interval ends on an hour k with k % 3 in (1, 2): 6.5 x 15 + 1 = 98.5 kWh = 394 kW
        ({"demand_cny_per_kw": 40.0}, 394.0 * 40.0),
        ({"capacity_cny_per_kva": 25.0, "capacity_kva": 1000.0}, 25_000.0),
    ],
)
def test_the_monthly_demand_or_capacity_charge_is_added_to_the_root_meter_and_site(conn, two_part, charge) -> None:
    w = World(conn)
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
    save_tariff(
        conn=conn,
        site_id=site_id,
        actor="test",
        spec=TariffSpec(
            code="two-part",
            name="两部制",
            medium="electricity",
            valid_from=date(2026, 1, 1),
            prices={"flat": 0.5},
            **two_part,
        ),
    )
    _fill(w, hours=48)
    energy_cost = 0.5 * (6.5 * 2880)  # counter difference over the 48 hours x the flat price
    window = {"site": w.site, "start": T0, "end": T0 + timedelta(hours=48)}
    for by, key in (("meter", "e-main"), ("medium", "electricity"), ("site", w.site)):
        (row,) = [r for r in ledger(conn, **window, bucket="month", by=by) if r.key == key]
        assert row.demand_charge == pytest.approx(charge), by
        assert row.cost == pytest.approx(energy_cost + charge), by
    (year,) = [r for r in ledger(conn, **window, bucket="year", by="site") if r.medium == "electricity"]
    assert year.cost == pytest.approx(energy_cost + charge)
    by_meter = {r.key: r for r in ledger(conn, **window, bucket="month", by="meter")}
    assert by_meter["e-coat"].demand_charge is None
    assert by_meter["e-coat"].cost == pytest.approx(0.5 * 2.0 * 2880)
    hours = [r for r in ledger(conn, **window, bucket="hour", by="meter") if r.key == "e-main"]
    assert sum(r.cost for r in hours) == pytest.approx(energy_cost)  # intervals keep per-interval costs
    assert all(r.demand_charge is None for r in hours)
    areas = ledger(conn, **window, bucket="month", by="area")
    assert sum(r.cost for r in areas if r.medium == "electricity") == pytest.approx(energy_cost)
