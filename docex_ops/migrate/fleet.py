"""Migration runs over several servers: per-server job limits, results grouped by server.

``--jobs N`` means N tenants at once on EACH server: the run gets N x servers
workers, each tenant's migration takes a slot of its own server
(manager.set_server_jobs), and the plan is interleaved round-robin by
server so no server idles while another has a queue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from docex_ops.backends import Backend, TenantInfo
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.plan import Plan, StatusReport
from docex_ops.migrate.runner import RunOptions
from docex_ops.topology.placement import interleave_by_server


def servers_of(tenants: list[TenantInfo], backend: Backend) -> dict[str, str]:
    """Tenant id -> server name (``default`` for every tenant of a single server)."""
    return {t.tenant_id: t.server or backend.settings.directory_server for t in tenants}


def spread_over_servers(manager: TenantDatabaseManager, plan: Plan, tenants: list[TenantInfo],
                        options: RunOptions) -> tuple[RunOptions, dict[str, str] | None]:
    """Prepare a plan and options for a fleet, and say where each tenant is (to group the
    report by); on a single server: the options unchanged, and None."""
    if len(manager.servers) < 2:
        return options, None
    servers = servers_of(tenants, manager.backend)
    plan.steps = interleave_by_server(
        plan.steps, {i: servers[s.tenant_id] for i, s in enumerate(plan.steps)})
    manager.set_server_jobs(options.jobs)
    return replace(options, jobs=options.jobs * len(manager.servers)), servers


def status_by_server(report: StatusReport, servers: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per server: tenants per revision (or state, for unversioned ones)."""
    counts = Counter((servers[t.tenant_id], t.revision or f"({t.state})")
                     for t in report.tenants)
    grouped: dict[str, dict[str, int]] = {}
    for (server, revision), n in sorted(counts.items()):
        grouped.setdefault(server, {})[revision] = n
    return grouped
