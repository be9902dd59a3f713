"""The text of a notification, in Chinese by default and in English for recipients who chose it (pure).

A message says where (plant, area, point), what (value with unit, rule, priority), when, what to do first (the
response plan's first instructions or the rule's operator action) and carries a signed, short-lived link that
opens the alarm in the PWA. Drill messages start with 【演练】 / [DRILL] so nobody takes them for the real thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

_PRIORITY = {1: ("低", "Low"), 2: ("中", "Medium"), 3: ("高", "High"), 4: ("紧急", "Critical")}
_KIND = {"reminder": ("提醒: 未确认", "Reminder: unacknowledged"), "summary": ("报警汇总", "Alarm summary")}


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str


def _fmt_value(value: float | None, unit: str | None) -> str | None:
    if value is None:
        return None
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip() if unit else text


def compose(ctx: Mapping[str, Any], *, lang: str, link: str | None, tz: str = "Asia/Shanghai") -> Message:
    """Title and body of one message; ``ctx`` holds the outbox row, its alarm and the names (``outbox.context``)."""
    en = lang == "en"
    row, alarm = ctx["outbox"], ctx.get("alarm") or {}
    drill = "[DRILL] " if en and row["drill"] else ("【演练】" if row["drill"] else "")
    title = (row.get("title_en") or row["title"]) if en else row["title"]
    if row["kind"] in _KIND:
        title = f"{_KIND[row['kind']][1 if en else 0]} {title}"
    at: datetime = alarm.get("last_raised_at") or alarm.get("raised_at") or row["created_at"]
    priority = row.get("priority") or alarm.get("priority")
    lines = []
    place = " / ".join(str(p) for p in (ctx.get("site_name"), ctx.get("area_name")) if p)
    if place:
        lines.append(("Plant: " if en else "厂区: ") + place)
    if ctx.get("point_name") or alarm.get("point"):
        lines.append(
            ("Point: " if en else "测点: ") + f"{ctx.get('point_name') or alarm.get('point')} ({alarm.get('device')})"
        )
    value = _fmt_value(alarm.get("value"), ctx.get("unit"))
    if value is not None:
        lines.append(("Value: " if en else "数值: ") + value)
    if alarm.get("rule"):
        lines.append(("Rule: " if en else "规则: ") + alarm["rule"])
    if priority:
        lines.append(("Priority: " if en else "优先级: ") + _PRIORITY[int(priority)][1 if en else 0])
    lines.append(("Time: " if en else "时间: ") + at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S"))
    body = (row.get("body_en") or row["body"]) if en else row["body"]
    if body:
        lines.append(body)
    first = first_instructions(ctx, en=en)
    if first:
        lines.append(("Do first: " if en else "处置: ") + first)
    if link:
        lines.append(("Open / acknowledge: " if en else "查看/确认: ") + link)
    return Message(title=f"{drill}{title}", body="\n".join(lines))


def first_instructions(ctx: Mapping[str, Any], *, en: bool) -> str | None:
    """The response plan's evacuation instruction and route, else the rule's operator action."""
    evac = ctx["outbox"].get("evacuation")
    if evac:
        if en:
            return f"{evac['en']} Route: {evac['route_en']}"
        return f"{evac['zh']} 路线: {evac['route']}"
    action = ctx.get("action_en") if en else ctx.get("action")
    return action or ctx.get("action")


def summary(flood: Mapping[str, Any], alarms: list[Mapping[str, Any]], *, limit: int = 10) -> dict[str, str]:
    """Title and body (zh, en) of one flood summary: the count and the first alarms of the interval."""
    n = len(alarms)
    shown = alarms[:limit]
    zh = [f"{a['title']} ({a['source']})" for a in shown]
    en = [f"{a.get('title_en') or a['title']} ({a['source']})" for a in shown]
    more_zh = f"\n…另有 {n - limit} 条" if n > limit else ""
    more_en = f"\n… and {n - limit} more" if n > limit else ""
    return {
        "title": f"报警泛滥 {flood['area']}: 本期 {n} 条报警",
        "title_en": f"Alarm flood in {flood['area']}: {n} alarms this interval",
        "body": "\n".join(zh) + more_zh,
        "body_en": "\n".join(en) + more_en,
    }
