"""Exports: HJ 1259 field order in CSV and XLSX, and the declaration figures of a month."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from openpyxl import load_workbook

from hazwaste import exports, ledger
from tests.hazwaste.world import seed
from tests.support import unique_code

pytestmark = pytest.mark.db
SH = ZoneInfo("Asia/Shanghai")


def _history(conn, w):
    """Two containers of spent carbon: one stored in February and sent out in March, one generated in March."""
    a = ledger.create_container(
        conn=conn, site_id=w.site_id, code="C-A", waste_type_id=w.types["carbon"], container_type="吨袋", volume_l=1000
    )
    b = ledger.create_container(
        conn=conn, site_id=w.site_id, code="C-B", waste_type_id=w.types["carbon"], container_type="吨袋", volume_l=1000
    )
    feb, mar = datetime(2026, 2, 20, 10, tzinfo=SH), datetime(2026, 3, 10, 10, tzinfo=SH)
    ledger.record(
        conn=conn,
        container_id=a,
        stage="generation",
        at=feb,
        quantity_kg=500,
        handler="张三",
        facility="GEN-1",
        destination="贮存",
        recorded_by="t",
    )
    ledger.record(
        conn=conn,
        container_id=a,
        stage="storage_in",
        at=feb + timedelta(hours=1),
        handler="张三",
        handler2="李四",
        facility="WH-2",
        recorded_by="t",
    )
    ledger.record(conn=conn, container_id=a, stage="storage_out", at=mar, handler="李四", recorded_by="t")
    ledger.record(
        conn=conn,
        container_id=a,
        stage="sent_disposal",
        at=mar + timedelta(hours=1),
        handler="李四",
        method="D10",
        receiver_type="持证单位",
        receiver_name="某环保公司",
        receiver_licence="JS-1",
        recorded_by="t",
    )
    ledger.record(
        conn=conn, container_id=b, stage="generation", at=mar, quantity_kg=300, handler="张三", recorded_by="t"
    )
    ledger.record(
        conn=conn,
        container_id=b,
        stage="storage_in",
        at=mar + timedelta(days=1),
        handler="张三",
        facility="WH-2",
        recorded_by="t",
    )


def test_monthly_declaration_figures(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _history(conn, w)
    start, end = exports.period_bounds("2026-03", "Asia/Shanghai")
    (row,) = exports.monthly_declaration(conn=conn, site_id=w.site_id, start=start, end=end)
    assert row["waste_code"] == "900-039-49"
    assert (
        row["opening_kg"],
        row["generated_kg"],
        row["stored_kg"],
        row["out_kg"],
        row["sent_kg"],
        row["closing_kg"],
    ) == (500, 300, 300, 500, 500, 300)
    start, end = exports.period_bounds("2026", "Asia/Shanghai")
    (year,) = exports.monthly_declaration(conn=conn, site_id=w.site_id, start=start, end=end)
    assert (year["opening_kg"], year["generated_kg"], year["closing_kg"]) == (0, 800, 300)


def test_ledger_workbook_and_csv_keep_the_national_field_order(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _history(conn, w)
    wb = load_workbook(
        io.BytesIO(exports.ledger_workbook(conn=conn, site_id=w.site_id, period="2026-03", tz="Asia/Shanghai"))
    )
    assert wb.sheetnames == [
        "B.1 产生环节",
        "B.2 入库环节",
        "B.3 出库环节",
        "B.4 自行利用-处置环节",
        "B.5 委外利用-处置环节",
        "申报 2026-03",
    ]
    gen = list(wb["B.1 产生环节"].values)
    assert gen[0][:3] == ("产生批次编码", "产生时间", "危险废物名称")
    assert [r[0] for r in gen[1:]] == ["HWCS20260310001"]  # February's is not in March
    sent = list(wb["B.5 委外利用-处置环节"].values)
    header = sent[0]
    assert sent[1][header.index("许可证编码/出口核准通知单编号")] == "JS-1"
    assert sent[1][header.index("来源批次编码")] == "HWCK20260310001"
    assert sent[1][header.index("出厂时间")] == "2026-03-10 11:00"
    start, end = exports.period_bounds("2026-03", "Asia/Shanghai")
    _, stages, columns = exports.TABLES["B.2"]
    text = exports.to_csv(
        columns, exports.ledger_rows(conn=conn, site_id=w.site_id, start=start, end=end, stages=stages), "Asia/Shanghai"
    )
    assert text.startswith("\ufeff入库批次编码,入库时间,容器/包装编码")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1][:3] == ["HWRK20260311001", "2026-03-11 10:00", "C-B"]
