"""A printable copy of a transfer manifest (A4, fpdf2, Chinese in the embedded Noto Sans CJK font of
``core.fonts``): the parties, the waste, the containers, shipped and received quantities, and the event record.
For the file and for the driver; the national system's manifest remains the record."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fpdf import XPos, YPos

from core.fonts import FAMILY
from hazwaste.labels import new_pdf

STATES = {
    "draft": "草稿",
    "submitted": "已提交",
    "paper_fallback": "纸质联单（待补录）",
    "in_transit": "运输中",
    "delivered": "已送达",
    "received": "已接收",
    "discrepancy": "数量差异",
    "rejected": "拒收",
    "disposed": "已处置",
    "closed": "已办结",
    "cancelled": "已作废",
}
MARGIN_MM = 18.0
PT_PER_MM = 72 / 25.4


def _lines(m: dict[str, Any], containers: list[dict[str, Any]], producer: str) -> list[tuple[str, float, float]]:
    """The manifest's lines as (text, font size in pt, advance in mm)."""
    tz = ZoneInfo(m.get("timezone") or "Asia/Shanghai")

    def when(value) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "—"

    out = [
        ("危险废物转移联单（打印件）", 16, 10),
        (
            f"联单编号：{m['number'] or '（未提交）'}    状态：{STATES.get(m['state'], m['state'])}"
            f"{'    纸质联单' if m['paper'] else ''}",
            10.5,
            6.5,
        ),
        (f"移出人：{producer}    车次：{m['trip']}", 10.5, 6.5),
        (
            f"承运人：{m['carrier_name']}    车牌号：{m['vehicle_plate']}    运输许可证号：{m['carrier_permit']}",
            10.5,
            6.5,
        ),
        (f"接受人：{m['receiver_name']}    经营许可证号：{m['receiver_licence']}", 10.5, 6.5),
        (
            f"许可经营范围：{', '.join(m['receiver_scope'])}    "
            f"利用/处置：{'利用' if m['method'] == 'use' else '处置'}",
            10.5,
            6.5,
        ),
        (f"危险废物：{m['waste_name']}    代码：{m['waste_code']}", 10.5, 6.5),
        (
            f"移出量：{m['shipped_kg'] if m['shipped_kg'] is not None else '—'} kg    接收量："
            f"{m['received_kg'] if m['received_kg'] is not None else '—'} kg"
            f"{'    数量存在差异，已通知移出人' if m['discrepancy'] else ''}",
            10.5,
            6.5,
        ),
        (
            f"出厂：{when(m['shipped_at'])}    送达：{when(m['delivered_at'])}    接收确认：{when(m['received_at'])}"
            f"    处置：{when(m['disposed_at'])}",
            9.5,
            6.5,
        ),
        ("容器/包装：", 11, 7),
    ]
    out += [
        (f"    {c['code']}    {c['weight_kg'] if c['weight_kg'] is not None else '—'} kg", 9.5, 5.5) for c in containers
    ]
    out.append(("流转记录：", 11, 7))
    out += [
        (
            f"    {when(e['at'])}  {e['event']}  {STATES.get(e['from_state'], e['from_state'])} → "
            f"{STATES.get(e['to_state'], e['to_state'])}  {e['actor']}",
            9.5,
            5.5,
        )
        for e in m["events"]
    ]
    return out


def render_manifest(m: dict[str, Any], containers: list[dict[str, Any]], producer: str) -> bytes:
    """``m``: the manifest as ``hazwaste.manifests.get`` returns it; ``containers``: code and weight_kg each."""
    lines = _lines(m, containers, producer)
    pdf = new_pdf(210, 297, set("".join(text for text, _, _ in lines)))
    pdf.set_title(f"危险废物转移联单 {m['number'] or m['id']}")
    pdf.set_margins(MARGIN_MM, 20, MARGIN_MM)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    for text, size, advance in lines:
        pdf.set_font(FAMILY, size=size)
        # a line longer than the page wraps (it used to run off the edge); the advance keeps the printed rhythm
        pdf.multi_cell(
            0, max(advance, size / PT_PER_MM * 1.25) if text else advance, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    return bytes(pdf.output())
