"""The one font of every PDF the service makes (reports, hazardous-waste labels and manifests): Noto Sans CJK
(SIL Open Font License), shipped as a PyPI package, so that Chinese renders on a fresh machine with only Python. It
covers Latin as well, so PDFs and charts use it for everything.

Only the font file lives here (its path, and a cut of it): every package that draws PDFs may import ``core``, while
the PDF library itself (fpdf2) stays in the modules that draw (see tests/contract/test_import_layers.py).

The package (``cvttf-NotoSansCJK-Regular``) ships the TC-region build of Noto Sans CJK; every simplified
character is in it, and a few shared characters take their Traditional-Chinese glyph shape. The font has CFF
(PostScript) outlines, which is why the PDF library is fpdf2 (it embeds CFF subsets; reportlab embeds only
TrueType outlines).

The full font has 65,000 glyphs and takes seconds to parse for every PDF. So the PDF renderers use, when it
holds every character of the document, a cut of it made once per machine and kept in a cache folder: GB 2312
(the 6,763 common simplified characters and its symbols), ASCII and Latin-1. A document with any other
character (a rare name, say) uses the full font.
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import cache
from pathlib import Path

_LOGGER = logging.getLogger(__name__)
FAMILY = "NotoSansCJK"
#: Bump when the cut's character set changes (the cached file's name carries it).
_CUT_VERSION = 2


@cache
def full_font() -> Path:
    """The path of the full CJK font file; a clear error when the package is missing."""
    try:
        import cvttf_NotoSansCJK_Regular as package
    except ModuleNotFoundError as exc:  # pragma: no cover - the dependency is pinned
        raise RuntimeError("PDFs need the package cvttf-NotoSansCJK-Regular (pyproject.toml)") from exc
    path = Path(package.get_TTF_path())
    if not path.is_file():  # pragma: no cover
        raise RuntimeError(f"the CJK font is missing at {path}; reinstall cvttf-NotoSansCJK-Regular")
    return path


@cache
def common_characters() -> frozenset[str]:
    """GB 2312 (decoded from every two-byte code), ASCII and Latin-1, and a few symbols reports use."""
    chars = {chr(c) for c in range(0x20, 0x7F)} | {chr(c) for c in range(0xA0, 0x100)} | set("—–‘’“”…•·℃µ±≤≥≈×÷→←↑↓")
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                chars.add(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return frozenset(chars)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "ehs-monitor" / "fonts"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "ehs-monitor-fonts"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


@cache
def common_font() -> Path:
    """The cut of the font to ``common_characters`` (made once, then read from the cache folder)."""
    source = full_font()
    target = _cache_dir() / f"NotoSansCJK-common-v{_CUT_VERSION}-{source.stat().st_size}.otf"
    if target.is_file():
        return target
    from fontTools import subset

    options = subset.Options()
    options.layout_features = []  # fpdf2 does not shape text (no HarfBuzz): the tables would idle
    options.hinting = False  # PDF viewers do not use CFF hints at report sizes
    options.name_IDs = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in common_characters()])
    subsetter.subset(font)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    subset.save_font(font, str(partial), options)
    partial.replace(target)  # atomic: a concurrent run never reads half a file
    _LOGGER.info("made the common cut of the CJK font: %s", target)
    return target


def cjk_font(characters: set[str] | None = None) -> Path:
    """The font file to embed for a document showing ``characters``: the common cut when it has them all."""
    if characters is not None and characters <= common_characters():
        return common_font()
    return full_font()
