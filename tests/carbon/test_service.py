"""Carbon against the real database: closed periods stay frozen until an audited recalculation, serials are
claimed once, dual scope 2 with stored certificates, entries, offsets beside gross, batch footprints."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from carbon import service
from carbon.footprint import Routing
from carbon.service import CarbonError
from tests.carbon.test_formulas import SMALL
from tests.carbon.world import LIB, monthly_source, seed, with_factor

pytestmark = pytest.mark.db
HOURS_MARCH = 31 * 24


def _audit(conn, action: str) -> list[dict]:
    return [
        r[0]
        for r in conn.execute("SELECT detail FROM audit_entry WHERE action = %s ORDER BY seq", (action,)).fetchall()
    ]


def test_closed_period_is_unchanged_by_a_factor_change_until_an_audited_recalculation(conn: psycopg.Connection) -> None:
    site = seed(conn)
    src = monthly_source()
    kwh = HOURS_MARCH * 440.0  # site meter: (100 + 300) x 1.1 each hour
    closed = service.close_period(conn=conn, site=site, period="2025-03", source=src, actor="user:li")
    assert closed["totals"]["scope2_location_kg"] == pytest.approx(kwh * 0.5827)
    assert closed["factor_version"] == LIB.version
    # a new library with another Jiangsu 2023 factor becomes active
    service.import_library(
        conn=conn, library=with_factor(LIB, "grid:jiangsu:2023:average", 0.7, "2026.2"), actor="user:admin"
    )
    frozen = service.ledger(conn=conn, site=site, period="2025-03", source=src)
    assert frozen["closed"] and frozen["revision"] == 1
    assert frozen["totals"]["scope2_location_kg"] == pytest.approx(kwh * 0.5827)
    assert frozen["factors"]["grid:jiangsu:2023:average"] == {
        **frozen["factors"]["grid:jiangsu:2023:average"],
        "value": 0.5827,
        "version": LIB.version,
    }
    open_ = service.ledger(conn=conn, site=site, period="2025-04", source=src)  # open: today's factors
    assert not open_["closed"]
    assert open_["totals"]["scope2_location_kg"] == pytest.approx(30 * 24 * 440.0 * 0.7)
    # the entries of a closed month are refused
    with pytest.raises(CarbonError, match="closed"):
        service.add_entry(
            conn=conn,
            site=site,
            month=date(2025, 3, 1),
            kind="fugitive",
            code="R-32",
            quantity=1,
            unit="kg",
            actor="user:li",
        )
    with pytest.raises(CarbonError, match="reason"):
        service.recalculate(conn=conn, site=site, period="2025-03", source=src, actor="user:li", reason=" ")
    again = service.recalculate(
        conn=conn, site=site, period="2025-03", source=src, actor="user:li", reason="MEE corrected the Jiangsu factor"
    )
    assert again["revision"] == 2 and again["factor_version"] == "2026.2"
    assert service.ledger(conn=conn, site=site, period="2025-03", source=src)["totals"][
        "scope2_location_kg"
    ] == pytest.approx(kwh * 0.7)
    site_id = service.site_ref(conn=conn, code=site).id
    assert [r["revision"] for r in service.revisions(conn=conn, site_id=site_id, period="2025-03")] == [1, 2]
    [rec] = _audit(conn, "carbon.period.recalculate")
    assert rec["factor_version_before"] == LIB.version and rec["factor_version"] == "2026.2"
    assert rec["totals_before"]["scope2_location_kg"] == pytest.approx(kwh * 0.5827)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"), conn.transaction():
        conn.execute("UPDATE carbon_period SET reason = 'x'")
    with pytest.raises(CarbonError, match="closed already"):
        service.close_period(conn=conn, site=site, period="2025-03", source=src, actor="user:li")


def test_a_library_version_never_changes_content(conn: psycopg.Connection) -> None:
    seed(conn)
    assert service.import_library(conn=conn, library=LIB, actor="t") is False  # same content: no-op
    with pytest.raises(CarbonError, match="other content"):
        service.import_library(conn=conn, library=with_factor(LIB, "fuel:diesel", 1.0, LIB.version), actor="t")


def test_dual_scope_2_with_and_without_stored_certificates(conn: psycopg.Connection) -> None:
    site = seed(conn)
    src = monthly_source()
    kwh = HOURS_MARCH * 440.0
    before = service.compute_period(conn=conn, site=site, period="2025-03", source=src)
    assert before["totals"]["scope2_market_kg"] == pytest.approx(kwh * 0.6096)  # residual, no instruments
    # 100 certificates (100 MWh) for the whole of 2025: March gets 31/365 of them
    service.add_certificates(
        conn=conn,
        site=site,
        scheme="GEC",
        serial_prefix="T",
        serial_first=1000,
        serial_last=1099,
        vintage_year=2025,
        period_start=date(2025, 1, 1),
        period_end=date(2026, 1, 1),
        reference="GEC-2025-001",
        actor="user:li",
    )
    after = service.compute_period(conn=conn, site=site, period="2025-03", source=src)
    covered = 100_000 * 31 / 365
    assert after["totals"]["scope2_location_kg"] == pytest.approx(before["totals"]["scope2_location_kg"])
    assert after["totals"]["scope2_market_kg"] == pytest.approx((kwh - covered) * 0.6096, rel=1e-6)
    assert after["instruments"][0]["serials"] == "GEC:T1000..T1099"


def test_a_serial_is_claimed_once_whatever_the_site(conn: psycopg.Connection) -> None:
    a, b = seed(conn), seed(conn)
    kw = {
        "scheme": "GEC",
        "serial_prefix": "",
        "vintage_year": 2025,
        "period_start": date(2025, 1, 1),
        "period_end": date(2025, 2, 1),
        "actor": "t",
    }
    service.add_certificates(conn=conn, site=a, serial_first=1, serial_last=10, reference="r1", **kw)
    with pytest.raises(CarbonError, match=r"serials 10\.\.10 are claimed already"):
        service.add_certificates(conn=conn, site=b, serial_first=10, serial_last=20, reference="r2", **kw)
    service.add_certificates(conn=conn, site=b, serial_first=11, serial_last=20, reference="r3", **kw)
    service.add_certificates(
        conn=conn, site=b, serial_first=10, serial_last=20, reference="r4", **{**kw, "scheme": "I-REC"}
    )  # another scheme's serials
    with pytest.raises(CarbonError, match="retired already"):
        for _ in range(2):
            service.add_offset(
                conn=conn,
                site=a,
                scheme="CCER",
                project="P-1",
                serial_prefix="C",
                serial_first=5,
                serial_last=9,
                tco2e=5,
                vintage_year=2024,
                retired_on=date(2025, 6, 1),
                retirement_ref="R-1",
                claim_year=2025,
                actor="t",
            )


def test_offsets_are_reported_beside_gross_never_netted(conn: psycopg.Connection) -> None:
    site = seed(conn)
    src = monthly_source()
    gross = service.compute_period(conn=conn, site=site, period="2025", source=src)["totals"]
    service.add_offset(
        conn=conn,
        site=site,
        scheme="CCER",
        project="P-1",
        serial_prefix="C",
        serial_first=1,
        serial_last=50,
        tco2e=50,
        vintage_year=2024,
        retired_on=date(2025, 6, 1),
        retirement_ref="R-1",
        claim_year=2025,
        actor="t",
    )
    led = service.compute_period(conn=conn, site=site, period="2025", source=src)
    assert led["totals"] == gross
    assert led["offsets"]["tco2e"] == 50


def test_entries_count_and_corrections_replace(conn: psycopg.Connection) -> None:
    site = seed(conn)
    src = monthly_source(kwh={"coating": 0.0}, site_kwh=0.0)
    first = service.add_entry(
        conn=conn,
        site=site,
        month=date(2025, 5, 1),
        kind="fugitive",
        code="R-410A",
        quantity=3,
        unit="kg",
        area="formation",
        actor="t",
    )
    service.add_entry(
        conn=conn,
        site=site,
        month=date(2025, 5, 1),
        kind="fugitive",
        code="R-410A",
        quantity=2,
        unit="kg",
        area="formation",
        actor="t",
        corrects=first,
        note="weighed again",
    )
    led = service.compute_period(conn=conn, site=site, period="2025-05", source=src)
    assert led["totals"]["scope1_kg"] == pytest.approx(2 * 2256)
    with pytest.raises(CarbonError, match="co2e_kg"):
        service.add_entry(
            conn=conn, site=site, month=date(2025, 5, 1), kind="process", code="x", quantity=1, unit="t", actor="t"
        )


def test_batch_footprint_from_stored_routing_and_batches(conn: psycopg.Connection) -> None:
    site = seed(conn)
    service.set_routing(conn=conn, site=site, routing=Routing.model_validate(SMALL), actor="t")
    src = monthly_source(
        kwh={"a": 90 / 0.5827 / 24, "b": 50 / 0.5827 / 24, "c": 40 / 0.5827 / 24, "p": 10 / 0.5827 / 24}, site_kwh=0.0
    )
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)
    service.add_batch(
        conn=conn,
        site=site,
        code="B1",
        product="P",
        started_at=start,
        ended_at=end,
        output={"a": 100, "b": 100, "c": 80, "p": 10},
        actor="t",
    )
    fp = service.batch_footprint(conn=conn, site=site, batch="B1", source=src)
    # a day of electricity at the 2023 Jiangsu factor gives the hand-computed case's emissions
    assert fp["kg_per_pack"] == pytest.approx(85.666667, rel=1e-5)
    assert fp["kg_per_kwh"] == pytest.approx(42.833333, rel=1e-5)
    assert fp["hotspots"][0]["item"] == "material:x"
    with pytest.raises(CarbonError, match="not in the routing"):
        service.add_batch(
            conn=conn, site=site, code="B2", product="P", started_at=start, ended_at=end, output={"zz": 1}, actor="t"
        )


def test_hourly_intensity_mixes_the_grid_with_on_site_pv(conn: psycopg.Connection) -> None:
    from carbon.ledger import SITE, Activity
    from carbon.sources import RowsSource

    site = seed(conn)
    service.set_site(conn=conn, site=site, actor="t", province="jiangsu", pv_meters=("pv-roof",))
    h0, h1 = datetime(2025, 6, 1, 2, tzinfo=UTC), datetime(2025, 6, 1, 3, tzinfo=UTC)
    src = RowsSource(
        [
            ("site", Activity(SITE, "electricity", h0, 1000.0, "kWh")),
            ("site", Activity(SITE, "electricity", h1, 600.0, "kWh")),
            ("meter", Activity("pv-roof", "electricity", h1, 400.0, "kWh")),
            ("meter", Activity("incomer", "electricity", h1, 600.0, "kWh")),
        ]
    )
    rows = service.hourly(conn=conn, site=site, start=h0, end=h1 + timedelta(hours=1), source=src)
    assert [r["g_per_kwh"] for r in rows] == [pytest.approx(582.7), pytest.approx(600 * 582.7 / 1000)]
    assert rows[1]["onsite_kwh"] == 400.0 and rows[0]["factor_key"] == "grid:jiangsu:2023:average"


def test_intensity_per_unit_of_output_per_process(conn: psycopg.Connection) -> None:
    site = seed(conn)
    service.set_routing(conn=conn, site=site, routing=Routing.model_validate(SMALL), actor="t")
    # March: area a uses 100 kWh an hour; two batches, one inside March, one half in it
    service.add_batch(
        conn=conn,
        site=site,
        code="M1",
        product="P",
        started_at=datetime(2025, 3, 10, tzinfo=UTC),
        ended_at=datetime(2025, 3, 11, tzinfo=UTC),
        output={"a": 1000},
        actor="t",
    )
    service.add_batch(
        conn=conn,
        site=site,
        code="M2",
        product="P",
        started_at=datetime(2025, 3, 31, 4, tzinfo=UTC),
        ended_at=datetime(2025, 4, 1, 4, tzinfo=UTC),
        output={"a": 1000},
        actor="t",
    )
    led = service.compute_period(
        conn=conn, site=site, period="2025-03", source=monthly_source(kwh={"a": 100.0}, site_kwh=0.0)
    )
    a = next(p for p in led["by_process"] if p["process"] == "a")
    kg = 31 * 24 * 100 * 0.5827
    assert a["co2e_kg"] == pytest.approx(kg)
    assert a["output"] == pytest.approx(1500)  # March ends 2025-03-31 16:00 UTC: half of M2
    assert a["kg_per_unit"] == pytest.approx(kg / 1500)


def test_a_year_of_batch_footprints_equals_each_batch_alone(conn: psycopg.Connection) -> None:
    site = seed(conn)
    service.set_routing(conn=conn, site=site, routing=Routing.model_validate(SMALL), actor="t")
    service.add_entry(
        conn=conn,
        site=site,
        month=date(2025, 6, 1),
        kind="fugitive",
        code="R-32",
        quantity=3,
        unit="kg",
        area="c",
        actor="t",
    )
    service.add_certificates(
        conn=conn,
        site=site,
        scheme="GEC",
        serial_prefix="Y",
        serial_first=1,
        serial_last=9,
        vintage_year=2025,
        period_start=date(2025, 6, 1),
        period_end=date(2025, 7, 1),
        reference="y",
        actor="t",
    )
    src = monthly_source(kwh={"a": 4.0, "b": 2.0, "c": 3.0, "p": 1.0}, site_kwh=0.0)
    for d in range(3):
        start = datetime(2025, 6, 1 + d, 2, tzinfo=UTC)
        service.add_batch(
            conn=conn,
            site=site,
            code=f"D{d}",
            product="P",
            started_at=start,
            ended_at=start + timedelta(hours=30),
            output={"a": 100 + d, "b": 90, "c": 80, "p": 10},
            actor="t",
        )
    together = service.batch_footprints(
        conn=conn,
        site=site,
        start=datetime(2025, 6, 1, tzinfo=UTC),
        end=datetime(2025, 7, 1, tzinfo=UTC),
        source=src,
        basis="market",
    )
    alone = [service.batch_footprint(conn=conn, site=site, batch=f"D{d}", source=src, basis="market") for d in range(3)]
    assert [f["batch"] for f in together] == ["D0", "D1", "D2"]
    assert [f["kg_per_kwh"] for f in together] == pytest.approx([f["kg_per_kwh"] for f in alone], rel=1e-12)
    assert together[0]["by_item_per_pack"] == pytest.approx(alone[0]["by_item_per_pack"], rel=1e-12)
