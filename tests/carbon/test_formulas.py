"""Hand-computed carbon formulas: GB/T 32150 fuel factor, factor choice by year, scope 1 and dual scope 2 with
and without certificates, hourly intensity, and a product footprint on a small graph with scrap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from carbon import factors as F
from carbon.footprint import FootprintError, Routing, burdens, demo_routing, footprint
from carbon.ledger import SITE, Activity, Entry, Instrument, LedgerInputError, Settings, compute, hourly_intensity

LIB = F.load_library()
T = datetime(2025, 3, 1, tzinfo=UTC)


def test_fuel_factor_follows_gb_t_32150() -> None:
    # natural gas, standards.md 5.3: 0.038931 GJ/m3 x 15.3 tC/TJ x 0.99 x 44/12 = 2.1622 kgCO2/Nm3
    assert F.fuel_factor(0.038931, 15.3, 0.99) == pytest.approx(2.162189, rel=1e-6)
    assert F.lookup(LIB.factors, "fuel:natural_gas").value == pytest.approx(2.162189, rel=1e-6)
    # diesel 42.652 GJ/t x 20.2 x 0.98 x 44/12 = 3095.9 kgCO2/t (standards.md: about 3.096 tCO2/t)
    assert F.lookup(LIB.factors, "fuel:diesel").value == pytest.approx(3095.91, rel=1e-5)


@pytest.mark.parametrize(
    ("year", "lag", "regions", "expected_key", "value"),
    [
        (2025, 2, ("jiangsu", "east", "CN"), "grid:jiangsu:2023:average", 0.5827),
        (2024, 2, ("jiangsu", "east", "CN"), "grid:jiangsu:2022:average", 0.5978),
        (2026, 2, ("jiangsu", "east", "CN"), "grid:jiangsu:2023:average", 0.5827),  # 2024 not yet published
        (2024, 1, ("jiangsu", "east", "CN"), "grid:jiangsu:2023:average", 0.5827),  # the lag is configurable
        (2024, 2, ("hubei", "central", "CN"), "grid:central:2022:average", 0.5395),  # no province row: its grid
        (2025, 2, ("hubei", "central", "CN"), "grid:central:2022:average", 0.5395),  # a region beats a newer CN
        (2025, 2, ("CN",), "grid:CN:2023:average", 0.5306),
    ],
)
def test_grid_factor_by_accounting_year(year, lag, regions, expected_key, value) -> None:
    f = F.grid_factor(LIB.factors, year=year, regions=regions, lag_years=lag)
    assert (f.row_key, f.value) == (expected_key, value)


def test_grid_factor_refuses_years_before_the_library() -> None:
    with pytest.raises(F.NoFactor):
        F.grid_factor(LIB.factors, year=2021, regions=("jiangsu", "CN"), lag_years=2)


def _activities() -> list[Activity]:
    return [
        Activity("coating", "electricity", T, 600.0, "kWh"),
        Activity("coating", "electricity", T, 400.0, "kWh"),
        Activity("formation", "electricity", T, 3.0, "MWh"),
        Activity(SITE, "electricity", T, 5000.0, "kWh"),
        Activity("coating", "natural_gas", T, 100.0, "Nm3"),
        Activity("formation", "steam", T, 10.0, "t"),
        Activity("formation", "compressed_air", T, 999.0, "Nm3"),
    ]


SETTINGS = Settings(regions=("jiangsu", "east", "CN"))


def test_scope_1_and_dual_scope_2_without_certificates() -> None:
    inv = compute(
        period="2025-03",
        year=2025,
        factors=LIB.factors,
        factor_version="t",
        activities=_activities(),
        entries=[
            Entry("formation", "fugitive", "R-32", 2.0, "kg"),
            Entry("", "fuel", "diesel", 0.5, "t"),
            Entry("coating", "process", "solvent-incineration", 1.0, "batch", co2e_kg=12.5),
        ],
        settings=SETTINGS,
    )
    t = inv.totals()
    gas = 100 * 2.1621888
    assert t["scope1_kg"] == pytest.approx(gas + 2 * 771 + 0.5 * 3095.91 + 12.5, rel=1e-5)
    steam = 10 * 2.8 * 110  # t x GJ/t x kgCO2/GJ
    # location: 5000 kWh at Jiangsu 2023 (0.5827); market with no instrument: the residual factor (CN 2023 0.6096)
    assert t["scope2_location_kg"] == pytest.approx(5000 * 0.5827 + steam)
    assert t["scope2_market_kg"] == pytest.approx(5000 * 0.6096 + steam)
    areas = {a["area"]: a for a in inv.by_area({"formation": 1000})}
    assert areas[None]["electricity_kwh"] == pytest.approx(1000)  # site meter minus area meters
    assert areas["formation"]["scope2_location_kg"] == pytest.approx(3000 * 0.5827 + steam)
    assert areas["formation"]["kg_per_unit_location"] == pytest.approx((3000 * 0.5827 + steam + 2 * 771) / 1000)
    # every line names its factor row, and the factors used are listed with the version
    elec = [x for x in inv.lines if x.category == "electricity"]
    assert {x.factor_key for x in elec} == {"grid:jiangsu:2023:average"}
    assert inv.factors["grid:CN:2023:excl_market_nonfossil"]["version"] == "t"


def test_market_based_scope_2_with_certificates() -> None:
    certs = [
        Instrument(1, "certificate", "GEC", "GEC-A", 2.0, 2025, "GEC:1-2"),
        Instrument(2, "certificate", "GEC", "GEC-OLD", 1.0, 2022, "GEC:9-9"),
    ]  # vintage too old
    inv = compute(
        period="2025-03",
        year=2025,
        factors=LIB.factors,
        factor_version="t",
        activities=[a for a in _activities() if a.medium == "electricity"],
        instruments=certs,
        settings=SETTINGS,
    )
    t = inv.totals()
    assert t["scope2_location_kg"] == pytest.approx(5000 * 0.5827)  # unchanged by certificates
    assert t["scope2_market_kg"] == pytest.approx(3000 * 0.6096)  # 2 MWh covered, 3 MWh residual
    formation = next(a for a in inv.by_area() if a["area"] == "formation")
    assert formation["scope2_market_kg"] == pytest.approx(3000 * 0.6 * 0.6096)  # shared by electricity
    assert [(i["eligible"], i["mwh_used"]) for i in inv.instruments] == [(True, 2.0), (False, 0.0)]


def test_certificates_beyond_consumption_cover_no_more_than_it() -> None:
    inv = compute(
        period="2025",
        year=2025,
        factors=LIB.factors,
        factor_version="t",
        activities=[Activity(SITE, "electricity", T, 500.0, "kWh")],
        instruments=[Instrument(1, "contract", "GREEN_POWER", "PPA-1", 3.0, 2025)],
        settings=SETTINGS,
    )
    assert inv.totals()["scope2_market_kg"] == 0.0
    assert inv.instruments[0]["mwh_used"] == pytest.approx(0.5)


def test_unknown_units_and_gases_are_refused_with_a_reason() -> None:
    with pytest.raises(LedgerInputError, match="unit 'J'"):
        compute(
            period="2025",
            year=2025,
            factors=LIB.factors,
            factor_version="t",
            activities=[Activity("a", "electricity", T, 1.0, "J")],
            settings=SETTINGS,
        )
    with pytest.raises(LedgerInputError, match="GWP for gas 'R-999'"):
        compute(
            period="2025",
            year=2025,
            factors=LIB.factors,
            factor_version="t",
            activities=[],
            entries=[Entry("a", "fugitive", "R-999", 1.0, "kg")],
            settings=SETTINGS,
        )


def test_hourly_intensity_mixes_grid_and_onsite_generation() -> None:
    h0, h1 = datetime(2025, 6, 1, 3, tzinfo=UTC), datetime(2025, 6, 1, 4, tzinfo=UTC)
    rows = hourly_intensity(grid_kwh={h0: 100.0, h1: 50.0}, onsite_kwh={h1: 150.0}, grid_factor_kg_per_kwh=0.6)
    assert [r["g_per_kwh"] for r in rows] == [pytest.approx(600.0), pytest.approx(150.0)]


SMALL = {
    "processes": [
        {
            "code": "a",
            "name": "cathode",
            "area": "a",
            "yield": 0.9,
            "unit": "m",
            "materials": [{"code": "x", "name": "X", "quantity": 2, "unit": "kg", "factor_kg_per_unit": 3}],
        },
        {"code": "b", "name": "anode", "area": "b", "yield": 1.0, "unit": "m"},
        {
            "code": "c",
            "name": "cell",
            "area": "c",
            "yield": 0.8,
            "unit": "cell",
            "inputs": [{"process": "a", "quantity": 1}, {"process": "b", "quantity": 1}],
        },
        {
            "code": "p",
            "name": "pack",
            "area": "p",
            "yield": 0.5,
            "unit": "pack",
            "inputs": [{"process": "c", "quantity": 4}],
        },
    ],
    "product": {"name": "P", "cell_process": "c", "pack_process": "p", "cell_kwh": 0.5, "pack_kwh": 2.0},
}


def test_footprint_on_a_small_graph_with_scrap() -> None:
    r = Routing.model_validate(SMALL)
    fp = footprint(r, {"a": 90, "b": 50, "c": 40, "p": 10}, {"a": 100, "b": 100, "c": 80, "p": 10})
    # by hand: b_a = 90/100 + 2*3/0.9 = 7.5667; b_b = 0.5; b_c = 40/80 + (7.5667 + 0.5)/0.8 = 10.5833;
    # b_p = 10/10 + 4 * 10.5833 / 0.5 = 85.6667 kg per pack, / 2 kWh = 42.8333 kg/kWh
    assert fp.kg_per_cell == pytest.approx(10.583333, rel=1e-6)
    assert fp.kg_per_pack == pytest.approx(85.666667, rel=1e-6)
    assert fp.kg_per_kwh == pytest.approx(42.833333, rel=1e-6)
    assert fp.per_pack == pytest.approx(
        {"process:p": 1.0, "process:c": 4.0, "process:a": 9.0, "process:b": 5.0, "material:x": 66.666667}, rel=1e-6
    )
    assert [h["item"] for h in fp.hotspots(2)] == ["material:x", "process:a"]
    # without scrap downstream the upstream burden is not inflated
    no_scrap = Routing.model_validate({**SMALL, "processes": [{**p, "yield": 1.0} for p in SMALL["processes"]]})
    assert footprint(
        no_scrap, {"a": 90, "b": 50, "c": 40, "p": 10}, {"a": 100, "b": 100, "c": 80, "p": 10}
    ).kg_per_pack == pytest.approx(1 + 4 * (0.5 + 0.9 + 6 + 0.5))


def test_footprint_refuses_emissions_without_output_and_bad_graphs() -> None:
    r = Routing.model_validate(SMALL)
    with pytest.raises(FootprintError, match="process c"):
        burdens(r, {"c": 1.0}, {"a": 1, "b": 1, "p": 1})
    cyc = {
        **SMALL,
        "processes": [{**SMALL["processes"][0], "inputs": [{"process": "p", "quantity": 1}]}, *SMALL["processes"][1:]],
    }
    with pytest.raises(ValidationError, match="cycle"):
        Routing.model_validate(cyc)
    with pytest.raises(ValidationError, match="yield"):
        Routing.model_validate({**SMALL, "processes": [{**SMALL["processes"][0], "yield": 0}]})


def test_demo_routing_orders_branches_before_assembly() -> None:
    order = demo_routing().order()
    assert order.index("cathode-slitting") < order.index("stacking") > order.index("anode-slitting")
    assert order[-1] == "pack"


def test_site_meters_of_every_medium_add_only_what_the_areas_miss() -> None:
    acts = [
        Activity("coating", "natural_gas", T, 80.0, "m³"),
        Activity(SITE, "natural_gas", T, 100.0, "Nm3"),
        Activity("formation", "steam", T, 5.0, "GJ"),
        Activity(SITE, "steam", T, 5.0, "GJ"),
    ]
    inv = compute(
        period="2025-03", year=2025, factors=LIB.factors, factor_version="t", activities=acts, settings=SETTINGS
    )
    gas = {x.area: x.quantity for x in inv.lines if x.source == "natural_gas"}
    assert gas == {"coating": 80.0, SITE: pytest.approx(20.0)}
    assert [x.area for x in inv.lines if x.category == "steam"] == ["formation"]
    assert inv.totals()["scope1_kg"] == pytest.approx(100 * 2.1621888, rel=1e-6)
