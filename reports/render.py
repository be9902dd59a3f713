"""The renderers by format: PDF, XLSX and CSV, each with its media type and file suffix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reports.csvout import render_csv
from reports.model import Document
from reports.pdf import render_pdf
from reports.xlsx import render_xlsx


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    media_type: str
    suffix: str
    render: Callable[[Document], bytes]


FORMATS = {
    "pdf": Format("pdf", "application/pdf", ".pdf", render_pdf),
    "xlsx": Format("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx", render_xlsx),
    "csv": Format("csv", "text/csv; charset=utf-8", ".csv", render_csv),
}
