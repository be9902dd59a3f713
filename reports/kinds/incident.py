"""The incident report of one alarm or one alarm flood, for the post-incident review: what happened when
(timeline), the readings around it, the response plan level it started, the interlock commands with every
acknowledgement of the device, the notifications with every delivery, and who acknowledged the alarm."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts import service as alarms
from alerts.models import AlarmState, Priority
from core import timeseries
from reports.context import NotFound, ReportError, load_site, new_document, one, rows
from reports.model import Chart, ColType, Column, Document, Params, Section, Table, tr

#: Readings shown before the alarm and after it cleared.
AROUND = timedelta(minutes=30)
#: At most this many readings of the alarm's point (a long incident keeps the first ones and says so).
MAX_READINGS = 5000


def window(
    conn: psycopg.Connection, *, alarm_id: int | None = None, flood_id: int | None = None, now: datetime
) -> tuple[str, datetime, datetime]:
    """(site, since, until) of an incident: from 30 minutes before it started to 30 minutes after it ended."""
    if alarm_id is not None:
        row = one(
            conn,
            "SELECT site, coalesce(raised_at, opened_at) AS start, coalesce(closed_at, cleared_at, "
            "last_raised_at, raised_at, opened_at) AS stop FROM alarm WHERE id = %s",
            (alarm_id,),
        )
        what = f"alarm {alarm_id}"
    elif flood_id is not None:
        row = one(
            conn,
            "SELECT site, started_at AS start, coalesce(ended_at, started_at) AS stop FROM alarm_flood WHERE id = %s",
            (flood_id,),
        )
        what = f"flood {flood_id}"
    else:
        raise ReportError("an incident report needs an alarm or a flood")
    if row is None:
        raise NotFound(f"no {what}")
    return row["site"], row["start"] - AROUND, min(max(row["stop"] + AROUND, row["start"] + AROUND), now)


def _state(lang: str, state: str | None) -> str:
    if not state:
        return ""
    s = AlarmState(state)
    return s.label_en if lang == "en" else s.label


def _priority(lang: str, p: int | None) -> str:
    if not p:
        return ""
    return Priority(p).name.lower() if lang == "en" else Priority(p).label


def _alarms(conn: psycopg.Connection, params: Params) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    if params.alarm_id is not None:
        found = rows(conn, "SELECT * FROM alarm WHERE id = %s AND site = %s", (params.alarm_id, params.site))
        if not found:
            raise NotFound(f"no alarm {params.alarm_id} at site {params.site}")
        return found, None
    flood = one(conn, "SELECT * FROM alarm_flood WHERE id = %s AND site = %s", (params.flood_id, params.site))
    if flood is None:
        raise NotFound(f"no flood {params.flood_id} at site {params.site}")
    return rows(
        conn,
        "SELECT * FROM alarm WHERE flood_id = %s OR id = %s ORDER BY coalesce(raised_at, opened_at), id",
        (flood["id"], flood["first_alarm_id"]),
    ), flood


def plan_level(conn: psycopg.Connection, alarm: dict[str, Any]) -> dict[str, Any] | None:
    """The response plan level the alarm started (from the alarm configuration in force now), or None."""
    if alarm["plan_level"] is None:
        return None
    config = alarms.load_config(conn=conn)
    plan = config.plans.get((alarm["site"], alarm["area"] or ""))
    level = next((lv for lv in plan.levels if lv.level == alarm["plan_level"]), None) if plan else None
    if level is None:
        return None
    return {"plan": plan, "level": level, "attrs": config.attrs(alarm["rule"])}


def build(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    found, flood = _alarms(conn, params)
    ids = [a["id"] for a in found]
    areas = sorted({a["area"] for a in found if a["area"]} | ({flood["area"]} if flood else set()))
    first = found[0] if found else None
    if flood:
        title = tr(lang, f"报警泛滥事件报告 #{flood['id']}", f"Alarm flood incident report #{flood['id']}")
    else:
        title = tr(lang, f"报警事件报告 #{first['id']}", f"Alarm incident report #{first['id']}")
    doc = new_document(conn, site, params, kind="incident", title=title, areas=areas, now=now)
    doc.sections.append(_summary(doc, site, found, flood))
    doc.sections.append(_timeline(conn, doc, ids))
    if first is not None:
        doc.sections.append(_readings(conn, doc, first, params))
        doc.sections.append(_plan(conn, doc, first))
    doc.sections.append(_commands(conn, doc, ids))
    doc.sections.append(_notifications(conn, doc, ids, flood))
    if any(a["drill"] for a in found):
        doc.notes.insert(
            0,
            tr(
                lang,
                "【演练】本事件为演练，指令仅发往仿真设备。",
                "[DRILL] This incident is a drill; commands went to simulated devices only.",
            ),
        )
    doc.sources += [
        tr(lang, "报警记录与事件 (alarm, alarm_event)", "Alarm record and events (alarm, alarm_event)"),
        tr(
            lang,
            "联锁指令及设备回执 (interlock_command, interlock_command_event)",
            "Interlock commands and device acknowledgements (interlock_command, interlock_command_event)",
        ),
        tr(
            lang,
            "通知与投递记录 (notification_outbox, notification_delivery)",
            "Notifications and deliveries (notification_outbox, notification_delivery)",
        ),
        tr(lang, "ISA-18.2 / IEC 62682 报警状态", "ISA-18.2 / IEC 62682 alarm states"),
    ]
    return doc


def _summary(doc: Document, site, found: list[dict[str, Any]], flood: dict[str, Any] | None) -> Section:
    lang = doc.lang
    section = Section(tr(lang, "概况", "Summary"))
    if flood:
        section.paragraphs.append(
            tr(
                lang,
                f"{site.area_name(flood['area'], lang)} 报警泛滥：{flood['alarm_count']} 条报警，"
                f"10 分钟峰值 {flood['peak_per_window']} 条，开始 {doc.fmt_time(flood['started_at'])}，"
                f"结束 {doc.fmt_time(flood['ended_at'])}。",
                f"Alarm flood in {site.area_name(flood['area'], lang)}: {flood['alarm_count']} alarms, peak "
                f"{flood['peak_per_window']} in 10 minutes, from {doc.fmt_time(flood['started_at'])} to "
                f"{doc.fmt_time(flood['ended_at'])}.",
            )
        )
    table = Table(
        "alarms",
        tr(lang, "报警", "Alarms"),
        [
            Column("id", "ID", ColType.INT),
            Column("title", tr(lang, "报警", "Alarm")),
            Column("area", tr(lang, "区域", "Area")),
            Column("source", tr(lang, "来源", "Source")),
            Column("rule", tr(lang, "规则", "Rule")),
            Column("priority", tr(lang, "优先级", "Priority")),
            Column("level", tr(lang, "限值", "Limit")),
            Column("value", tr(lang, "值", "Value"), ColType.FLOAT),
            Column("raised_at", tr(lang, "报警时间", "Raised"), ColType.DATETIME),
            Column("acked_at", tr(lang, "确认时间", "Acknowledged"), ColType.DATETIME),
            Column("acked_by", tr(lang, "确认人", "Acknowledged by")),
            Column("cleared_at", tr(lang, "恢复时间", "Cleared"), ColType.DATETIME),
            Column("closed_at", tr(lang, "关闭时间", "Closed"), ColType.DATETIME),
            Column("state", tr(lang, "当前状态", "State now")),
            Column("first_out", tr(lang, "首出", "First out"), ColType.BOOL),
            Column("plan_level", tr(lang, "预案级别", "Plan level"), ColType.INT),
        ],
    )
    for a in found:
        title = (a["title_en"] or a["title"]) if lang == "en" else a["title"]
        table.rows.append(
            (
                a["id"],
                title,
                site.area_name(a["area"], lang),
                a["source"],
                a["rule"],
                _priority(lang, a["priority"]),
                a["level"],
                a["value"],
                a["raised_at"],
                a["acked_at"],
                a["acked_by"],
                a["cleared_at"],
                a["closed_at"],
                _state(lang, a["state"]),
                bool(a["first_out"] or (flood and flood["first_alarm_id"] == a["id"])),
                a["plan_level"],
            )
        )
    section.tables.append(table)
    return section


def _timeline(conn: psycopg.Connection, doc: Document, ids: list[int]) -> Section:
    lang = doc.lang
    events = rows(conn, "SELECT * FROM alarm_event WHERE alarm_id = ANY(%s) ORDER BY at, id", (ids,))
    table = Table(
        "timeline",
        tr(lang, "时间线", "Timeline"),
        [
            Column("at", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("alarm", tr(lang, "报警", "Alarm"), ColType.INT),
            Column("kind", tr(lang, "事件", "Event")),
            Column("from", tr(lang, "原状态", "From")),
            Column("to", tr(lang, "新状态", "To")),
            Column("priority", tr(lang, "优先级", "Priority")),
            Column("value", tr(lang, "值", "Value"), ColType.FLOAT),
            Column("actor", tr(lang, "执行者", "Actor")),
            Column("cause", tr(lang, "原因/说明", "Cause or note")),
        ],
        [
            (
                e["at"],
                e["alarm_id"],
                e["kind"],
                _state(lang, e["from_state"]),
                _state(lang, e["to_state"]),
                _priority(lang, e["priority"]),
                e["value"],
                e["actor"],
                e["cause"],
            )
            for e in events
        ],
    )
    acks = [e for e in events if e["kind"] == "ack"]
    who = Table(
        "acknowledged",
        tr(lang, "确认人", "Who acknowledged"),
        [
            Column("alarm", tr(lang, "报警", "Alarm"), ColType.INT),
            Column("at", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("actor", tr(lang, "确认人", "Person")),
            Column("note", tr(lang, "备注", "Note")),
        ],
        [(e["alarm_id"], e["at"], e["actor"], e["cause"]) for e in acks],
    )
    return Section(
        tr(lang, "时间线", "Timeline"),
        [
            tr(
                lang,
                f"共 {len(events)} 条事件，{len(acks)} 次确认。",
                f"{len(events)} events, {len(acks)} acknowledgements.",
            )
        ],
        [table, who],
    )


def _readings(conn: psycopg.Connection, doc: Document, alarm: dict[str, Any], params: Params) -> Section:
    lang = doc.lang
    section = Section(tr(lang, "报警前后的读数", "Readings around the alarm"))
    point = one(
        conn,
        "SELECT p.id, p.name, p.name_en, p.unit FROM point p JOIN device d ON d.id = p.device_id "
        "JOIN site s ON s.id = d.site_id WHERE s.code = %s AND d.code = %s AND p.key = %s",
        (alarm["site"], alarm["device"], alarm["point"]),
    )
    if point is None:
        section.paragraphs.append(tr(lang, "该报警不针对单一测点，无读数。", "This alarm is not about one point."))
        return section
    data = timeseries.raw(conn, point_id=point["id"], start=params.since, end=params.until, limit=MAX_READINGS + 1)
    name = (point["name_en"] or point["name"]) if lang == "en" else point["name"]
    table = Table(
        "readings",
        tr(lang, f"读数：{alarm['device']}/{alarm['point']}", f"Readings: {alarm['device']}/{alarm['point']}"),
        [
            Column("time", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("value", name, ColType.FLOAT, point["unit"], digits=3),
            Column("quality", tr(lang, "质量码", "Quality"), ColType.INT),
        ],
        [(t, v, q) for t, v, q in data[:MAX_READINGS]],
    )
    if len(data) > MAX_READINGS:
        table.note = tr(lang, f"仅列出前 {MAX_READINGS} 条读数。", f"The first {MAX_READINGS} readings only.")
    section.paragraphs.append(
        tr(
            lang,
            f"{doc.fmt_time(params.since)} 至 {doc.fmt_time(params.until)}，共 {len(table.rows)} 条读数。",
            f"{len(table.rows)} readings from {doc.fmt_time(params.since)} to {doc.fmt_time(params.until)}.",
        )
    )
    if table.rows:
        section.charts.append(
            Chart(tr(lang, f"{name} [{point['unit']}]", f"{name} [{point['unit']}]"), "readings", "time", ("value",))
        )
    section.tables.append(table)
    return section


def _plan(conn: psycopg.Connection, doc: Document, alarm: dict[str, Any]) -> Section:
    lang = doc.lang
    section = Section(tr(lang, "应急预案", "Response plan"))
    found = plan_level(conn, alarm)
    if found is None:
        section.paragraphs.append(tr(lang, "该报警未启动应急预案。", "This alarm started no response plan."))
        return section
    plan, level, attrs = found["plan"], found["level"], found["attrs"]
    name = (plan.name_en or plan.name) if lang == "en" else plan.name
    level_name = (level.name_en or level.name) if lang == "en" else level.name
    section.paragraphs.append(
        tr(
            lang,
            f"启动 {name} 第 {level.level} 级（{level_name}）。",
            f"Started {name}, level {level.level} ({level_name}).",
        )
    )
    if level.evacuation:
        ev = level.evacuation
        section.paragraphs.append(
            tr(
                lang,
                f"疏散：{ev.zh}；路线：{ev.route or '—'}；集合点：{ev.assembly_point or '—'}。",
                f"Evacuation: {ev.en or ev.zh}; route: {ev.route_en or ev.route or '—'}; assembly point: "
                f"{ev.assembly_point_en or ev.assembly_point or '—'}.",
            )
        )
    action = attrs.action_en if lang == "en" and attrs.action_en else attrs.action
    if action:
        section.paragraphs.append(tr(lang, f"操作指引：{action}", f"Operator action: {action}"))
    section.tables.append(
        Table(
            "plan_interlocks",
            tr(lang, "预案联锁", "Interlocks of the plan level"),
            [
                Column("device", tr(lang, "设备", "Device")),
                Column("action", tr(lang, "动作", "Action")),
                Column("params", tr(lang, "参数", "Parameters")),
            ],
            [(lock.device, lock.action, str(lock.params or "")) for lock in level.interlocks],
        )
    )
    section.paragraphs.append(
        tr(lang, "预案内容取自当前报警配置版本。", "The plan is shown as the alarm configuration in force now has it.")
    )
    return section


def _commands(conn: psycopg.Connection, doc: Document, ids: list[int]) -> Section:
    lang = doc.lang
    commands = rows(conn, "SELECT * FROM interlock_command WHERE alarm_id = ANY(%s) ORDER BY created_at, id", (ids,))
    events = rows(
        conn,
        "SELECT * FROM interlock_command_event WHERE command_id = ANY(%s) ORDER BY at, id",
        ([c["id"] for c in commands],),
    )
    cmd = Table(
        "commands",
        tr(lang, "联锁指令", "Interlock commands"),
        [
            Column("created_at", tr(lang, "创建", "Created"), ColType.DATETIME),
            Column("device", tr(lang, "设备", "Device")),
            Column("action", tr(lang, "动作", "Action")),
            Column("origin", tr(lang, "来源", "Origin")),
            Column("status", tr(lang, "状态", "Status")),
            Column("attempts", tr(lang, "发送次数", "Attempts"), ColType.INT),
            Column("issued_at", tr(lang, "发出", "Issued"), ColType.DATETIME),
            Column("finished_at", tr(lang, "完成", "Finished"), ColType.DATETIME),
            Column("alarm", tr(lang, "报警", "Alarm"), ColType.INT),
            Column("id", "ID"),
        ],
        [
            (
                c["created_at"],
                c["device"],
                c["action"],
                c["origin"],
                c["status"],
                c["attempts"],
                c["issued_at"],
                c["finished_at"],
                c["alarm_id"],
                str(c["id"]),
            )
            for c in commands
        ],
    )
    acks = Table(
        "command_acks",
        tr(lang, "设备回执", "Device acknowledgements"),
        [
            Column("at", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("command", tr(lang, "指令", "Command")),
            Column("status", tr(lang, "状态", "Status")),
            Column("actor", tr(lang, "来自", "From")),
            Column("detail", tr(lang, "说明", "Detail")),
        ],
        [(e["at"], str(e["command_id"])[:8], e["status"], e["actor"], e["detail"]) for e in events],
    )
    done = sum(1 for c in commands if c["status"] == "done")
    return Section(
        tr(lang, "联锁指令与回执", "Interlock commands and acknowledgements"),
        [tr(lang, f"{len(commands)} 条指令，{done} 条已完成。", f"{len(commands)} commands, {done} done.")],
        [cmd, acks],
    )


def _notifications(conn: psycopg.Connection, doc: Document, ids: list[int], flood: dict[str, Any] | None) -> Section:
    lang = doc.lang
    outbox = rows(
        conn,
        "SELECT * FROM notification_outbox WHERE alarm_id = ANY(%s) OR flood_id = %s ORDER BY id",
        (ids, flood["id"] if flood else None),
    )
    deliveries = rows(
        conn,
        "SELECT d.*, u.username FROM notification_delivery d LEFT JOIN app_user u ON "
        "u.id = d.user_id WHERE d.outbox_id = ANY(%s) ORDER BY d.id",
        ([o["id"] for o in outbox],),
    )
    notes = Table(
        "notifications",
        tr(lang, "通知", "Notifications"),
        [
            Column("created_at", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("kind", tr(lang, "类型", "Kind")),
            Column("title", tr(lang, "标题", "Title")),
            Column("recipients", tr(lang, "接收角色/人", "Recipients")),
            Column("status", tr(lang, "状态", "Status")),
            Column("sent_at", tr(lang, "发送", "Sent"), ColType.DATETIME),
        ],
        [
            (
                o["created_at"],
                o["kind"],
                (o["title_en"] or o["title"]) if lang == "en" else o["title"],
                ", ".join((o["recipients"] or {}).get("roles", []) + (o["recipients"] or {}).get("users", [])),
                o["status"],
                o["sent_at"],
            )
            for o in outbox
        ],
    )
    sent = Table(
        "deliveries",
        tr(lang, "投递", "Deliveries"),
        [
            Column("notification", tr(lang, "通知", "Notification"), ColType.INT),
            Column("recipient", tr(lang, "接收人", "Recipient")),
            Column("channel", tr(lang, "渠道", "Channel")),
            Column("status", tr(lang, "状态", "Status")),
            Column("attempts", tr(lang, "尝试", "Attempts"), ColType.INT),
            Column("sent_at", tr(lang, "送达", "Sent"), ColType.DATETIME),
            Column("error", tr(lang, "错误", "Error")),
        ],
        [
            (
                d["outbox_id"],
                d["username"] or d["recipient"],
                d["kind"],
                d["status"],
                d["attempts"],
                d["sent_at"],
                d["last_error"],
            )
            for d in deliveries
        ],
    )
    return Section(tr(lang, "通知与投递", "Notifications and deliveries"), [], [notes, sent])
