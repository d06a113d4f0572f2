"""The sections about what was done to the fleet: the last migration runs and their
failures, backup freshness, isolation findings. Error texts and isolation details can
hold anything a tenant wrote: they are escaped like every other value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.cli.report_html.fleet import server_of
from docex_ops.cli.report_html.page import (
    LIMIT,
    age,
    badge,
    counted,
    esc,
    more,
    table,
    utc,
    when,
)
from docex_ops.cli.report_html.svg import Bar, bar_chart

if TYPE_CHECKING:
    from docex_ops.observe.snapshot import FleetSnapshot, RunFact

ERROR_CHARS = 600   # an error longer than this is cut on the page (the run record has it)
RUNS_SHOWN = 10
_FAILED = {"failed", "aborted", "interrupted"}


def _level(status: str) -> str:
    lowered = status.lower()
    if lowered in _FAILED or lowered == "fail":
        return "FAIL"
    if lowered in {"running", "warn", "partial"}:
        return "WARN"
    return "OK"


def _cut(text: str | None) -> str:
    if text is None:
        return "-"
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + " \u2026 (cut)"


def _counts(run: RunFact) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(run.tenants.items())) or "-"


def runs(snap: FleetSnapshot) -> str:
    if not snap.runs:
        return '<p class="empty">No migration runs recorded.</p>'
    shown = snap.runs[:RUNS_SHOWN]
    rows = [[esc(r.run_id), esc(f"{r.action} {r.target}"),
             f"{badge(_level(r.status))} {esc(r.status)}", esc(when(r.started_at)),
             esc(age(r.seconds)), esc(_counts(r))] for r in shown]
    html = table(["run", "action", "status", "started", "took", "tenants"], rows,
                 caption="Newest first")
    html += more(len(snap.runs), len(shown), "runs")
    for run in shown:
        if not run.failed:
            continue
        total = max(run.tenants.get("failed", 0), len(run.failed))
        failed = run.failed[:LIMIT]
        html += f"<h3>Failed tenants in run {esc(run.run_id)}</h3>" + table(
            ["tenant", "server", "error"],
            [[esc(f.tenant_id), esc(server_of(snap, f.tenant_id)),
              f'<pre class="err">{esc(_cut(f.error))}</pre>'] for f in failed])
        html += more(total, len(failed), "failed tenants")
    return html


def _backup_ages(snap: FleetSnapshot) -> tuple[dict[str, float], list[str]]:
    """Seconds since each tenant's newest verified backup; tenants without one."""
    known = snap.backups or {}
    taken = utc(snap.taken_at)
    ages, missing = {}, []
    for tenant in sorted({t.tenant_id for t in snap.status.tenants} | set(known)):
        fact = known.get(tenant)
        if fact is None or fact.newest_verified_at is None:
            missing.append(tenant)
        else:
            ages[tenant] = (taken - utc(fact.newest_verified_at)).total_seconds()
    return ages, missing


