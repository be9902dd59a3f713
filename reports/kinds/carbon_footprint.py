"""The product carbon footprint declaration of one batch, in the shape (EU) 2023/1542 Art. 7 asks for: the
declared unit kgCO2e per kWh of rated capacity, the figures per cell and per pack, the share by life-cycle stage
(this plant covers raw material acquisition as entered factors and main product production as measured; distribution
and end of life are outside its boundary), by process and material, and the hotspots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from carbon import service
from carbon.service import CarbonError
from carbon.sources import ActivitySource, SourceUnavailable
from reports.context import ReportError, load_site
from reports.kinds import carbon_inventory
from reports.model import ColType, Column, Document, Section, Table, tr


def build(
    conn: psycopg.Connection,
    *,
    site: str,
    batch: str,
    basis: str,
    lang: str,
    now: datetime,
    source: ActivitySource | None = None,
) -> tuple[Document, dict[str, Any]]:
    """The declaration document and the footprint it shows (activity from ``source``, default the inventory's)."""
    s = load_site(conn, site)
    try:
        fp = service.batch_footprint(
            conn=conn, site=site, batch=batch, source=source or carbon_inventory.SOURCE, basis=basis
        )
    except (CarbonError, SourceUnavailable) as exc:
        raise ReportError(str(exc)) from None
    doc = Document(
        kind="carbon_footprint",
        title=tr(lang, "产品碳足迹声明", "Product carbon footprint declaration"),
        lang=lang,
        plant=s.plant(lang),
        site=s.code,
        timezone=s.timezone,
        period=f"{fp['started_at']} — {fp['ended_at']}",
        generated_at=now,
        data_as_of=None,
        params={"site": site, "batch": batch, "basis": basis, "lang": lang},
    )
    doc.sections.append(
        Section(
            tr(lang, "1 声明", "1 Declaration"),
            paragraphs=[
                tr(
                    lang,
                    f"产品：{fp['product']}；批次：{fp['batch']}；生产厂：{s.plant(lang)}。",
                    f"Product: {fp['product']}; batch: {fp['batch']}; plant: {s.plant(lang)}.",
                ),
                tr(
                    lang,
                    f"碳足迹：{fp['kg_per_kwh']:.2f} kgCO2e/kWh（额定容量，声明单位），"
                    f"每包 {fp['kg_per_pack']:.1f} kg，"
                    f"每电芯 {fp['kg_per_cell']:.2f} kg。",
                    f"Carbon footprint: {fp['kg_per_kwh']:.2f} kgCO2e per kWh of rated capacity (declared unit); "
                    f"{fp['kg_per_pack']:.1f} kg per pack, {fp['kg_per_cell']:.2f} kg per cell.",
                ),
                tr(
                    lang,
                    "系统边界：摇篮到大门（原材料获取与主要产品生产）；电力"
                    f"{'基于市场' if basis == 'market' else '基于位置'}；因子库 {fp['factor_version']}。",
                    f"Boundary: {fp['system_boundary']}; electricity {basis}-based; "
                    f"factor library {fp['factor_version']}.",
                ),
            ],
        )
    )
    stages = Table(
        "stages",
        tr(lang, "按生命周期阶段", "By life-cycle stage"),
        [
            Column("stage", tr(lang, "阶段", "Stage")),
            Column("kg", tr(lang, "每包", "Per pack"), ColType.FLOAT, "kgCO2e", 2),
            Column("kwh", tr(lang, "每kWh", "Per kWh"), ColType.FLOAT, "kgCO2e/kWh", 3),
        ],
        [
            (
                tr(lang, "原材料获取与预处理", "Raw material acquisition and pre-processing"),
                fp["life_cycle_stages_per_pack"]["raw_material_acquisition"],
                fp["life_cycle_stages_per_pack"]["raw_material_acquisition"] / fp["pack_kwh"],
            ),
            (
                tr(lang, "主要产品生产", "Main product production"),
                fp["life_cycle_stages_per_pack"]["main_product_production"],
                fp["life_cycle_stages_per_pack"]["main_product_production"] / fp["pack_kwh"],
            ),
            (tr(lang, "分销（不在边界内）", "Distribution (outside the boundary)"), None, None),
            (tr(lang, "报废与回收（不在边界内）", "End of life and recycling (outside the boundary)"), None, None),
        ],
    )
    items = Table(
        "items",
        tr(lang, "按工序与材料", "By process and material"),
        [
            Column("item", tr(lang, "项目", "Item")),
            Column("kg", tr(lang, "每包", "Per pack"), ColType.FLOAT, "kgCO2e", 3),
            Column("share", tr(lang, "占比", "Share"), ColType.FLOAT, "%", 1),
        ],
        [
            (k, v, 100 * v / fp["kg_per_pack"] if fp["kg_per_pack"] else None)
            for k, v in sorted(fp["by_item_per_pack"].items(), key=lambda kv: -kv[1])
        ],
    )
    hot = Table(
        "hotspots",
        tr(lang, "热点排序", "Hotspots"),
        [
            Column("rank", "#", ColType.INT),
            Column("item", tr(lang, "项目", "Item")),
            Column("share", tr(lang, "占比", "Share"), ColType.FLOAT, "%", 1),
        ],
        [(i + 1, h["item"], 100 * h["share"]) for i, h in enumerate(fp["hotspots"])],
    )
    doc.sections.append(Section(tr(lang, "2 结果", "2 Results"), tables=[stages, items, hot]))
    doc.notes.append(
        tr(
            lang,
            "材料因子为用户录入的供应商或默认摇篮到大门因子；(EU) 2023/1542 的计算方法授权法案尚未最终确定。",
            "Material factors are the supplier or default cradle-to-gate factors entered by the user; the "
            "methodology delegated act of (EU) 2023/1542 is not final.",
        )
    )
    return doc, fp
