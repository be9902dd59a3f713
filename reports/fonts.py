"""The one font of every report: Noto Sans CJK (SIL Open Font License), shipped as a PyPI package, so that Chinese
renders on a fresh machine with only Python. It covers Latin as well, so PDF and charts use it for everything.

The package (``cvttf-NotoSansCJK-Regular``) ships the TC-region build of Noto Sans CJK; every simplified
character is in it, and a few shared characters take their Traditional-Chinese glyph shape. The font has CFF
(PostScript) outlines, which is why the PDF library is fpdf2 (it embeds CFF subsets; reportlab embeds only
TrueType outlines).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

FAMILY = "NotoSansCJK"


@cache
def cjk_font() -> Path:
    """The path of the CJK font file; a clear error when the package is missing."""
    try:
        import cvttf_NotoSansCJK_Regular as package
    except ModuleNotFoundError as exc:  # pragma: no cover - the dependency is pinned
        raise RuntimeError("reports need the package cvttf-NotoSansCJK-Regular (pyproject.toml)") from exc
    path = Path(package.get_TTF_path())
    if not path.is_file():  # pragma: no cover
        raise RuntimeError(f"the CJK font is missing at {path}; reinstall cvttf-NotoSansCJK-Regular")
    return path
