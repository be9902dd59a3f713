"""Label PDFs: the HJ 1276-2022 size for the volume, Chinese text, and a QR code that decodes to the container."""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from hazwaste.labels import LabelData, container_url, label_size, render_label


def _data(volume_l: float, hazards=("T", "I", "R")) -> LabelData:
    return LabelData(container_id=4711, container_code="C-2026-0042", volume_l=volume_l, name="废电解液",
                     waste_code="900-404-06", category="HW06", hazards=hazards, form="liquid",
                     constituents="碳酸二甲酯、碳酸甲乙酯、六氟磷酸锂", precautions="远离火源，防止泄漏",
                     producer="示例电池有限公司", contact="张三 0512-00000000", produced_on=date(2026, 3, 1),
                     weight_kg=182.5, url=container_url("https://ehs.example.cn", 4711))


@pytest.mark.parametrize(("volume", "side_mm", "text_mm"), [(20, 100, 3), (50, 100, 3), (51, 150, 5),
                                                             (200, 150, 5), (450, 200, 6), (1000, 200, 6)])
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
    for expected in ("危险废物", "废电解液", "900-404-06", "HW06", "182.5kg", "2026-03-01", "示例电池有限公司",
                     "毒性", "感染性"):
        assert expected in text.replace(" ", ""), expected
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-singlefile", str(pdf), str(tmp_path / "page")], check=True)
    codes = zxingcpp.read_barcodes(Image.open(tmp_path / "page.png"))
    assert [c.text for c in codes] == ["https://ehs.example.cn/app/#/waste/containers/4711"]
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode
