"""The PDF renderer (fpdf2): A4, the CJK font embedded as a subset, a header with the plant's name, a footer with
page numbers and the generated-at and data-as-of times, the document's tables and its charts.

Why fpdf2 (pinned in pyproject.toml): it is pure Python on fontTools and Pillow (both already here), it embeds and
subsets OpenType fonts with CFF outlines (Noto Sans CJK exists only as such; reportlab embeds TrueType outlines
only, and its built-in CID fonts such as STSong-Light are not embedded, so they render only where the reader has a
CJK font), and its table layout repeats headings across pages.
"""

from __future__ import annotations

import io
import unicodedata

from fpdf import FPDF, FontFace, XPos, YPos

from core.fonts import FAMILY, cjk_font
from reports import charts
from reports.model import ColType, Document, Table, fmt_cell, tr

MARGIN = 15.0
BODY = 9.0
SMALL = 7.0
HEAD_FILL = (225, 232, 240)
#: One Latin character of the table font (CJK characters count two), and a cell's padding.
MM_PER_UNIT = 1.5
PAD_MM = 2.2


def _width(text: str) -> int:
    """Display width: CJK characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _characters(doc: Document) -> set[str]:
    """Every character the PDF will show (to choose the smallest font file that has them all)."""
    texts = [
        doc.title,
        doc.plant,
        doc.period,
        doc.timezone,
        *doc.notes,
        *doc.sources,
        *doc.areas,
        "0123456789 .:-—·/()[]%",
        "第页共生成时间数据截至厂区报告期区域配置版本说明来源与依据全部（无记录）",
    ]
    for section in doc.sections:
        texts += [section.title, *section.paragraphs]
        for table in section.tables:
            texts += [table.title, table.note, *(c.header() for c in table.columns)]
            texts += [fmt_cell(doc, c, v) for row in table.rows for c, v in zip(table.columns, row, strict=True)]
    texts += [f"{k} {v}" for k, v in doc.revision.items()]
    return set("".join(texts))


def _word(text: str) -> int:
    return max((_width(w) for w in text.split()), default=0)


class _Pdf(FPDF):
    def __init__(self, doc: Document) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc = doc
        self.add_font(FAMILY, "", str(cjk_font(_characters(doc))))  # one weight: headings are larger, not bolder
        self.set_margins(MARGIN, MARGIN + 6, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 4)
        self.set_title(doc.title)
        self.set_author(doc.plant)
        self.set_creator("ehs-monitor")
        self.set_creation_date(doc.generated_at)
        self.set_lang(doc.lang)

    def header(self) -> None:
        self.set_font(FAMILY, size=SMALL)
        self.set_text_color(90, 90, 90)
        self.set_xy(MARGIN, 8)
        self.cell(0, 4, f"{self.doc.plant} · {self.doc.title}", align="L")
        self.set_xy(MARGIN, 8)
        self.cell(0, 4, self.doc.period, align="R")
        self.line(MARGIN, 13, self.w - MARGIN, 13)
        self.set_text_color(0, 0, 0)
        self.set_xy(MARGIN, MARGIN + 6)

    def footer(self) -> None:
        lang = self.doc.lang
        self.set_y(-MARGIN + 2)
        self.set_font(FAMILY, size=SMALL)
        self.set_text_color(90, 90, 90)
        stamp = (
            f"{tr(lang, '生成时间', 'Generated')} {self.doc.fmt_time(self.doc.generated_at)} · "
            f"{tr(lang, '数据截至', 'Data as of')} {self.doc.fmt_time(self.doc.data_as_of)} "
            f"({self.doc.timezone})"
        )
        self.cell(0, 4, stamp, align="L")
        self.set_x(MARGIN)
        self.cell(
            0, 4, tr(lang, f"第 {self.page_no()} 页 / 共 {{nb}} 页", f"Page {self.page_no()} of {{nb}}"), align="R"
        )
        self.set_text_color(0, 0, 0)


def _text(pdf: _Pdf, text: str, size: float = BODY, height: float = 5) -> None:
    pdf.set_font(FAMILY, size=size)
    pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _col_widths(doc: Document, table: Table, total: float) -> list[float]:
    """Widths in proportion to what the columns hold; when they do not fit, the wide (text) columns give way
    first, down to their heading's width, so that short columns (ids, times, numbers) are not broken."""
    sample = table.rows[:200]
    want, floor = [], []
    for i, col in enumerate(table.columns):
        cells = [fmt_cell(doc, col, r[i]) for r in sample]
        head, content = _width(col.header()), max([_width(c) for c in cells] + [1])
        word = max([_word(c) for c in cells] + [1])  # the longest unbreakable piece
        want.append(float(min(max(head, content, 3), 48)))
        floor.append(float(min(max(min(_word(col.header()), 8), word, 3), 12)))
    want = [w * MM_PER_UNIT + PAD_MM for w in want]
    floor = [f * MM_PER_UNIT + PAD_MM for f in floor]
    if sum(want) > total:
        room = total - sum(floor)
        flex = [w - f for w, f in zip(want, floor, strict=True)]
        if room > 0 and sum(flex) > 0:
            want = [f + x * min(1.0, room / sum(flex)) for f, x in zip(floor, flex, strict=True)]
        else:
            want = floor
    scale = total / sum(want)
    return [w * scale for w in want]


