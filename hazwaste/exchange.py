"""Exchange with the national hazardous-waste information system and the disposal company.

Out: the transfer manifests (转移联单) of a period as CSV/XLSX, in the field order of the manifest rules
(standards.md 4.4: number, consignor, carrier with vehicle and permit, receiver with licence, waste type and
hazard characteristics, quantities shipped and received); the ledger and the declaration figures are
``hazwaste.exports``. standards.md gives no import template of the national system for any of them (nor the
fields of the management plan, 管理计划, which is therefore not exported): the column order is the rules' field
order and may differ in detail from the system's own template.

In: the receiver's confirmation of receipt (接收确认), a CSV or XLSX from the disposal company or downloaded from
the national system, one row per manifest: manifest number (联单编号), quantity received (接收量, with an optional
unit column, kg by default), receipt date (接收日期) and the receiver's licence number (经营许可证编号). The file is
parsed strictly: every problem is named by line and column, and one problem refuses the whole file (nothing is
applied). Each row becomes the manifest's ``receive`` event through the state machine (``hazwaste.manifests``),
after ``deliver`` when the manifest was still in transit (the receipt proves the delivery), so a quantity that
differs from the shipped one is flagged as a discrepancy exactly as when it is typed in. A row for a manifest
already confirmed with the same quantity changes nothing (a file may be imported twice).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from hazwaste import exports, manifests
from hazwaste.catalogue import HazwasteError
from hazwaste.manifest_pdf import STATES

MAX_ROWS = 10_000
MAX_PROBLEMS = 50
#: field -> the headers accepted for it (compared without spaces, case-insensitive); the first is the one written
RECEIPT_HEADERS: dict[str, tuple[str, ...]] = {
    "number": ("联单编号", "转移联单编号", "manifest_number", "number"),
    "quantity": ("接收量", "实际接收量", "received_quantity", "received_kg"),
    "unit": ("计量单位", "单位", "unit"),
    "received_on": ("接收日期", "接收时间", "receipt_date", "received_on", "received_at"),
    "licence": ("经营许可证编号", "接受单位许可证编号", "许可证编号", "receiver_licence", "licence"),
}
REQUIRED = ("number", "quantity", "received_on", "licence")
UNITS = {"kg": 1.0, "千克": 1.0, "公斤": 1.0, "t": 1000.0, "吨": 1000.0}
CONFIRMED = ("received", "discrepancy", "disposed", "closed")
_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


class ReceiptsRefused(HazwasteError):
    """The receipts file was refused whole; ``problems``: 'line N, column C: what' for each (the first 50)."""

    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        super().__init__(f"receipts refused, nothing applied: {shown}", 422)
        self.problems = problems[:MAX_PROBLEMS]
        self.field = "file"
        self.extra = {"problems": self.problems}


@dataclass(frozen=True, slots=True)
class Receipt:
    line: int
    number: str
    received_kg: float
    received_on: date | datetime  # a date, or a local time without offset (the site's zone)
    licence: str


# --- reading ---------------------------------------------------------------------------------------------------


def _norm(header: Any) -> str:
    return re.sub(r"\s+", "", str(header or "")).lower()


_ALIASES = {_norm(h): field for field, hs in RECEIPT_HEADERS.items() for h in hs}


def _table(data: bytes, filename: str) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """Header and (line, values) of a CSV (UTF-8, BOM allowed) or XLSX file; ReceiptsRefused when unreadable."""
    if filename.lower().endswith(".xlsx"):
        try:
            rows = exports.read_xlsx(data, max_rows=MAX_ROWS + 2)
        except ValueError as exc:
            raise ReceiptsRefused([f"line 1: {exc}"]) from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ReceiptsRefused(["line 1: the CSV file is not UTF-8"]) from None
        if "\x00" in text:
            raise ReceiptsRefused(["line 1: the CSV file holds NUL characters"])
        try:
            rows = [tuple(r) for r in csv.reader(io.StringIO(text, newline=""))]
        except csv.Error as exc:
            raise ReceiptsRefused([f"line 1: not a readable CSV file ({exc})"]) from None
    if not rows:
        raise ReceiptsRefused(["line 1: the file is empty (expected a header row)"])
    header = [_norm(h) for h in rows[0]]
    body = [
        (n, list(values))
        for n, values in enumerate(rows[1:], start=2)
        if values and any(v is not None and str(v).strip() != "" for v in values)
    ]
    if len(body) > MAX_ROWS:
        raise ReceiptsRefused([f"line {MAX_ROWS + 2}: more than {MAX_ROWS} rows: split the file"])
    return header, body


def _columns(header: list[str]) -> dict[str, int]:
    problems, where = [], {}
    for i, h in enumerate(header):
        field = _ALIASES.get(h)
        if field is None:
            continue
        if field in where:
            problems.append(f"line 1, column {i + 1} ({h}): a second column for {RECEIPT_HEADERS[field][0]}")
        where[field] = i
    for field in REQUIRED:
        if field not in where:
            names = " / ".join(RECEIPT_HEADERS[field])
            problems.append(f"line 1: no column {RECEIPT_HEADERS[field][0]} (a header named {names})")
    if problems:
        raise ReceiptsRefused(problems)
    return where


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _quantity(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int | float):
        q = float(value)
    else:
        text = _text(value).replace(",", "")
        if not re.fullmatch(r"\d+(\.\d+)?", text):
            raise ValueError(f"{_text(value)[:40]!r} is not a quantity (digits, a decimal point)")
        q = float(text)
    if not math.isfinite(q) or q < 0 or q > 1e7:
        raise ValueError("a quantity from 0 to 10,000 t")
    return q


def _received_on(value: Any) -> date | datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("a local date or time without offset (the site's time)")
        return value
    if isinstance(value, date):
        return value
    match = _DATE_RE.match(_text(value))
    if match is None:
        raise ValueError(f"{_text(value)[:40]!r} is not a date like 2026-03-05 (or 2026-03-05 14:30)")
    y, m, d, hh, mm, ss = match.groups()
    try:
        if hh is None:
            return date(int(y), int(m), int(d))
        return datetime(int(y), int(m), int(d), int(hh), int(mm), int(ss or 0))
    except ValueError:
        raise ValueError(f"{_text(value)!r} is not a calendar date") from None


def parse_receipts(data: bytes, filename: str) -> list[Receipt]:
    """The rows of a receipts file; ReceiptsRefused names the line and column of every problem."""
    header, body = _table(data, filename)
    where = _columns(header)
    problems: list[str] = []
    out: list[Receipt] = []
    seen: dict[str, int] = {}
    for line, values in body:

        def cell(field: str, values: list[Any] = values) -> Any:
            i = where.get(field)
            return values[i] if i is not None and i < len(values) else None

        def bad(field: str, what: str, line: int = line) -> None:
            problems.append(f"line {line}, column {RECEIPT_HEADERS[field][0]}: {what}")

        number = _text(cell("number"))
        if not manifests.NUMBER_RE.match(number):
            bad("number", f"{number[:40]!r} is not a 14-digit manifest number")
        elif number in seen:
            bad("number", f"manifest {number} is already on line {seen[number]}")
        else:
            seen[number] = line
        factor = 1.0
        unit = _text(cell("unit")).lower()
        if unit:
            if unit not in UNITS:
                bad("unit", f"{unit[:20]!r} is not a unit ({', '.join(UNITS)})")
            factor = UNITS.get(unit, 1.0)
        quantity = None
        if _text(cell("quantity")) == "":
            bad("quantity", "empty (the quantity received)")
        else:
            try:
                quantity = _quantity(cell("quantity")) * factor
            except ValueError as exc:
                bad("quantity", str(exc))
        received_on = None
        if _text(cell("received_on")) == "":
            bad("received_on", "empty (the date of receipt)")
        else:
            try:
                received_on = _received_on(cell("received_on"))
            except ValueError as exc:
                bad("received_on", str(exc))
        licence = _text(cell("licence"))
        if not licence or len(licence) > 100:
            bad("licence", "the receiver's licence number (1 to 100 characters)")
        if len(problems) >= MAX_PROBLEMS:
            break
        if quantity is not None and received_on is not None:
            out.append(Receipt(line, number, quantity, received_on, licence))
    if problems:
        raise ReceiptsRefused(problems)
    if not out:
        raise ReceiptsRefused(["line 2: no data rows"])
    return out


# --- applying --------------------------------------------------------------------------------------------------


def _moment(r: Receipt, tz: ZoneInfo, not_before: datetime | None, now: datetime) -> datetime:
    """The time of a receipt: a date alone is the end of that day, or now when that is later (today)."""
    if isinstance(r.received_on, datetime):
        return r.received_on.replace(tzinfo=tz)
    at = datetime.combine(r.received_on, time(23, 59, 59), tzinfo=tz)
    at = min(at, now)
    return max(at, not_before) if not_before is not None else at


def apply_receipts(
    *, conn: psycopg.Connection, receipts: list[Receipt], site_ids: list[int] | None, actor: str, now: datetime
) -> dict[str, Any]:
    """Confirm each manifest's receipt (all or nothing, in one transaction of the caller's connection): every
    row is checked first, then applied through the state machine. ``site_ids``: the caller's scope (None: all)."""
    problems: list[str] = []
    plan: list[tuple[Receipt, dict[str, Any], datetime]] = []
    rows = {
        m["number"]: m
        for m in conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT m.id, m.number, m.state, m.site_id, m.receiver_licence, m.shipped_at, m.delivered_at,
                      m.received_kg, m.shipped_kg, s.timezone
               FROM hw_manifest m JOIN site s ON s.id = m.site_id WHERE m.number = ANY(%s)""",
            ([r.number for r in receipts],),
        )
        .fetchall()
    }
    unchanged = 0
    for r in receipts:
        m = rows.get(r.number)
        where = f"line {r.line}, column "
        if m is None or (site_ids is not None and m["site_id"] not in site_ids):
            problems.append(f"{where}{RECEIPT_HEADERS['number'][0]}: no manifest {r.number}")
            continue
        if r.licence.replace(" ", "") != m["receiver_licence"].replace(" ", ""):
            problems.append(
                f"{where}{RECEIPT_HEADERS['licence'][0]}: {r.licence} is not the receiver named on manifest "
                f"{r.number} ({m['receiver_licence']})"
            )
            continue
        tz = ZoneInfo(m["timezone"])
        at = _moment(r, tz, m["delivered_at"], now)
        day = r.received_on.date() if isinstance(r.received_on, datetime) else r.received_on
        if at > now + timedelta(minutes=5) or day > now.astimezone(tz).date():
            problems.append(f"{where}{RECEIPT_HEADERS['received_on'][0]}: {r.received_on} is in the future")
            continue
        earliest = m["delivered_at"] or m["shipped_at"]
        if earliest is not None and (
            r.received_on < earliest.astimezone(tz).date() if not isinstance(r.received_on, datetime) else at < earliest
        ):
            problems.append(
                f"{where}{RECEIPT_HEADERS['received_on'][0]}: {r.received_on} is before the manifest was "
                f"{'delivered' if m['delivered_at'] else 'shipped'} ({earliest.astimezone(tz):%Y-%m-%d %H:%M})"
            )
            continue
        if m["state"] in CONFIRMED:
            if m["received_kg"] is not None and abs(m["received_kg"] - r.received_kg) < 1e-6:
                unchanged += 1
                continue
            problems.append(
                f"{where}{RECEIPT_HEADERS['quantity'][0]}: manifest {r.number} was already confirmed with "
                f"{m['received_kg']} kg ({m['state']})"
            )
            continue
        if m["state"] not in ("in_transit", "delivered"):
            problems.append(
                f"{where}{RECEIPT_HEADERS['number'][0]}: manifest {r.number} is {m['state']}: only a manifest in "
                "transit or delivered can be confirmed"
            )
            continue
        plan.append((r, m, at))
    if problems:
        raise ReceiptsRefused(problems)
    applied = []
    with conn.transaction():
        for r, m, at in plan:
            try:
                if m["state"] == "in_transit":
                    manifests.apply_event(conn=conn, manifest_id=m["id"], event="deliver", at=at, actor=actor)
                row = manifests.apply_event(
                    conn=conn,
                    manifest_id=m["id"],
                    event="receive",
                    at=at,
                    actor=actor,
                    received_kg=r.received_kg,
                    note=f"receipt imported (line {r.line}, licence {r.licence})",
                )
            except HazwasteError as exc:
                raise ReceiptsRefused([f"line {r.line}, column {RECEIPT_HEADERS['number'][0]}: {exc}"]) from None
            applied.append({"line": r.line, "number": r.number, "state": row["state"], "received_kg": r.received_kg})
    return {
        "rows": len(receipts),
        "received": sum(a["state"] == "received" for a in applied),
        "discrepancies": sum(a["state"] == "discrepancy" for a in applied),
        "unchanged": unchanged,
        "manifests": applied,
    }


def import_receipts(
    *, conn: psycopg.Connection, data: bytes, filename: str, site_ids: list[int] | None, actor: str, now: datetime
) -> dict[str, Any]:
    """Parse and apply a receipts file (see the module text); ReceiptsRefused (422) names every problem."""
    return apply_receipts(conn=conn, receipts=parse_receipts(data, filename), site_ids=site_ids, actor=actor, now=now)


# --- manifests out ---------------------------------------------------------------------------------------------

#: 转移联单 in the field order of the manifest rules (Arts. 10-12, standards.md 4.4): no system template known
MANIFEST_COLUMNS: list[tuple[str, str]] = [
    ("联单编号", "number"),
    ("移出人", "producer_name"),
    ("危险废物名称", "waste_name"),
    ("危险废物类别", "category"),
    ("危险废物代码", "waste_code"),
    ("危险特性", "hazards"),
    ("形态", "form"),
    ("转移量", "shipped_kg"),
    ("计量单位", "unit"),
    ("承运人", "carrier_name"),
    ("车牌号", "vehicle_plate"),
    ("道路运输经营许可证号", "carrier_permit"),
    ("接受人", "receiver_name"),
    ("经营许可证编号", "receiver_licence"),
    ("利用处置方式", "method"),
    ("转移时间", "shipped_at"),
    ("送达时间", "delivered_at"),
    ("接收时间", "received_at"),
    ("接收量", "received_kg"),
    ("数量差异", "discrepancy"),
    ("纸质联单", "paper"),
    ("状态", "state"),
]


def manifest_rows(*, conn: psycopg.Connection, site_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The manifests of a site created, shipped or received in [start, end), oldest first."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT m.*, w.name AS waste_name, w.category, w.waste_code, w.hazards, w.form,
                      coalesce(h.producer_name, s.name) AS producer_name, 'kg' AS unit
               FROM hw_manifest m JOIN hw_waste_type w ON w.id = m.waste_type_id JOIN site s ON s.id = m.site_id
               LEFT JOIN hw_site_setting h ON h.site_id = m.site_id
               WHERE m.site_id = %(site)s AND m.state <> 'cancelled'
                 AND coalesce(m.shipped_at, m.created_at) >= %(start)s
                 AND coalesce(m.shipped_at, m.created_at) < %(end)s
               ORDER BY coalesce(m.shipped_at, m.created_at), m.id""",
            {"site": site_id, "start": start, "end": end},
        )
        .fetchall()
    )
    for r in rows:
        r["hazards"] = ",".join(r["hazards"] or [])
        r["method"] = {"use": "利用", "disposal": "处置"}.get(r["method"], r["method"])
        r["discrepancy"] = "是" if r["discrepancy"] else "否"
        r["paper"] = "是" if r["paper"] else "否"
        r["state"] = STATES.get(r["state"], r["state"])
    return rows
