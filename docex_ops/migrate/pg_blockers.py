"""PostgreSQL: who keeps a tenant's tables locked, by pid and query.

Asked right after the last attempt gave up: the sessions holding locks on the tenant's
tables that a migration's ACCESS EXCLUSIVE conflicts with, which are the pids
``pg_blocking_pids()`` named while the attempt waited (every lock mode conflicts with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docex_ops.backends.base import Backend

_HOLDERS_SQL = """
SELECT DISTINCT a.pid, l.mode, c.relname::text, a.state, left(a.query, 200),
       extract(epoch FROM now() - a.xact_start)::int
  FROM pg_locks l
  JOIN pg_class c ON c.oid = l.relation
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE n.nspname = %(schema)s AND l.granted AND l.pid <> pg_backend_pid()
 ORDER BY a.pid
"""


def blockers(backend: Backend, tenant_id: str) -> str:
    """``pid 123 (idle in transaction 4s, query: SELECT ...) holds AccessShareLock on
    document``, for each blocking session; empty when it has just gone."""
    with backend.control_engine().connect() as conn:
        rows = conn.exec_driver_sql(_HOLDERS_SQL,
                                    {"schema": backend.location(tenant_id)}).all()
        conn.rollback()
    described: dict[int, str] = {}
    for pid, mode, table, state, query, seconds in rows:
        if pid not in described:
            described[pid] = (f"pid {pid} ({state}{f' {seconds}s' if seconds else ''}, "
                              f"query: {' '.join(str(query).split())}) holds {mode} on {table}")
    return "; ".join(described.values())
