"""A printable copy of a transfer manifest (A4, Chinese in the built-in CID font ``STSong-Light``): the parties,
the waste, the containers, shipped and received quantities, and the event record. For the file and for the
driver; the national system's manifest remains the record."""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from hazwaste.labels import FONT

STATES = {"draft": "草稿", "submitted": "已提交", "paper_fallback": "纸质联单（待补录）", "in_transit": "运输中",
          "delivered": "已送达", "received": "已接收", "discrepancy": "数量差异", "rejected": "拒收",
          "disposed": "已处置", "closed": "已办结", "cancelled": "已作废"}


def render_manifest(m: dict[str, Any], containers: list[dict[str, Any]], producer: str) -> bytes:
    """``m``: the manifest as ``hazwaste.manifests.get`` returns it; ``containers``: code and weight_kg each."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    tz = ZoneInfo(m.get("timezone") or "Asia/Shanghai")
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"危险废物转移联单 {m['number'] or m['id']}")
    width, height = A4
    y = height - 20 * mm

    def line(text: str, size: float = 10.5, gap: float = 6.5) -> None:
        nonlocal y
        if y < 20 * mm:
            canvas.showPage()
            y = height - 20 * mm
        canvas.setFont(FONT, size)
        canvas.drawString(18 * mm, y, text)
        y -= gap * mm

    def when(value) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "—"

    line("危险废物转移联单（打印件）", 16, 10)
    line(f"联单编号：{m['number'] or '（未提交）'}    状态：{STATES.get(m['state'], m['state'])}"
         f"{'    纸质联单' if m['paper'] else ''}")
    line(f"移出人：{producer}    车次：{m['trip']}")
    line(f"承运人：{m['carrier_name']}    车牌号：{m['vehicle_plate']}    运输许可证号：{m['carrier_permit']}")
    line(f"接受人：{m['receiver_name']}    经营许可证号：{m['receiver_licence']}")
    line(f"许可经营范围：{', '.join(m['receiver_scope'])}    利用/处置：{'利用' if m['method'] == 'use' else '处置'}")
    line(f"危险废物：{m['waste_name']}    代码：{m['waste_code']}")
    line(f"移出量：{m['shipped_kg'] if m['shipped_kg'] is not None else '—'} kg    接收量："
         f"{m['received_kg'] if m['received_kg'] is not None else '—'} kg"
         f"{'    数量存在差异，已通知移出人' if m['discrepancy'] else ''}")
    line(f"出厂：{when(m['shipped_at'])}    送达：{when(m['delivered_at'])}    接收确认：{when(m['received_at'])}"
         f"    处置：{when(m['disposed_at'])}", 9.5)
    line("容器/包装：", 11, 7)
    for c in containers:
        line(f"    {c['code']}    {c['weight_kg'] if c['weight_kg'] is not None else '—'} kg", 9.5, 5.5)
    line("流转记录：", 11, 7)
    for e in m["events"]:
        line(f"    {when(e['at'])}  {e['event']}  {STATES.get(e['from_state'], e['from_state'])} → "
             f"{STATES.get(e['to_state'], e['to_state'])}  {e['actor']}", 9.5, 5.5)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
