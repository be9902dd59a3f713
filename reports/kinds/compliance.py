"""The daily and monthly compliance reports (issue 15 item 6): per outfall and pollutant the limits (standard or
permit, and version) and their averaging, the period means (hourly in the day report, daily in the month report)
with valid-data counts, the exceedances the compliance job judged (time, value, limit, multiple), the invalid-data
periods (HJ 212 flags C, M, D ... and gaps, with durations), the -Cou totals against the permitted annual totals
(month and year to date), the open compliance and treatment-plant alarms, and the rectification notes: for each
exceedance or invalid period the acknowledgement comment or note of its alarm, else an explicit "note pending"
line, with advice by pollutant and cause class from ``compliance/rectification.yaml``.

The means are computed here with the compliance package's own averaging (valid data only, flow-weighted, O2
corrected); the exceedances are the job's stored verdicts (``compliance_result``), the regulator's judgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from compliance.advice import load_advice
from compliance.averaging import PeriodMean, Sample, annual_check, correct_series, is_valid, means
from compliance.config import OutfallConfig
from compliance.limits import Averaging, Limit, effective_limits, load_standards
from compliance.overview import visible_outfalls
from compliance.service import fetch_samples, site_points, total_since
from reports.context import ReportError, areas_of, load_site, new_document, rows
from reports.model import Chart, ColType, Column, Document, Params, Section, Table, tr

#: Alarms listed beside the emissions: the compliance job's, and every alarm of an outfall's areas (treatment).
RULE_PREFIX = "compliance.%"
EPS = timedelta(microseconds=1)
#: HJ 212-2017 Table 8 data flags, as the report names them
FLAG_NAMES = {
    "F": ("停运", "stopped"),
    "M": ("维护", "maintenance"),
    "S": ("手工输入", "manual input"),
    "D": ("故障", "fault"),
    "C": ("校准", "calibration"),
    "T": ("超测上限", "over range"),
    "B": ("通讯异常", "communication fault"),
    None: ("数据缺失", "missing data"),
}
AVERAGING_NAMES = {
    "single": ("单次值", "single reading"),
    "hour": ("小时均值", "hourly mean"),
    "day": ("日均值", "daily mean"),
}


def build_day(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    return _build(conn, params, now, "day")


def build_month(conn: psycopg.Connection, params: Params, now: datetime) -> Document:
    return _build(conn, params, now, "month")


def _check_period(params: Params, tz: str, span: str) -> None:
    zone = ZoneInfo(tz)
    since, until = params.since.astimezone(zone), params.until.astimezone(zone)
    midnight = datetime.min.time()
    if since.time() != midnight or until.time() != midnight:
        raise ReportError(f"a compliance {span} report starts and ends at local midnight")
    if span == "day" and until.date() != since.date() + timedelta(days=1):
        raise ReportError("a daily compliance report covers one day")
    if span == "month" and (
        since.day != 1 or until.day != 1 or (until.year * 12 + until.month) - (since.year * 12 + since.month) != 1
    ):
        raise ReportError("a monthly compliance report covers one calendar month")


@dataclass(frozen=True, slots=True)
class InvalidRun:
    flag: str | None  # None: missing data
    start: datetime
    end: datetime  # exclusive
    samples: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def invalid_runs(samples: list[Sample], interval_s: float, start: datetime, end: datetime) -> list[InvalidRun]:
    """Runs of consecutive invalid samples with one flag in [start, end), and missing data: gaps of more than 1.5
    intervals between samples, and at least one interval without a sample after ``start`` or before ``end``."""
    step = timedelta(seconds=interval_s)
    out: list[InvalidRun] = []
    run: list[Sample] = []
    if not samples:
        return [InvalidRun(None, start, end, 0)] if end - start >= step else []
    if samples[0].ts - start >= step:
        out.append(InvalidRun(None, start, samples[0].ts, 0))
    if end - (samples[-1].ts + step) >= step:
        out.append(InvalidRun(None, samples[-1].ts + step, end, 0))

    def close() -> None:
        if run:
            out.append(InvalidRun(run[0].flag or "D", run[0].ts, run[-1].ts + step, len(run)))
            run.clear()

    previous: Sample | None = None
    for sample in samples:
        if previous is not None and sample.ts - previous.ts > step * 1.5:
            close()
            out.append(InvalidRun(None, previous.ts + step, sample.ts, 0))
        if is_valid(sample):
            close()
        elif run and (run[-1].flag != sample.flag or sample.ts - run[-1].ts > step * 1.5):
            close()
            run.append(sample)
        else:
            run.append(sample)
        previous = sample
    close()
    return sorted(out, key=lambda r: r.start)


def _source_text(source: str, outfall: OutfallConfig) -> str:
    return f"{source} {outfall.permit.number}" if source == "permit" and outfall.permit else source


def _bounds(limit_min: float | None, limit_max: float | None) -> str:
    if limit_min is not None and limit_max is not None:
        return f"{limit_min:g}–{limit_max:g}"
    return f"≤ {limit_max:g}" if limit_max is not None else f"≥ {limit_min:g}"


def _alarm_notes(
    conn: psycopg.Connection, *, site: str, kind: str, pollutant: str, point: str, start: datetime, end: datetime
) -> tuple[int | None, list[str]]:
    """The alarm raised for this exceedance or invalid period (its first raise in [start, end)) and its notes:
    acknowledgement comments and comments, oldest first."""
    device, key = point.split("/")
    found = rows(
        conn,
        """SELECT e.alarm_id FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
           WHERE e.kind = 'raise' AND e.rule LIKE %s AND a.site = %s AND a.device = %s AND a.point = %s
             AND e.at >= %s AND e.at < %s ORDER BY e.at LIMIT 1""",
        (f"compliance.{kind}.{pollutant}.%", site, device, key, start, end),
    )
    if not found:
        return None, []
    alarm_id = found[0]["alarm_id"]
    notes = rows(
        conn,
        """SELECT actor, cause FROM alarm_event WHERE alarm_id = %s AND kind IN ('ack', 'comment')
             AND coalesce(btrim(cause), '') <> '' ORDER BY at, id""",
        (alarm_id,),
    )
    return alarm_id, [f"{n['cause']} ({n['actor']})" for n in notes]


def _build(conn: psycopg.Connection, params: Params, now: datetime, span: str) -> Document:
    lang = params.lang
    site = load_site(conn, params.site)
    _check_period(params, site.timezone, span)
    asked = areas_of(site, params)
    scope = {f"{site.code}/{a}" for a in asked} if params.areas else None
    outfalls = visible_outfalls(conn, site.code, scope)
    covered = sorted({a for _, found in outfalls for a in found}) or asked
    daily = span == "day"
    doc = new_document(
        conn,
        site,
        params,
        kind="compliance_day" if daily else "compliance_month",
        title=tr(lang, "环保合规日报", "Daily compliance report")
        if daily
        else tr(lang, "环保合规月报", "Monthly compliance report"),
        areas=covered,
        now=now,
    )
    tz = ZoneInfo(site.timezone)
    bucket = "hour" if daily else "day"
    bucket_avg = Averaging.HOUR if daily else Averaging.DAY
    last_day: date = (params.until - EPS).astimezone(tz).date()
    standards = load_standards()
    advice = load_advice()
    _tz, points, _device_areas = site_points(conn=conn, site=site.code)
    pending = tr(lang, "整改说明待填写", "rectification note pending")

    def name(code: str, names: dict[str, str]) -> str:
        return f"{names[code]} ({code})" if names.get(code) else code

    def avg_name(averaging: str) -> str:
        zh, en = AVERAGING_NAMES.get(averaging, (averaging, averaging))
        return tr(lang, zh, en)

    limits_table = Table(
        "limits",
        tr(lang, "排放限值", "Discharge limits"),
        [
            Column("outfall", tr(lang, "排放口", "Outfall")),
            Column("pollutant", tr(lang, "污染物", "Pollutant")),
            Column("averaging", tr(lang, "判定方式", "Averaging")),
            Column("min", tr(lang, "下限", "Min"), ColType.FLOAT, None, 3),
            Column("max", tr(lang, "上限", "Max"), ColType.FLOAT, None, 3),
            Column("source", tr(lang, "依据（标准/许可证及版本）", "Source (standard/permit, version)")),
        ],
    )
    exceed_table = Table(
        "exceedances",
        tr(lang, "超标记录", "Exceedances"),
        [
            Column("time", tr(lang, "时段起", "Period start"), ColType.DATETIME),
            Column("outfall", tr(lang, "排放口", "Outfall")),
            Column("pollutant", tr(lang, "污染物", "Pollutant")),
            Column("averaging", tr(lang, "判定方式", "Averaging")),
            Column("value", tr(lang, "数值", "Value"), ColType.FLOAT, None, 3),
            Column("limit", tr(lang, "限值", "Limit")),
            Column("multiple", tr(lang, "超标倍数", "Multiple of limit"), ColType.FLOAT, None, 2),
            Column("source", tr(lang, "依据", "Source")),
        ],
    )
    invalid_table = Table(
        "invalid",
        tr(lang, "无效数据时段", "Invalid-data periods"),
        [
            Column("start", tr(lang, "开始", "Start"), ColType.DATETIME),
            Column("end", tr(lang, "结束", "End"), ColType.DATETIME),
            Column("outfall", tr(lang, "排放口", "Outfall")),
            Column("pollutant", tr(lang, "污染物", "Pollutant")),
            Column("flag", tr(lang, "标记", "Flag")),
            Column("cause", tr(lang, "原因", "Cause")),
            Column("minutes", tr(lang, "时长", "Duration"), ColType.FLOAT, "min", 1),
            Column("samples", tr(lang, "数据条数", "Values"), ColType.INT),
        ],
    )
    totals_table = Table(
        "totals",
        tr(lang, "排放总量与许可年总量", "Totals against permitted annual totals"),
        [
            Column("outfall", tr(lang, "排放口", "Outfall")),
            Column("pollutant", tr(lang, "污染物", "Pollutant")),
            Column("period", tr(lang, "本期", "This period"), ColType.FLOAT, None, 3),
            Column("month", tr(lang, "本月累计", "Month to date"), ColType.FLOAT, None, 3),
            Column("ytd", tr(lang, "本年累计", "Year to date"), ColType.FLOAT, None, 3),
            Column("permitted", tr(lang, "许可年总量", "Permitted per year"), ColType.FLOAT, None, 3),
            Column("used", tr(lang, "已用比例", "Used"), ColType.FLOAT, "%", 1),
            Column("projected", tr(lang, "按进度全年预计", "Projected for the year"), ColType.FLOAT, None, 3),
            Column("exceeded", tr(lang, "已超许可", "Exceeded"), ColType.BOOL),
        ],
        note=tr(
            lang, "单位同 HJ 212 -Cou 数据（kg，废水流量为 m3）。", "Units of the HJ 212 -Cou data (kg; m3 for flow)."
        ),
    )
    rect_table = Table(
        "rectification",
        tr(lang, "整改说明", "Rectification notes"),
        [
            Column("item", tr(lang, "事项", "Item")),
            Column("time", tr(lang, "时间", "Time"), ColType.DATETIME),
            Column("outfall", tr(lang, "排放口", "Outfall")),
            Column("pollutant", tr(lang, "污染物", "Pollutant")),
            Column("detail", tr(lang, "情况", "What happened")),
            Column("alarm", tr(lang, "报警编号", "Alarm"), ColType.INT),
            Column("note", tr(lang, "整改说明", "Rectification note")),
            Column("advice", tr(lang, "整改建议", "Advice")),
        ],
    )
    mean_sections: list[Section] = []
    rectification: list[tuple] = []
    for outfall, _areas in outfalls:
        limits = effective_limits(
            standards,
            standards=outfall.standards,
            medium=outfall.medium,
            regime=outfall.regime,
            at=last_day,
            permit=outfall.permit_limits(last_day),
        )
        names = {p: lim.name for (p, _), (lim, _) in limits.items() if lim.name}
        wanted = [points[p.point] for p in outfall.pollutants if p.point in points]
        extra = [points[r] for r in (outfall.flow_point, outfall.o2_point) if r and r in points]
        samples = fetch_samples(conn=conn, point_ids=wanted + extra, since=params.since - EPS, until=params.until - EPS)
        flow = samples.get(points.get(outfall.flow_point or ""), []) if outfall.flow_point else []
        o2 = samples.get(points.get(outfall.o2_point or ""), []) if outfall.o2_point else []
        section = Section(f"{outfall.name} ({outfall.code})")
        for cfg in outfall.pollutants:
            mine = sorted(
                ((avg, lim, src) for (p, avg), (lim, src) in limits.items() if p == cfg.pollutant),
                key=lambda x: list(Averaging).index(x[0]),
            )
            for avg, lim, src in mine:
                limits_table.rows.append(
                    (
                        outfall.code,
                        name(cfg.pollutant, names),
                        avg_name(avg.value),
                        lim.min,
                        lim.max,
                        _source_text(src, outfall),
                    )
                )
            series = samples.get(points.get(cfg.point), []) if cfg.point in points else []
            if outfall.o2_point and outfall.o2_reference_pct is not None:
                series = correct_series(series, o2, outfall.o2_reference_pct)
            period_means: list[PeriodMean] = means(
                series, period=bucket, tz=tz, min_valid=outfall.min_valid.get(bucket_avg, 1), flow=flow
            )
            shown: Limit | None = next((lim for avg, lim, _ in mine if avg is bucket_avg), None)
            judged = shown is not None
            shown = shown or next((lim for avg, lim, _ in mine if avg is not Averaging.SINGLE), None)
            cols = [
                Column("start", tr(lang, "时段", "Period"), ColType.DATETIME),
                Column("mean", avg_name(bucket), ColType.FLOAT, None, 3),
                Column("n_valid", tr(lang, "有效数据", "Valid values"), ColType.INT),
                Column("n_total", tr(lang, "数据总数", "All values"), ColType.INT),
                Column("valid", tr(lang, "时段有效", "Period valid"), ColType.BOOL),
            ]
            if shown is not None and shown.min is not None:
                cols.append(Column("limit_min", tr(lang, "下限", "Limit min"), ColType.FLOAT, None, 3))
            if shown is not None and shown.max is not None:
                cols.append(Column("limit_max", tr(lang, "上限", "Limit max"), ColType.FLOAT, None, 3))
            cols.append(Column("exceeded", tr(lang, "超标", "Exceeded"), ColType.BOOL))
            table = Table(
                f"mean_{outfall.code}_{cfg.pollutant}",
                f"{outfall.code} · {name(cfg.pollutant, names)} · {avg_name(bucket)}",
                cols,
                note=""
                if judged or shown is None
                else tr(
                    lang,
                    "该污染物限值按其他判定方式，此处限值仅供对照，不作超标判定。",
                    "This pollutant's limit applies to another averaging: shown for comparison, not judged here.",
                ),
            )
            keys = [c.key for c in cols]
            for m in period_means:
                row = {
                    "start": m.start,
                    "mean": m.mean,
                    "n_valid": m.n_valid,
                    "n_total": m.n_total,
                    "valid": m.valid,
                    "limit_min": shown.min if shown else None,
                    "limit_max": shown.max if shown else None,
                    "exceeded": bool(judged and m.valid and m.mean is not None and shown.exceeded(m.mean)),
                }
                table.rows.append(tuple(row[k] for k in keys))
            section.tables.append(table)
            limit_keys = tuple(k for k in ("limit_min", "limit_max") if k in keys)
            section.charts.append(
                Chart(
                    f"{outfall.code} {name(cfg.pollutant, names)}: {avg_name(bucket)}"
                    + tr(lang, "与限值", " against the limit"),
                    table.key,
                    "start",
                    ("mean", *limit_keys),
                )
            )
            # invalid-data periods of this pollutant
            for run in invalid_runs(series, cfg.interval_s, params.since, min(params.until, now)):
                zh, en = FLAG_NAMES.get(run.flag, (run.flag or "", run.flag or ""))
                invalid_table.rows.append(
                    (
                        run.start,
                        run.end,
                        outfall.code,
                        name(cfg.pollutant, names),
                        run.flag or "—",
                        tr(lang, zh, en),
                        run.seconds / 60,
                        run.samples,
                    )
                )
                alarm_id, notes = _alarm_notes(
                    conn,
                    site=site.code,
                    kind="invalid",
                    pollutant=cfg.pollutant,
                    point=cfg.point,
                    start=run.start,
                    end=run.end + timedelta(days=1),
                )
                rectification.append(
                    (
                        tr(lang, "无效数据", "Invalid data"),
                        run.start,
                        outfall.code,
                        name(cfg.pollutant, names),
                        tr(
                            lang,
                            f"{run.flag or '—'} {zh} {run.seconds / 60:.0f} 分钟",
                            f"{run.flag or '—'} {en} {run.seconds / 60:.0f} min",
                        ),
                        alarm_id,
                        "；".join(notes) if notes else pending,
                        advice.for_flag(run.flag, lang),
                    )
                )
        # the job's verdicts: exceedances in the period
        for r in rows(
            conn,
            """SELECT pollutant, averaging, period_start, value, limit_min, limit_max, source FROM compliance_result
               WHERE site_code = %s AND outfall = %s AND exceeded AND period_start >= %s AND period_start < %s
               ORDER BY period_start, pollutant, averaging""",
            (site.code, outfall.code, params.since, min(params.until, now)),  # judged by now, as the overview
        ):
            lim = Limit(pollutant=r["pollutant"], min=r["limit_min"], max=r["limit_max"], averaging=r["averaging"])
            multiple = lim.score(r["value"]) if r["value"] is not None else None
            exceed_table.rows.append(
                (
                    r["period_start"],
                    outfall.code,
                    name(r["pollutant"], names),
                    avg_name(r["averaging"]),
                    r["value"],
                    _bounds(r["limit_min"], r["limit_max"]),
                    multiple,
                    _source_text(r["source"], outfall),
                )
            )
            cfg_point = next((p.point for p in outfall.pollutants if p.pollutant == r["pollutant"]), None)
            length = {"hour": timedelta(hours=1), "day": timedelta(days=1)}.get(r["averaging"], timedelta(0))
            alarm_id, notes = (
                _alarm_notes(
                    conn,
                    site=site.code,
                    kind="exceedance",
                    pollutant=r["pollutant"],
                    point=cfg_point,
                    start=r["period_start"],
                    end=r["period_start"] + length + timedelta(days=1),
                )
                if cfg_point
                else (None, [])
            )
            rectification.append(
                (
                    tr(lang, "超标", "Exceedance"),
                    r["period_start"],
                    outfall.code,
                    name(r["pollutant"], names),
                    f"{avg_name(r['averaging'])} {r['value']:.4g} / {_bounds(r['limit_min'], r['limit_max'])}"
                    + (f" (×{multiple:.2f})" if multiple is not None else ""),
                    alarm_id,
                    "；".join(notes) if notes else pending,
                    advice.for_exceedance(r["pollutant"], lang),
                )
            )
        # totals against the permit
        local_until = (params.until - EPS).astimezone(tz)
        month_start = local_until.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        year_start = month_start.replace(month=1)
        for total in outfall.totals:
            point_id = points.get(total.point)
            if point_id is None:
                continue
            permitted = outfall.permit.annual_totals.get(total.pollutant) if outfall.permit else None

            def summed(since: datetime, pid: int = point_id) -> float:
                return total_since(conn=conn, point_id=pid, since=since - EPS, until=params.until - EPS)

            ytd = summed(year_start)
            check = annual_check(ytd, permitted, through=last_day) if permitted else None
            totals_table.rows.append(
                (
                    outfall.code,
                    name(total.pollutant, names),
                    summed(params.since),
                    summed(month_start),
                    ytd,
                    permitted,
                    check.used * 100 if check else None,
                    check.projected if check else None,
                    check.exceeded if check else None,
                )
            )
        if section.tables:
            mean_sections.append(section)
    rect_table.rows = sorted(rectification, key=lambda r: (r[1], r[2], r[3]))
    # open alarms of the compliance job and of the outfalls' areas (the treatment plant), now
    alarms_table = Table(
        "open_alarms",
        tr(lang, "未关闭的合规与治理设施报警", "Open compliance and treatment-plant alarms"),
        [
            Column("id", tr(lang, "编号", "ID"), ColType.INT),
            Column("raised", tr(lang, "触发时间", "Raised"), ColType.DATETIME),
            Column("area", tr(lang, "区域", "Area")),
            Column("source", tr(lang, "位置", "Where")),
            Column("title", tr(lang, "报警", "Alarm")),
            Column("priority", tr(lang, "优先级", "Priority"), ColType.INT),
            Column("state", tr(lang, "状态", "State")),
            Column("message", tr(lang, "说明", "Message")),
        ],
        note=tr(lang, "生成报告时仍未关闭的报警。", "Alarms still open when the report was generated."),
    )
    outfall_areas = sorted({a for _, found in outfalls for a in found})
    if outfalls:
        for a in rows(
            conn,
            """SELECT id, raised_at, area, device, point, title, title_en, priority, state, message FROM alarm
               WHERE closed_at IS NULL AND site = %s AND (rule LIKE %s OR area = ANY(%s))
               ORDER BY priority DESC, raised_at DESC NULLS LAST LIMIT 500""",
            (site.code, RULE_PREFIX, outfall_areas),
        ):
            if a["area"] is not None and a["area"] not in outfall_areas:
                continue  # a compliance alarm of an area this report does not cover
            alarms_table.rows.append(
                (
                    a["id"],
                    a["raised_at"],
                    site.area_name(a["area"], lang),
                    "/".join(x for x in (a["device"], a["point"]) if x) or "—",
                    (a["title_en"] or a["title"]) if lang == "en" else a["title"],
                    a["priority"],
                    a["state"],
                    a["message"],
                )
            )
    # summary first
    n_exc, n_inv = len(exceed_table.rows), len(invalid_table.rows)
    pending_n = sum(1 for r in rect_table.rows if r[6] == pending)
    status = (
        tr(lang, "达标", "compliant")
        if not n_exc
        else tr(lang, f"超标 {n_exc} 次", f"{n_exc} exceedance{'s' if n_exc != 1 else ''}")
    )
    doc.sections.append(
        Section(
            tr(lang, "1 概况", "1 Summary"),
            paragraphs=[
                tr(
                    lang,
                    f"排放口 {len(outfalls)} 个；本期结论：{status}；无效数据时段 {n_inv} 个；"
                    f"未关闭报警 {len(alarms_table.rows)} 条；整改说明待填写 {pending_n} 项。",
                    f"{len(outfalls)} outfall(s); this period: {status}; {n_inv} invalid-data period(s); "
                    f"{len(alarms_table.rows)} open alarm(s); {pending_n} rectification note(s) pending.",
                ),
                tr(
                    lang,
                    "均值仅以有效数据（标记 N）计算，废水按流量加权，燃烧废气折算至基准含氧量（HJ 212-2017 附录 D）；"
                    "超标判定为合规任务按标准或排污许可证判定方式存储的结果。",
                    "Means use valid data only (flag N), flow-weighted for wastewater and corrected to the reference "
                    "O2 for combustion gas (HJ 212-2017 Appendix D); exceedances are the compliance job's verdicts "
                    "under the averaging of the standard or the permit.",
                ),
            ]
            + ([] if outfalls else [tr(lang, "本范围内未配置排放口。", "No outfall is configured in this scope.")]),
        )
    )
    doc.sections.append(Section(tr(lang, "2 排放限值", "2 Discharge limits"), tables=[limits_table]))
    means_title = tr(lang, "3 小时均值", "3 Hourly means") if daily else tr(lang, "3 日均值", "3 Daily means")
    doc.sections.append(Section(means_title))
    doc.sections.extend(mean_sections)
    doc.sections.append(Section(tr(lang, "4 超标记录", "4 Exceedances"), tables=[exceed_table]))
    doc.sections.append(Section(tr(lang, "5 无效数据时段", "5 Invalid-data periods"), tables=[invalid_table]))
    doc.sections.append(Section(tr(lang, "6 排放总量", "6 Totals"), tables=[totals_table]))
    doc.sections.append(Section(tr(lang, "7 未关闭报警", "7 Open alarms"), tables=[alarms_table]))
    doc.sections.append(
        Section(
            tr(lang, "8 整改说明", "8 Rectification notes"),
            paragraphs=[
                tr(
                    lang,
                    "每项超标或无效数据时段列出其报警的确认说明或备注；无说明者标注“整改说明待填写”。"
                    f"整改建议按污染物与原因类别给出（建议库第 {advice.version} 版）。",
                    "Each exceedance or invalid-data period lists its alarm's acknowledgement comment or notes; "
                    "without one it reads 'rectification note pending'. Advice by pollutant and cause class "
                    f"(advice library version {advice.version}).",
                )
            ],
            tables=[rect_table],
        )
    )
    doc.sources.append(
        tr(
            lang,
            "在线监测数据（HJ 212，含数据标记）、合规判定结果（compliance_result）、报警记录",
            "Online monitoring data (HJ 212, with data flags), compliance results, alarm record",
        )
    )
    return doc
