"""The HTML report's renderer on hand-built snapshots: escaping, an empty fleet, caps,
and a page that could not fetch anything if it tried."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

from report_html_support import network_references, snapshot

from docex_ops.cli.report_html import findings, render_html
from docex_ops.cli.report_html.page import LIMIT
from docex_ops.migrate.plan import StatusReport

HOSTILE = '<script>alert(1)</script><img src="http://evil.example/x.png">&amp;"\''


class _Tags(HTMLParser):
    """Every start tag, and the text of the document (what a reader sees)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    return tags


def test_hostile_error_and_detail_texts_are_escaped() -> None:
    html = render_html(snapshot(hostile=HOSTILE))
    tags = parsed(html)
    names = {t for t, _ in tags.tags}
    assert "script" not in names and "img" not in names, names
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the error, the detail
    assert "&amp;amp;" in html  # an entity in the text is shown, not interpreted
    text = "".join(tags.text)
    assert HOSTILE in text  # the reader sees the text exactly as stored
    assert network_references(html) == []


def test_hostile_tenant_and_server_names_are_escaped_in_charts_too() -> None:
    snap = snapshot()
    evil = '"><svg onload=x>'
    status = StatusReport(snap.status.head, snap.status.tenants,
                          servers={t.tenant_id: evil for t in snap.status.tenants})
    html = render_html(snapshot(status=status))
    assert not any("onload" in attrs for _, attrs in parsed(html).tags)
    assert "&quot;&gt;&lt;svg onload=x&gt;" in html


def test_page_is_self_contained_accessible_and_has_every_section() -> None:
    html = render_html(snapshot())
    tags = parsed(html)
    assert html.startswith("<!DOCTYPE html>")
    assert ("html", {"lang": "en"}) in tags.tags
    assert "<title>docex-ops fleet report</title>" in html
    assert "@media print" in html and "@media (max-width:600px)" in html
    assert 'name="viewport"' in html
    ids = {a.get("id") for _, a in tags.tags}
    assert {"summary", "revisions", "behind", "runs", "backups", "sizes", "connections",
            "isolation"} <= ids
    for tag, attrs in tags.tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in {"href", "src"}:
                assert (value or "").startswith("#"), (tag, name, value)
    charts = [a for t, a in tags.tags if t == "svg" and a.get("role") == "img"]
    assert len(charts) >= 4 and all(a.get("aria-label") for a in charts)
    assert html.count("<title>") >= 1 + len(charts)
    assert all(h in html for h in ('<th scope="col">tenant</th>', "<h1>", "<h2"))
    assert network_references(html) == []


def test_planted_facts_show_worst_first() -> None:
    snap = snapshot()
    levels = [level for level, _ in findings(snap)]
    assert levels == sorted(levels, key=["FAIL", "WARN", "OK"].index)
    texts = [text for _, text in findings(snap)]
    assert texts[0] == "last run run_bad (upgrade head) failed: 1 tenant failed"
    assert "isolation, last record: 1 FAIL result" in texts
    assert "newest verified backup older than 24.0 h: 1 tenant" in texts
    text = "".join(parsed(render_html(snap)).text)
    assert "Failed tenants in run run_bad" in text
    assert "t2" in text.split("Stale backups")[1].split("Tenants without")[0]
    assert "2.0 d" in text  # t2's age
    assert "12 of 97 (12 %)" in text  # client connections against what roles may open


def test_an_earlier_failed_run_is_a_warning_under_a_newer_good_one() -> None:
    snap = snapshot()
    good = replace(snap.runs[0], run_id="run_good", status="done", tenants={"done": 3},
                   failed=[])
    texts = findings(replace(snap, runs=[good, *snap.runs]))
    assert ("WARN", "earlier run run_bad (upgrade head) failed: 1 tenant failed") in texts
    assert not any(text.startswith("last run") for _, text in texts)


def test_empty_fleet_renders_every_section_with_a_sentence() -> None:
    snap = snapshot(tenants=0, status=StatusReport(None, []), runs=[], pools=None,
                    isolation=None, backups=None, backups_dir=None, sizes={}, behind_by={})
    html = render_html(snap)
    text = "".join(parsed(html).text)
    assert "No tenants." in text and "No migration runs recorded." in text
    assert "No backup folder was given" in text and "No isolation record" in text
    assert "Connections could not be read" in text and "No tenant sizes were read." in text
    assert "nothing to report" in text
    assert network_references(html) == []


def test_lists_are_capped_with_and_k_more() -> None:
    n = LIMIT + 40
    snap = snapshot(tenants=n)
    behind = {f"t{i}": 1 + i % 3 for i in range(n)}
    html = render_html(snapshot(tenants=n, behind_by=behind, backups={}))
    text = "".join(parsed(html).text)
    assert f"and {n - LIMIT} more tenants" in text  # behind, largest, no verified backup
    assert text.count(f"and {n - LIMIT} more tenants") == 3
    behind_rows = html.split('id="behind"')[1].split("</section>")[0].count("<tr>")
    assert behind_rows == LIMIT + 1  # the header row and LIMIT tenants
    assert len(snap.status.tenants) == n


def test_no_verified_backup_and_long_errors_are_cut() -> None:
    long_error = "x" * 5000
    snap = snapshot(hostile=long_error, backups={})
    html = render_html(snap)
    assert "x" * 600 + " \u2026 (cut)" in html and "x" * 601 not in html
    assert ("FAIL", "no verified backup: 3 tenants") in findings(snap)
    assert re.search(r">no verified backup</text>.*?>3 tenants \u00b7 none</text>", html)


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_colour_reads_on_white_and_states_are_words_too() -> None:
    """WCAG AA (4.5:1) for each colour of the page against its white background and
    the panel grey; a state is never told by colour alone (a badge writes it)."""
    from docex_ops.cli.report_html.page import CSS, badge

    colours = dict(re.findall(r"--(\w+):(#[0-9a-f]{6})", CSS))
    for name in ("fg", "muted", "bar", "head", "bad", "warn"):
        for background in ("#ffffff", colours["panel"]):
            lighter, darker = sorted((_luminance(colours[name]), _luminance(background)),
                                     reverse=True)
            assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (name, background)
    assert all(level in badge(level) for level in ("OK", "WARN", "FAIL"))
    assert "border-style:double" in CSS and "border-style:dashed" in CSS  # FAIL, WARN
