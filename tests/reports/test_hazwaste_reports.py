"""The hazardous-waste reports on a small world: the XLSX read back agrees with hazwaste's own figures (the
declaration, the manifests, the stock per store), the PDF and CSV render, the year report sums the months."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import psycopg
import pytest

from hazwaste import exports, ledger, manifests
from reports.model import Params
from reports.registry import KINDS
from reports.render import FORMATS
from tests.hazwaste.test_manifests import SH, _draft, _stored
from tests.hazwaste.world import seed
from tests.reports import pdftools
from tests.support import unique_code

pytestmark = pytest.mark.db
NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
JAN = (datetime(2026, 1, 1, tzinfo=SH), datetime(2026, 2, 1, tzinfo=SH))


def _world(conn: psycopg.Connection):
    """Two electrolyte drums shipped on a short-received manifest, a carbon bag still in WH-1, a February drum."""
    w = seed(conn, unique_code("hw"))
    mid = _draft(conn, w, _stored(conn, w, "electrolyte", 100.0))
    t = datetime(2026, 1, 6, 9, 0, tzinfo=SH)
    manifests.apply_event(conn=conn, manifest_id=mid, event="submit", at=t, actor="u", number="20263205123456")
    manifests.apply_event(conn=conn, manifest_id=mid, event="depart", at=t, actor="u")
    manifests.apply_event(conn=conn, manifest_id=mid, event="deliver", at=t + timedelta(hours=3), actor="u")
    manifests.apply_event(conn=conn, manifest_id=mid, event="receive", at=t, actor="r", received_kg=150.0)
    for kind, kg, at, fac in (
        ("carbon", 42.5, datetime(2026, 1, 20, 10, 0, tzinfo=SH), "WH-1"),
        ("packaging", 7.0, datetime(2026, 2, 3, 10, 0, tzinfo=SH), "WH-2"),
    ):
        cid = ledger.create_container(
            conn=conn,
            site_id=w.site_id,
            code=unique_code("C-"),
            waste_type_id=w.types[kind],
            container_type="bag",
            volume_l=100,
        )
        ledger.record(
            conn=conn, container_id=cid, stage="generation", at=at, quantity_kg=kg, handler="a", recorded_by="t"
        )
        ledger.record(
            conn=conn, container_id=cid, stage="storage_in", at=at, handler="a", facility=fac, recorded_by="t"
        )
    return w, mid


def _book(doc) -> dict[str, list[list]]:
    book = openpyxl.load_workbook(io.BytesIO(FORMATS["xlsx"].render(doc)))
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in book.worksheets}


def _body(sheet: list[list], first: str) -> list[list]:
    """The rows under the header row whose first cell is ``first``."""
    start = next(i for i, r in enumerate(sheet) if r and r[0] == first)
    return [r for r in sheet[start + 1 :] if r and r[0] is not None]


def test_month_report_reads_back_as_hazwaste_figures(conn: psycopg.Connection, tmp_path: Path) -> None:
    w, _ = _world(conn)
    doc = KINDS["hazwaste_month"].build(conn, Params(w.site, *JAN), NOW)
    assert doc.areas == ["hw-store"]  # what regulators may read
    book = _book(doc)
    declared = exports.monthly_declaration(conn=conn, site_id=w.site_id, start=JAN[0], end=JAN[1])
    movements = _body(book["movements"], "废物代码")
    assert [(r[0], r[4], r[8], r[9]) for r in movements] == [
        (d["waste_code"], d["generated_kg"], d["sent_kg"], d["closing_kg"]) for d in declared
    ]
    assert {r[0]: (r[4], r[8], r[9]) for r in movements} == {
        "900-039-49": (42.5, 0, 42.5),
        "900-404-06": (200.0, 200.0, 0),
    }
    stock = {r[0]: r for r in _body(book["stock"], "贮存设施编码")}
    assert (stock["WH-1"][2], stock["WH-1"][4]) == (42.5, pytest.approx(4.25))  # 42.5 kg of 1000 kg
    assert stock["WH-2"][2] == 0  # the February drum is not in January's stock
    (manifest,) = _body(book["manifests"], "联单编号")
    assert (manifest[0], manifest[4], manifest[5], manifest[7]) == ("20263205123456", 200.0, 150.0, "数量差异")
    assert "危险废物管理月报" in pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    assert "20263205123456" in FORMATS["csv"].render(doc).decode("utf-8-sig")
    en = KINDS["hazwaste_month"].build(conn, Params(w.site, *JAN, lang="en"), NOW)
    assert en.table("manifests").rows[0][7] == "discrepancy"


def test_month_report_lists_overdue_manifests(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    mid = _draft(conn, w, _stored(conn, w, "electrolyte", 50.0))
    t = datetime(2026, 1, 6, 9, 0, tzinfo=SH)
    for event, extra in (("submit", {"number": "20263205123457"}), ("depart", {}), ("deliver", {})):
        manifests.apply_event(conn=conn, manifest_id=mid, event=event, at=t, actor="u", **extra)
    doc = KINDS["hazwaste_month"].build(conn, Params(w.site, *JAN), NOW)
    assert [(r[0], r[1]) for r in doc.table("overdue").rows] == [("20263205123457", "receipt")]


def test_year_report_is_the_annual_declaration(conn: psycopg.Connection) -> None:
    w, _ = _world(conn)
    year = (datetime(2026, 1, 1, tzinfo=SH), datetime(2027, 1, 1, tzinfo=SH))
    doc = KINDS["hazwaste_year"].build(conn, Params(w.site, *year), NOW)
    book = _book(doc)
    declared = exports.monthly_declaration(conn=conn, site_id=w.site_id, start=year[0], end=NOW)
    assert [(r[0], r[4], r[8]) for r in _body(book["declaration"], "废物代码")] == [
        (d["waste_code"], d["generated_kg"], d["sent_kg"]) for d in declared
    ]
    assert [tuple(r[:4]) for r in _body(book["months"], "月份")] == [
        ("2026-01", 242.5, 0, 200.0),
        ("2026-02", 7.0, 0, 0),
    ]
