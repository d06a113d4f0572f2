"""Migration runs over the manager's servers: per-server job limits, results by server.

``--jobs N`` means N tenants at once on EACH server: the run gets N x servers
workers, each tenant's migration takes a slot of its own server, and the plan
is interleaved round-robin by server so no server idles while another has a
queue. One server is the same rule with one server. On a Citus cluster the place
is the worker node holding the tenant (the coordinator only routes): N per node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docex_ops.backends.base import Backend, TenantInfo
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.plan import Plan


def control_backend(manager: TenantDatabaseManager) -> Backend:
    """The server holding docex-ops' control data (run records, the runner lock)."""
    return manager.servers[manager.settings.directory_server]


def servers_of(manager: TenantDatabaseManager, tenants: Sequence[TenantInfo]
               ) -> dict[str, str] | None:
    """Tenant id -> server name, to group results by; None with one server (nothing
    to group).

    Discovery already placed each tenant: its answer is used rather than asking the
    directory again per tenant (which would also refuse a tenant frozen by a move,
    that status must still show); a tenant it names no server for is the directory
    server's."""
    if len(manager.servers) < 2:
        return None
    return {t.tenant_id: t.server or manager.settings.directory_server for t in tenants}


def places_of(manager: TenantDatabaseManager, tenants: Sequence[TenantInfo]
              ) -> dict[str, str]:
    """Tenant id -> whose job slots its migration takes: the Citus worker node holding it,
    else its server, as discovery found them (no query of its own)."""
    control = manager.settings.directory_server
    return {t.tenant_id: t.node or t.server or control for t in tenants}


def spread_over_servers(manager: TenantDatabaseManager, plan: Plan, jobs: int) -> int:
    """Interleave the plan's steps by place (server or Citus node) and limit each place
    to ``jobs`` at once; returns how many workers the run needs."""
    places = plan.places
    if len(set(places.values())) > 1:
        from docex_ops.topology.placement import interleave_by_server  # several places only

        plan.steps = interleave_by_server(
            plan.steps, {i: places.get(s.tenant_id, "") for i, s in enumerate(plan.steps)})
    manager.set_server_jobs(jobs)  # the manager's limit: restore and split honour it too
    return jobs * max(len(manager.servers), len(set(places.values())))


def place_of(plan: Plan, tenant_id: str) -> str | None:
    """The place a step's tenant takes a job slot of (None: its server, looked up)."""
    return plan.places.get(tenant_id)


def count_by_server(revisions: Iterable[tuple[str, str]], servers: dict[str, str]
                    ) -> dict[str, dict[str, int]]:
    """Per server: tenants per revision (``revisions``: (tenant id, revision or state))."""
    counts = Counter((servers[t], rev) for t, rev in revisions)
    grouped: dict[str, dict[str, int]] = {}
    for (server, revision), n in sorted(counts.items()):
        grouped.setdefault(server, {})[revision] = n
    return grouped
