"""Container labels per HJ 1276-2022: a one-page PDF at the minimum size for the container's volume, with a QR
code that opens the container in the PWA.

Sizes (standards.md 4.3): up to 50 L 100x100 mm with text at least 3 mm high, 50-450 L 150x150 mm / 5 mm, from
450 L 200x200 mm / 6 mm (containers above 450 L carry a label on two opposite sides: print two). The label shows
the waste name, code, category, hazard characteristics (pictograms), constituents, form, precautions, producer
and contact, date, weight, and the digital id as a QR code. Drawn with fpdf2 in the Noto Sans CJK font that
``core.fonts`` provides, embedded as a subset, so the label prints the same on a machine with no CJK fonts. The
QR code (segno) is drawn as vector squares. The hazard pictograms are simplified drawings (a framed diamond with
the characteristic's letter and name), not the standard's artwork.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import segno
from fpdf import FPDF

from core.fonts import FAMILY, cjk_font
from hazwaste.codes import HAZARD_NAMES

BACKGROUND = (255, 217, 0)  # yellow-orange ground (colour value not checked against the text)
RED = (217, 0, 0)
PT_PER_MM = 72 / 25.4


@dataclass(frozen=True)
class LabelSize:
    side_mm: float
    text_mm: float


def label_size(volume_l: float) -> LabelSize:
    """The minimum label size and text height of HJ 1276-2022 for a container of ``volume_l`` litres."""
    if volume_l <= 50:
        return LabelSize(100, 3)
    if volume_l < 450:
        return LabelSize(150, 5)
    return LabelSize(200, 6)


def container_url(base_url: str, container_id: int) -> str:
    """The PWA address of a container, which its QR code holds."""
    return f"{base_url.rstrip('/')}/app/#/waste/containers/{container_id}"


@dataclass(frozen=True)
class LabelData:
    container_id: int
    container_code: str
    volume_l: float
    name: str
    waste_code: str
    category: str
    hazards: tuple[str, ...]
    form: str
    constituents: str
    precautions: str
    producer: str
    contact: str
    produced_on: date | None
    weight_kg: float | None
    url: str


FORMS = {"solid": "固态", "semi_solid": "半固态", "liquid": "液态", "gas": "气态"}
TITLE = "危险废物"
HAZARD_TITLE = "危险特性："


def new_pdf(width_mm: float, height_mm: float, characters: set[str]) -> FPDF:
    """An fpdf2 document of one page size in mm, with the CJK font registered as ``FAMILY`` (the common cut of the
    font when it holds every character the document will show, else the full font). Shared with the manifest."""
    pdf = FPDF(orientation="P", unit="mm", format=(width_mm, height_mm))
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("ehs-monitor")
    pdf.set_lang("zh-CN")
    pdf.add_font(FAMILY, "", str(cjk_font(characters)))
    return pdf


def _qr(pdf: FPDF, data: str, x: float, y: float, side: float) -> None:
    """The QR code with four modules of quiet zone, its top-left corner at (x, y); dark runs drawn as one box."""
    matrix = [list(row) for row in segno.make(data, error="m").matrix]
    cell = side / (len(matrix) + 8)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, side, side, style="F")
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + (start + 4) * cell, y + (r + 4) * cell, (c - start) * cell, cell, style="F")


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """Split text into lines no wider than ``width`` mm in the current font (character by character: Chinese has
    no spaces)."""
    lines, line = [], ""
    for char in text:
        if line and pdf.get_string_width(line + char) > width:
            lines.append(line)
            line = char
        else:
            line += char
    return [*lines, line] if line else lines


def _centred(pdf: FPDF, text: str, cx: float, baseline: float) -> None:
    pdf.text(cx - pdf.get_string_width(text) / 2, baseline, text)


def _pictogram(pdf: FPDF, hazard: str, cx: float, cy: float, half: float, font_pt: float) -> None:
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(*RED)
    pdf.set_line_width(max(0.35, half / 12))
    pdf.polygon([(cx, cy - half), (cx + half, cy), (cx, cy + half), (cx - half, cy)], style="DF")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(FAMILY, size=font_pt * 1.2)
    _centred(pdf, hazard, cx, cy - font_pt * 0.1 / PT_PER_MM)
    pdf.set_font(FAMILY, size=font_pt * 0.8)
    _centred(pdf, HAZARD_NAMES.get(hazard, hazard), cx, cy + font_pt * 0.9 / PT_PER_MM)


def _lines(data: LabelData) -> list[str]:
    return [
        f"废物名称：{data.name}",
        f"废物代码：{data.waste_code}",
        f"废物类别：{data.category}",
        f"废物形态：{FORMS.get(data.form, data.form)}",
        f"主要成分：{data.constituents or '—'}",
        f"注意事项：{data.precautions or '—'}",
        f"产生单位：{data.producer}",
        f"联系方式：{data.contact}",
        f"产生日期：{data.produced_on.isoformat() if data.produced_on else '—'}",
        f"废物重量：{f'{data.weight_kg:g} kg' if data.weight_kg is not None else '—'}",
        f"数字识别码：{data.container_code}",
    ]


def render_label(data: LabelData) -> bytes:
    """The label as a one-page PDF of the standard's size for the container's volume."""
    size = label_size(data.volume_l)
    side = size.side_mm
    lines = _lines(data)
    shown = "".join([TITLE, HAZARD_TITLE, *lines, *data.hazards, *(HAZARD_NAMES.get(h, h) for h in data.hazards)])
    pdf = new_pdf(side, side, set(shown))
    pdf.set_title(f"危险废物标签 {data.container_code}")
    pdf.add_page()
    pt = size.text_mm * 1.15 * PT_PER_MM  # a CJK glyph fills about 0.87 of the em: >= text_mm
    em = pt / PT_PER_MM  # the font size in mm, for the layout below
    margin = side * 0.04
    pdf.set_fill_color(*BACKGROUND)
    pdf.rect(0, 0, side, side, style="F")
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(side / 150)
    pdf.rect(margin / 2, margin / 2, side - margin, side - margin, style="D")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(FAMILY, size=pt * 1.8)
    _centred(pdf, TITLE, side / 2, margin + em * 1.8)
    qr_side = side * 0.34
    qr_x, qr_top = side - margin - qr_side, margin + em * 2.6
    _qr(pdf, data.url, qr_x, qr_top, qr_side)
    pdf.set_font(FAMILY, size=pt)
    y = margin + em * 3.2  # baseline of the first line
    for i, line in enumerate(lines):
        width = (qr_x - margin * 2) if y < qr_top + qr_side + em else side - margin * 2.5
        for part in _wrap(pdf, line, width)[: 2 if i in (4, 5) else 1]:
            pdf.text(margin * 1.2, y, part)
            y += em * 1.3
    half = min(side * 0.065, (side - margin * 4) / (2.3 * max(len(data.hazards), 1)))
    cy = side - margin - half * 1.1
    pdf.set_font(FAMILY, size=pt)
    pdf.text(margin * 1.2, cy + em / 3, HAZARD_TITLE)
    for i, hazard in enumerate(reversed(data.hazards)):  # along the bottom edge, from the right
        _pictogram(pdf, hazard, side - margin * 1.5 - half - i * half * 2.3, cy, half, pt * 0.9)
    return bytes(pdf.output())
