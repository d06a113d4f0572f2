"""Citus: the coordinator's connections to each worker, beside the tenant pools.

Every tenant connection lands on the coordinator, and the coordinator opens its own
connections to the worker holding the tenant's schema. Those are bounded per worker by
``citus.max_shared_pool_size`` (shared by every coordinator backend; 0 means the
coordinator's max_connections, -1 no limit). ``citus_remote_connection_stats()`` counts
the coordinator's connections per node and database; ``citus_stat_activity`` shows the
worker-side backends serving the coordinator's queries. One look at each, on the
coordinator. Not a Citus topology: no section (None).
"""

from __future__ import annotations

from dataclasses import dataclass

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.topology.base import Discovery

# Warn when the coordinator's connections to a worker reach this share of the pool.
POOL_FULL_WARN_RATIO = 0.8

_SETTINGS_SQL = """
SELECT current_setting('citus.max_shared_pool_size')::int,
       current_setting('max_connections')::int,
       current_setting('citus.max_adaptive_executor_pool_size')::int
"""
_POOL_SQL = """
SELECT hostname, port, connection_count_to_node FROM citus_remote_connection_stats()
WHERE database_name = current_database()
"""
_WORKER_BACKENDS_SQL = """
SELECT n.nodename, n.nodeport, count(*), count(*) FILTER (WHERE a.state = 'active')
FROM citus_stat_activity a JOIN pg_dist_node n ON n.nodeid = a.nodeid
WHERE a.is_worker_query AND a.datname = current_database() AND n.groupid <> 0
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class WorkerPool:
    node: str                 # the worker's name (database.postgres.nodes) or host:port
    tenants: int              # tenant schemas placed on it
    pool_connections: int     # the coordinator's connections to it (shared pool)
    worker_backends: int      # backends on the worker serving the coordinator's queries
    worker_active: int


@dataclass(frozen=True)
class CitusPools:
    max_shared_pool_size: int          # as configured (0: max_connections; -1: no limit)
    pool_limit: int | None             # the effective limit per worker (None: unlimited)
    max_adaptive_executor_pool_size: int
    workers: list[WorkerPool]
    warnings: list[str]


def citus_pools(manager: TenantDatabaseManager, found: Discovery) -> CitusPools | None:
    """The coordinator's connections to each worker (None: not a Citus topology)."""
    try:
        cluster = manager.topology.citus_cluster("pools report: Citus workers")
    except LookupError:
        return None
    workers = cluster.worker_nodes()
    placed: dict[str | None, int] = {}
    for info in found.tenants:
        placed[info.node] = placed.get(info.node, 0) + 1
    with cluster.coordinator.admin_engine.connect() as conn:
        shared, max_connections, adaptive = conn.exec_driver_sql(_SETTINGS_SQL).one()
        pooled = {cluster.citus.node_name(h, int(p)): int(n)
                  for h, p, n in conn.exec_driver_sql(_POOL_SQL)}
        backends = {cluster.citus.node_name(h, int(p)): (int(n), int(a))
                    for h, p, n, a in conn.exec_driver_sql(_WORKER_BACKENDS_SQL)}
        conn.rollback()
    limit = None if shared < 0 else (max_connections if shared == 0 else int(shared))
    rows = [WorkerPool(w.name, placed.get(w.name, 0), pooled.get(w.name, 0),
                       *backends.get(w.name, (0, 0))) for w in workers]
    warnings = [f"Citus worker {r.node!r}: the coordinator holds {r.pool_connections} of "
                f"{limit} connections citus.max_shared_pool_size allows to it"
                for r in rows if limit and r.pool_connections >= POOL_FULL_WARN_RATIO * limit]
    return CitusPools(int(shared), limit, int(adaptive), rows, warnings)
