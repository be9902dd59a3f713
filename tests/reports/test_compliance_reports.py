"""The daily and monthly compliance reports against a small known world: HJ 212 readings with flags at one
outfall, judged by the compliance job (alarms raised through the alarm engine, one acknowledged with a comment).
The XLSX is read back and compared with the compliance package's own figures; the PDF's text holds the Chinese
headings, the rectification note and the pending line."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import service as alarms
from alerts.models import Actor
from cli.plantfile import apply_full, load_full
from compliance.__main__ import evaluate_and_alarm
from compliance.advice import load_advice
from compliance.averaging import Sample, is_valid, means
from compliance.job import ComplianceJob
from compliance.service import fetch_samples, results, site_points
from reports.context import ReportError
from reports.kinds.compliance import invalid_runs
from reports.model import Params, day_period, month_period
from reports.registry import KINDS
from reports.render import FORMATS
from tests.compliance.test_job_db import insert, plant_file
from tests.reports import pdftools

pytestmark = pytest.mark.db
TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2025, 6, 10, tzinfo=TZ)
TEN = DAY.replace(hour=10)
NOW = datetime(2025, 7, 1, tzinfo=UTC)
NOTE = "更换生化池曝气头，进水COD已恢复"


@pytest.fixture
def world(tmp_path, database_url: str, site: str) -> tuple[str, str]:
    """COD 10:00-12:00 with a 10-minute calibration block (C), flow-weighted; hourly totals over the permit; the
    job run at 12:05; the COD exceedance alarm acknowledged with a comment."""
    full = load_full(plant_file(tmp_path, site))
    with psycopg.connect(database_url) as conn:
        apply_full(conn=conn, full=full, source="test")
        cod = [(TEN + timedelta(minutes=m), 500.0, "C") for m in range(10)]
        cod += [(TEN + timedelta(minutes=m), 100.0 if m < 30 else 140.0, "N") for m in range(10, 60)]
        cod += [(TEN + timedelta(hours=1, minutes=m), 50.0, "N") for m in range(60)]
        cod += [(TEN + timedelta(hours=2), 50.0, "N")]
        insert(conn, "cod_mg_l", cod)
        insert(conn, "flow_l_s", [(t, 1.0 if t < TEN + timedelta(minutes=30) else 3.0, "N") for t, _, _ in cod])
        insert(
            conn,
            "outflow_1h_m3",
            [(DAY + timedelta(minutes=15 * h), 25.0, "N") for h in range(24)]
            + [(DAY + timedelta(hours=7), 900.0, "D")],
        )
        conn.commit()
        evaluate_and_alarm(conn, ComplianceJob(), now=(TEN + timedelta(hours=2, minutes=5)).astimezone(UTC))
        alarm_id = conn.execute(
            "SELECT id FROM alarm WHERE rule = 'compliance.exceedance.w01018.hour' ORDER BY id LIMIT 1"
        ).fetchone()[0]
        alarms.acknowledge(
            conn=conn,
            alarm_id=alarm_id,
            actor=Actor("user:ehs_manager", "ehs_manager"),
            now=(TEN + timedelta(hours=2, minutes=10)).astimezone(UTC),
            comment=NOTE,
        )
        conn.commit()
    return database_url, site


def _sheets(doc) -> dict[str, list[tuple]]:
    book = openpyxl.load_workbook(io.BytesIO(FORMATS["xlsx"].render(doc)))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def _expected_means(url: str, site: str, period: str, since: datetime, until: datetime):
    """The compliance package's own means of the world's COD (valid data only, flow-weighted)."""
    with psycopg.connect(url) as conn:
        _, points, _ = site_points(conn=conn, site=site)
        cod, flow = points["ww-logger-000/cod_mg_l"], points["ww-logger-000/flow_l_s"]
        samples = fetch_samples(conn=conn, point_ids=[cod, flow], since=since, until=until)
    return means(samples[cod], period=period, tz=TZ, flow=samples[flow])


def test_daily_report_matches_the_compliance_figures(world, tmp_path) -> None:
    url, site = world
    since, until = day_period(DAY.date(), "Asia/Shanghai")
    with psycopg.connect(url) as conn:
        doc = KINDS["compliance_day"].build(conn, Params(site, since, until), NOW)
        stored = {r[3]: r for r in results(conn=conn, site=site) if r[2] == "hour"}
    assert doc.kind == "compliance_day" and doc.areas == ["wastewater"]
    sheets = _sheets(doc)
    # hourly means: exactly the compliance package's, with valid counts; hour 10 as the job stored it
    expected = _expected_means(url, site, "hour", since, until)
    table = doc.table("mean_ww-main_w01018")
    assert [(m.start, m.mean, m.n_valid, m.n_total) for m in expected] == [(r[0], r[1], r[2], r[3]) for r in table.rows]
    assert table.rows[0][1] == pytest.approx((20 * 100 + 30 * 140 * 3) / (20 + 90))  # by hand
    assert table.rows[0][1] == pytest.approx(stored[TEN][4]) and table.rows[0][2:4] == (50, 60)
    sheet = sheets["mean_ww-main_w01018"]
    assert sheet[0][:3] == ("时段 [Asia/Shanghai]", "小时均值", "有效数据")
    assert [round(r[1], 6) for r in sheet[1:]] == [round(m.mean, 6) for m in expected]
    assert [r[-1] for r in sheet[1:]] == [True, False, False]  # against the permit's hourly 100
    assert [r[-2] for r in sheet[1:]] == [100.0, 100.0, 100.0]
    # limits: the permit's hourly limit and the standard's daily one, with their source and version
    limits = sheets["limits"]
    assert ("ww-main", "COD (w01018)", "小时均值", None, 100.0, "permit 91320400MA1TEST001") in limits
    assert any(r[2] == "日均值" and r[4] == 150.0 and r[5] == "GB 30484-2013 v1" for r in limits)
    # the exceedance: time, value, limit, multiple
    [exc] = sheets["exceedances"][1:]
    assert exc[1:4] == ("ww-main", "COD (w01018)", "小时均值") and exc[5] == "≤ 100"
    assert exc[4] == pytest.approx(stored[TEN][4]) and exc[6] == pytest.approx(stored[TEN][4] / 100)
    # no data before 10:00 and after 12:00 (missing), and the calibration block: 10 minutes of flag C
    missing, calibration, after = sheets["invalid"][1:]
    assert calibration[2:8] == ("ww-main", "COD (w01018)", "C", "校准", 10.0, 10)
    assert missing[4:8] == ("—", "数据缺失", 600.0, 0) and after[4:8] == ("—", "数据缺失", 719.0, 0)
    # totals: 24 x 25 m3 today (the D-flagged 900 left out) against 500 permitted a year
    [total] = sheets["totals"][1:]
    assert total[:6] == ("ww-main", "w00000", 600.0, 600.0, 600.0, 500.0)
    assert total[6] == pytest.approx(120.0) and total[8] is True
    # open alarms: the annual total and the cleared, unacknowledged warnings; not the exceedance (cleared at
    # 12:00 and acknowledged: closed)
    open_alarms = {r[4]: r for r in sheets["open_alarms"][1:]}
    assert open_alarms["compliance.total.w00000.year"][3] == "ww-logger-000/outflow_1h_m3"
    assert "compliance.exceedance.w01018.hour" not in open_alarms and len(open_alarms) == 3
    # rectification: the acknowledgement comment for the exceedance, the pending line for the calibration
    rect = {(r[0], r[4][0]): r for r in sheets["rectification"][1:]}
    assert len(sheets["rectification"]) == 1 + 4
    exceedance, calibrating = rect[("超标", "小")], rect[("无效数据", "C")]
    assert NOTE in exceedance[6] and exceedance[5] is not None
    assert exceedance[7] == load_advice().for_exceedance("w01018", "zh-CN") and "生化" in exceedance[7]
    assert calibrating[6] == "整改说明待填写" and "校准记录" in calibrating[7]
    assert "数采仪" in rect[("无效数据", "—")][7]
    # the PDF: Chinese headings, the note, the pending line, a chart per pollutant
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    for heading in ("环保合规日报", "排放限值", "小时均值", "超标记录", "无效数据时段", "排放总量", "整改说明"):
        assert heading in text, heading
    assert "整改说明待填写" in text and "更换生化池曝气头" in text


def test_monthly_report_daily_means_and_english(world, tmp_path) -> None:
    url, site = world
    since, until = month_period("2025-06", "Asia/Shanghai")
    with psycopg.connect(url) as conn:
        doc = KINDS["compliance_month"].build(conn, Params(site, since, until, lang="en"), NOW)
    [day] = _expected_means(url, site, "day", since, until)
    table = doc.table("mean_ww-main_w01018")
    assert [(r[0], r[1], r[2], r[3]) for r in table.rows] == [(day.start, day.mean, day.n_valid, day.n_total)]
    # the daily standard limit judges the daily mean (150): not exceeded; the hourly exceedance is listed
    assert table.rows[0][-2:] == (150.0, False)
    assert len(doc.table("exceedances").rows) == 1
    rect = doc.table("rectification")
    assert "rectification note pending" in rect.values("note")
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    assert "Monthly compliance report" in text and "Rectification notes" in text and "Daily means" in text
    xlsx = _sheets(doc)
    assert xlsx["totals"][1][2] == pytest.approx(600.0)


def test_periods_are_checked(world) -> None:
    url, site = world
    since, until = month_period("2025-06", "Asia/Shanghai")
    with psycopg.connect(url) as conn:
        with pytest.raises(ReportError, match="one day"):
            KINDS["compliance_day"].build(conn, Params(site, since, until), NOW)
        with pytest.raises(ReportError, match="calendar month"):
            KINDS["compliance_month"].build(conn, Params(site, since, since + timedelta(days=7)), NOW)


FLAGS = st.sampled_from(["none", "N", "C", "M", "D", "F", "T", "B"])  # "none": a value without a flag


@settings(max_examples=300, deadline=None)
@given(slots=st.lists(st.one_of(st.none(), FLAGS), min_size=0, max_size=90))
def test_invalid_runs_and_valid_values_cover_the_period_exactly(slots) -> None:
    """Any HJ 212 data on a minute grid, with any flags and gaps (a slot of None: no sample): the invalid-data
    runs never overlap, and their durations plus one interval per valid value are the whole period."""
    start = TEN.astimezone(UTC)
    end = start + timedelta(minutes=len(slots))
    samples = [
        Sample(start + timedelta(minutes=i), 1.0, None if flag == "none" else flag)
        for i, flag in enumerate(slots)
        if flag is not None
    ]
    runs = invalid_runs(samples, 60.0, start, end)
    valid = sum(1 for s in samples if is_valid(s))
    assert sum(r.seconds for r in runs) + 60 * valid == (end - start).total_seconds()
    assert all(a.end <= b.start for a, b in zip(runs, runs[1:], strict=False))
    assert all(start <= r.start < r.end <= end for r in runs)
    assert sum(r.samples for r in runs) == len(samples) - valid
