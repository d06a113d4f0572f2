"""``docex-ops report --html``: a FleetSnapshot rendered as one self-contained HTML page
(inline CSS and SVG, no script, nothing fetched). The CLI layer renders; the snapshot is
``observe.collect``'s."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from docex_ops.cli.report_html import fleet, ops
from docex_ops.cli.report_html.page import age, counted, document, when

if TYPE_CHECKING:
    from docex_ops.observe.snapshot import FleetSnapshot

_ORDER = {"FAIL": 0, "WARN": 1, "OK": 2}


def findings(snap: FleetSnapshot) -> list[tuple[str, str]]:
    """(level, text), worst first: what the summary lists."""
    found = ops.ops_findings(snap) + fleet.connection_findings(snap)
    if snap.behind_by:
        found.append(("WARN", f"behind head {snap.status.head}: "
                              f"{counted(len(snap.behind_by), 'tenants')}"))
    odd = [t for t in snap.status.tenants if t.state not in {"current", "behind"}]
    if odd:
        states = sorted({t.state for t in odd})
        found.append(("WARN", f"neither at head nor behind it ({', '.join(states)}): "
                              f"{counted(len(odd), 'tenants')}"))
    # collect's problems: what could not be read, placement disagreements, odd tenants
    found += [("WARN", p) for p in snap.problems]
    if not found:
        found.append(("OK", "nothing to report: every tenant is at head and nothing failed"))
    return sorted(found, key=lambda f: _ORDER.get(f[0], 3))


def counts(snap: FleetSnapshot) -> dict[str, int | None]:
    """The page's headline numbers (report --format json); None: not read."""
    stale, missing = ops.backup_counts(snap)
    isolation = snap.isolation
    return {
        "tenants": len(snap.status.tenants), "behind": len(snap.behind_by),
        "failed_in_last_run": snap.runs[0].tenants.get("failed", 0) if snap.runs else 0,
        "stale_backups": stale, "without_verified_backup": missing,
        "isolation_fail": None if isolation is None else sum(
            n for (_, status), n in isolation.counts.items() if status.lower() == "fail")}


def render_html(snap: FleetSnapshot) -> str:
    """The page; every value in it is escaped (tenant ids, errors, details)."""
    where = f"{snap.backend}, {len(snap.status.tenants)} tenants"
    meta = (f"Taken {when(snap.taken_at)} ({where}); backups stale after "
            f"{age(snap.stale_after_s)}.")
    return document("docex-ops fleet report", escape(meta), [
        ("summary", "Summary", fleet.summary(snap, findings(snap))),
        ("revisions", "Revisions per server", fleet.revisions(snap)),
        ("behind", "Tenants behind head", fleet.behind(snap)),
        ("runs", "Last migration runs", ops.runs(snap)),
        ("backups", "Backup freshness", ops.backups(snap)),
        ("sizes", "Tenant sizes", fleet.sizes(snap)),
        ("connections", "Connections against limits", fleet.connections(snap)),
        ("isolation", "Isolation findings", ops.isolation(snap)),
    ])
