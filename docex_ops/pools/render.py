"""The pool report as text (table) or JSON: the same output the CLI prints."""

from __future__ import annotations

from dataclasses import asdict

from docex_ops.output import human_bytes, render_json, render_table
from docex_ops.pools.report import PoolReport

TENANT_COLUMNS = ("tenant", "total", "active", "idle", "idle_in_tx", "longest_idle_in_tx_s",
                  "oldest_s", "process_open", "process_checked_out", "known")


def render_report(report: PoolReport, fmt: str = "table") -> str:
    if fmt == "json":
        return render_json(asdict(report))
    return "\n".join(_table_sections(report))


def _table_sections(report: PoolReport) -> list[str]:
    cap = report.capacity
    budget = "unbounded" if cap.budget is None else f"{cap.budget} ({cap.budget_source})"
    lines = [f"{report.backend} {report.target} at {report.generated_at:%Y-%m-%d %H:%M:%S}Z"]
    if report.server is not None:
        srv = report.server
        lines.append(
            f"server: {srv.client_connections} of {srv.available} connections in use "
            f"(max_connections {srv.max_connections}, superuser_reserved "
            f"{srv.superuser_reserved_connections}, reserved {srv.reserved_connections}); "
            f"docex tenants {srv.tenant_connections}, no tenant {srv.other_connections}")
    limit = "" if cap.server_available is None else f" vs {cap.server_available} on the server"
    lines.append(f"capacity: {cap.tenants} tenants x ({cap.pool_size} + {cap.max_overflow}) = "
                 f"{cap.worst_case} worst case{limit}; budget per process {budget}")
    proc = report.process
    lines.append(f"this process: {proc['open']} open tenant connections, peak {proc['peak']}, "
                 f"{proc['waiting']} waiting, {proc['timeouts']} budget timeouts")
    lines.extend(f"WARN {w}" for w in report.warnings)
    rows = [{"tenant": t.tenant_id, "total": t.total, "active": t.active, "idle": t.idle,
             "idle_in_tx": t.idle_in_transaction,
             "longest_idle_in_tx_s": t.longest_idle_in_transaction_s, "oldest_s": t.oldest_s,
             "process_open": t.process_open, "process_checked_out": t.process_checked_out,
             "known": t.known} for t in report.tenants]
    lines += ["", "tenant connections:", render_table(rows, TENANT_COLUMNS)]
    if report.server is not None:
        others = [asdict(o) for o in report.other_connections]
        lines += ["", "connections of no tenant:", render_table(others)]
    if report.backend == "sqlite":
        files = [{"tenant": f.tenant_id, "size": human_bytes(f.size_bytes),
                  "wal": human_bytes(f.wal_bytes), "held_open_by": f.holders or None,
                  "path": f.path} for f in report.files]
        lines += ["", "tenant files:", render_table(files)]
    return lines
