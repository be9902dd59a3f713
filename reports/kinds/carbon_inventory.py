"""The carbon inventory of a month or a year, shaped after GB/T 32150 and ISO 14064-1: boundary, results by scope
(scope 2 location- and market-based side by side), results by area, activity data with the factor row, value and
version behind every line, the factors with their publication references, contractual instruments, offsets beside
(never netted), and notes on uncertainty. A closed period shows its frozen revision; an open one is computed now."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg

from carbon import service
from carbon.service import CarbonError
from carbon.sources import SourceUnavailable, energy_ledger_source
from reports.context import ReportError, load_site, new_document
from reports.model import ColType, Column, Document, Params, Section, Table, tr

#: where activity data come from (the energy ledgers); tests and the benchmark put their own source here
SOURCE = energy_ledger_source


def _period(params: Params, tz: str) -> str:
    zone = ZoneInfo(tz)
    since, until = params.since.astimezone(zone), params.until.astimezone(zone)
    midnight = datetime.min.time()
    if since.time() != midnight or until.time() != midnight or since.day != 1 or until.day != 1:
        raise ReportError("a carbon inventory covers a whole month or a whole year")
    months = (until.year * 12 + until.month) - (since.year * 12 + since.month)
    if months == 1:
        return f"{since:%Y-%m}"
    if months == 12 and since.month == 1:
        return f"{since:%Y}"
    raise ReportError("a carbon inventory covers a whole month or a whole year")


def build(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    period = _period(params, site.timezone)
    try:
        led = service.ledger(conn=conn, site=site.code, period=period, source=SOURCE)
    except (CarbonError, SourceUnavailable) as exc:
        raise ReportError(str(exc)) from None
    doc = new_document(
        conn,
        site,
        params,
        kind="carbon_inventory",
        title=tr(lang, "温室气体排放清单", "Greenhouse-gas inventory"),
        areas=sorted(site.areas),
        now=now,
    )
    t = led["totals"]
    status = (
        tr(lang, f"已关账，第 {led['revision']} 版", f"closed, revision {led['revision']}")
        if led["closed"]
        else tr(lang, "未关账（按当前因子计算）", "open (computed with the current factors)")
    )
    doc.sections.append(
        Section(
            tr(lang, "1 报告边界", "1 Boundary"),
            paragraphs=[
                tr(
                    lang,
                    f"组织边界：{site.plant(lang)}（{site.code}）全部生产与辅助设施；运营控制法。",
                    f"Organisational boundary: {site.plant(lang)} ({site.code}), "
                    "all production and auxiliary facilities; operational control.",
                ),
                tr(
                    lang,
                    "核算方法：GB/T 32150-2015 / ISO 14064-1:2018；"
                    "范围2 按 GHG Protocol 双重报告（基于位置与基于市场）。",
                    "Method: GB/T 32150-2015 / ISO 14064-1:2018; scope 2 reported both location- and market-based "
                    "(GHG Protocol Scope 2 Guidance).",
                ),
                tr(
                    lang,
                    f"排放因子库版本 {led['factor_version']}；状态：{status}。",
                    f"Factor library version {led['factor_version']}; status: {status}.",
                ),
            ],
        )
    )
    summary = Table(
        "summary",
        tr(lang, "按范围汇总", "By scope"),
        [
            Column("item", tr(lang, "项目", "Item")),
            Column("location", tr(lang, "基于位置", "Location-based"), ColType.FLOAT, "tCO2e", 3),
            Column("market", tr(lang, "基于市场", "Market-based"), ColType.FLOAT, "tCO2e", 3),
        ],
        [
            (tr(lang, "范围1 直接排放", "Scope 1 direct"), t["scope1_kg"] / 1000, t["scope1_kg"] / 1000),
            (
                tr(lang, "范围2 外购能源间接排放", "Scope 2 purchased energy"),
                t["scope2_location_kg"] / 1000,
                t["scope2_market_kg"] / 1000,
            ),
            (tr(lang, "合计（毛排放）", "Total (gross)"), t["total_location_kg"] / 1000, t["total_market_kg"] / 1000),
        ],
    )
    doc.sections.append(Section(tr(lang, "2 排放结果", "2 Results"), tables=[summary]))
    areas = Table(
        "by_area",
        tr(lang, "按区域/工序", "By area"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("kwh", tr(lang, "电力", "Electricity"), ColType.FLOAT, "kWh", 0),
            Column("s1", tr(lang, "范围1", "Scope 1"), ColType.FLOAT, "tCO2e", 3),
            Column("s2l", tr(lang, "范围2 位置", "Scope 2 location"), ColType.FLOAT, "tCO2e", 3),
            Column("s2m", tr(lang, "范围2 市场", "Scope 2 market"), ColType.FLOAT, "tCO2e", 3),
        ],
        [
            (
                a["area"] or tr(lang, "未分摊", "not allocated"),
                a.get("electricity_kwh", 0.0),
                a["scope1_kg"] / 1000,
                a["scope2_location_kg"] / 1000,
                a["scope2_market_kg"] / 1000,
            )
            for a in led["by_area"]
        ],
    )
    doc.sections[-1].tables.append(areas)
    if led.get("by_process"):
        doc.sections[-1].tables.append(
            Table(
                "by_process",
                tr(lang, "工序碳强度", "Intensity by process"),
                [
                    Column("process", tr(lang, "工序", "Process")),
                    Column("co2e", "CO2e", ColType.FLOAT, "kg", 1),
                    Column("output", tr(lang, "合格产出", "Good output"), ColType.FLOAT, None, 1),
                    Column("unit", tr(lang, "单位", "Unit")),
                    Column("kg_per_unit", tr(lang, "单位产出排放", "Per unit"), ColType.FLOAT, "kgCO2e", 4),
                ],
                [(p["name"], p["co2e_kg"], p["output"], p["unit"], p["kg_per_unit"]) for p in led["by_process"]],
            )
        )
    lines = Table(
        "activity",
        tr(lang, "活动数据与排放因子", "Activity data and factors"),
        [
            Column("area", tr(lang, "区域", "Area")),
            Column("scope", tr(lang, "范围", "Scope")),
            Column("category", tr(lang, "类别", "Category")),
            Column("source", tr(lang, "排放源", "Source")),
            Column("quantity", tr(lang, "活动数据", "Activity"), ColType.FLOAT, None, 3),
            Column("unit", tr(lang, "单位", "Unit")),
            Column("factor", tr(lang, "因子行", "Factor row")),
            Column("value", tr(lang, "因子值", "Factor"), ColType.FLOAT, None, 6),
            Column("factor_unit", tr(lang, "因子单位", "Factor unit")),
            Column("co2e", tr(lang, "排放（位置）", "Emissions (location)"), ColType.FLOAT, "kgCO2e", 2),
            Column("co2e_m", tr(lang, "排放（市场）", "Emissions (market)"), ColType.FLOAT, "kgCO2e", 2),
        ],
        [
            (
                x["area"] or "—",
                x["scope"],
                x["category"],
                x["source"],
                x["quantity"],
                x["unit"],
                x["factor_key"],
                x["factor_value"],
                x["factor_unit"],
                x["co2e_kg"],
                x["co2e_market_kg"],
            )
            for x in led["lines"]
        ],
    )
    factors = Table(
        "factors",
        tr(lang, "排放因子及来源", "Factors and references"),
        [
            Column("row", tr(lang, "因子行", "Factor row")),
            Column("value", tr(lang, "数值", "Value"), ColType.FLOAT, None, 6),
            Column("unit", tr(lang, "单位", "Unit")),
            Column("version", tr(lang, "版本", "Version")),
            Column("ref", tr(lang, "发布来源", "Publication")),
        ],
        [(k, f["value"], f["unit"], f["version"], f["publication_ref"]) for k, f in sorted(led["factors"].items())],
    )
    doc.sections.append(Section(tr(lang, "3 活动数据与因子", "3 Activity data and factors"), tables=[lines, factors]))
    instruments = Table(
        "instruments",
        tr(lang, "绿证与绿电合同", "Certificates and green-power contracts"),
        [
            Column("kind", tr(lang, "类型", "Kind")),
            Column("reference", tr(lang, "编号", "Reference")),
            Column("serials", tr(lang, "序列号", "Serials")),
            Column("vintage", tr(lang, "年份", "Vintage"), ColType.INT),
            Column("claimed", tr(lang, "本期申领", "Claimed"), ColType.FLOAT, "MWh", 3),
            Column("used", tr(lang, "本期使用", "Used"), ColType.FLOAT, "MWh", 3),
            Column("eligible", tr(lang, "符合条件", "Eligible"), ColType.BOOL),
        ],
        [
            (i["kind"], i["reference"], i["serials"], i["vintage_year"], i["mwh_claimed"], i["mwh_used"], i["eligible"])
            for i in led["instruments"]
        ],
    )
    offsets = Table(
        "offsets",
        tr(lang, "抵销（单列，不从毛排放中扣减）", "Offsets (beside gross, never netted)"),
        [
            Column("scheme", tr(lang, "机制", "Scheme")),
            Column("project", tr(lang, "项目", "Project")),
            Column("serials", tr(lang, "序列号", "Serials")),
            Column("t", "tCO2e", ColType.FLOAT, None, 3),
            Column("ref", tr(lang, "注销凭证", "Retirement record")),
        ],
        [
            (
                o["scheme"],
                o["project"],
                f"{o['serial_prefix']}{o['serial_first']}..{o['serial_prefix']}{o['serial_last']}",
                o["tco2e"],
                o["retirement_ref"],
            )
            for o in led["offsets"]["credits"]
        ],
    )
    doc.sections.append(
        Section(tr(lang, "4 绿色电力与抵销", "4 Green power and offsets"), tables=[instruments, offsets])
    )
    doc.sections.append(
        Section(
            tr(lang, "5 不确定性说明", "5 Uncertainty"),
            paragraphs=[
                tr(
                    lang,
                    "电网因子为年度平均值，按核算年份减滞后年数选取最新发布年份；估算和缺失的计量区间计入活动数据。",
                    "Grid factors are annual averages, chosen as the latest published data year "
                    "at most the accounting year minus the lag; estimated and gap-filled meter intervals are "
                    "part of the activity data.",
                ),
                tr(
                    lang,
                    "残差因子采用全国“扣除市场化交易非化石能源电量”的平均排放因子，其是否构成正式残差因子尚未确认。",
                    "The residual factor is the national average excluding market-traded non-fossil power; whether it "
                    "formally qualifies as a residual mix is not confirmed.",
                ),
                tr(
                    lang,
                    "蒸汽按设定的 GJ/t 换算；制冷剂按称重补充量乘以 GWP。",
                    "Steam is converted at the configured GJ/t; refrigerants are the recharged mass times GWP.",
                ),
            ]
            + [str(n) for n in led.get("notes", [])],
        )
    )
    doc.sources.append(tr(lang, "能源台账（energy.ledger）与碳模块录入数据", "Energy ledgers and carbon entries"))
    return doc
