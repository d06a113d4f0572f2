"""PgBouncer's admin console (``database.postgres.pooler_admin``): what the pooler holds.

``SHOW POOLS`` (clients, server connections, waiting clients, maxwait per database),
``SHOW STATS`` (transactions and wait per database) and ``SHOW CONFIG`` (pool_mode,
default_pool_size, max_db_connections): the pools report shows them beside the
in-process pools and pg_stat_activity, the capacity check bounds the server connections
by them, and the isolation pooler check reads pool_mode from here instead of guessing
from a port. The console takes no transactions: the connection is in autocommit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from docex_ops.config.pooler import PoolerAdmin
from docex_ops.pools.capacity import Capacity

# What ``close-idle`` says behind PgBouncer: the server connections are the pooler's.
CLOSE_IDLE_NOTE = ("PgBouncer owns the server connections: terminating one only makes it "
                   "open another; idle server connections are closed by its "
                   "server_idle_timeout, idle tenant pools of this process by "
                   "TenantDatabaseManager().close_idle(seconds)")


@dataclass(frozen=True)
class BouncerPool:
    """One ``SHOW POOLS`` row: a database/user pair's clients and server connections."""

    database: str
    user: str
    pool_mode: str
    client_active: int
    client_waiting: int
    server_active: int
    server_idle: int
    server_used: int
    maxwait_s: float


@dataclass(frozen=True)
class BouncerStats:
    """One ``SHOW STATS`` row. Totals and means since PgBouncer started (its ``avg_*``
    cover only the last ``stats_period`` and read 0 on an idle pool: kept as recent_*);
    times in microseconds as PgBouncer counts them."""

    database: str
    transactions: int            # total_xact_count
    queries: int                 # total_query_count
    mean_transaction_us: int     # total_xact_time / total_xact_count
    mean_query_us: int           # total_query_time / total_query_count
    total_wait_us: int           # total_wait_time: clients waiting for a server connection
    recent_transactions_per_s: int  # avg_xact_count
    recent_wait_us: int          # avg_wait_time


@dataclass(frozen=True)
class BouncerView:
    target: str
    pool_mode: str
    default_pool_size: int
    max_db_connections: int          # 0: unlimited
    reserve_pool_size: int
    max_client_conn: int
    pools: list[BouncerPool] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # per database

    def server_bound(self, database: str) -> int:
        """The most server connections PgBouncer opens to ``database`` (one user)."""
        per_pool = self.default_pool_size + self.reserve_pool_size
        if self.max_db_connections:
            per_pool = min(per_pool, self.max_db_connections)
        return per_pool

    def pools_of(self, database: str) -> list[BouncerPool]:
        return [p for p in self.pools if p.database == database]

    def stats_of(self, database: str) -> BouncerStats | None:
        row = self.stats.get(database)
        if row is None:
            return None
        xacts, queries = row.get("total_xact_count", 0), row.get("total_query_count", 0)
        return BouncerStats(database, xacts, queries,
                            row.get("total_xact_time", 0) // max(xacts, 1),
                            row.get("total_query_time", 0) // max(queries, 1),
                            row.get("total_wait_time", 0), row.get("avg_xact_count", 0),
                            row.get("avg_wait_time", 0))

    def all_stats(self) -> list[BouncerStats]:
        return [s for s in map(self.stats_of, self.stats) if s is not None]


def read_bouncer(admin: PoolerAdmin) -> BouncerView:
    """One look at the console; psycopg2.Error when it cannot be reached."""
    import psycopg2  # type: ignore[import-untyped]  # only for whoever reads the console

    conn = psycopg2.connect(host=admin.host, port=admin.port, user=admin.user,
                            password=admin.password, dbname=admin.database,
                            application_name="docex-ops")
    conn.autocommit = True
    try:
        config = {r["key"]: r["value"] for r in _show(conn, "CONFIG")}
        pools = [_pool(r) for r in _show(conn, "POOLS") if r["database"] != "pgbouncer"]
        stats = {r["database"]: {k: int(v) for k, v in r.items() if k != "database"}
                 for r in _show(conn, "STATS") if r["database"] != "pgbouncer"}
    finally:
        conn.close()
    return BouncerView(f"{admin.host}:{admin.port}", config.get("pool_mode", "?"),
                       int(config.get("default_pool_size", 0)),
                       int(config.get("max_db_connections", 0)),
                       int(config.get("reserve_pool_size", 0)),
                       int(config.get("max_client_conn", 0)), pools, stats)


def _show(conn: Any, what: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(f"SHOW {what}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _pool(row: dict[str, Any]) -> BouncerPool:
    wait = float(row.get("maxwait", 0)) + float(row.get("maxwait_us", 0)) / 1e6
    return BouncerPool(row["database"], row["user"], str(row.get("pool_mode") or ""),
                       int(row["cl_active"]), int(row["cl_waiting"]), int(row["sv_active"]),
                       int(row["sv_idle"]), int(row["sv_used"]), round(wait, 3))


def pooled_capacity(capacity: Capacity, view: BouncerView, database: str) -> Capacity:
    """Behind PgBouncer the server sees the pooler's connections, not the tenants' pools:
    the worst case is PgBouncer's bound (default_pool_size + reserve_pool_size, capped
    by max_db_connections); the tenants' pools are PgBouncer's clients."""
    bound = view.server_bound(database)
    clients = capacity.tenants * (capacity.pool_size + capacity.max_overflow)
    warnings = []
    available = capacity.server_available
    if available is not None and bound > available:
        warnings.append(f"PgBouncer may open {bound} server connections to {database} but "
                        f"the server accepts only {available}: lower default_pool_size or "
                        "set max_db_connections")
    if view.max_client_conn and clients > view.max_client_conn:
        warnings.append(f"worst case {clients} client connections exceeds PgBouncer's "
                        f"max_client_conn {view.max_client_conn}")
    waiting = [p for p in view.pools_of(database) if p.client_waiting]
    warnings += [f"PgBouncer: {p.client_waiting} clients of {p.database}/{p.user} waiting "
                 f"for a server connection (maxwait {p.maxwait_s:g}s)" for p in waiting]
    return replace(capacity, worst_case=bound, exceeds=available is not None and
                   bound > available, recommended_budget=None, recommended_pool_size=None,
                   recommended_max_overflow=None, warnings=warnings)
