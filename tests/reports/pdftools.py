"""Read a PDF back as a person and a regulator would: text through pdftotext, pages as images through pdftoppm,
fonts through pdffonts (Debian's poppler-utils; .ci/run installs it). A missing tool fails the test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: install Debian's poppler-utils (.ci/run does)"
    return path


def text(pdf: bytes, tmp: Path) -> str:
    src = tmp / "doc.pdf"
    src.write_bytes(pdf)
    return subprocess.run(
        [_tool("pdftotext"), "-layout", str(src), "-"], check=True, capture_output=True, text=True
    ).stdout


def fonts(pdf: bytes, tmp: Path) -> list[dict[str, str]]:
    """pdffonts' table: name, type and whether each font is embedded."""
    src = tmp / "fonts.pdf"
    src.write_bytes(pdf)
    lines = subprocess.run(
        [_tool("pdffonts"), str(src)], check=True, capture_output=True, text=True
    ).stdout.splitlines()[2:]
    return [{"name": line.split()[0], "emb": line.split()[-5]} for line in lines if line.strip()]


def pages(pdf: bytes, tmp: Path, dpi: int = 50) -> list[Image.Image]:
    src = tmp / "pages.pdf"
    src.write_bytes(pdf)
    subprocess.run([_tool("pdftoppm"), "-r", str(dpi), "-png", str(src), str(tmp / "page")], check=True)
    return [Image.open(p).convert("L") for p in sorted(tmp.glob("page-*.png"))]


def ink(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> int:
    """Non-white pixels in (a part of) a page: text and lines that were drawn (grey small print included)."""
    part = image.crop(box) if box else image
    return sum(part.histogram()[:200])