def backups(snap: FleetSnapshot) -> str:
    if snap.backups is None:
        return ('<p class="empty">No backup folder was given: run '
                "<code>docex-ops report --html FILE --backups DIR</code>.</p>")
    limit = snap.stale_after_s
    ages, missing = _backup_ages(snap)
    # Buckets relative to the stale limit, so that "stale" is always a bucket edge.
    edges = [limit / 4, limit / 2, limit, 2 * limit, 7 * limit]
    names = [f"< {age(edges[0])}"] + [f"{age(a)} - {age(b)}" for a, b in zip(edges, edges[1:],
                                                                               strict=False)]
    names.append(f">= {age(edges[-1])}")
    counts = [0] * len(names)
    for seconds in ages.values():
        counts[sum(seconds >= e for e in edges)] += 1
    bars = [Bar(name, n, flag="stale" if i >= 3 else None) for i, (name, n)
            in enumerate(zip(names, counts, strict=True))]
    bars.append(Bar("no verified backup", len(missing), flag="none" if missing else None))
    html = (f"<p>Folder <code>{esc(snap.backups_dir)}</code>; a backup older than "
            f"{esc(age(limit))} is stale.</p>"
            + bar_chart("Tenants by age of their newest verified backup", bars, "tenants"))
    stale = sorted(((t, s) for t, s in ages.items() if s >= limit), key=lambda ts: -ts[1])
    html += "<h3>Stale backups</h3>"
    if stale:
        facts = snap.backups
        rows = [[esc(t), esc(server_of(snap, t)), esc(when(facts[t].newest_verified_at)),
                 f"{badge('WARN')} {esc(age(s))}"] for t, s in stale[:LIMIT]]
        html += table(["tenant", "server", "newest verified", "age"], rows)
        html += more(len(stale), min(len(stale), LIMIT), "tenants")
    else:
        html += f"<p>{badge('OK')} None.</p>"
    html += "<h3>Tenants without a verified backup</h3>"
    if missing:
        shown = missing[:LIMIT]
        rows = [[esc(t), esc(server_of(snap, t)),
                 esc(snap.backups[t].archives if t in snap.backups else 0),
                 esc(when(snap.backups[t].newest_at) if t in snap.backups else None)]
                for t in shown]
        html += table(["tenant", "server", "archives", "newest (unverified)"], rows,
                      numeric=[2])
        html += more(len(missing), len(shown), "tenants")
    else:
        html += f"<p>{badge('OK')} None.</p>"
    return html


def isolation(snap: FleetSnapshot) -> str:
    record = snap.isolation
    if record is None:
        return ('<p class="empty">No isolation record: run '
                "<code>docex-ops verify-isolation --record</code>.</p>")
    counts = sorted(record.counts.items(), key=lambda kv: (_level(kv[0][1]) == "OK",
                                                          kv[0][0], kv[0][1]))
    rows = [[esc(check), f"{badge(_level(status))} {esc(status)}", esc(n)]
            for (check, status), n in counts]
    html = (f"<p>Recorded {esc(when(record.recorded_at))}.</p>"
            + table(["check", "status", "results"], rows, numeric=[2]))
    if not record.findings:
        return html + f"<p>{badge('OK')} No failing or warning results.</p>"
    ordered = sorted(record.findings, key=lambda f: (_level(f.status) != "FAIL", f.check))
    shown = ordered[:LIMIT]
    html += "<h3>Findings</h3>" + table(
        ["check", "status", "tenant", "object", "detail"],
        [[esc(f.check), badge(_level(f.status)), esc(f.tenant_id), esc(f.object),
          f'<pre class="err">{esc(_cut(f.detail))}</pre>'] for f in shown])
    total = sum(n for (_, status), n in record.counts.items() if _level(status) != "OK")
    return html + more(max(total, len(ordered)), len(shown), "findings")


def backup_counts(snap: FleetSnapshot) -> tuple[int | None, int | None]:
    """(stale, without a verified backup); None, None without a backup folder."""
    if snap.backups is None:
        return None, None
    ages, missing = _backup_ages(snap)
    return sum(s >= snap.stale_after_s for s in ages.values()), len(missing)


def ops_findings(snap: FleetSnapshot) -> list[tuple[str, str]]:
    found = []
    for i, run in enumerate(snap.runs[:RUNS_SHOWN]):
        # The newest run's failure is the fleet's state now; an earlier one may have
        # been resumed since, but its tenants are worth a look.
        if _level(run.status) == "OK" or (i and _level(run.status) != "FAIL"):
            continue
        found.append(("WARN" if i else _level(run.status),
                      f"{'earlier' if i else 'last'} run {run.run_id} ({run.action} "
                      f"{run.target}) {run.status}: "
                      f"{counted(run.tenants.get('failed', 0), 'tenants')} failed"))
    if snap.isolation is not None:
        for level in ("FAIL", "WARN"):
            n = sum(c for (_, s), c in snap.isolation.counts.items() if _level(s) == level)
            if n:
                found.append((level, f"isolation, last record: {counted(n, level + ' results')}"))
    stale, missing = backup_counts(snap)
    if missing:
        found.append(("FAIL", f"no verified backup: {counted(missing, 'tenants')}"))
    if stale:
        found.append(("WARN", f"newest verified backup older than "
                              f"{age(snap.stale_after_s)}: {counted(stale, 'tenants')}"))
    return found
