"""Charts of the PDF, drawn by matplotlib from a table of the same document, in the reports' CJK font.

No pyplot: a Figure with its own Agg canvas per chart, so nothing global (backend, rcParams) changes.
"""

from __future__ import annotations

import io
from datetime import datetime

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from core.fonts import cjk_font
from reports.model import Chart, ColType, Document

#: Colours of the series (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def render_png(doc: Document, chart: Chart, *, width_mm: float = 170, height_mm: float = 70, dpi: int = 200) -> bytes:
    """The chart as a PNG image of the given size."""
    # ASCII minus signs in tick labels: U+2212 is not in the font's common cut (core.fonts); local to this call
    with rc_context({"axes.unicode_minus": False}):
        return _render(doc, chart, width_mm, height_mm, dpi)


def _render(doc: Document, chart: Chart, width_mm: float, height_mm: float, dpi: int) -> bytes:
    table = doc.table(chart.table)
    xcol = table.columns[table.column(chart.x)]
    xs = table.values(chart.x)
    shown = "".join([chart.title, *(c.header() for c in table.columns), *(str(x) for x in xs), "0123456789.-:"])
    path = str(cjk_font(set(shown)))  # the small cut when it has every character (core.fonts)
    font = FontProperties(fname=path, size=8)
    title_font = FontProperties(fname=path, size=10)
    if xcol.type is ColType.DATETIME:
        xs = [doc.local(x).replace(tzinfo=None) if isinstance(x, datetime) else x for x in xs]
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positions = range(len(xs))
    width = 0.8 / max(len(chart.y), 1)
    for i, key in enumerate(chart.y):
        col = table.columns[table.column(key)]
        ys = [float("nan") if v is None else float(v) for v in table.values(key)]
        colour = PALETTE[i % len(PALETTE)]
        if chart.kind == "bar":
            ax.bar(
                [p + (i - (len(chart.y) - 1) / 2) * width for p in positions],
                ys,
                width=width,
                color=colour,
                label=col.header(),
            )
        elif chart.kind == "step":
            ax.step(xs, ys, where="post", color=colour, label=col.header(), linewidth=1)
        else:
            ax.plot(xs, ys, color=colour, label=col.header(), linewidth=1, marker="." if len(xs) < 60 else None)
    if chart.kind == "bar":
        step = max(1, -(-len(xs) // 12))  # at most 12 labels
        ax.set_xticks(list(positions)[::step])
        ax.set_xticklabels(
            [str(x) for x in xs][::step],
            fontproperties=font,
            rotation=30 if len(xs) > 8 else 0,
            ha="right" if len(xs) > 8 else "center",
        )
    elif xcol.type is ColType.DATETIME:
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_title(chart.title, fontproperties=title_font)
    ax.set_xlabel(xcol.header(), fontproperties=font)
    for label in ax.get_yticklabels() + (ax.get_xticklabels() if chart.kind != "bar" else []):
        label.set_fontproperties(font)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.legend(prop=font, loc="best", frameon=False)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
