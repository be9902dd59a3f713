"""Hazardous-waste reports of a site: ``hazwaste_month`` (ledger movements by waste code, stock at the end of the
period by store with its fill, the transfer manifests and their states, overdue manifests and the hazardous-waste
alarms of the period) and ``hazwaste_year`` (the annual declaration figures by waste code, month by month
generation and transfers). Every figure is hazwaste's own (``hazwaste.exports.monthly_declaration``,
``hazwaste.exchange.manifest_rows``, ``hazwaste.manifests.overdue``), so the report and the national-system export
never disagree. The document covers the site's hazardous-waste areas (what regulators may read)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from hazwaste import exchange, exports, manifests
from hazwaste.compliance import TITLES
from hazwaste.manifest_pdf import STATES
from hazwaste.workdays import WorkCalendar
from reports.context import ReportError, Site, load_site, new_document, rows
from reports.model import Chart, ColType, Column, Document, Params, Section, Table, tr

HAZWASTE_PROCESS = "hazwaste_store"


def _areas(conn: psycopg.Connection, site: Site) -> list[str]:
    """The areas the document covers: the site's hazardous-waste stores (and the areas of its facilities)."""
    facility_areas = {
        r["area"]
        for r in rows(conn, "SELECT DISTINCT area FROM hw_facility WHERE site_id = %s AND area IS NOT NULL", (site.id,))
        if r["area"] in site.areas
    }
    stores = {code for code, a in site.areas.items() if a["process_type"] == HAZWASTE_PROCESS}
    areas = sorted(stores or facility_areas)
    if not areas and not rows(conn, "SELECT 1 FROM hw_waste_type WHERE site_id = %s LIMIT 1", (site.id,)):
        raise ReportError(f"site {site.code} keeps no hazardous-waste catalogue")
    return areas


def _movements(lang: str, items: list[dict], key: str = "movements") -> Table:
    kg = "kg"
    return Table(
        key,
        tr(lang, "危险废物收支（按废物代码）", "Movements by waste code"),
        [
            Column("waste_code", tr(lang, "废物代码", "Waste code")),
            Column("category", tr(lang, "类别", "Category")),
            Column("waste_name", tr(lang, "名称", "Name")),
            Column("opening_kg", tr(lang, "期初贮存量", "Opening stock"), ColType.FLOAT, kg, 3),
            Column("generated_kg", tr(lang, "产生量", "Generated"), ColType.FLOAT, kg, 3),
            Column("stored_kg", tr(lang, "入库量", "Into storage"), ColType.FLOAT, kg, 3),
            Column("out_kg", tr(lang, "出库量", "Out of storage"), ColType.FLOAT, kg, 3),
            Column("own_kg", tr(lang, "自行利用处置量", "Used or disposed of on site"), ColType.FLOAT, kg, 3),
            Column("sent_kg", tr(lang, "委外利用处置量", "Sent out"), ColType.FLOAT, kg, 3),
            Column("closing_kg", tr(lang, "期末贮存量", "Closing stock"), ColType.FLOAT, kg, 3),
        ],
        [
            tuple(
                float(i[c]) if c.endswith("_kg") else i[c]
                for c in (
                    "waste_code",
                    "category",
                    "waste_name",
                    "opening_kg",
                    "generated_kg",
                    "stored_kg",
                    "out_kg",
                    "own_kg",
                    "sent_kg",
                    "closing_kg",
                )
            )
            for i in items
        ],
    )


def _manifest_table(lang: str, items: list[dict]) -> Table:
    return Table(
        "manifests",
        tr(lang, "转移联单", "Transfer manifests"),
        [
            Column("number", tr(lang, "联单编号", "Number")),
            Column("waste_code", tr(lang, "废物代码", "Waste code")),
            Column("receiver", tr(lang, "接受人", "Receiver")),
            Column("shipped_at", tr(lang, "转移时间", "Shipped"), ColType.DATETIME),
            Column("shipped_kg", tr(lang, "转移量", "Shipped"), ColType.FLOAT, "kg", 3),
            Column("received_kg", tr(lang, "接收量", "Received"), ColType.FLOAT, "kg", 3),
            Column("discrepancy", tr(lang, "数量差异", "Discrepancy"), ColType.BOOL),
            Column("state", tr(lang, "状态", "State")),
        ],
        [
            (
                m["number"] or "",
                m["waste_code"],
                m["receiver_name"],
                m["shipped_at"],
                m["shipped_kg"],
                m["received_kg"],
                m["discrepancy"] == "是",
                m["state"] if lang != "en" else m["raw_state"],
            )
            for m in items
        ],
    )


