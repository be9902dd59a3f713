"""The energy report (``energy_month``) of a small energy plant (tests/energy/world.py: an incomer, two sub-meters,
water, a virtual remainder, a coating line with an output counter) under the default time-of-use tariff: the XLSX
read back equals the energy package's own figures (area ledger, bands of the incomer, per-unit figures)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from energy import intervals, production
from energy.ledger import by_band, ledger
from energy.per_unit import per_unit
from energy.tariffs import DEFAULT_TARIFF, load_tariff_file, save_tariff
from reports.model import Params
from reports.registry import KINDS
from reports.render import FORMATS
from tests.energy.world import T0, World
from tests.reports import pdftools

TZ = ZoneInfo("Asia/Shanghai")
RATES = {"e-coat": 2.0, "e-dry": 3.0, "e-main": 6.5}  # kWh per minute


def _sheet(book: openpyxl.Workbook, key: str) -> list[list]:
    return [[c.value for c in row] for row in book[key].iter_rows()]


@pytest.mark.db
def test_the_energy_report_equals_the_energy_figures(conn, tmp_path) -> None:
    w = World(conn)
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (w.site,)).fetchone()[0]
    save_tariff(conn=conn, site_id=site_id, spec=load_tariff_file(DEFAULT_TARIFF), actor="test")
    minutes = range(0, 48 * 60 + 1, 5)
    for code, rate in RATES.items():
        w.readings(code, [(T0 + timedelta(minutes=m), 1000.0 + rate * m + (m // 60) % 3) for m in minutes])
    w.readings("cells", [(T0 + timedelta(minutes=m), 10.0 * m) for m in minutes])
    now = T0 + timedelta(hours=48, minutes=3)
    intervals.refresh(conn, now=now, site=w.site)
    production.refresh_production(conn, now=now, site=w.site)
    since, until = datetime(2026, 3, 1, tzinfo=TZ), datetime(2026, 4, 1, tzinfo=TZ)
    doc = KINDS["energy_month"].build(conn, Params(site=w.site, since=since, until=until, lang="en"), now)
    book = openpyxl.load_workbook(io.BytesIO(FORMATS["xlsx"].render(doc)))

    areas = _sheet(book, "by_area")
    assert areas[0][:4] == ["Area", "Name", "Carrier", "Quantity"] and areas[0][5] == "Standard coal [kgce]"
    expected: dict[tuple[str, str], list[float]] = {}
    for r in ledger(conn, site=w.site, start=since, end=until, bucket="day", by="area"):
        e = expected.setdefault((r.key, r.medium), [0.0, 0.0, 0.0])
        e[0] += r.quantity
        e[1] += r.kgce or 0.0
        e[2] += r.cost or 0.0
    got = {(row[0], row[2]): row for row in areas[1:]}
    assert set(got) == set(expected) >= {("coating", "electricity"), ("drying", "electricity")}
    for key, (quantity, kgce, cost) in expected.items():
        assert got[key][3] == pytest.approx(quantity) and got[key][5] == pytest.approx(kgce)
        assert (got[key][6] or 0.0) == pytest.approx(cost)
    # the coating line drew 2 kWh a minute for the 48 hours
    assert got[("coating", "electricity")][3] == pytest.approx(2.0 * 48 * 60, rel=0.01)

    tou = _sheet(book, "tou")
    bands = by_band(conn, site=w.site, start=since, end=until)
    assert [row[0] for row in tou[1:]] == ["Peak", "Flat", "Valley"]
    assert [row[1] for row in tou[1:]] == pytest.approx([b["quantity"] for b in bands])
    assert [row[3] for row in tou[1:]] == pytest.approx([b["cost"] for b in bands])
    assert sum(row[2] for row in tou[1:]) == pytest.approx(100.0)
    incomer = sum(
        r.quantity
        for r in ledger(conn, site=w.site, start=since, end=until, bucket="day", by="meter")
        if r.key == "e-main"
    )
    assert sum(row[1] for row in tou[1:]) == pytest.approx(incomer)

    per = _sheet(book, "per_unit")
    coating = next(
        p for p in per_unit(conn, site=w.site, start=since, end=until)["processes"] if p["area"] == "coating"
    )
    row = next(r for r in per[1:] if r[0] == "coating")
    assert (row[3], row[4], row[6]) == pytest.approx((coating["quantity"], coating["output"], coating["per_unit"]))
    assert row[6] == pytest.approx(2.0 / 10.0, rel=0.02)  # kWh per cell
    assert _sheet(book, "deviations")[1:] == []  # nothing abnormal is open
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    assert "Energy report" in text and "Time-of-use" in text

    # areas named: that area only, no site-level bands
    part = KINDS["energy_month"].build(
        conn, Params(site=w.site, since=since, until=until, areas=("coating",), lang="zh-CN"), now
    )
    assert {r[0] for r in part.table("by_area").rows} == {"coating"}
    assert [s.tables[0].key for s in part.sections] == ["by_area", "per_unit", "deviations"]
