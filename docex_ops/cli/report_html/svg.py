"""Inline SVG charts drawn in Python: horizontal bar charts (a histogram is one whose
bars are buckets) and a meter of use against a limit.

Every chart is ``role="img"`` with a ``<title>`` and an ``aria-label``; each bar carries
its value as text, and a flagged bar (stale, failed, over a limit) is hatched and named
in words as well as coloured, so that nothing is told by colour alone. All text is
escaped here: labels are tenant ids, revisions and server names.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 480       # viewBox width; the SVG scales to its box (about 0.8 on a phone)
ROW = 24          # height of one bar's row
LABEL_W = 150     # the label column
VALUE_W = 140     # the value column, right of the bars (its text: "12 tenants · stale")
LABEL_CHARS = 21  # a longer label is cut (the full one is in the bar's <title>)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str | None = None      # the value as written (default: the number)
    flag: str | None = None       # a word for a flagged bar: "stale", "head", ...


# Once per page (page.py): the hatch a flagged bar is filled with, besides its colour.
DEFS = ('<svg class="defs" width="0" height="0" aria-hidden="true" focusable="false">'
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="flagged"/>'
        '<line x1="3" y1="0" x2="3" y2="6" class="hatch-line"/></pattern></defs></svg>')


def _cut(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def bar_chart(title: str, bars: list[Bar], unit: str = "") -> str:
    """Bars scaled to the largest value, each with its label and value as text."""
    if not bars:
        return f'<p class="empty">{escape(title)}: nothing to draw.</p>'
    top = max((b.value for b in bars), default=0) or 1
    span = WIDTH - LABEL_W - VALUE_W
    height = ROW * len(bars) + 4
    summary = "; ".join(f"{b.label} {b.shown or _number(b.value)}"
                        + (f" ({b.flag})" if b.flag else "") for b in bars[:12])
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}: {escape(summary)}" '
             f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>']
    for i, b in enumerate(bars):
        y = 2 + i * ROW
        width = max(0.0, span * b.value / top)
        if b.value > 0:
            width = max(width, 2.0)  # a bar that is there is seen
        if unit and b.value == 1 and unit.endswith("s"):
            unit_text = f" {unit[:-1]}"
        else:
            unit_text = f" {unit}" if unit else ""
        shown = b.shown or _number(b.value) + unit_text
        value_text = shown + (f" \u00b7 {b.flag}" if b.flag else "")
        fill = ' fill="url(#hatch)" class="bar flagged"' if b.flag and b.flag != "head" else \
            (' class="bar head"' if b.flag == "head" else ' class="bar"')
        parts.append(
            f'<g><title>{escape(b.label)}: {escape(value_text)}</title>'
            f'<text x="{LABEL_W - 6}" y="{y + 16}" text-anchor="end" class="label">'
            f'{escape(_cut(b.label))}</text>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{width:.1f}" height="{ROW - 7}"{fill}/>'
            f'<text x="{LABEL_W + width + 6:.1f}" y="{y + 16}" class="value">'
            f'{escape(value_text)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def meter(title: str, used: int, limit: int, marks: list[tuple[str, int]] | None = None
          ) -> str:
    """Use against a limit: a filled bar, the limit's outline, and labelled marks (the
    configured worst case, a budget) as ticks with their names written beside them."""
    limit = max(limit, 1)
    marks = marks or []
    top = max([limit, used, *(v for _, v in marks)])
    span = WIDTH - 20
    scale = span / top
    over = used > limit * 0.9
    label = f"{used} of {limit} ({100 * used / limit:.0f} %)" + (" \u00b7 near the limit"
                                                                 if over else "")
    height = 44 + 16 * len(marks)
    parts = [f'<svg class="chart meter" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}: {escape(label)}" '
             f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>',
             f'<rect x="10" y="6" width="{limit * scale:.1f}" height="18" class="limit"/>',
             f'<rect x="10" y="6" width="{max(used * scale, 1.0):.1f}" height="18"'
             + (' fill="url(#hatch)" class="bar flagged"/>' if over else ' class="bar"/>'),
             f'<text x="10" y="38" class="value">{escape(label)}</text>']
    for i, (name, value) in enumerate(marks):
        x = 10 + value * scale
        parts.append(f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="28" class="mark"/>'
                     f'<text x="10" y="{54 + 16 * i}" class="label-left">\u25b2 '
                     f'{escape(name)}: {value}</text>')
    parts.append("</svg>")
    return "".join(parts)
