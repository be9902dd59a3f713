"""The carbon inventory report (GB/T 32150 / ISO 14064-1 shape) from the real database: figures equal the ledger,
offsets beside, XLSX and PDF render with Chinese text; only whole months or years."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import psycopg
import pytest
from openpyxl import load_workbook

from carbon import service
from reports.context import ReportError
from reports.kinds import carbon_inventory
from reports.model import Params, month_period
from reports.render import FORMATS
from tests.carbon.world import monthly_source, seed

pytestmark = pytest.mark.db
NOW = datetime(2026, 2, 1, tzinfo=UTC)


def test_monthly_inventory_matches_the_ledger_and_renders(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = seed(conn)
    src = monthly_source()
    monkeypatch.setattr(carbon_inventory, "SOURCE", src)
    service.add_certificates(
        conn=conn,
        site=site,
        scheme="GEC",
        serial_prefix="R",
        serial_first=1,
        serial_last=50,
        vintage_year=2025,
        period_start=date(2025, 3, 1),
        period_end=date(2025, 4, 1),
        reference="GEC-R",
        actor="t",
    )
    since, until = month_period("2025-03", "Asia/Shanghai")
    doc = carbon_inventory.build(conn, Params(site, since, until), NOW)
    led = service.ledger(conn=conn, site=site, period="2025-03", source=src)
    summary = doc.table("summary")
    assert summary.rows[2][1] == pytest.approx(led["totals"]["total_location_kg"] / 1000)
    assert summary.rows[2][2] == pytest.approx(led["totals"]["total_market_kg"] / 1000)
    assert summary.rows[1][2] == pytest.approx((31 * 24 * 440 - 50_000) * 0.6096 / 1000)
    assert "grid:jiangsu:2023:average" in doc.table("factors").values("row")
    assert doc.table("instruments").rows[0][2] == "GEC:R1..R50"
    pdf = FORMATS["pdf"].render(doc)
    assert pdf.startswith(b"%PDF")
    wb = load_workbook(io.BytesIO(FORMATS["xlsx"].render(doc)))
    assert {"summary", "by_area", "activity", "factors"} <= set(wb.sheetnames)


def test_annual_inventory_lists_offsets_beside_gross(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    site = seed(conn)
    monkeypatch.setattr(carbon_inventory, "SOURCE", monthly_source())
    service.add_offset(
        conn=conn,
        site=site,
        scheme="CCER",
        project="林业碳汇",
        serial_prefix="C",
        serial_first=1,
        serial_last=10,
        tco2e=10,
        vintage_year=2024,
        retired_on=date(2025, 6, 1),
        retirement_ref="R-9",
        claim_year=2025,
        actor="t",
    )
    since, _ = month_period("2025-01", "Asia/Shanghai")
    until, _ = month_period("2026-01", "Asia/Shanghai")
    doc = carbon_inventory.build(conn, Params(site, since, until, lang="en"), NOW)
    assert doc.table("offsets").rows == [("CCER", "林业碳汇", "C1..C10", 10.0, "R-9")]
    assert doc.table("summary").rows[2][1] == pytest.approx(365 * 24 * 440 * 0.5827 / 1000)  # not netted
    with pytest.raises(ReportError, match="whole month or a whole year"):
        carbon_inventory.build(conn, Params(site, since, since.replace(day=15)), NOW)


def test_batch_footprint_declaration_pdf(conn: psycopg.Connection) -> None:
    from carbon.footprint import Routing
    from reports.kinds import carbon_footprint
    from tests.carbon.test_formulas import SMALL

    site = seed(conn)
    service.set_routing(conn=conn, site=site, routing=Routing.model_validate(SMALL), actor="t")
    service.add_batch(
        conn=conn,
        site=site,
        code="B9",
        product="P",
        started_at=datetime(2025, 6, 1, tzinfo=UTC),
        ended_at=datetime(2025, 6, 2, tzinfo=UTC),
        output={"a": 100, "b": 100, "c": 80, "p": 10},
        actor="t",
    )
    src = monthly_source(
        kwh={"a": 90 / 0.5827 / 24, "b": 50 / 0.5827 / 24, "c": 40 / 0.5827 / 24, "p": 10 / 0.5827 / 24}, site_kwh=0.0
    )
    doc, fp = carbon_footprint.build(conn, site=site, batch="B9", basis="location", lang="zh-CN", now=NOW, source=src)
    stages = doc.table("stages")
    assert stages.rows[0][1] == pytest.approx(66.666667, rel=1e-5)  # material x per pack
    assert stages.rows[1][1] == pytest.approx(19.0, rel=1e-5)  # processes a, b, c, p per pack
    assert stages.rows[1][2] == pytest.approx(9.5, rel=1e-5)  # per kWh (2 kWh pack)
    assert doc.table("hotspots").rows[0][1] == "material:x"
    assert FORMATS["pdf"].render(doc).startswith(b"%PDF")
    with pytest.raises(ReportError, match="no batch"):
        carbon_footprint.build(conn, site=site, batch="nope", basis="location", lang="en", now=NOW, source=src)
