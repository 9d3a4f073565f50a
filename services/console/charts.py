"""Plots drawn as inline SVG on the server: no script, nothing fetched, readable without colour.

Every series has a colour and a fill pattern of its own (solid, hatched, dotted...), every bar
carries its number in text, and each mark has ``data-series``, ``data-x`` and ``data-value`` so
the tests (and screen readers, through the table beside it) read the same numbers as the eye.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

FONT = "Noto Sans CJK SC, WenQuanYi Zen Hei, sans-serif"
#: (colour, pattern) per series, distinguishable in grey scale too.
STYLES: tuple[tuple[str, str], ...] = (
    ("#1f4e79", "solid"),
    ("#c55a11", "hatch"),
    ("#548235", "dots"),
    ("#7030a0", "cross"),
    ("#bf9000", "lines"),
    ("#2e75b6", "hatch2"),
    ("#a50021", "dots2"),
    ("#404040", "grid"),
)


@dataclass(frozen=True)
class Series:
    label: str
    #: One value per x position.
    values: tuple[float, ...]


def _patterns(prefix: str, count: int) -> str:
    out = []
    for i in range(count):
        colour, kind = STYLES[i % len(STYLES)]
        pid = f"{prefix}-p{i}"
        if kind == "solid":
            body = f'<rect width="8" height="8" fill="{colour}"/>'
        elif kind in ("hatch", "hatch2"):
            angle = 45 if kind == "hatch" else -45
            body = (
                f'<rect width="8" height="8" fill="#ffffff"/>'
                f'<path d="M0,4 H8" stroke="{colour}" stroke-width="3" '
                f'transform="rotate({angle} 4 4)"/>'
            )
        elif kind in ("dots", "dots2"):
            radius = 1.8 if kind == "dots" else 2.6
            body = (
                f'<rect width="8" height="8" fill="#ffffff"/>'
                f'<circle cx="4" cy="4" r="{radius}" fill="{colour}"/>'
            )
        elif kind == "cross":
            body = (
                f'<rect width="8" height="8" fill="#ffffff"/>'
                f'<path d="M0,0 L8,8 M8,0 L0,8" stroke="{colour}" stroke-width="1.5"/>'
            )
        elif kind == "lines":
            body = (
                f'<rect width="8" height="8" fill="#ffffff"/>'
                f'<path d="M0,2 H8 M0,6 H8" stroke="{colour}" stroke-width="1.5"/>'
            )
        else:
            body = (
                f'<rect width="8" height="8" fill="#ffffff"/>'
                f'<path d="M0,0 H8 V8" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        out.append(
            f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f"{body}</pattern>"
        )
    return "<defs>" + "".join(out) + "</defs>"


def _fill(prefix: str, i: int) -> tuple[str, str]:
    colour, _ = STYLES[i % len(STYLES)]
    return f"url(#{prefix}-p{i})", colour


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def columns(
    chart_id: str, title: str, x_labels: list[str], series: list[Series], *, y_label: str = ""
) -> Markup:
    """Stacked columns: one column per x label, one segment per series, totals on top."""
    left, top, bottom, right = 48, 34, 70, 16
    col_w = max(18, min(56, 640 // max(1, len(x_labels))))
    legend_h = 18 * ((len(series) + 2) // 3) if len(series) > 1 else 0
    plot_h = 200
    width = left + right + col_w * max(1, len(x_labels))
    width = max(width, 420)
    height = top + plot_h + bottom + legend_h
    totals = [sum(s.values[i] for s in series) for i in range(len(x_labels))]
    peak = max(totals, default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}" font-size="12">',
        f"<title>{escape(title)}</title>",
        _patterns(chart_id, len(series)),
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="#000000"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#000000"/>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{_number(peak)}</text>',
    ]
    if y_label:
        parts.append(
            f'<text x="12" y="{top + plot_h // 2}" transform="rotate(-90 12 {top + plot_h // 2})" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    for i, label in enumerate(x_labels):
        x = left + i * col_w + 3
        y: float = top + plot_h
        for s_index, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            fill, colour = _fill(chart_id, s_index)
            parts.append(
                f'<rect class="mark" x="{x}" y="{y:.1f}" width="{col_w - 6}" height="{h:.1f}" '
                f'fill="{fill}" stroke="{colour}" data-series="{escape(s.label)}" '
                f'data-x="{escape(label)}" data-value="{_number(value)}">'
                f"<title>{escape(label)} · {escape(s.label)}: {_number(value)}</title></rect>"
            )
        if totals[i] > 0:
            parts.append(
                f'<text class="total" x="{x + (col_w - 6) / 2}" y="{y - 4:.1f}" '
                f'text-anchor="middle" data-x="{escape(label)}" '
                f'data-value="{_number(totals[i])}">{_number(totals[i])}</text>'
            )
        cx, cy = x + (col_w - 6) / 2, top + plot_h + 14
        parts.append(
            f'<text x="{cx}" y="{cy}" text-anchor="end" '
            f'transform="rotate(-40 {cx} {cy})">{escape(label)}</text>'
        )
    if len(series) > 1:
        base = top + plot_h + bottom
        for s_index, s in enumerate(series):
            lx = left + (s_index % 3) * 190
            ly = base + 18 * (s_index // 3)
            fill, colour = _fill(chart_id, s_index)
            parts.append(
                f'<rect x="{lx}" y="{ly - 11}" width="14" height="14" fill="{fill}" '
                f'stroke="{colour}"/><text x="{lx + 20}" y="{ly}">{escape(s.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above


def bars(chart_id: str, title: str, rows: list[tuple[str, float]], *, unit: str = "") -> Markup:
    """Horizontal bars, one per row, each with its label and its number."""
    label_w, top, right, row_h = 190, 30, 70, 24
    plot_w = 360
    width = label_w + plot_w + right
    height = top + row_h * max(1, len(rows)) + 10
    peak = max((v for _, v in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}" font-size="12">',
        f"<title>{escape(title)}</title>",
        _patterns(chart_id, len(rows)),
        f'<text x="4" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * value / peak
        fill, colour = _fill(chart_id, i)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="mark" x="{label_w}" y="{y + 3}" width="{max(w, 0.5):.1f}" '
            f'height="{row_h - 8}" fill="{fill}" stroke="{colour}" data-series="{escape(label)}" '
            f'data-x="{escape(label)}" data-value="{_number(value)}">'
            f"<title>{escape(label)}: {_number(value)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{_number(value)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above
