"""The XLSX renderer (openpyxl): one sheet per table with typed cells (numbers as numbers, times as Excel date-times
in the site's time zone), units in the headers, frozen header rows; a last sheet ``report`` holds what the PDF's
cover says (plant, period, generated-at, data-as-of, revision, sources)."""

from __future__ import annotations

import io
import re

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from reports.model import ColType, Document, tr

INFO_SHEET = "report"
_BAD = re.compile(r"[\[\]:*?/\\]")
_FORMATS = {ColType.INT: "0", ColType.DATETIME: "yyyy-mm-dd hh:mm:ss"}


def sheet_name(key: str, taken: set[str]) -> str:
    """An Excel sheet name (31 characters, no []:*?/\\), unique in the workbook."""
    base = _BAD.sub("_", key)[:31] or "table"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base[:28]}~{n}"
    taken.add(name.lower())
    return name


def _cell_value(doc: Document, ctype: ColType, value):
    if value is None:
        return None
    if ctype is ColType.DATETIME:
        return doc.local(value).replace(tzinfo=None)  # Excel has no time zones: local time, zone in the header
    if ctype is ColType.FLOAT:
        return float(value)
    if ctype is ColType.INT:
        return int(value)
    if ctype is ColType.BOOL:
        return bool(value)
    return str(value)


def render_xlsx(doc: Document) -> bytes:
    """The document's tables as a workbook."""
    book = Workbook()
    book.remove(book.active)
    taken: set[str] = {INFO_SHEET}
    head_font, head_fill = Font(bold=True), PatternFill("solid", fgColor="E1E8F0")
    for table in doc.tables():
        sheet = book.create_sheet(sheet_name(table.key, taken))
        for j, col in enumerate(table.columns, 1):
            header = col.header() if col.type is not ColType.DATETIME else f"{col.label} [{doc.timezone}]"
            cell = sheet.cell(row=1, column=j, value=header)
            cell.font, cell.fill = head_font, head_fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            width = max([len(header) * 1.6] + [len(str(r[j - 1])) for r in table.rows[:200]] + [8])
            sheet.column_dimensions[get_column_letter(j)].width = min(width + 2, 60)
        for i, values in enumerate(table.rows, 2):
            for j, (col, value) in enumerate(zip(table.columns, values, strict=True), 1):
                cell = sheet.cell(row=i, column=j, value=_cell_value(doc, col.type, value))
                fmt = "0." + "0" * col.digits if col.type is ColType.FLOAT and col.digits else _FORMATS.get(col.type)
                if fmt:
                    cell.number_format = fmt
        sheet.freeze_panes = "A2"
    info = book.create_sheet(INFO_SHEET)
    lang = doc.lang
    rows = [
        (tr(lang, "报告", "Report"), doc.title),
        (tr(lang, "厂区", "Plant"), f"{doc.plant} ({doc.site})"),
        (tr(lang, "报告期", "Period"), doc.period),
        (tr(lang, "区域", "Areas"), ", ".join(doc.areas) or tr(lang, "全部", "all")),
        (tr(lang, "生成时间", "Generated at"), doc.local(doc.generated_at).replace(tzinfo=None)),
        (
            tr(lang, "数据截至", "Data as of"),
            doc.local(doc.data_as_of).replace(tzinfo=None) if doc.data_as_of else None,
        ),
        (tr(lang, "时区", "Time zone"), doc.timezone),
    ]
    rows += [(tr(lang, "配置版本", "Revision") + f" {k}", v) for k, v in doc.revision.items()]
    rows += [(tr(lang, "说明", "Note"), note) for note in doc.notes]
    rows += [(tr(lang, "来源", "Source"), source) for source in doc.sources]
    for i, (label, value) in enumerate(rows, 1):
        info.cell(row=i, column=1, value=label).font = head_font
        cell = info.cell(row=i, column=2, value=value)
        if hasattr(value, "year"):
            cell.number_format = _FORMATS[ColType.DATETIME]
    info.column_dimensions["A"].width = 24
    info.column_dimensions["B"].width = 80
    out = io.BytesIO()
    book.properties.title = doc.title
    book.properties.creator = "ehs-monitor"
    book.properties.created = doc.generated_at.replace(tzinfo=None)
    book.properties.modified = doc.generated_at.replace(tzinfo=None)
    book.save(out)
    return out.getvalue()
