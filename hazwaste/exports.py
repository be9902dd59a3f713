"""Ledger and declaration exports in the field order of HJ 1259-2022 Appendix B (tables B.1 to B.5), as CSV or XLSX.

The column order follows the fields listed per stage in standards.md 4.2 (HJ 1259-2022 Appendix B); it has not
been compared with the national information system's own import template, which may differ in detail.
``monthly_declaration`` sums one period per waste code: generated, stored, out of storage, used or disposed of on
site, sent out, and the stock in storage at the end of the period.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

_CONTAINER = [
    ("容器/包装编码", "container_code"),
    ("容器/包装类型", "container_type"),
    ("容器/包装数量", "container_count"),
]
_WASTE = [
    ("危险废物名称", "waste_name"),
    ("名录名称", "list_name"),
    ("危险废物类别", "category"),
    ("危险废物代码", "waste_code"),
]
#: sheet -> (title, stages, columns (header, field))
TABLES: dict[str, tuple[str, tuple[str, ...], list[tuple[str, str]]]] = {
    "B.1": (
        "产生环节",
        ("generation",),
        [
            ("产生批次编码", "batch_code"),
            ("产生时间", "at"),
            *_WASTE,
            ("产生量", "quantity_kg"),
            ("计量单位", "unit"),
            *_CONTAINER,
            ("产生设施编码", "facility_code"),
            ("产生部门经办人", "handler"),
            ("去向", "destination"),
        ],
    ),
    "B.2": (
        "入库环节",
        ("storage_in",),
        [
            ("入库批次编码", "batch_code"),
            ("入库时间", "at"),
            *_CONTAINER,
            *_WASTE,
            ("入库量", "quantity_kg"),
            ("计量单位", "unit"),
            ("贮存设施编码", "facility_code"),
            ("贮存设施类型", "facility_kind"),
            ("运送部门经办人", "handler"),
            ("贮存部门经办人", "handler2"),
            ("产生批次编码", "source_batch"),
        ],
    ),
    "B.3": (
        "出库环节",
        ("storage_out",),
        [
            ("出库批次编码", "batch_code"),
            ("出库时间", "at"),
            *_CONTAINER,
            *_WASTE,
            ("出库量", "quantity_kg"),
            ("计量单位", "unit"),
            ("贮存设施编码", "facility_code"),
            ("贮存设施类型", "facility_kind"),
            ("出库部门经办人", "handler"),
            ("运送部门经办人", "handler2"),
            ("入库批次编码", "source_batch"),
            ("去向", "destination"),
        ],
    ),
    "B.4": (
        "自行利用/处置环节",
        ("own_use", "own_disposal"),
        [
            ("自行利用/处置批次编码", "batch_code"),
            ("自行利用/处置时间", "at"),
            *_CONTAINER,
            *_WASTE,
            ("自行利用/处置量", "quantity_kg"),
            ("计量单位", "unit"),
            ("自行利用/处置设施编码", "facility_code"),
            ("自行利用/处置方式", "method"),
            ("自行利用/处置完毕时间", "finished_at"),
            ("经办人", "handler"),
            ("来源批次编码", "source_batch"),
        ],
    ),
    "B.5": (
        "委外利用/处置环节",
        ("sent_use", "sent_disposal", "export_use", "export_disposal"),
        [
            ("委外利用/处置批次编码", "batch_code"),
            ("出厂时间", "at"),
            *_CONTAINER,
            *_WASTE,
            ("委外利用/处置量", "quantity_kg"),
            ("计量单位", "unit"),
            ("利用/处置方式", "method"),
            ("接收单位类型", "receiver_type"),
            ("接收单位名称", "receiver_name"),
            ("许可证编码/出口核准通知单编号", "receiver_licence"),
            ("经办人", "handler"),
            ("来源批次编码", "source_batch"),
        ],
    ),
}
DECLARATION = [
    ("危险废物代码", "waste_code"),
    ("危险废物类别", "category"),
    ("危险废物名称", "waste_name"),
    ("期初贮存量", "opening_kg"),
    ("产生量", "generated_kg"),
    ("入库量", "stored_kg"),
    ("出库量", "out_kg"),
    ("自行利用处置量", "own_kg"),
    ("委外利用处置量", "sent_kg"),
    ("期末贮存量", "closing_kg"),
    ("计量单位", "unit"),
]


def period_bounds(period: str, tz: str) -> tuple[datetime, datetime]:
    """The local start and end of a period ``YYYY`` or ``YYYY-MM`` (end exclusive)."""
    zone = ZoneInfo(tz)
    year, _, month = period.partition("-")
    y = int(year)
    if month:
        m = int(month)
        start, end = date(y, m, 1), date(y + (m == 12), m % 12 + 1, 1)
    else:
        start, end = date(y, 1, 1), date(y + 1, 1, 1)
    return (datetime(start.year, start.month, 1, tzinfo=zone), datetime(end.year, end.month, 1, tzinfo=zone))


def ledger_rows(
    *, conn: psycopg.Connection, site_id: int, start: datetime, end: datetime, stages: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Current ledger entries of some stages in [start, end), with their container, waste and facility fields."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT l.*, c.code AS container_code, c.container_type, w.name AS waste_name, w.list_name, w.category,
                  w.waste_code, f.code AS facility_code, f.kind AS facility_kind
           FROM hw_ledger_current l JOIN hw_container c ON c.id = l.container_id
           JOIN hw_waste_type w ON w.id = l.waste_type_id LEFT JOIN hw_facility f ON f.id = l.facility_id
           WHERE l.site_id = %s AND l.at >= %s AND l.at < %s AND l.stage = ANY(%s) ORDER BY l.at, l.entry_id""",
            (site_id, start, end, list(stages)),
        )
        .fetchall()
    )


