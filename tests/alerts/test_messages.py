"""Message text (pure): Chinese by default, English per recipient, drill marks, first instructions, link."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.notifications import messages

AT = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)


def _ctx(**outbox) -> dict:
    row = {
        "kind": "plan",
        "title": "[一级] 化成预案: 电芯温度高",
        "title_en": "[Level 1] Formation plan: Cell hot",
        "body": "formation/cab-01/cell_temp_c: 65",
        "body_en": "formation/cab-01/cell_temp_c: 65",
        "drill": False,
        "priority": 4,
        "created_at": AT,
        "evacuation": {"zh": "立即撤离", "en": "Leave now", "route": "东门", "route_en": "East door"},
        **outbox,
    }
    alarm = {
        "rule": "cell.hot",
        "device": "cab-01",
        "point": "cell_temp_c",
        "value": 65.25,
        "priority": 4,
        "raised_at": AT,
        "last_raised_at": AT,
    }
    return {
        "outbox": row,
        "alarm": alarm,
        "site_name": "常州一厂",
        "area_name": "化成",
        "point_name": "电芯温度",
        "unit": "°C",
        "action": "停止充电",
        "action_en": "Stop charging",
    }


def test_chinese_by_default_with_everything_a_person_needs() -> None:
    msg = messages.compose(_ctx(), lang="zh-CN", link="https://ehs.example/app/#/alarms/7?t=x")
    assert msg.title == "[一级] 化成预案: 电芯温度高"
    for part in (
        "厂区: 常州一厂 / 化成",
        "测点: 电芯温度 (cab-01)",
        "数值: 65.25 °C",
        "规则: cell.hot",
        "优先级: 紧急",
        "时间: 2026-03-01 08:30:00",
        "处置: 立即撤离 路线: 东门",
        "查看/确认: https://ehs.example/app/#/alarms/7?t=x",
    ):
        assert part in msg.body


def test_english_and_drills_and_the_rule_action_without_a_plan() -> None:
    msg = messages.compose(_ctx(drill=True, evacuation=None), lang="en", link=None)
    assert msg.title == "[DRILL] [Level 1] Formation plan: Cell hot"
    assert "Priority: Critical" in msg.body and "Do first: Stop charging" in msg.body
    assert messages.compose(_ctx(drill=True), lang="zh-CN", link=None).title.startswith("【演练】")
