"""The device-health report of a period, by area: devices offline now and how often they went offline, data
completeness (readings received against readings expected from each device's interval), stale, offline and
invalid-data alarms, and the rejected messages (dead letters) by reason."""

from __future__ import annotations

from datetime import datetime

import psycopg

from core import timeseries
from reports.context import areas_of, load_site, new_document, rows
from reports.model import Chart, ColType, Column, Document, Params, Section, Table, tr

HEALTH_RULES = ("stale", "offline", "invalid", "flatline", "spike")


def build(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    areas = areas_of(site, params)
    until = min(params.until, now)
    seconds = max((until - params.since).total_seconds(), 1.0)
    doc = new_document(
        conn,
        site,
        params,
        kind="device_health",
        title=tr(lang, "设备健康月报", "Device health report"),
        areas=areas,
        now=now,
    )
    p = {"site": site.id, "code": site.code, "areas": areas, "since": params.since, "until": until}
    devices = rows(
        conn,
        """
        SELECT d.id, d.code, d.name, d.name_en, d.kind, d.interval_s, d.status, d.status_at, a.code AS area,
               (SELECT count(*) FROM point p WHERE p.device_id = d.id AND p.retired_at IS NULL) AS points,
               (SELECT array_agg(p.id) FROM point p WHERE p.device_id = d.id) AS point_ids,
               (SELECT count(*) FROM reading r JOIN point p ON p.id = r.point_id WHERE p.device_id = d.id
                  AND r.time >= %(since)s AND r.time < %(until)s AND r.value IS NULL) AS nulls,
               (SELECT count(*) FROM device_status_event e WHERE e.device_id = d.id AND e.status = 'offline'
                  AND e.time >= %(since)s AND e.time < %(until)s) AS offline_events,
               (SELECT count(*) FROM dead_letter l WHERE l.site_code = %(code)s AND l.device_code = d.code
                  AND l.received_at >= %(since)s AND l.received_at < %(until)s) AS dead_letters
        FROM device d JOIN area a ON a.id = d.area_id
        WHERE d.site_id = %(site)s AND a.code = ANY(%(areas)s) AND d.retired_at IS NULL
        ORDER BY a.code, d.code""",
        p,
    )
    # readings with a value from the hourly rollup (a month of the demo plant: one row per point and hour), the
    # null ones (rare; a partial index) from the raw table
    valued = timeseries.counts(
        conn, point_ids=[p for d in devices for p in d["point_ids"] or []], start=params.since, end=until
    )
    for d in devices:
        d["readings"] = d["nulls"] + sum(valued.get(p, 0) for p in d["point_ids"] or [])
    alarms = rows(
        conn,
        """
        SELECT area, device, rule_type, count(*) AS n FROM alarm
        WHERE site = %(code)s AND area = ANY(%(areas)s) AND rule_type = ANY(%(types)s) AND NOT drill
          AND coalesce(raised_at, opened_at) >= %(since)s AND coalesce(raised_at, opened_at) < %(until)s
        GROUP BY 1, 2, 3""",
        {**p, "types": list(HEALTH_RULES)},
    )
    count = {(a["area"], a["device"], a["rule_type"]): a["n"] for a in alarms}

    def alarms_of(area: str, device: str | None, kind: str) -> int:
        return sum(n for (a, d, k), n in count.items() if a == area and k == kind and (device is None or d == device))

    per_device = Table(
        "devices",
        tr(lang, "设备", "Devices"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("device", tr(lang, "设备", "Device")),
            Column("kind", tr(lang, "类型", "Kind")),
            Column("status", tr(lang, "当前状态", "Status now")),
            Column("offline_events", tr(lang, "离线次数", "Went offline"), ColType.INT),
            Column("readings", tr(lang, "读数", "Readings"), ColType.INT),
            Column("expected", tr(lang, "应有读数", "Expected"), ColType.INT),
            Column("completeness", tr(lang, "完整率", "Completeness"), ColType.FLOAT, "%", digits=1),
            Column("nulls", tr(lang, "空值", "Null values"), ColType.INT),
            Column("stale", tr(lang, "数据中断报警", "Stale alarms"), ColType.INT),
            Column("offline", tr(lang, "离线报警", "Offline alarms"), ColType.INT),
            Column("invalid", tr(lang, "无效数据报警", "Invalid-data alarms"), ColType.INT),
            Column("dead_letters", tr(lang, "拒收消息", "Rejected messages"), ColType.INT),
        ],
    )
    status = {"online": ("在线", "online"), "offline": ("离线", "offline"), "unknown": ("未知", "unknown")}
    for d in devices:
        expected = int(d["points"] * seconds / d["interval_s"])
        per_device.rows.append(
            (
                site.area_name(d["area"], lang),
                d["code"],
                d["kind"],
                tr(lang, *status[d["status"]]),
                d["offline_events"],
                d["readings"],
                expected,
                min(100.0, 100.0 * d["readings"] / expected) if expected else None,
                d["nulls"],
                alarms_of(d["area"], d["code"], "stale"),
                alarms_of(d["area"], d["code"], "offline"),
                alarms_of(d["area"], d["code"], "invalid"),
                d["dead_letters"],
            )
        )
    per_area = Table(
        "areas",
        tr(lang, "按区域", "By area"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("devices", tr(lang, "设备数", "Devices"), ColType.INT),
            Column("offline_now", tr(lang, "当前离线", "Offline now"), ColType.INT),
            Column("offline_events", tr(lang, "离线次数", "Went offline"), ColType.INT),
            Column("completeness", tr(lang, "完整率", "Completeness"), ColType.FLOAT, "%", digits=1),
            Column("stale", tr(lang, "数据中断报警", "Stale alarms"), ColType.INT),
            Column("offline", tr(lang, "离线报警", "Offline alarms"), ColType.INT),
            Column("invalid", tr(lang, "无效数据报警", "Invalid-data alarms"), ColType.INT),
            Column("dead_letters", tr(lang, "拒收消息", "Rejected messages"), ColType.INT),
        ],
    )
    for area in areas:
        ds = [d for d in devices if d["area"] == area]
        expected = sum(int(d["points"] * seconds / d["interval_s"]) for d in ds)
        got = sum(d["readings"] for d in ds)
        per_area.rows.append(
            (
                site.area_name(area, lang),
                len(ds),
                sum(d["status"] == "offline" for d in ds),
                sum(d["offline_events"] for d in ds),
                min(100.0, 100.0 * got / expected) if expected else None,
                alarms_of(area, None, "stale"),
                alarms_of(area, None, "offline"),
                alarms_of(area, None, "invalid"),
                sum(d["dead_letters"] for d in ds),
            )
        )
    reasons = rows(
        conn,
        """
        SELECT l.reason, coalesce(l.device_code, '') AS device, count(*) AS n FROM dead_letter l
        WHERE l.site_code = %(code)s AND l.received_at >= %(since)s AND l.received_at < %(until)s
          AND (l.device_code IS NULL OR l.device_code IN (SELECT d.code FROM device d JOIN area a ON a.id = d.area_id
                                                          WHERE d.site_id = %(site)s AND a.code = ANY(%(areas)s)))
        GROUP BY 1, 2 ORDER BY n DESC, 1, 2""",
        p,
    )
    dead = Table(
        "dead_letters",
        tr(lang, "拒收消息（按原因）", "Rejected messages by reason"),
        [
            Column("reason", tr(lang, "原因", "Reason")),
            Column("device", tr(lang, "设备", "Device")),
            Column("count", tr(lang, "条数", "Messages"), ColType.INT),
        ],
        [(r["reason"], r["device"], r["n"]) for r in reasons],
    )
    doc.sections.append(
        Section(
            tr(lang, "按区域汇总", "By area"),
            [
                tr(
                    lang,
                    f"{len(devices)} 台设备，当前离线 {sum(d['status'] == 'offline' for d in devices)} 台。",
                    f"{len(devices)} devices, {sum(d['status'] == 'offline' for d in devices)} offline now.",
                )
            ],
            [per_area],
            [
                Chart(
                    tr(lang, "各区域数据完整率", "Data completeness by area"), "areas", "area", ("completeness",), "bar"
                )
            ]
            if per_area.rows
            else [],
        )
    )
    doc.sections.append(Section(tr(lang, "设备明细", "Devices"), [], [per_device]))
    doc.sections.append(Section(tr(lang, "拒收消息", "Rejected messages"), [], [dead]))
    doc.notes.append(
        tr(
            lang,
            "应有读数 = 测点数 × 报告期秒数 ÷ 上报周期；完整率不超过 100%。",
            "Expected readings = points × seconds in the period ÷ the device's interval; completeness "
            "is capped at 100 %.",
        )
    )
    doc.sources += [
        tr(
            lang,
            "读数 (reading_1h 小时汇总与 reading)、设备状态 (device_status_event)、"
            "拒收消息 (dead_letter)、健康规则报警",
            "Readings (the hourly rollup reading_1h and raw readings), device status events, dead letters, "
            "and the health rules' alarms",
        )
    ]
    return doc
