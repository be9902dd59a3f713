"""The interlock and bypass report of a period: every command by device and action with its outcome and how fast
devices confirmed, the commands that did not complete, and the bypasses in force during the period (who asked,
who approved, for how long)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from reports.context import areas_of, load_site, new_document, rows
from reports.model import Chart, ColType, Column, Document, Params, Section, Table, tr

#: Outcomes that mean the interlock did not act as asked.
FAILED = ("rejected", "failed", "timed_out")


def build(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    areas = areas_of(site, params)
    until = min(params.until, now)
    doc = new_document(
        conn,
        site,
        params,
        kind="interlocks",
        title=tr(lang, "联锁与旁路月报", "Interlock and bypass report"),
        areas=areas,
        now=now,
    )
    p = {"site": site.code, "areas": areas, "since": params.since, "until": until, "tz": site.timezone}
    commands = rows(
        conn,
        """
        SELECT c.*, extract(epoch FROM (SELECT min(e.at) FROM interlock_command_event e WHERE e.command_id = c.id
                                        AND e.status IN ('accepted', 'done')) - c.issued_at) AS accept_s,
               extract(epoch FROM (SELECT min(e.at) FROM interlock_command_event e WHERE e.command_id = c.id
                                   AND e.status = 'done') - c.issued_at) AS done_s
        FROM interlock_command c
        WHERE c.site = %(site)s AND coalesce(c.area, '') = ANY(%(areas)s || '{""}'::text[])
          AND c.created_at >= %(since)s AND c.created_at < %(until)s
        ORDER BY c.created_at, c.id""",
        p,
    )
    real = [c for c in commands if not c["drill"]]
    by = Table(
        "by_device",
        tr(lang, "按设备与动作", "By device and action"),
        [
            Column("device", tr(lang, "设备", "Device")),
            Column("action", tr(lang, "动作", "Action")),
            Column("commands", tr(lang, "指令数", "Commands"), ColType.INT),
            Column("done", tr(lang, "已完成", "Done"), ColType.INT),
            Column("failed", tr(lang, "拒绝/失败/超时", "Rejected, failed or timed out"), ColType.INT),
            Column("manual", tr(lang, "人工", "Manual"), ColType.INT),
            Column("accept_avg", tr(lang, "平均接受用时", "Mean time to accept"), ColType.FLOAT, "s"),
            Column("done_max", tr(lang, "最长完成用时", "Longest time to done"), ColType.FLOAT, "s"),
        ],
    )
    groups: dict[tuple[str, str], list] = {}
    for c in real:
        groups.setdefault((c["device"], c["action"]), []).append(c)
    for (device, action), cs in sorted(groups.items()):
        accepts = [float(c["accept_s"]) for c in cs if c["accept_s"] is not None]
        dones = [float(c["done_s"]) for c in cs if c["done_s"] is not None]
        by.rows.append(
            (
                device,
                action,
                len(cs),
                sum(c["status"] == "done" for c in cs),
                sum(c["status"] in FAILED for c in cs),
                sum(c["origin"] == "manual" for c in cs),
                sum(accepts) / len(accepts) if accepts else None,
                max(dones) if dones else None,
            )
        )
    bad = Table(
        "not_completed",
        tr(lang, "未完成的指令", "Commands that did not complete"),
        [
            Column("created_at", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("device", tr(lang, "设备", "Device")),
            Column("action", tr(lang, "动作", "Action")),
            Column("status", tr(lang, "状态", "Status")),
            Column("attempts", tr(lang, "发送次数", "Attempts"), ColType.INT),
            Column("alarm", tr(lang, "报警", "Alarm"), ColType.INT),
            Column("detail", tr(lang, "说明", "Detail")),
        ],
        [
            (c["created_at"], c["device"], c["action"], c["status"], c["attempts"], c["alarm_id"], c["detail"])
            for c in real
            if c["status"] in FAILED
        ],
    )
    daily = rows(
        conn,
        """
        SELECT (d AT TIME ZONE %(tz)s)::date AS day, count(c.id) AS commands,
               count(c.id) FILTER (WHERE c.status IN ('rejected', 'failed', 'timed_out')) AS failed
        FROM generate_series(date_trunc('day', %(since)s::timestamptz AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s,
                             %(until)s::timestamptz - interval '1 microsecond', interval '1 day') AS d
        LEFT JOIN interlock_command c ON c.site = %(site)s AND NOT c.drill AND c.created_at >= d
             AND c.created_at < d + interval '1 day' AND c.created_at >= %(since)s AND c.created_at < %(until)s
             AND coalesce(c.area, '') = ANY(%(areas)s || '{""}'::text[])
        GROUP BY d ORDER BY d""",
        p,
    )
    per_day = Table(
        "commands_daily",
        tr(lang, "每日指令数", "Commands per day"),
        [
            Column("day", tr(lang, "日期", "Day")),
            Column("commands", tr(lang, "指令", "Commands"), ColType.INT),
            Column("failed", tr(lang, "未完成", "Not completed"), ColType.INT),
        ],
        [(r["day"].isoformat(), r["commands"], r["failed"]) for r in daily],
    )
    drills = len(commands) - len(real)
    doc.sections.append(
        Section(
            tr(lang, "联锁指令", "Interlock commands"),
            [
                tr(
                    lang,
                    f"本期联锁指令 {len(real)} 条（另有演练指令 {drills} 条），完成 "
                    f"{sum(c['status'] == 'done' for c in real)} 条，未完成 {len(bad.rows)} 条。",
                    f"{len(real)} interlock commands (and {drills} drill commands), "
                    f"{sum(c['status'] == 'done' for c in real)} done, {len(bad.rows)} not completed.",
                )
            ],
            [by, bad, per_day],
            [
                Chart(
                    tr(lang, "每日联锁指令", "Interlock commands per day"),
                    "commands_daily",
                    "day",
                    ("commands", "failed"),
                    "bar",
                )
            ]
            if per_day.rows
            else [],
        )
    )
    doc.sections.append(_bypasses(conn, doc, p))
    doc.notes.append(
        tr(
            lang,
            "演练指令不计入统计。用时自指令发出起算，至设备首次接受或完成的回执。",
            "Drill commands are left out. Times run from the command's issue to the device's first "
            "acceptance or completion.",
        )
    )
    doc.sources += [
        tr(
            lang,
            "联锁指令及回执 (interlock_command, interlock_command_event)",
            "Interlock commands and acknowledgements (interlock_command, interlock_command_event)",
        ),
        tr(
            lang,
            "旁路记录 (interlock_bypass)，需两人批准并自动到期",
            "Bypasses (interlock_bypass): two people, time-limited",
        ),
    ]
    return doc


def _bypasses(conn: psycopg.Connection, doc: Document, p: dict) -> Section:
    lang = doc.lang
    found = rows(
        conn,
        """
        SELECT b.*, a.code AS area FROM interlock_bypass b
        JOIN site s ON s.code = b.site JOIN device d ON d.site_id = s.id AND d.code = b.device
        JOIN area a ON a.id = d.area_id
        WHERE b.site = %(site)s AND a.code = ANY(%(areas)s) AND b.requested_at < %(until)s
          AND coalesce(b.revoked_at, b.expires_at, b.requested_at) >= %(since)s
        ORDER BY b.requested_at, b.id""",
        p,
    )
    table = Table(
        "bypasses",
        tr(lang, "旁路", "Bypasses"),
        [
            Column("id", "ID", ColType.INT),
            Column("device", tr(lang, "设备", "Device")),
            Column("action", tr(lang, "动作", "Action")),
            Column("reason", tr(lang, "原因", "Reason")),
            Column("requested_by", tr(lang, "申请人", "Requested by")),
            Column("requested_at", tr(lang, "申请时间", "Requested"), ColType.DATETIME),
            Column("approved_by", tr(lang, "批准人", "Approved by")),
            Column("approved_at", tr(lang, "批准时间", "Approved"), ColType.DATETIME),
            Column("expires_at", tr(lang, "到期", "Expires"), ColType.DATETIME),
            Column("revoked_by", tr(lang, "撤销人", "Revoked by")),
            Column("revoked_at", tr(lang, "撤销时间", "Revoked"), ColType.DATETIME),
            Column("hours", tr(lang, "批准时长", "Approved for"), ColType.FLOAT, "h"),
        ],
        [
            (
                b["id"],
                b["device"],
                b["action"] or tr(lang, "全部", "all"),
                b["reason"],
                b["requested_by"],
                b["requested_at"],
                b["approved_by"],
                b["approved_at"],
                b["expires_at"],
                b["revoked_by"],
                b["revoked_at"],
                b["duration_s"] / 3600,
            )
            for b in found
        ],
    )
    approved = sum(1 for b in found if b["approved_by"])
    return Section(
        tr(lang, "旁路", "Bypasses"),
        [
            tr(
                lang,
                f"本期有效或申请的旁路 {len(found)} 条，其中已批准 {approved} 条。",
                f"{len(found)} bypasses requested or in force, {approved} approved.",
            )
        ],
        [table],
    )
