"""The fleet's sections: summary, revisions per server, tenants behind head, sizes,
connections against limits. Each returns HTML built from escaped text only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.cli.output import human_bytes
from docex_ops.cli.report_html.page import LIMIT, badge, counted, esc, more, table
from docex_ops.cli.report_html.svg import Bar, bar_chart, meter

if TYPE_CHECKING:
    from docex_ops.observe.snapshot import FleetSnapshot
    from docex_ops.pools.capacity import Capacity
    from docex_ops.pools.report import ServerUsage

ONE_SERVER = "the server"  # the name shown where there is one server (no fleet)
# Size buckets: powers of ten from 1 MB; a tenant of a new DocEX schema is ~1 MB.
_SIZE_EDGES = [10 ** 6, 10 ** 7, 10 ** 8, 10 ** 9, 10 ** 10]
_SIZE_NAMES = ["< 1 MB", "1-10 MB", "10-100 MB", "100 MB-1 GB", "1-10 GB", ">= 10 GB"]


def server_of(snap: FleetSnapshot, tenant: str) -> str:
    servers = snap.servers
    return ONE_SERVER if servers is None else servers.get(tenant, "-")


def summary(snap: FleetSnapshot, findings: list[tuple[str, str]]) -> str:
    counts = snap.status.counts
    cards = [("tenants", str(len(snap.status.tenants))),
             ("at head", str(counts.get("current", 0))),
             ("behind head", str(len(snap.behind_by))),
             ("servers", str(len(set(snap.servers.values())) if snap.servers else 1)),
             ("total size", human_bytes(sum(snap.sizes.values())))]
    html = '<div class="cards">' + "".join(
        f'<div class="card"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in cards) + "</div>"
    html += (f"<p>Head revision: <code>{esc(snap.status.head)}</code>. "
             f"States: {esc(', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none')}"
             ".</p>")
    html += "<h3>Worst first</h3>"
    shown = findings[:LIMIT]
    html += "<ul class=\"findings\">" + "".join(
        f"<li>{badge(level)} {esc(text)}</li>" for level, text in shown) + "</ul>"
    return html + more(len(findings), len(shown), "findings")


def revisions(snap: FleetSnapshot) -> str:
    if not snap.status.tenants:
        return '<p class="empty">No tenants.</p>'
    per_server = snap.status.by_server or {ONE_SERVER: snap.status.by_revision}
    html = ""
    for server, by_revision in sorted(per_server.items()):
        ordered = sorted(by_revision.items(),
                         key=lambda kv: (kv[0] != snap.status.head, -kv[1], kv[0]))
        bars = [Bar(rev, n, flag="head" if rev == snap.status.head else None)
                for rev, n in ordered[:LIMIT]]
        html += f"<h3>{esc(server)}</h3>" + bar_chart(
            f"Tenants per revision on {server}", bars, "tenants")
        html += more(len(ordered), len(bars), "revisions")
    return html


def behind(snap: FleetSnapshot) -> str:
    if not snap.behind_by:
        return f"<p>{badge('OK')} Every tenant with a revision is at head.</p>"
    revision = {t.tenant_id: t.revision for t in snap.status.tenants}
    ordered = sorted(snap.behind_by.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = [[esc(t), esc(server_of(snap, t)), f"<code>{esc(revision.get(t))}</code>", esc(n)]
            for t, n in ordered[:LIMIT]]
    return (f"<p>Behind head <code>{esc(snap.status.head)}</code>: "
            f"{esc(counted(len(ordered), 'tenants'))}, most behind first.</p>"
            + table(["tenant", "server", "revision", "revisions behind"], rows, numeric=[3])
            + more(len(ordered), len(rows), "tenants"))


def sizes(snap: FleetSnapshot) -> str:
    if not snap.sizes:
        return '<p class="empty">No tenant sizes were read.</p>'
    buckets = [0] * len(_SIZE_NAMES)
    for size in snap.sizes.values():
        buckets[sum(size >= edge for edge in _SIZE_EDGES)] += 1
    used = [i for i, n in enumerate(buckets) if n]
    bars = [Bar(_SIZE_NAMES[i], buckets[i]) for i in range(used[0], used[-1] + 1)]
    largest = sorted(snap.sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:LIMIT]
    rows = [[esc(t), esc(server_of(snap, t)), esc(human_bytes(n))] for t, n in largest]
    note = ("<p>PostgreSQL: sizes as the catalog last measured them (VACUUM and ANALYZE "
            "update them), not a fresh count of pages.</p>" if snap.backend == "postgresql"
            else "")
    return (note + bar_chart("Tenants by size on disk", bars, "tenants")
            + "<h3>Largest tenants</h3>"
            + table(["tenant", "server", "size"], rows, numeric=[2])
            + more(len(snap.sizes), len(rows), "tenants"))


def _server_rows(snap: FleetSnapshot) -> list[tuple[str, ServerUsage, Capacity | None]]:
    pools = snap.pools
    if pools is None:
        return []
    if pools.servers:
        return [(s.name, s.usage, s.capacity) for s in pools.servers]
    if pools.server is not None:
        return [(ONE_SERVER, pools.server, pools.capacity)]
    return []


def connections(snap: FleetSnapshot) -> str:
    pools = snap.pools
    if pools is None:
        return '<p class="empty">Connections could not be read (see the problems above).</p>'
    servers = _server_rows(snap)
    if not servers:  # SQLite: files, no server limit
        held = sum(1 for f in pools.files if f.holders)
        return (f"<p>SQLite: no server connection limit. {len(pools.files)} tenant files, "
                f"{held} held open by a process.</p>")
    html = ""
    for name, usage, capacity in servers:
        marks = []
        if capacity is not None:
            marks.append(("worst case of the pool settings", capacity.worst_case))
            if capacity.budget is not None:
                marks.append(("connection budget", capacity.budget))
        html += f"<h3>{esc(name)}</h3>" + meter(
            f"Client connections on {name} against what ordinary roles may open",
            usage.client_connections, usage.available, marks)
        rows = [[esc(usage.max_connections), esc(usage.available),
                 esc(usage.client_connections), esc(usage.tenant_connections),
                 esc(usage.other_connections),
                 badge("WARN") if capacity is not None and capacity.exceeds else badge("OK")]]
        html += table(["max_connections", "available", "clients", "tenant", "other",
                       "worst case fits"], rows, numeric=[0, 1, 2, 3, 4])
    if pools.warnings:
        shown = pools.warnings[:LIMIT]
        html += "<ul>" + "".join(f"<li>{badge('WARN')} {esc(w)}</li>" for w in shown) + "</ul>"
        html += more(len(pools.warnings), len(shown), "warnings")
    return html


def connection_findings(snap: FleetSnapshot) -> list[tuple[str, str]]:
    found = []
    for name, usage, capacity in _server_rows(snap):
        if usage.client_connections > 0.9 * max(usage.available, 1):
            found.append(("FAIL", f"{name}: {usage.client_connections} client connections of "
                                  f"{usage.available} available"))
        if capacity is not None and capacity.exceeds:
            found.append(("WARN", f"{name}: the pool settings' worst case "
                                  f"{capacity.worst_case} exceeds the {usage.available} "
                                  "connections the server accepts"))
    return found
