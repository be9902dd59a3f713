"""The alarm-management report of a period (usually a month): the ISA-18.2 KPIs against their targets
(alerts/kpi.py, ISA-18.2-2016 section 16 Table 5), the priority distribution, the top contributors, chattering,
stale and shelved alarms, and floods; per area when areas are chosen, else for the whole site."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from alerts import kpi as isa
from reports.context import areas_of, load_site, new_document, rows
from reports.model import Chart, ColType, Column, Document, Params, Section, Table, tr

#: (KPI key, zh, en, unit): the rows of the KPI table, in ISA-18.2 Table 5 order.
METRICS = (
    ("alarms_per_day", "平均每天报警数", "Alarms per day", "1/d"),
    ("alarms_per_hour", "平均每小时报警数", "Alarms per hour", "1/h"),
    ("alarms_per_10min", "平均每 10 分钟报警数", "Alarms per 10 minutes", "1/10min"),
    ("pct_hours_over_30", "报警数 > 30 的小时占比", "Hours with more than 30 alarms", "%"),
    ("pct_10min_over_10", "报警数 > 10 的 10 分钟占比", "10-minute periods with more than 10 alarms", "%"),
    ("max_per_10min", "10 分钟内最多报警数", "Most alarms in 10 minutes", None),
    ("pct_time_in_flood", "报警泛滥时间占比", "Time in flood", "%"),
    ("top10_share_pct", "前 10 位报警占比", "Share of the 10 most frequent alarms", "%"),
    ("chattering", "振荡报警数", "Chattering alarms", None),
    ("stale_present", "陈旧报警数", "Stale alarms", None),
)


def _assess(lang: str, value: float, target: dict[str, float]) -> str:
    if value <= target["acceptable"]:
        return tr(lang, "可接受", "acceptable")
    if "manageable" in target and value <= target["manageable"]:
        return tr(lang, "可管理", "manageable")
    return tr(lang, "超标", "over target")


def build(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    areas = areas_of(site, params)
    scopes: list[str | None] = list(areas) if params.areas else [None]
    doc = new_document(
        conn,
        site,
        params,
        kind="alarm_month",
        title=tr(lang, "报警管理月报", "Alarm management report"),
        areas=areas,
        now=now,
    )
    until = min(params.until, now)
    results = {a: isa.kpis(conn=conn, since=params.since, until=until, site=site.code, area=a) for a in scopes}
    doc.sections.append(_kpi_section(doc, site, results))
    doc.sections.append(_daily(conn, doc, site, params, until, areas))
    doc.sections.append(_contributors(doc, site, results))
    doc.sections.append(_shelved(conn, doc, site, params, until, areas))
    doc.sections.append(_floods(doc, site, results))
    doc.notes += [
        tr(
            lang,
            "演练报警不计入统计。计数为呈现给操作员的报警（报警、再报警、升级、解除搁置/抑制后仍有效）。",
            "Drills are left out. Counted are alarms presented to operators (raised, re-raised, "
            "escalated, back from shelving or suppression while active).",
        ),
        tr(
            lang,
            "ISA-18.2 的目标值适用于至少 30 天的数据。",
            "The ISA-18.2 targets are meant for at least 30 days of data.",
        ),
    ]
    doc.sources += [
        "ANSI/ISA-18.2-2016 §16, Table 5; IEC 62682:2022",
        tr(lang, "报警事件 (alarm_event)、报警泛滥 (alarm_flood)", "Alarm events (alarm_event), floods (alarm_flood)"),
    ]
    return doc


def _kpi_section(doc: Document, site, results: dict[str | None, dict[str, Any]]) -> Section:
    lang = doc.lang
    table = Table(
        "kpi",
        tr(lang, "ISA-18.2 关键指标", "ISA-18.2 KPIs"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("metric", tr(lang, "指标", "KPI")),
            Column("value", tr(lang, "实测", "Measured"), ColType.FLOAT),
            Column("unit", tr(lang, "单位", "Unit")),
            Column("acceptable", tr(lang, "可接受", "Acceptable"), ColType.FLOAT),
            Column("manageable", tr(lang, "最大可管理", "Maximum manageable"), ColType.FLOAT),
            Column("assessment", tr(lang, "评价", "Assessment")),
        ],
    )
    prio = Table(
        "priority",
        tr(lang, "优先级分布", "Priority distribution"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("priority", tr(lang, "优先级", "Priority")),
            Column("share", tr(lang, "实测占比", "Measured share"), ColType.FLOAT, "%"),
            Column("target", tr(lang, "目标占比", "Target share"), ColType.FLOAT, "%"),
        ],
    )
    summary = []
    for area, k in results.items():
        name = site.area_name(area, lang) if area else tr(lang, "全厂", "whole site")
        for key, zh, en, unit in METRICS:
            target = isa.TARGETS[key]
            table.rows.append(
                (
                    name,
                    tr(lang, zh, en),
                    float(k[key]),
                    unit or "",
                    float(target["acceptable"]),
                    float(target["manageable"]) if "manageable" in target else None,
                    _assess(lang, float(k[key]), target),
                )
            )
        labels = {
            "low": ("低", "low"),
            "medium": ("中", "medium"),
            "high": ("高", "high"),
            "critical": ("紧急", "critical"),
        }
        for key, target in isa.TARGETS["priority_pct"].items():
            prio.rows.append((name, tr(lang, *labels[key]), k["priority_pct"].get(key, 0.0), target))
        summary.append(
            tr(
                lang,
                f"{name}：呈现报警 {k['annunciated']} 条，平均每天 {k['alarms_per_day']} 条。",
                f"{name}: {k['annunciated']} alarms presented, {k['alarms_per_day']} per day.",
            )
        )
    return Section(tr(lang, "关键指标与目标", "KPIs against targets"), summary, [table, prio])


def _daily(conn: psycopg.Connection, doc: Document, site, params: Params, until: datetime, areas: list[str]) -> Section:
    lang = doc.lang
    found = rows(
        conn,
        """
        SELECT (d AT TIME ZONE %(tz)s)::date AS day,
               (SELECT count(*) FROM alarm_event WHERE annunciated AND NOT drill AND site = %(site)s
                  AND (%(all)s OR area = ANY(%(areas)s)) AND at >= d AND at < d + interval '1 day') AS alarms,
               (SELECT count(*) FROM alarm_event WHERE annunciated AND NOT drill AND site = %(site)s
                  AND (%(all)s OR area = ANY(%(areas)s)) AND at >= d AND at < d + interval '1 day'
                  AND priority >= 3) AS high
        FROM generate_series(date_trunc('day', %(since)s::timestamptz AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s,
                             %(until)s::timestamptz - interval '1 microsecond', interval '1 day') AS d
        ORDER BY d""",
        {
            "tz": site.timezone,
            "site": site.code,
            "areas": areas,
            "all": not params.areas,
            "since": params.since,
            "until": until,
        },
    )
    table = Table(
        "daily",
        tr(lang, "每日报警数", "Alarms per day"),
        [
            Column("day", tr(lang, "日期", "Day")),
            Column("alarms", tr(lang, "报警", "Alarms"), ColType.INT),
            Column("high", tr(lang, "其中高/紧急", "Of which high or critical"), ColType.INT),
        ],
        [(r["day"].isoformat(), r["alarms"], r["high"]) for r in found],
    )
    return Section(
        tr(lang, "每日报警", "Alarms per day"),
        [],
        [table],
        [Chart(tr(lang, "每日报警数", "Alarms per day"), "daily", "day", ("alarms", "high"), "bar")]
        if table.rows
        else [],
    )


def _contributors(doc: Document, site, results: dict[str | None, dict[str, Any]]) -> Section:
    lang = doc.lang
    top = Table(
        "top10",
        tr(lang, "报警次数前 10 位", "Top 10 contributors"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("rule", tr(lang, "规则", "Rule")),
            Column("source", tr(lang, "来源", "Source")),
            Column("alarms", tr(lang, "次数", "Alarms"), ColType.INT),
            Column("share", tr(lang, "占比", "Share"), ColType.FLOAT, "%"),
        ],
    )
    chatter = Table(
        "chattering",
        tr(lang, "振荡报警", "Chattering alarms"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("rule", tr(lang, "规则", "Rule")),
            Column("source", tr(lang, "来源", "Source")),
            Column("times", tr(lang, "振荡次数", "Times"), ColType.INT),
        ],
    )
    stale = Table(
        "stale",
        tr(lang, "陈旧报警（长期有效）", "Stale alarms (active for long)"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("id", "ID", ColType.INT),
            Column("title", tr(lang, "报警", "Alarm")),
            Column("source", tr(lang, "来源", "Source")),
            Column("raised_at", tr(lang, "报警时间", "Raised"), ColType.DATETIME),
        ],
    )
    for area, k in results.items():
        name = site.area_name(area, lang) if area else tr(lang, "全厂", "whole site")
        top.rows += [(name, r["rule"], r["source"], r["alarms"], r["share_pct"]) for r in k["top10"]]
        chatter.rows += [(name, r["rule"], r["source"], r["times"]) for r in k["chattering_alarms"]]
        stale.rows += [(name, r["id"], r["title"], r["source"], r["raised_at"]) for r in k["stale_alarms"]]
    return Section(
        tr(lang, "主要报警源、振荡与陈旧报警", "Top contributors, chattering and stale alarms"),
        [],
        [top, chatter, stale],
    )


def _shelved(
    conn: psycopg.Connection, doc: Document, site, params: Params, until: datetime, areas: list[str]
) -> Section:
    lang = doc.lang
    found = rows(
        conn,
        """
        SELECT e.at, e.alarm_id, e.kind, e.actor, e.cause, e.detail, a.title, a.title_en, a.source, a.area
        FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
        WHERE e.kind IN ('shelve', 'unshelve', 'remove_from_service', 'return_to_service') AND NOT e.drill
          AND e.site = %(site)s AND (%(all)s OR e.area = ANY(%(areas)s)) AND e.at >= %(since)s AND e.at < %(until)s
        ORDER BY e.at, e.id""",
        {"site": site.code, "all": not params.areas, "areas": areas, "since": params.since, "until": until},
    )
    kinds = {
        "shelve": ("搁置", "shelved"),
        "unshelve": ("解除搁置", "unshelved"),
        "remove_from_service": ("停用检修", "out of service"),
        "return_to_service": ("恢复投用", "returned"),
    }
    table = Table(
        "shelved",
        tr(lang, "搁置与停用", "Shelving and out of service"),
        [
            Column("at", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("alarm", tr(lang, "报警", "Alarm"), ColType.INT),
            Column("title", tr(lang, "名称", "Title")),
            Column("area", tr(lang, "区域", "Area")),
            Column("action", tr(lang, "操作", "Action")),
            Column("actor", tr(lang, "操作人", "By")),
            Column("reason", tr(lang, "原因", "Reason")),
        ],
        [
            (
                r["at"],
                r["alarm_id"],
                (r["title_en"] or r["title"]) if lang == "en" else r["title"],
                site.area_name(r["area"], lang),
                tr(lang, *kinds[r["kind"]]),
                r["actor"],
                r["cause"],
            )
            for r in found
        ],
    )
    return Section(
        tr(lang, "搁置与停用", "Shelved and out-of-service alarms"),
        [
            tr(
                lang,
                f"本期搁置 {sum(r['kind'] == 'shelve' for r in found)} 次，停用 "
                f"{sum(r['kind'] == 'remove_from_service' for r in found)} 次。",
                f"{sum(r['kind'] == 'shelve' for r in found)} shelvings and "
                f"{sum(r['kind'] == 'remove_from_service' for r in found)} removals from service.",
            )
        ],
        [table],
    )


def _floods(doc: Document, site, results: dict[str | None, dict[str, Any]]) -> Section:
    lang = doc.lang
    table = Table(
        "floods",
        tr(lang, "报警泛滥", "Alarm floods"),
        [
            Column("id", "ID", ColType.INT),
            Column("area", tr(lang, "区域", "Area")),
            Column("started_at", tr(lang, "开始", "Started"), ColType.DATETIME),
            Column("ended_at", tr(lang, "结束", "Ended"), ColType.DATETIME),
            Column("alarms", tr(lang, "报警数", "Alarms"), ColType.INT),
            Column("peak", tr(lang, "10 分钟峰值", "Peak per 10 minutes"), ColType.INT),
            Column("first_out", tr(lang, "首出报警", "First-out alarm")),
        ],
    )
    seen: set[int] = set()
    for k in results.values():
        for f in k["floods"]:
            if f["id"] in seen:
                continue
            seen.add(f["id"])
            table.rows.append(
                (
                    f["id"],
                    site.area_name(f["area"], lang),
                    f["started_at"],
                    f["ended_at"],
                    f["alarms"],
                    f["peak_per_10min"],
                    f["first_out"]["title"] or "",
                )
            )
    return Section(tr(lang, "报警泛滥", "Alarm floods"), [], [table])