def _table(pdf: _Pdf, doc: Document, table: Table) -> None:
    _text(pdf, table.title, size=BODY + 1, height=6)
    if table.note:
        _text(pdf, table.note, size=SMALL, height=4)
    if not table.rows:
        _text(pdf, tr(doc.lang, "（无记录）", "(none)"), size=BODY)
        pdf.ln(2)
        return
    pdf.set_font(FAMILY, size=SMALL + 0.5)
    widths = _col_widths(doc, table, pdf.epw)
    aligns = ["RIGHT" if c.type in (ColType.INT, ColType.FLOAT) else "LEFT" for c in table.columns]
    with pdf.table(
        col_widths=widths,
        line_height=4.2,
        repeat_headings=1,
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="", fill_color=HEAD_FILL),
        text_align=aligns,
        borders_layout="HORIZONTAL_LINES",
        padding=0.8,
    ) as grid:
        head = grid.row()
        for col in table.columns:
            head.cell(col.header())
        for values in table.rows:
            row = grid.row()
            for col, value in zip(table.columns, values, strict=True):
                row.cell(fmt_cell(doc, col, value))
    pdf.ln(3)


def _cover(pdf: _Pdf, doc: Document) -> None:
    lang = doc.lang
    _text(pdf, doc.plant, size=12, height=7)
    _text(pdf, doc.title, size=18, height=10)
    pdf.ln(2)
    facts = [
        (tr(lang, "厂区", "Site"), f"{doc.plant} ({doc.site})"),
        (tr(lang, "报告期", "Period"), doc.period),
        (tr(lang, "区域", "Areas"), ", ".join(doc.areas) or tr(lang, "全部", "all")),
        (tr(lang, "生成时间", "Generated at"), f"{doc.fmt_time(doc.generated_at)} ({doc.timezone})"),
        (tr(lang, "数据截至", "Data as of"), f"{doc.fmt_time(doc.data_as_of)} ({doc.timezone})"),
        (
            tr(lang, "配置版本", "Configuration revision"),
            ", ".join(f"{k} {v}" for k, v in doc.revision.items() if v is not None) or "—",
        ),
    ]
    pdf.set_font(FAMILY, size=BODY)
    for label, value in facts:
        pdf.cell(38, 5.5, label)
        pdf.multi_cell(0, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)


def render_pdf(doc: Document) -> bytes:
    """The document as a PDF."""
    pdf = _Pdf(doc)
    pdf.add_page()
    _cover(pdf, doc)
    for number, section in enumerate(doc.sections, 1):
        if pdf.get_y() > pdf.h - 60:
            pdf.add_page()
        _text(pdf, f"{number}. {section.title}", size=13, height=8)
        for paragraph in section.paragraphs:
            _text(pdf, paragraph)
        pdf.ln(1)
        for chart in section.charts:
            if pdf.get_y() > pdf.h - 95:
                pdf.add_page()
            pdf.image(io.BytesIO(charts.render_png(doc, chart)), w=pdf.epw)
            pdf.ln(2)
        for table in section.tables:
            _table(pdf, doc, table)
    if doc.notes or doc.sources:
        if pdf.get_y() > pdf.h - 50:
            pdf.add_page()
        _text(pdf, tr(doc.lang, "说明", "Notes"), size=13, height=8)
        for note in doc.notes:
            _text(pdf, f"· {note}")
        if doc.sources:
            _text(pdf, tr(doc.lang, "数据来源与依据", "Sources"), size=11, height=7)
            for source in doc.sources:
                _text(pdf, f"· {source}")
    return bytes(pdf.output())
