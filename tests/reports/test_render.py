"""The renderers on a made-up document: the PDF's text (Chinese included), fonts embedded, pages drawn; the XLSX
read back typed; the CSV parsed; periods across month ends and time zones."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from core import fonts
from reports.model import (
    Chart,
    ColType,
    Column,
    Document,
    Params,
    Section,
    Table,
    day_period,
    month_period,
)
from reports.render import FORMATS
from tests.reports import pdftools

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def document(lang: str = "zh-CN", rows: int = 120) -> Document:
    readings = Table(
        "readings",
        "氢气读数" if lang != "en" else "Hydrogen readings",
        [
            Column("time", "时间" if lang != "en" else "Time", ColType.DATETIME),
            Column("h2", "氢气浓度" if lang != "en" else "Hydrogen", ColType.FLOAT, "ppm", digits=1),
            Column("count", "次数" if lang != "en" else "Count", ColType.INT),
            Column("ok", "合格" if lang != "en" else "OK", ColType.BOOL),
            Column("note", "备注" if lang != "en" else "Note"),
        ],
        [(T0 + timedelta(minutes=i), 10 + i * 0.5, i, i % 2 == 0, "泄漏排查" if i == 3 else None) for i in range(rows)],
    )
    return Document(
        kind="test",
        title="报警管理月报" if lang != "en" else "Alarm management report",
        lang=lang,
        plant="宁德一厂",
        site="s1",
        timezone="Asia/Shanghai",
        period="2026-03",
        generated_at=T0 + timedelta(days=31),
        data_as_of=T0 + timedelta(days=30, hours=23),
        sections=[
            Section(
                "读数与趋势" if lang != "en" else "Readings",
                ["化成区氢气浓度。"],
                [readings],
                [Chart("氢气趋势", "readings", "time", ("h2",))],
            )
        ],
        notes=["演练不计入。"],
        sources=["ISA-18.2-2016 表 5"],
        revision={"rule_set": 3},
        areas=["formation"],
    )


def test_pdf_chinese_text_page_numbers_and_times(tmp_path: Path) -> None:
    pdf = FORMATS["pdf"].render(document())
    text = pdftools.text(pdf, tmp_path)
    pages = pdftools.pages(pdf, tmp_path)
    assert len(pages) >= 3  # 120 rows do not fit one A4 page
    for word in ("宁德一厂", "报警管理月报", "读数与趋势", "氢气浓度 [ppm]", "泄漏排查", "ISA-18.2-2016 表 5"):
        assert word in text, word
    compact = text.replace(" ", "")  # pdftotext drops the spaces between CJK glyphs
    assert f"第1页/共{len(pages)}页" in compact and f"第{len(pages)}页/共{len(pages)}页" in compact
    # times in the site's zone: 2026-03-01 00:00 UTC is 08:00 in Shanghai; data as of 03-31 23:00 UTC
    assert "2026-03-01 08:00:00" in text and "数据截至 2026-04-01 07:00:00" in text
    assert "2026-03-01 09:59:00" in text and "69.5" in text  # the last row: minute 119, 10 + 119 * 0.5


def test_pdf_embeds_its_font_and_draws_every_page(tmp_path: Path) -> None:
    pdf = FORMATS["pdf"].render(document())
    fonts = pdftools.fonts(pdf, tmp_path)
    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts  # nothing left to the reader's system fonts
    for page in pdftools.pages(pdf, tmp_path):
        width, height = page.size
        assert pdftools.ink(page, (0, 0, width, height // 10)) > 50  # the header line and the plant's name
        assert pdftools.ink(page, (0, height * 9 // 10, width, height)) > 50  # the footer's text


def test_pdf_uses_the_common_cut_of_the_font_unless_a_rare_character_needs_the_full_font(tmp_path: Path) -> None:
    assert fonts.cjk_font(set("报警管理月报 ISA-18.2 ℃")) == fonts.common_font() != fonts.full_font()
    assert fonts.common_font().stat().st_size < fonts.full_font().stat().st_size / 4
    doc = document(rows=3)
    doc.plant = "堃能电池厂"  # 堃 is not in GB 2312
    assert fonts.cjk_font(set(doc.plant)) == fonts.full_font()
    text = pdftools.text(FORMATS["pdf"].render(doc), tmp_path)
    assert "堃能电池厂" in text


def test_pdf_in_english(tmp_path: Path) -> None:
    text = pdftools.text(FORMATS["pdf"].render(document("en", rows=5)), tmp_path)
    assert "Alarm management report" in text and "Hydrogen [ppm]" in text and "Page 1 of 1" in text
    assert "Data as of 2026-04-01 07:00:00" in text


def test_xlsx_sheets_typed_cells_units_and_frozen_headers() -> None:
    doc = document(rows=10)
    book = openpyxl.load_workbook(io.BytesIO(FORMATS["xlsx"].render(doc)))
    assert book.sheetnames == ["readings", "report"]
    sheet = book["readings"]
    assert [c.value for c in sheet[1]] == ["时间 [Asia/Shanghai]", "氢气浓度 [ppm]", "次数", "合格", "备注"]
    assert sheet.freeze_panes == "A2"
    first = [c.value for c in sheet[2]]
    assert first[0] == datetime(2026, 3, 1, 8, 0) and first[1] == 10.0 and first[2] == 0 and first[3] is True
    assert isinstance(sheet.cell(row=11, column=2).value, float) and sheet.cell(row=11, column=2).value == 14.5
    assert sheet.cell(row=5, column=5).value == "泄漏排查" and sheet.max_row == 11
    info = {r[0].value: r[1].value for r in book["report"].iter_rows()}
    assert info["厂区"] == "宁德一厂 (s1)" and info["数据截至"] == datetime(2026, 4, 1, 7, 0)


def test_csv_blocks_with_units_and_offsets() -> None:
    raw = FORMATS["csv"].render(document(rows=3))
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["# readings: 氢气读数"]
    assert rows[1] == ["时间", "氢气浓度 [ppm]", "次数", "合格", "备注"]
    assert rows[2] == ["2026-03-01T08:00:00+08:00", "10.0", "0", "1", ""]


@pytest.mark.parametrize(
    ("month", "tz", "since", "until"),
    [
        ("2026-03", "Asia/Shanghai", datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 31, 16, tzinfo=UTC)),
        ("2026-12", "Asia/Shanghai", datetime(2026, 11, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC)),
        # a zone with summer time: March has 31 days less one hour
        ("2026-03", "Europe/Berlin", datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)),
        ("2024-02", "UTC", datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)
def test_month_period_is_local_midnight_to_midnight(month: str, tz: str, since: datetime, until: datetime) -> None:
    assert month_period(month, tz) == (since, until)


def test_day_period_across_a_summer_time_change() -> None:
    since, until = day_period(date(2026, 3, 29), "Europe/Berlin")
    assert until.astimezone(UTC) - since.astimezone(UTC) == timedelta(hours=23)


def test_params_round_trip_and_refusals() -> None:
    p = Params(site="s1", since=T0, until=T0 + timedelta(days=1), areas=("formation",), lang="en", alarm_id=4)
    assert Params.from_json(p.as_json()) == p
    local = Params(
        site="s1",
        since=datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin")),
        until=datetime(2026, 3, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    )
    assert local.since.tzinfo is UTC and local.until - local.since == timedelta(hours=23)  # instants, not walls
    with pytest.raises(ValueError, match="language"):
        Params(site="s1", since=T0, until=T0 + timedelta(days=1), lang="fr")
    with pytest.raises(ValueError, match="after"):
        Params(site="s1", since=T0, until=T0)
