"""PostgreSQL's view of connections for pools: pg_stat_activity and termination.

Both read through the backend's server-level worker pool
(``PostgresBackend.admin_engine``); the caller's own backend is left out of
what they see and can never be terminated. (The server's connection limits,
which the manager's budget needs too, are the backend's: ``server_limits()``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


if TYPE_CHECKING:
    from docex_ops.backends.postgres import PostgresBackend

TENANT_APP_PREFIX = "docex:"
IDLE_STATES = ("idle", "idle in transaction", "idle in transaction (aborted)")

_ACTIVITY_SQL = """
SELECT pid, datname, usename, coalesce(application_name, ''), state,
       datname = current_database(),
       extract(epoch FROM clock_timestamp() - backend_start)::float8,
       extract(epoch FROM clock_timestamp() - state_change)::float8,
       extract(epoch FROM clock_timestamp() - xact_start)::float8,
       host(client_addr)
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
 ORDER BY pid
"""

# Re-checks every condition at the moment of the kill: a connection that
# became active, changed its name or moved database since it was listed is
# left alone.
_TERMINATE_SQL = """
SELECT pid, pg_terminate_backend(pid)
  FROM pg_stat_activity
 WHERE pid = ANY(%(pids)s)
   AND pid <> pg_backend_pid()
   AND backend_type = 'client backend'
   AND datname = current_database()
   AND application_name LIKE %(prefix)s
   AND state = ANY(%(states)s)
   AND clock_timestamp() - state_change >= make_interval(secs => %(idle_for)s)
 ORDER BY pid
"""


@dataclass(frozen=True)
class ServerConnection:
    """One client backend as pg_stat_activity shows it."""

    pid: int
    database: str | None
    user: str | None
    application_name: str
    state: str | None
    in_current_database: bool
    age_s: float                   # since the connection was opened
    state_age_s: float | None      # since its state last changed (how long idle)
    transaction_age_s: float | None
    client_addr: str | None

    @property
    def tenant_app_id(self) -> str | None:
        """The part after ``docex:`` of a tenant connection's name (not yet validated)."""
        if self.application_name.startswith(TENANT_APP_PREFIX):
            return self.application_name[len(TENANT_APP_PREFIX):]
        return None


def server_connections(backend: PostgresBackend) -> list[ServerConnection]:
    """Every client backend on ``backend``'s server, except our own query's (on
    discovery's connection: a plain one while no engine is open, as in ``metrics``)."""
    with backend.discovery_connection() as conn:
        found = read_connections(conn)
        conn.rollback()
    return found


def terminate_idle_on(backend: PostgresBackend, pids: Sequence[int],
                      idle_for_s: float) -> list[int]:
    """``terminate_idle`` in a transaction of its own on ``backend``'s server."""
    with backend.admin_engine.begin() as conn:
        return terminate_idle(conn, pids, idle_for_s)


def read_connections(conn: Connection) -> list[ServerConnection]:
    """Every client backend on the server (all databases), except the caller's own."""
    return [ServerConnection(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), float(r[6] or 0),
                             _opt_float(r[7]), _opt_float(r[8]), r[9])
            for r in conn.exec_driver_sql(_ACTIVITY_SQL)]


def terminate_idle(conn: Connection, pids: Sequence[int], idle_for_s: float) -> list[int]:
    """Terminate those of ``pids`` that are still idle docex tenant connections of this
    database, idle for at least ``idle_for_s``; returns the pids actually terminated."""
    if not pids:
        return []
    rows = conn.exec_driver_sql(_TERMINATE_SQL, {
        "pids": list(pids), "prefix": TENANT_APP_PREFIX + "%", "states": list(IDLE_STATES),
        "idle_for": float(idle_for_s)}).all()
    return [int(pid) for pid, killed in rows if killed]


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