def monthly_declaration(
    *, conn: psycopg.Connection, site_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Quantities (kg) per waste code for [start, end): generated, stored, out, own use/disposal, sent out,
    and the stock in storage at the start and the end."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """WITH l AS (SELECT l.waste_type_id, l.stage, l.quantity_kg, l.at FROM hw_ledger_current l
                      WHERE l.site_id = %(site)s AND l.at < %(end)s),
                stock AS (SELECT waste_type_id,
                    sum(CASE WHEN stage = 'storage_in' AND at < %(start)s THEN quantity_kg
                             WHEN stage = 'storage_out' AND at < %(start)s THEN -quantity_kg ELSE 0 END) AS opening,
                    sum(CASE WHEN stage = 'storage_in' THEN quantity_kg WHEN stage = 'storage_out'
                             THEN -quantity_kg ELSE 0 END) AS closing,
                    sum(quantity_kg) FILTER (WHERE at >= %(start)s AND stage = 'generation') AS generated,
                    sum(quantity_kg) FILTER (WHERE at >= %(start)s AND stage = 'storage_in') AS stored,
                    sum(quantity_kg) FILTER (WHERE at >= %(start)s AND stage = 'storage_out') AS out_,
                    sum(quantity_kg) FILTER (WHERE at >= %(start)s AND stage LIKE 'own%%') AS own,
                    sum(quantity_kg) FILTER (WHERE at >= %(start)s AND (stage LIKE 'sent%%' OR stage LIKE 'export%%'))
                        AS sent
                    FROM l GROUP BY waste_type_id)
           SELECT w.waste_code, w.category, w.name AS waste_name, round(coalesce(s.opening, 0)::numeric, 3)::float
                  AS opening_kg, coalesce(s.generated, 0) AS generated_kg, coalesce(s.stored, 0) AS stored_kg,
                  coalesce(s.out_, 0) AS out_kg, coalesce(s.own, 0) AS own_kg, coalesce(s.sent, 0) AS sent_kg,
                  round(coalesce(s.closing, 0)::numeric, 3)::float AS closing_kg, 'kg' AS unit
           FROM stock s JOIN hw_waste_type w ON w.id = s.waste_type_id ORDER BY w.waste_code, w.code""",
            {"site": site_id, "start": start, "end": end},
        )
        .fetchall()
    )


def _cell(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else value


def to_csv(columns: list[tuple[str, str]], rows: list[dict[str, Any]], tz: str) -> str:
    """CSV with a byte-order mark (so spreadsheet programs read the Chinese headers as UTF-8)."""
    zone = ZoneInfo(tz)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([h for h, _ in columns])
    for row in rows:
        writer.writerow([_cell(row.get(key), zone) for _, key in columns])
    return "\ufeff" + buf.getvalue()


def to_xlsx(sheets: list[tuple[str, list[tuple[str, str]], list[dict[str, Any]]]], tz: str) -> bytes:
    """A workbook, one sheet per (title, columns, rows)."""
    from openpyxl import Workbook

    zone = ZoneInfo(tz)
    wb = Workbook(write_only=True)
    for title, columns, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append([h for h, _ in columns])
        for row in rows:
            ws.append([_cell(row.get(key), zone) for _, key in columns])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def read_xlsx(data: bytes, *, max_rows: int) -> list[tuple[Any, ...]]:
    """The rows (values) of an uploaded workbook's first sheet, at most ``max_rows``; ValueError when it is not a
    readable XLSX file (hazwaste.exchange reads the receivers' confirmations with it)."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        return list(wb.active.iter_rows(values_only=True, max_row=max_rows))
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise ValueError(f"not a readable XLSX file ({type(exc).__name__})") from None


def ledger_workbook(*, conn: psycopg.Connection, site_id: int, period: str, tz: str) -> bytes:
    """The ledger of a period, tables B.1 to B.5, and the declaration figures, as one XLSX workbook."""
    start, end = period_bounds(period, tz)
    sheets = [
        (
            f"{key} {title}".replace("/", "-"),
            columns,
            ledger_rows(conn=conn, site_id=site_id, start=start, end=end, stages=stages),
        )
        for key, (title, stages, columns) in TABLES.items()
    ]
    sheets.append(
        (f"申报 {period}", DECLARATION, monthly_declaration(conn=conn, site_id=site_id, start=start, end=end))
    )
    return to_xlsx(sheets, tz)
