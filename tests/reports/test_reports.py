"""Each report against a month of known alarm history: the figures in the document match the database, and they
arrive in the PDF (text extracted, Chinese included) and in the XLSX (read back typed)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import psycopg
import pytest

from alerts import kpi
from reports.context import NotFound, ReportError
from reports.kinds.incident import window
from reports.model import Document, Params, month_period
from reports.registry import KINDS
from reports.render import FORMATS
from tests.api.conftest import SITE
from tests.reports import pdftools
from tests.reports.world import KNOWN, MONTH, T

pytestmark = pytest.mark.db
NOW = datetime(2026, 4, 2, tzinfo=UTC)


def month_params(**kw) -> Params:
    since, until = month_period(MONTH, "Asia/Shanghai")
    return Params(site=SITE, since=since, until=until, **kw)


def build(url: str, kind: str, params: Params) -> Document:
    with psycopg.connect(url) as conn:
        return KINDS[kind].build(conn, params, NOW)


def incident_params(url: str, **kw) -> Params:
    with psycopg.connect(url) as conn:
        site, since, until = window(conn, now=NOW, **kw)
    return Params(site=site, since=since, until=until, **kw)


def rows_of(doc: Document, key: str) -> list[tuple]:
    return doc.table(key).rows


def sheet(doc: Document, key: str) -> list[list]:
    book = openpyxl.load_workbook(io.BytesIO(FORMATS["xlsx"].render(doc)))
    return [[c.value for c in row] for row in book[key].iter_rows()]


def test_alarm_month_kpis_match_the_database(month_db, tmp_path: Path) -> None:
    url, _ = month_db
    params = month_params()
    doc = build(url, "alarm_month", params)
    with psycopg.connect(url) as conn:
        expected = kpi.kpis(conn=conn, since=params.since, until=params.until, site=SITE)
        counted = conn.execute(
            "SELECT count(*) FROM alarm_event WHERE annunciated AND NOT drill AND site = %s AND at >= %s AND at < %s",
            (SITE, params.since, params.until),
        ).fetchone()[0]
    assert counted == expected["annunciated"] == KNOWN["annunciated"]
    measured = {r[1]: r[2] for r in rows_of(doc, "kpi")}
    assert measured["平均每天报警数"] == expected["alarms_per_day"] == round(KNOWN["annunciated"] / 31, 2)
    assert measured["10 分钟内最多报警数"] == expected["max_per_10min"] == 11
    assert sum(r[1] for r in rows_of(doc, "daily")) == counted
    assert dict((r[0], r[1]) for r in rows_of(doc, "daily"))["2026-03-17"] == 11  # the flood's day
    top = rows_of(doc, "top10")[0]
    assert (top[2], top[3]) == (KNOWN["top_source"], 2)
    assert [(r[5], r[6]) for r in rows_of(doc, "shelved")] == [("user:ehs_manager", "传感器更换")]
    assert [r[4] for r in rows_of(doc, "floods")] == [11]
    # the same numbers in the PDF and the workbook
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    assert "报警管理月报" in text and "传感器更换" in text and "ANSI/ISA-18.2-2016" in text
    assert f"呈现报警 {KNOWN['annunciated']} 条" in text.replace("\n", "")
    xlsx = sheet(doc, "kpi")
    assert xlsx[0][2] == "实测" and xlsx[0][4] == "可接受"
    assert next(r for r in xlsx if r[1] == "平均每天报警数")[2] == expected["alarms_per_day"]


def test_alarm_month_for_one_area_and_unknown_areas(month_db) -> None:
    url, _ = month_db
    doc = build(url, "alarm_month", month_params(areas=("wastewater",)))
    assert doc.areas == ["wastewater"] and {r[0] for r in rows_of(doc, "kpi")} == {"污水站"}
    assert sum(r[1] for r in rows_of(doc, "daily")) == 1 + 11  # C and the flood
    with pytest.raises(ReportError, match="no area nowhere"):
        build(url, "alarm_month", month_params(areas=("nowhere",)))
    with pytest.raises(NotFound):
        build(url, "alarm_month", Params(site="nope", since=T, until=T + timedelta(days=1)))


def test_incident_report_of_an_alarm(month_db, tmp_path: Path) -> None:
    url, ids = month_db
    params = incident_params(url, alarm_id=ids["a"])
    doc = build(url, "incident", params)
    assert [r[2] for r in rows_of(doc, "timeline")] == ["raise", "command", "ack", "clear"]
    assert rows_of(doc, "acknowledged") == [(ids["a"], T + timedelta(minutes=2), "user:operator", "到现场检查")]
    readings = rows_of(doc, "readings")
    with psycopg.connect(url) as conn:
        stored = conn.execute(
            "SELECT r.time, r.value FROM reading r JOIN point p ON p.id = r.point_id JOIN device d "
            "ON d.id = p.device_id WHERE d.site_id = %s AND d.code = 'gas-01' AND p.key = 'h2_ppm' "
            "AND r.time >= %s AND r.time < %s ORDER BY r.time",
            (ids["site"], params.since, params.until),
        ).fetchall()
    assert len(readings) == KNOWN["readings_around_a"] and [(t, v) for t, v, _ in readings] == stored
    assert rows_of(doc, "plan_interlocks") == [("gas-02", "alarm.sound", "")]
    assert [(r[1], r[2], r[4]) for r in rows_of(doc, "commands")] == [("gas-02", "alarm.sound", "done")]
    assert [(r[2], r[3]) for r in rows_of(doc, "command_acks")] == [
        ("pending", "system:ingest"),
        ("issued", "system:alerts"),
        ("accepted", "device:s1/gas-02"),
        ("done", "device:s1/gas-02"),
    ]
    assert [r[1] for r in rows_of(doc, "notifications")] == ["plan"]
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    for word in (
        "报警事件报告",
        "化成预案",
        "二级",
        "沿东侧通道撤离",
        "到现场检查",
        "device:s1/gas-02",
        "user:operator",
    ):
        assert word in text, word
    assert sheet(doc, "readings")[1][1] == 0.5 and sheet(doc, "readings")[31][1] == 450.0  # T is the 31st minute


def test_incident_report_in_english(month_db, tmp_path: Path) -> None:
    url, ids = month_db
    doc = build(url, "incident", Params(**{**_fields(incident_params(url, alarm_id=ids["a"])), "lang": "en"}))
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    assert f"Alarm incident report #{ids['a']}" in text and "Leave by the east corridor" in text
    assert "Who acknowledged" in text and "Hydrogen high" in text


def _fields(p: Params) -> dict:
    return {k: getattr(p, k) for k in Params.__slots__}


def test_incident_report_of_a_flood(month_db) -> None:
    url, ids = month_db
    doc = build(url, "incident", incident_params(url, flood_id=ids["flood"]))
    alarms = rows_of(doc, "alarms")
    assert len(alarms) == 11 and [r[14] for r in alarms] == [True] + [False] * 10  # the first-out alarm
    assert doc.areas == ["wastewater"] and "报警泛滥" in doc.title
    with pytest.raises(NotFound):
        build(url, "incident", Params(site="s2", since=T, until=T + timedelta(hours=1), flood_id=ids["flood"]))


def test_interlock_and_bypass_report(month_db, tmp_path: Path) -> None:
    url, ids = month_db
    doc = build(url, "interlocks", month_params())
    assert rows_of(doc, "by_device") == [("gas-02", "alarm.sound", 2, 1, 1, 0, 1.0, 2.0)]
    assert [(r[1], r[3], r[5]) for r in rows_of(doc, "not_completed")] == [("gas-02", "rejected", ids["a2"])]
    bypass = rows_of(doc, "bypasses")[0]
    assert (bypass[0], bypass[4], bypass[6], bypass[11]) == (ids["bypass"], "user:operator", "user:ehs_manager", 4.0)
    xlsx = sheet(doc, "bypasses")
    assert xlsx[0][11] == "批准时长 [h]" and xlsx[1][7] == datetime(2026, 3, 14, 10, 10)  # local time
    assert "更换喇叭" in pdftools.text(FORMATS["pdf"].render(doc), tmp_path)


def test_device_health_report(month_db) -> None:
    url, _ = month_db
    doc = build(url, "device_health", month_params())
    devices = {r[1]: r for r in rows_of(doc, "devices")}
    seconds = 31 * 86400
    assert devices["gas-01"][5] == 81 and devices["gas-01"][6] == 2 * seconds // 10 and devices["gas-01"][12] == 2
    assert devices["gas-02"][4] == 1 and devices["gas-02"][9] == 1  # went offline, one stale alarm
    assert rows_of(doc, "dead_letters") == [("out_of_range", "gas-01", 2)]
    area = {r[0]: r for r in rows_of(doc, "areas")}["化成"]
    assert area[1] == 3 and area[3] == 1 and area[5] == 1 and area[8] == 2
