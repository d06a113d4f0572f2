"""The page around the sections: inline CSS (screen, phone, print), the skeleton, and the
small HTML pieces every section uses (escaped tables, capped lists, badges, ages).

Self-contained on purpose: no script, no font, no image, no link that leaves the page;
a report attached to a ticket opens the same offline, printed or on a phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from docex_ops.cli.report_html.svg import DEFS

# Lists on the page stop here and say how many more there are: a fleet of 10,000 stays
# one readable page (and a bounded one).
LIMIT = 25

# Text #1b1f24 on white is 16:1; every colour below keeps at least 4.5:1 against its
# background, and every state is also written as a word (OK / WARN / FAIL).
CSS = """
:root{--fg:#1b1f24;--muted:#4a5260;--line:#c8ced6;--bg:#fff;--panel:#f5f7fa;
--bar:#1f5fa8;--head:#1d6b3a;--bad:#a4262c;--warn:#7a4d00}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",
Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0}
h2{font-size:1.2rem;margin:1.6em 0 .4em;padding-bottom:.2em;border-bottom:2px solid var(--line)}
h3{font-size:1rem;margin:1em 0 .3em}
p,li{overflow-wrap:anywhere}
.meta{color:var(--muted);margin:0}
nav ul{display:flex;flex-wrap:wrap;gap:4px 14px;padding:0;list-style:none;margin:.6em 0}
nav a{color:var(--bar)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;
margin:.8em 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.card b{display:block;font-size:1.4rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;margin:.4em 0;font-size:.92rem}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:break-word}
th{background:var(--panel)}
td.num,th.num{text-align:right;white-space:nowrap}
.badge{display:inline-block;min-width:3.4em;text-align:center;font-weight:700;
font-size:.8rem;border:2px solid;border-radius:4px;padding:0 4px}
.FAIL{color:var(--bad)}.badge.FAIL{border-style:double;border-width:3px}
.WARN{color:var(--warn)}.badge.WARN{border-style:dashed}
.OK{color:var(--head)}
.more{color:var(--muted);font-style:italic}
.empty{color:var(--muted)}
pre.err{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:.85rem}
svg.chart{display:block;width:100%;max-width:600px;height:auto;margin:.3em 0}
svg.defs{position:absolute}
svg .bar{fill:var(--bar)}svg .bar.head{fill:var(--head)}
svg .flagged{fill:var(--bad)}svg .hatch-line{stroke:#fff;stroke-width:2}
svg .limit{fill:none;stroke:var(--fg);stroke-width:1.5}
svg .mark{stroke:var(--fg);stroke-width:2;stroke-dasharray:3 2}
svg text{font-size:14px;fill:var(--fg)}svg .label-left{font-size:12px}
@media (max-width:600px){main{padding:10px}body{font-size:14px}
th,td{padding:3px 5px}.card b{font-size:1.2rem}}
@media print{body{font-size:10pt;color:#000}main{max-width:none;padding:0}
nav{display:none}section{break-inside:avoid-page}h2{break-after:avoid}
.card,th{background:none}.scroll{overflow:visible}
svg .bar{fill:#555}svg .bar.head{fill:#222}}
"""


def utc(moment: datetime) -> datetime:
    """Aware UTC: stored times are naive UTC (docex-ops stores UTC only)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{utc(moment):%Y-%m-%d %H:%M}Z"


def age(seconds: float | None) -> str:
    """3 min, 5.2 h, 12.0 d: an age as a person reads it."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def counted(n: int, noun: str) -> str:
    """1 tenant, 2 tenants (``noun`` is the plural)."""
    return f"{n} {noun[:-1] if n == 1 and noun.endswith('s') else noun}"


def badge(level: str) -> str:
    """OK / WARN / FAIL, written out and styled (border style differs too)."""
    return f'<span class="badge {escape(level)}">{escape(level)}</span>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (),
          caption: str | None = None) -> str:
    """Cells are HTML the caller built from escaped text (``esc`` or a badge)."""
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i in numeric else ""}>{escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{num if i in numeric else ""}>{c}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def more(total: int, shown: int, noun: str = "") -> str:
    """The line under a capped list."""
    if total <= shown:
        return ""
    return f'<p class="more">and {total - shown} more{" " + escape(noun) if noun else ""}</p>'


def esc(value: object) -> str:
    return escape("-" if value is None else str(value))


def section(anchor: str, title: str, body: str) -> str:
    return (f'<section id="{anchor}" aria-labelledby="{anchor}-h">'
            f'<h2 id="{anchor}-h">{escape(title)}</h2>{body}</section>')


def document(title: str, meta: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole page; ``sections`` are (anchor, title, body HTML)."""
    nav = "".join(f'<li><a href="#{a}">{escape(t)}</a></li>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{DEFS}<main><header><h1>{escape(title)}</h1>"
            f'<p class="meta">{meta}</p></header>'
            f'<nav aria-label="Sections"><ul>{nav}</ul></nav>{body}'
            '<footer><p class="meta">Written by docex-ops report --html; self-contained '
            "(no scripts, no network).</p></footer></main></body></html>\n")
