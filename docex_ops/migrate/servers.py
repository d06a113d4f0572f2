"""Migration runs over the manager's servers: per-server job limits, results by server.

``--jobs N`` means N tenants at once on EACH server: the run gets N x servers
workers, each tenant's migration takes a slot of its own server, and the plan
is interleaved round-robin by server so no server idles while another has a
queue. One server is the same rule with one server.
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


def spread_over_servers(manager: TenantDatabaseManager, plan: Plan, jobs: int) -> int:
    """Interleave the plan's steps by server and limit each server to ``jobs`` at once;
    returns how many workers the run needs."""
    if plan.servers is not None:
        from docex_ops.topology.placement import interleave_by_server  # several servers only

        servers = plan.servers
        plan.steps = interleave_by_server(
            plan.steps, {i: servers[s.tenant_id] for i, s in enumerate(plan.steps)})
    manager.set_server_jobs(jobs)  # the manager's limit: restore and split honour it too
    return jobs * len(manager.servers)


def count_by_server(revisions: Iterable[tuple[str, str]], servers: dict[str, str]
                    ) -> dict[str, dict[str, int]]:
    """Per server: tenants per revision (``revisions``: (tenant id, revision or state))."""
    counts = Counter((servers[t], rev) for t, rev in revisions)
    grouped: dict[str, dict[str, int]] = {}
    for (server, revision), n in sorted(counts.items()):
        grouped.setdefault(server, {})[revision] = n
    return grouped
