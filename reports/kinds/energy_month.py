"""The energy report of a period (usually a month), from the energy package's own figures: energy per area and
carrier (quantity, standard coal, cost; the area ledger, so a parent meter's remainder stays in its area), the
site's electricity by time-of-use band with its cost, energy per unit of output per process area against its
peers (GB/T 2589 / ISO 50006 EnPI), and the open energy findings with expected and actual figures (baseline,
profile, balance and demand deviations)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import psycopg

from energy.abnormal_job import current_abnormal
from energy.ledger import LedgerError, by_band, ledger
from energy.per_unit import per_unit
from reports.context import ReportError, areas_of, load_site, new_document
from reports.model import ColType, Column, Document, Params, Section, Table, tr

BAND_NAMES = {"critical": ("尖峰", "Critical peak"), "peak": ("峰", "Peak"), "flat": ("平", "Flat")}
BAND_NAMES |= {"valley": ("谷", "Valley"), "none": ("未定价", "Not priced")}


def build(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    areas = areas_of(site, params)
    whole_site = not params.areas
    try:
        rows = ledger(conn, site=site.code, start=params.since, end=params.until, bucket="day", by="area")
        bands = by_band(conn, site=site.code, start=params.since, end=params.until) if whole_site else []
        units = per_unit(conn, site=site.code, start=params.since, end=params.until)
    except LedgerError as exc:
        raise ReportError(str(exc)) from None
    doc = new_document(
        conn,
        site,
        params,
        kind="energy_month",
        title=tr(lang, "能源月报", "Energy report"),
        areas=areas,
        now=now,
    )
    # per area and carrier, summed over the days of the period
    acc: dict[tuple[str, str], list] = defaultdict(lambda: ["", "", 0.0, None, None])
    for r in rows:
        if r.key not in areas and not (whole_site and r.key not in site.areas):
            continue
        a = acc[(r.key, r.medium)]
        a[0], a[1] = r.name, r.unit
        a[2] += r.quantity
        if r.kgce is not None:
            a[3] = (a[3] or 0.0) + r.kgce
        if r.cost is not None:
            a[4] = (a[4] or 0.0) + r.cost
    by_area = Table(
        "by_area",
        tr(lang, "按区域与能源品种", "By area and carrier"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("name", tr(lang, "名称", "Name")),
            Column("medium", tr(lang, "能源品种", "Carrier")),
            Column("quantity", tr(lang, "用量", "Quantity"), ColType.FLOAT, None, 3),
            Column("unit", tr(lang, "单位", "Unit")),
            Column("kgce", tr(lang, "折标煤", "Standard coal"), ColType.FLOAT, "kgce", 3),
            Column("cost", tr(lang, "费用", "Cost"), ColType.FLOAT, "CNY", 2),
        ],
        [(k[0], v[0], k[1], v[2], v[1], v[3], v[4]) for k, v in sorted(acc.items())],
        note=tr(
            lang,
            "区域账：上级表的剩余部分计入其所在区域，不重复计数；折标煤按当量（发热量）系数。",
            "Area ledger: a parent meter's remainder stays in its own area (no double counting); standard coal "
            "on the calorific basis.",
        ),
    )
    total_kgce = sum(v[3] or 0.0 for v in acc.values())
    total_cost = sum(v[4] or 0.0 for v in acc.values())
    doc.sections.append(
        Section(
            tr(lang, "1 能源消耗", "1 Energy use"),
            paragraphs=[
                tr(
                    lang,
                    f"综合能耗 {total_kgce / 1000:.3f} tce，能源费用 {total_cost:,.2f} 元。",
                    f"Total energy {total_kgce / 1000:.3f} tce; energy cost CNY {total_cost:,.2f}.",
                )
            ],
            tables=[by_area],
        )
    )
    if whole_site:
        band_table = Table(
            "tou",
            tr(lang, "分时电量与电费（进线表）", "Electricity by time-of-use band (incomers)"),
            [
                Column("band", tr(lang, "时段", "Band")),
                Column("quantity", tr(lang, "电量", "Energy"), ColType.FLOAT, "kWh", 1),
                Column("share", tr(lang, "占比", "Share"), ColType.FLOAT, "%", 1),
                Column("cost", tr(lang, "电费", "Cost"), ColType.FLOAT, "CNY", 2),
            ],
        )
        total = sum(b["quantity"] for b in bands)
        for b in bands:
            zh, en = BAND_NAMES[b["band"]]
            share = 100.0 * b["quantity"] / total if total > 0 else None
            band_table.rows.append((tr(lang, zh, en), b["quantity"], share, b["cost"]))
        doc.sections.append(Section(tr(lang, "2 分时电价", "2 Time-of-use"), tables=[band_table]))
    processes = [p for p in units["processes"] if p["area"] in areas]
    doc.sections.append(
        Section(
            tr(lang, "3 单位产品能耗", "3 Energy per unit of output"),
            tables=[
                Table(
                    "per_unit",
                    tr(lang, "工序单位产出能耗", "Energy per unit of output by process area"),
                    [
                        Column("area", tr(lang, "区域", "Area")),
                        Column("process", tr(lang, "工序", "Process")),
                        Column("medium", tr(lang, "能源品种", "Carrier")),
                        Column("quantity", tr(lang, "用量", "Quantity"), ColType.FLOAT, None, 3),
                        Column("output", tr(lang, "产出", "Output"), ColType.FLOAT, None, 1),
                        Column("output_unit", tr(lang, "产出单位", "Output unit")),
                        Column("per_unit", tr(lang, "单耗", "Per unit"), ColType.FLOAT, None, 5),
                        Column("kgce_per_unit", tr(lang, "单位产出折标煤", "kgce per unit"), ColType.FLOAT, "kgce", 5),
                        Column("vs_median_pct", tr(lang, "较同类中位数", "vs peers' median"), ColType.FLOAT, "%", 1),
                    ],
                    [
                        (
                            p["area"],
                            p["process"],
                            p["medium"],
                            p["quantity"],
                            p["output"],
                            p["output_unit"],
                            p["per_unit"],
                            p["kgce_per_unit"],
                            p["vs_median_pct"],
                        )
                        for p in processes
                    ],
                )
            ],
        )
    )
    findings = [f for f in current_abnormal(conn=conn, site=site.code) if whole_site or f["area"] in areas]
    doc.sections.append(
        Section(
            tr(lang, "4 能耗偏差", "4 Deviations"),
            paragraphs=[
                tr(
                    lang,
                    "报告生成时仍未关闭的能源发现（基线、负荷曲线、平衡与需量偏差），含期望值与实际值。",
                    "Energy findings open when the report was made (baseline, profile, balance and demand "
                    "deviations), with their expected and actual figures.",
                )
            ],
            tables=[
                Table(
                    "deviations",
                    tr(lang, "能耗偏差", "Deviations"),
                    [
                        Column("meter", tr(lang, "计量点", "Meter")),
                        Column("area", tr(lang, "区域", "Area")),
                        Column("rule", tr(lang, "规则", "Rule")),
                        Column("expected", tr(lang, "期望值", "Expected"), ColType.FLOAT, None, 3),
                        Column("actual", tr(lang, "实际值", "Actual"), ColType.FLOAT, None, 3),
                        Column("unit", tr(lang, "单位", "Unit")),
                        Column("message", tr(lang, "说明", "Message")),
                    ],
                    [
                        (
                            f["meter"] or f["device"],
                            f["area"],
                            f["rule"],
                            f["expected"],
                            f["actual"],
                            f["unit"],
                            f["message"],
                        )
                        for f in findings
                    ],
                )
            ],
        )
    )
    return doc