def _manifests(conn: psycopg.Connection, site: Site, since: datetime, until: datetime) -> list[dict]:
    items = exchange.manifest_rows(conn=conn, site_id=site.id, start=since, end=until)
    raw = {r["id"]: r["state"] for r in rows(conn, "SELECT id, state FROM hw_manifest WHERE site_id = %s", (site.id,))}
    for m in items:
        m["raw_state"] = raw.get(m["id"], "")
    return items


def build_month(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    areas = _areas(conn, site)
    until = min(params.until, now)
    doc = new_document(
        conn,
        site,
        params,
        kind="hazwaste_month",
        title=tr(lang, "危险废物管理月报", "Hazardous-waste monthly report"),
        areas=areas,
        now=now,
    )
    items = exports.monthly_declaration(conn=conn, site_id=site.id, start=params.since, end=until)
    movements = _movements(lang, items)
    stock = rows(
        conn,
        """SELECT f.code, f.name, f.kind, f.capacity_kg,
                  coalesce(sum(CASE WHEN l.stage = 'storage_in' THEN l.quantity_kg
                                    WHEN l.stage = 'storage_out' THEN -l.quantity_kg ELSE 0 END), 0) AS stock_kg
           FROM hw_facility f
           LEFT JOIN hw_ledger_current l ON l.facility_id = f.id AND l.at < %(until)s
           WHERE f.site_id = %(site)s AND f.kind IN ('warehouse', 'yard', 'pit', 'tank_farm', 'storage_point')
           GROUP BY f.id ORDER BY f.code""",
        {"site": site.id, "until": until},
    )
    stores = Table(
        "stock",
        tr(lang, "期末贮存（按贮存设施）", "Stock at the end of the period by store"),
        [
            Column("facility", tr(lang, "贮存设施编码", "Store")),
            Column("name", tr(lang, "名称", "Name")),
            Column("stock_kg", tr(lang, "贮存量", "Stock"), ColType.FLOAT, "kg", 3),
            Column("capacity_kg", tr(lang, "容量", "Capacity"), ColType.FLOAT, "kg", 0),
            Column("fill", tr(lang, "占用率", "Fill"), ColType.FLOAT, "%", 1),
        ],
        [
            (
                s["code"],
                s["name"],
                round(float(s["stock_kg"]), 3),
                s["capacity_kg"],
                100.0 * float(s["stock_kg"]) / s["capacity_kg"] if s["capacity_kg"] else None,
            )
            for s in stock
        ],
    )
    transfer = _manifest_table(lang, _manifests(conn, site, params.since, until))
    late = [
        o
        for o in manifests.overdue(conn=conn, now=until, calendar=WorkCalendar())
        if o["manifest"]["site_id"] == site.id
    ]
    overdue = Table(
        "overdue",
        tr(lang, "超期未办结的联单", "Overdue manifests"),
        [
            Column("number", tr(lang, "联单编号", "Number")),
            Column("deadline", tr(lang, "期限", "Deadline")),
            Column("due", tr(lang, "到期时间", "Due"), ColType.DATETIME),
            Column("state", tr(lang, "状态", "State")),
        ],
        [
            (
                o["manifest"]["number"] or f"#{o['manifest']['id']}",
                o["deadline"],
                o["due"],
                tr(lang, STATES.get(o["manifest"]["state"], ""), o["manifest"]["state"]),
            )
            for o in sorted(late, key=lambda o: o["due"])
        ],
    )
    alarms = Table(
        "alarms",
        tr(lang, "危险废物报警", "Hazardous-waste alarms"),
        [
            Column("raised_at", tr(lang, "报警时间", "Raised"), ColType.DATETIME),
            Column("rule", tr(lang, "类型", "Kind")),
            Column("subject", tr(lang, "对象", "Subject")),
            Column("message", tr(lang, "内容", "Message")),
            Column("state", tr(lang, "当前状态", "State now")),
        ],
        [
            (
                a["raised_at"],
                tr(lang, *TITLES.get(a["rule"], (a["rule"], a["rule"]))),
                a["device"] or "",
                a["message"],
                a["state"],
            )
            for a in rows(
                conn,
                """SELECT coalesce(raised_at, opened_at) AS raised_at, rule, device, message, state FROM alarm
                   WHERE site = %(code)s AND rule LIKE 'hazwaste.%%' AND NOT drill
                     AND coalesce(raised_at, opened_at) >= %(since)s AND coalesce(raised_at, opened_at) < %(until)s
                   ORDER BY 1, id""",
                {"code": site.code, "since": params.since, "until": until},
            )
        ],
    )
    generated = sum(r[4] for r in movements.rows)
    sent = sum(r[8] for r in movements.rows)
    doc.sections.append(
        Section(
            tr(lang, "收支", "Movements"),
            [
                tr(
                    lang,
                    f"本期产生 {generated:.3f} kg，委外利用处置 {sent:.3f} kg，转移联单 {len(transfer.rows)} 份。",
                    f"Generated {generated:.3f} kg, sent out {sent:.3f} kg, {len(transfer.rows)} manifests.",
                )
            ],
            [movements],
        )
    )
    doc.sections.append(
        Section(
            tr(lang, "贮存", "Storage"),
            [],
            [stores],
            [Chart(tr(lang, "贮存设施占用率", "Store fill"), "stock", "facility", ("fill",), "bar")]
            if stores.rows
            else [],
        )
    )
    doc.sections.append(Section(tr(lang, "转移", "Transfers"), [], [transfer, overdue]))
    doc.sections.append(Section(tr(lang, "报警", "Alarms"), [], [alarms]))
    doc.notes.append(
        tr(
            lang,
            "数量为 HJ 1259-2022 台账的现行记录（更正后）；超期：接受人 5 个工作日内未确认接收，"
            "纸质联单 10 个工作日内未补录。",
            "Quantities are the HJ 1259-2022 ledger's current records (after corrections); overdue: receipt not "
            "confirmed within 5 working days, paper manifest not back-filled within 10 working days.",
        )
    )
    doc.sources.append(tr(lang, "危险废物台账、转移联单、报警记录", "Hazardous-waste ledger, manifests, alarms"))
    return doc


def build_year(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    areas = _areas(conn, site)
    until = min(params.until, now)
    doc = new_document(
        conn,
        site,
        params,
        kind="hazwaste_year",
        title=tr(lang, "危险废物年度申报数据", "Hazardous-waste annual declaration figures"),
        areas=areas,
        now=now,
    )
    items = exports.monthly_declaration(conn=conn, site_id=site.id, start=params.since, end=until)
    declaration = _movements(lang, items, "declaration")
    declaration.title = tr(lang, "年度申报（按废物代码）", "Annual declaration by waste code")
    monthly = rows(
        conn,
        """SELECT to_char(l.at AT TIME ZONE %(tz)s, 'YYYY-MM') AS month,
                  coalesce(sum(l.quantity_kg) FILTER (WHERE l.stage = 'generation'), 0) AS generated,
                  coalesce(sum(l.quantity_kg) FILTER (WHERE l.stage LIKE 'sent%%' OR l.stage LIKE 'export%%'), 0)
                      AS sent,
                  coalesce(sum(l.quantity_kg) FILTER (WHERE l.stage LIKE 'own%%'), 0) AS own
           FROM hw_ledger_current l WHERE l.site_id = %(site)s AND l.at >= %(since)s AND l.at < %(until)s
           GROUP BY 1 ORDER BY 1""",
        {"site": site.id, "since": params.since, "until": until, "tz": site.timezone},
    )
    months = Table(
        "months",
        tr(lang, "逐月产生与利用处置", "Month by month"),
        [
            Column("month", tr(lang, "月份", "Month")),
            Column("generated", tr(lang, "产生量", "Generated"), ColType.FLOAT, "kg", 3),
            Column("own", tr(lang, "自行利用处置量", "Used or disposed of on site"), ColType.FLOAT, "kg", 3),
            Column("sent", tr(lang, "委外利用处置量", "Sent out"), ColType.FLOAT, "kg", 3),
        ],
        [(m["month"], float(m["generated"]), float(m["own"]), float(m["sent"])) for m in monthly],
    )
    transfer = _manifest_table(lang, _manifests(conn, site, params.since, until))
    doc.sections.append(Section(tr(lang, "年度申报数据", "Declaration figures"), [], [declaration]))
    doc.sections.append(
        Section(
            tr(lang, "逐月", "By month"),
            [],
            [months],
            [Chart(tr(lang, "逐月产生量", "Generated by month"), "months", "month", ("generated", "sent"), "bar")]
            if months.rows
            else [],
        )
    )
    doc.sections.append(Section(tr(lang, "转移联单", "Transfer manifests"), [], [transfer]))
    doc.notes.append(
        tr(
            lang,
            "年度申报截止于次年 3 月 31 日（HJ 1259-2022）；数字与国家系统导出文件同源。",
            "The annual declaration is due by 31 March of the next year (HJ 1259-2022); the figures are those of "
            "the national-system export.",
        )
    )
    doc.sources.append(tr(lang, "危险废物台账、转移联单", "Hazardous-waste ledger, manifests"))
    return doc
