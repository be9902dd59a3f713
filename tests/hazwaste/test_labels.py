"""Label and manifest PDFs: the HJ 1276-2022 size for the volume, Chinese text in an embedded font (so it prints
on a machine without CJK fonts), and a QR code that decodes to the container."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hazwaste.labels import LabelData, container_url, label_size, render_label
from hazwaste.manifest_pdf import render_manifest
from tests.reports import pdftools


def _data(volume_l: float, hazards=("T", "I", "R")) -> LabelData:
    return LabelData(
        container_id=4711,
        container_code="C-2026-0042",
        volume_l=volume_l,
        name="废电解液",
        waste_code="900-404-06",
        category="HW06",
        hazards=hazards,
        form="liquid",
        constituents="碳酸二甲酯、碳酸甲乙酯、六氟磷酸锂",
        precautions="远离火源，防止泄漏",
        producer="示例电池有限公司",
        contact="张三 0512-00000000",
        produced_on=date(2026, 3, 1),
        weight_kg=182.5,
        url=container_url("https://ehs.example.cn", 4711),
    )


@pytest.mark.parametrize(
    ("volume", "side_mm", "text_mm"),
    [(20, 100, 3), (50, 100, 3), (51, 150, 5), (200, 150, 5), (450, 200, 6), (1000, 200, 6)],
)
def test_label_size_follows_the_container_volume(volume, side_mm, text_mm) -> None:
    assert (label_size(volume).side_mm, label_size(volume).text_mm) == (side_mm, text_mm)


@pytest.mark.parametrize(("volume", "side_mm"), [(30, 100), (200, 150), (1000, 200)])
def test_label_renders_at_size_with_chinese_and_a_readable_qr_code(tmp_path: Path, volume, side_mm) -> None:
    pdf = tmp_path / "label.pdf"
    pdf.write_bytes(render_label(_data(volume, ("T", "C", "I", "R", "In"))))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size:")).split()
    assert float(size[2]) == pytest.approx(side_mm / 25.4 * 72, abs=0.01)
    assert float(size[4]) == pytest.approx(side_mm / 25.4 * 72, abs=0.01)
    assert re.search(r"^Pages:\s+1$", info, re.M)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for expected in (
        "危险废物",
        "废电解液",
        "900-404-06",
        "HW06",
        "182.5kg",
        "2026-03-01",
        "示例电池有限公司",
        "毒性",
        "感染性",
    ):
        assert expected in text.replace(" ", ""), expected
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-singlefile", str(pdf), str(tmp_path / "page")], check=True)
    codes = zxingcpp.read_barcodes(Image.open(tmp_path / "page.png"))
    assert [c.text for c in codes] == ["https://ehs.example.cn/app/#/waste/containers/4711"]
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode


def test_label_embeds_its_font_and_uses_no_reader_font(tmp_path: Path) -> None:
    pdf = render_label(_data(30))
    fonts = pdftools.fonts(pdf, tmp_path)
    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts
    assert not any("STSong" in f["name"] for f in fonts), fonts
    assert any("NotoSansCJK" in f["name"] for f in fonts), fonts


def test_label_with_a_rare_character_takes_the_full_font(tmp_path: Path) -> None:
    data = _data(200)
    rare = LabelData(**{**data.__dict__, "producer": "堃能电池有限公司"})  # 堃 is not in GB 2312
    text = pdftools.text(render_label(rare), tmp_path)
    assert "堃能电池有限公司" in text.replace(" ", "")


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=60)


@settings(max_examples=15, deadline=None)
@given(name=_TEXT, constituents=_TEXT, producer=_TEXT, weight=st.none() | st.floats(0, 1e6), volume=st.floats(1, 2000))
def test_any_text_in_a_label_renders_one_page(name, constituents, producer, weight, volume) -> None:
    data = LabelData(
        **{
            **_data(volume).__dict__,
            "name": name,
            "constituents": constituents,
            "producer": producer,
            "weight_kg": weight,
        }
    )
    info = subprocess.run(["pdfinfo", "-"], input=render_label(data), capture_output=True, check=True).stdout.decode()
    assert re.search(r"^Pages:\s+1$", info, re.M), info


def _manifest(events: int = 3, containers: int = 4) -> tuple[dict, list[dict]]:
    at = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    m = {
        "id": 9,
        "number": "20263205000777",
        "state": "received",
        "paper": False,
        "trip": "T-1",
        "carrier_name": "示例危废运输有限公司",
        "vehicle_plate": "苏E·A1234",
        "carrier_permit": "苏交运管许可危字320500000001号",
        "receiver_name": "示例环保处置有限公司",
        "receiver_licence": "JS3205OOD999-1",
        "receiver_scope": ["HW06", "HW49"],
        "method": "disposal",
        "waste_name": "废电解液",
        "waste_code": "900-404-06",
        "shipped_kg": 365.0,
        "received_kg": 360.0,
        "discrepancy": True,
        "shipped_at": at,
        "delivered_at": at + timedelta(hours=3),
        "received_at": at + timedelta(hours=5),
        "disposed_at": None,
        "timezone": "Asia/Shanghai",
        "events": [
            {
                "at": at + timedelta(minutes=i),
                "event": "submit",
                "from_state": "draft",
                "to_state": "submitted",
                "actor": f"操作员{i}",
            }
            for i in range(events)
        ],
    }
    return m, [{"code": f"C-2026-{i:04d}", "weight_kg": 91.25 if i else None} for i in range(containers)]


def test_manifest_pdf_shows_chinese_in_an_embedded_font(tmp_path: Path) -> None:
    m, containers = _manifest()
    pdf = render_manifest(m, containers, "示例电池有限公司")
    fonts = pdftools.fonts(pdf, tmp_path)
    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts
    text = pdftools.text(pdf, tmp_path).replace(" ", "")
    for expected in (
        "危险废物转移联单（打印件）",
        "20263205000777",
        "已接收",
        "示例电池有限公司",
        "苏E·A1234",
        "数量存在差异",
        "C-2026-0001",
        "91.25kg",
        "2026-06-0110:00",
        "操作员2",
    ):
        assert expected in text, expected


def test_long_manifest_runs_onto_more_pages_and_long_lines_wrap(tmp_path: Path) -> None:
    m, containers = _manifest(events=80, containers=40)
    m["receiver_scope"] = [f"HW{i:02d}" for i in range(1, 50)]  # a line far wider than A4
    pdf = render_manifest(m, containers, "示例电池有限公司")
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert int(re.search(r"^Pages:\s+(\d+)$", info, re.M).group(1)) >= 3
    text = pdftools.text(pdf, tmp_path)
    assert "HW49" in text and "操作员79" in text  # the end of the wrapped line and the last event
