"""The pool report as text (table) or JSON: the same output the CLI prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from docex_ops.cli.output import human_bytes, render_json, render_table
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools.capacity import Capacity
from docex_ops.pools.citus_workers import CitusPools
from docex_ops.pools.pgbouncer import BouncerView
from docex_ops.pools.report import (
    OtherConnection,
    PoolReport,
    ServerUsage,
    TenantUsage,
    pool_report,
)

TENANT_COLUMNS = ("tenant", "total", "active", "idle", "idle_in_tx", "longest_idle_in_tx_s",
                  "oldest_s", "process_open", "process_checked_out", "known")


def render_report(report: PoolReport, fmt: str = "table") -> str:
    if fmt == "json":
        return render_json(report_data(report))
    return "\n".join(_table_sections(report))


def report_data(report: PoolReport) -> dict[str, Any]:
    """The report as the JSON ``data`` of `pools report` (docs/json/pools-report...)."""
    data = asdict(report)
    if data["pooler"] is None:  # the key only behind PgBouncer (pooler_admin)
        del data["pooler"]
    return data


def _table_sections(report: PoolReport) -> list[str]:
    lines = [f"{report.backend} {report.target} at {report.generated_at:%Y-%m-%d %H:%M:%S}Z"]
    if report.servers:
        return lines + _fleet_sections(report)
    assert report.capacity is not None
    if report.server is not None:
        lines.append(_server_line(report.server))
    lines += _budget_lines(report.capacity, report.process, report.pooler is not None)
    lines.extend(f"WARN {w}" for w in report.warnings)
    if report.pooler is not None:
        lines += pooler_lines(report.pooler)
    lines += _connection_tables(report.tenants, report.other_connections, report.server)
    if report.citus is not None:
        lines += citus_lines(report.citus)
    if report.backend == "sqlite":
        files = [{"tenant": f.tenant_id, "size": human_bytes(f.size_bytes),
                  "wal": human_bytes(f.wal_bytes), "held_open_by": f.holders or None,
                  "path": f.path} for f in report.files]
        lines += ["", "tenant files:", render_table(files)]
    return lines


def _fleet_sections(report: PoolReport) -> list[str]:
    """Totals and every warning first, then each server with its own tables."""
    lines = [_process_line(report.process, "this process, all servers")]
    lines.extend(f"WARN {w}" for w in report.warnings)
    for section in report.servers:
        lines += ["", f"== server {section.name} ({section.target})",
                  _server_line(section.usage), *_budget_lines(section.capacity, section.process)]
        lines += _connection_tables(
            [t for t in report.tenants if t.server == section.name],
            [o for o in report.other_connections if o.server == section.name], section.usage)
    return lines


def _server_line(srv: ServerUsage) -> str:
    return (f"server: {srv.client_connections} of {srv.available} connections in use "
            f"(max_connections {srv.max_connections}, superuser_reserved "
            f"{srv.superuser_reserved_connections}, reserved {srv.reserved_connections}); "
            f"docex tenants {srv.tenant_connections}, no tenant {srv.other_connections}")


def _budget_lines(cap: Capacity, process: dict[str, Any], pooled: bool = False) -> list[str]:
    budget = "unbounded" if cap.budget is None else f"{cap.budget} ({cap.budget_source})"
    limit = "" if cap.server_available is None else f" vs {cap.server_available} on the server"
    if pooled:
        return [f"capacity: behind PgBouncer at most {cap.worst_case} server connections"
                f"{limit}; {cap.tenants} tenants x ({cap.pool_size} + {cap.max_overflow}) "
                f"are PgBouncer's clients; budget per process {budget}",
                _process_line(process, "this process")]
    return [f"capacity: {cap.tenants} tenants x ({cap.pool_size} + {cap.max_overflow}) = "
            f"{cap.worst_case} worst case{limit}; budget per process {budget}",
            _process_line(process, "this process")]


def _process_line(proc: dict[str, Any], who: str) -> str:
    return (f"{who}: {proc['open']} open tenant connections, peak {proc['peak']}, "
            f"{proc['waiting']} waiting, {proc['timeouts']} budget timeouts")


def _connection_tables(tenants: list[TenantUsage], others: list[OtherConnection],
                       server: ServerUsage | None) -> list[str]:
    rows = [{"tenant": t.tenant_id, "total": t.total, "active": t.active, "idle": t.idle,
             "idle_in_tx": t.idle_in_transaction,
             "longest_idle_in_tx_s": t.longest_idle_in_transaction_s, "oldest_s": t.oldest_s,
             "process_open": t.process_open, "process_checked_out": t.process_checked_out,
             "known": t.known} for t in tenants]
    lines = ["", "tenant connections:", render_table(rows, TENANT_COLUMNS)]
    if server is not None:
        shown = [{k: v for k, v in asdict(o).items() if k != "server"} for o in others]
        lines += ["", "connections of no tenant:", render_table(shown)]
    return lines


def pooler_lines(view: BouncerView) -> list[str]:
    """PgBouncer's pools beside the in-process pools and pg_stat_activity."""
    rows = [{"database": p.database, "user": p.user, "pool_mode": p.pool_mode,
             "clients": p.client_active, "waiting": p.client_waiting,
             "server_active": p.server_active, "server_idle": p.server_idle,
             "server_used": p.server_used, "maxwait_s": p.maxwait_s} for p in view.pools]
    head = (f"pgbouncer {view.target}: pool_mode {view.pool_mode}, default_pool_size "
            f"{view.default_pool_size}, max_db_connections {view.max_db_connections or 'unlimited'}"
            f", max_client_conn {view.max_client_conn}")
    stats = [{"database": s.database, "transactions": s.transactions, "queries": s.queries,
              "mean_xact_ms": f"{s.mean_transaction_us / 1000:.3f}",
              "mean_query_ms": f"{s.mean_query_us / 1000:.3f}",
              "total_wait_s": f"{s.total_wait_us / 1e6:.3f}",
              "recent_xact_per_s": s.recent_transactions_per_s,
              "recent_wait_ms": f"{s.recent_wait_us / 1000:.3f}"} for s in view.all_stats()]
    return ["", head, render_table(rows), "",
            "pgbouncer stats (since start; recent_*: its last stats_period):",
            render_table(stats)]


def citus_lines(pools: CitusPools) -> list[str]:
    """The coordinator's connections to each Citus worker, after the tenant pools."""
    limit = "no limit" if pools.pool_limit is None else f"{pools.pool_limit} per worker"
    head = (f"citus workers: citus.max_shared_pool_size {pools.max_shared_pool_size} "
            f"({limit}), citus.max_adaptive_executor_pool_size "
            f"{pools.max_adaptive_executor_pool_size}")
    rows = [{"node": w.node, "tenants": w.tenants, "coordinator_connections": w.pool_connections,
             "limit": pools.pool_limit, "worker_backends": w.worker_backends,
             "worker_active": w.worker_active} for w in pools.workers]
    return ["", head, render_table(rows)]


def render_pool_report(manager: TenantDatabaseManager | None = None, fmt: str = "table") -> str:
    """The same report `docex-ops pools report` prints, joined with this process' pools."""
    return render_report(pool_report(manager), fmt)
