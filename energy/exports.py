"""Ledger exports (CSV, XLSX) and spreadsheet reading for offline-meter and production imports (openpyxl's one
home in the energy package)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from energy.ledger import LedgerRow

HEADERS = [
    ("键 key", "key"),
    ("名称 name", "name"),
    ("介质 medium", "medium"),
    ("时段开始 bucket", "bucket"),
    ("用量 quantity", "quantity"),
    ("单位 unit", "unit"),
    ("标准煤 kgce", "kgce"),
    ("费用 cost (CNY)", "cost"),
    ("其中基本电费 of which demand charge (CNY)", "demand_charge"),
    ("实测 measured", "measured"),
    ("估算 estimated", "estimated"),
    ("缺失 missing", "missing"),
]


def _cells(row: LedgerRow, timezone: str | None) -> list[Any]:
    bucket = row.bucket_start
    if timezone:
        from zoneinfo import ZoneInfo

        bucket = bucket.astimezone(ZoneInfo(timezone))
    values = {
        "key": row.key,
        "name": row.name,
        "medium": row.medium,
        "bucket": bucket.isoformat(),
        "quantity": row.quantity,
        "unit": row.unit,
        "kgce": row.kgce,
        "cost": row.cost,
        "demand_charge": row.demand_charge,
        "measured": row.measured,
        "estimated": row.estimated,
        "missing": row.missing,
    }
    return [values[field] for _h, field in HEADERS]


def ledger_csv(rows: list[LedgerRow], timezone: str | None = None) -> bytes:
    """UTF-8 CSV with a BOM (Excel opens Chinese headers correctly), bucket starts in site-local time."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([h for h, _f in HEADERS])
    for row in rows:
        writer.writerow(["" if v is None else v for v in _cells(row, timezone)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def ledger_xlsx(rows: list[LedgerRow], timezone: str | None = None, title: str = "能源台账 Energy ledger") -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "ledger"
    ws.append([title])
    ws.append([h for h, _f in HEADERS])
    for row in rows:
        ws.append(_cells(row, timezone))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def read_table(data: bytes, filename: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row by lower-case header) of a CSV (UTF-8, BOM allowed) or XLSX upload; ValueError when the
    file cannot be read as either."""
    if filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
            raise ValueError(f"not a readable XLSX file ({type(exc).__name__})") from None
        rows = wb.active.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ValueError("the sheet is empty")
        names = [str(h or "").strip().lower() for h in header]
        for n, values in enumerate(rows, start=2):
            if values is None or all(v is None or v == "" for v in values):
                continue
            yield n, dict(zip(names, values, strict=False))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the CSV file is not UTF-8") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ValueError("the file is empty")
    names = [h.strip().lower() for h in header]
    for n, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        yield n, dict(zip(names, values, strict=False))


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time with an offset (or an XLSX datetime, which must carry none: refused)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(
                f"{field}: a time needs its UTC offset (write it as ISO 8601 text, e.g. 2026-03-01T08:00:00+08:00)"
            )
        return value
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{field}: {str(value)[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{field}: {str(value)[:40]!r} has no UTC offset (e.g. +08:00)")
    if not 2000 <= when.year <= 2200:
        raise ValueError(f"{field}: must lie between 2000 and 2200")
    return when


def parse_number(value: Any, field: str, *, minimum: float = 0.0, maximum: float = 1e12) -> float:
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise ValueError(f"{field}: {str(value)[:40]!r} is not a number") from None
    if not minimum <= number <= maximum or number != number:
        raise ValueError(f"{field}: {number} is outside [{minimum:g}, {maximum:g}]")
    return number
