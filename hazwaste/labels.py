"""Container labels per HJ 1276-2022: a one-page PDF at the minimum size for the container's volume, with a QR
code that opens the container in the PWA.

Sizes (standards.md 4.3): up to 50 L 100x100 mm with text at least 3 mm high, 50-450 L 150x150 mm / 5 mm, from
450 L 200x200 mm / 6 mm (containers above 450 L carry a label on two opposite sides: print two). The label shows
the waste name, code, category, hazard characteristics (pictograms), constituents, form, precautions, producer
and contact, date, weight, and the digital id as a QR code. Chinese is set in reportlab's built-in CID font
``STSong-Light`` (no font file; PDF viewers supply the Adobe-GB1 glyphs). The hazard pictograms are simplified
drawings (a framed diamond with the characteristic's letter and name), not the standard's artwork.
Kept small and free of the database so that it can move onto the shared report renderer later.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import segno
from reportlab.lib.colors import Color, black, white
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from hazwaste.codes import HAZARD_NAMES

FONT = "STSong-Light"
BACKGROUND = Color(1.0, 0.85, 0.0)          # yellow-orange ground (colour value not checked against the text)


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


def _qr(canvas: Canvas, data: str, x: float, y: float, side: float) -> None:
    qr = segno.make(data, error="m")
    matrix = [list(row) for row in qr.matrix]
    n = len(matrix) + 8                                   # four modules of quiet zone on each side
    cell = side / n
    canvas.setFillColor(white)
    canvas.rect(x, y, side, side, stroke=0, fill=1)
    canvas.setFillColor(black)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                canvas.rect(x + (c + 4) * cell, y + side - (r + 5) * cell, cell, cell, stroke=0, fill=1)


def _wrap(text: str, pt: float, width: float) -> list[str]:
    """Split text into lines no wider than ``width`` (character by character: Chinese has no spaces)."""
    lines, line = [], ""
    for char in text:
        if line and pdfmetrics.stringWidth(line + char, FONT, pt) > width:
            lines.append(line)
            line = char
        else:
            line += char
    return [*lines, line] if line else lines


def _pictogram(canvas: Canvas, hazard: str, cx: float, cy: float, half: float, font_pt: float) -> None:
    path = canvas.beginPath()
    path.moveTo(cx, cy + half)
    path.lineTo(cx + half, cy)
    path.lineTo(cx, cy - half)
    path.lineTo(cx - half, cy)
    path.close()
    canvas.setFillColor(white)
    canvas.setStrokeColor(Color(0.85, 0, 0))
    canvas.setLineWidth(max(1.0, half / 12))
    canvas.drawPath(path, stroke=1, fill=1)
    canvas.setFillColor(black)
    canvas.setFont(FONT, font_pt * 1.2)
    canvas.drawCentredString(cx, cy + font_pt * 0.1, hazard)
    canvas.setFont(FONT, font_pt * 0.8)
    canvas.drawCentredString(cx, cy - font_pt * 0.9, HAZARD_NAMES.get(hazard, hazard))


def render_label(data: LabelData) -> bytes:
    """The label as a one-page PDF of the standard's size for the container's volume."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    size = label_size(data.volume_l)
    side = size.side_mm * mm
    pt = size.text_mm * mm * 1.15                         # a CJK glyph fills about 0.87 of the em: >= text_mm
    margin = side * 0.04
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(side, side), pageCompression=1)
    canvas.setTitle(f"危险废物标签 {data.container_code}")
    canvas.setFillColor(BACKGROUND)
    canvas.rect(0, 0, side, side, stroke=0, fill=1)
    canvas.setStrokeColor(black)
    canvas.setLineWidth(side / 150)
    canvas.rect(margin / 2, margin / 2, side - margin, side - margin, stroke=1, fill=0)
    canvas.setFillColor(black)
    canvas.setFont(FONT, pt * 1.8)
    canvas.drawCentredString(side / 2, side - margin - pt * 1.8, "危险废物")
    qr_side = side * 0.34
    qr_x, qr_y = side - margin - qr_side, side - margin - pt * 2.6 - qr_side
    _qr(canvas, data.url, qr_x, qr_y, qr_side)
    lines = [
        f"废物名称：{data.name}", f"废物代码：{data.waste_code}", f"废物类别：{data.category}",
        f"废物形态：{FORMS.get(data.form, data.form)}", f"主要成分：{data.constituents or '—'}",
        f"注意事项：{data.precautions or '—'}", f"产生单位：{data.producer}", f"联系方式：{data.contact}",
        f"产生日期：{data.produced_on.isoformat() if data.produced_on else '—'}",
        f"废物重量：{f'{data.weight_kg:g} kg' if data.weight_kg is not None else '—'}",
        f"数字识别码：{data.container_code}",
    ]
    canvas.setFont(FONT, pt)
    y = side - margin - pt * 3.2
    for i, line in enumerate(lines):
        width = (qr_x - margin * 2) if y > qr_y - pt else side - margin * 2.5
        for part in _wrap(line, pt, width)[:2 if i in (4, 5) else 1]:
            canvas.drawString(margin * 1.2, y, part)
            y -= pt * 1.3
    half = min(side * 0.065, (side - margin * 4) / (2.3 * max(len(data.hazards), 1)))
    cy = margin + half * 1.1
    canvas.setFont(FONT, pt)
    canvas.drawString(margin * 1.2, cy - pt / 3, "危险特性：")
    for i, hazard in enumerate(reversed(data.hazards)):    # along the bottom edge, from the right
        _pictogram(canvas, hazard, side - margin * 1.5 - half - i * half * 2.3, cy, half, pt * 0.9)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
