"""Terminate idle docex tenant connections on the server, or on each server of a fleet
(PostgreSQL). A connection is identified by its server and pid: pids repeat across
servers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from docex_ops import audit_trail
from docex_ops.backends import server_names
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools import pg_activity
from docex_ops.pools.pg_activity import IDLE_STATES
from docex_ops.pools.report import tenant_of_connection
from docex_ops.tenancy import validate_tenant_id

_DURATION_RE = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


@dataclass(frozen=True)
class IdleConnection:
    pid: int
    tenant_id: str
    state: str
    idle_s: float
    age_s: float
    user: str | None
    server: str | None = None        # the fleet server it is connected to


@dataclass(frozen=True)
class CloseIdleResult:
    candidates: list[IdleConnection]
    terminated: list[IdleConnection]
    dry_run: bool

    @property
    def terminated_pids(self) -> list[int]:
        return [c.pid for c in self.terminated]

    def was_terminated(self, candidate: IdleConnection) -> bool:
        return candidate in self.terminated

    @property
    def skipped(self) -> list[IdleConnection]:
        """Listed, but no longer idle (or gone) when the kill came: left alone."""
        return [] if self.dry_run else [c for c in self.candidates if c not in self.terminated]


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``10m``, ``1h30m``; ValueError otherwise."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}; use e.g. 90s, 10m, 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def find_idle(manager: TenantDatabaseManager, idle_for_s: float,
              tenants: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[IdleConnection]:
    """Docex tenant connections of this database (of each server's database, in a fleet)
    idle (or idle in transaction) for at least ``idle_for_s``; only of ``tenants`` when
    given, never of ``exclude``."""
    servers = _postgres_servers(manager)
    wanted = {validate_tenant_id(t) for t in tenants}
    unwanted = {validate_tenant_id(t) for t in exclude}
    found = []
    for server, backend in servers.items():
        for conn in pg_activity.server_connections(backend):
            tenant_id = tenant_of_connection(conn)
            if tenant_id is None or (wanted and tenant_id not in wanted) or (
                    tenant_id in unwanted):
                continue
            if conn.state in IDLE_STATES and (conn.state_age_s or 0.0) >= idle_for_s:
                found.append(IdleConnection(conn.pid, tenant_id, conn.state or "", round(
                    conn.state_age_s or 0.0, 1), round(conn.age_s, 1), conn.user, server))
    return found


def terminate(manager: TenantDatabaseManager, candidates: list[IdleConnection],
              idle_for_s: float) -> CloseIdleResult:
    """pg_terminate_backend on each candidate still idle past the threshold, each on its
    own server."""
    servers = _postgres_servers(manager)
    terminated: list[IdleConnection] = []
    for server, backend in servers.items():
        mine = [c for c in candidates if c.server == server]
        if mine:
            done = set(pg_activity.terminate_idle_on(backend, [c.pid for c in mine],
                                                     idle_for_s))
            terminated += [c for c in mine if c.pid in done]
    for c in terminated:
        _audit_termination(c)
    return CloseIdleResult(candidates, terminated, dry_run=False)


def _audit_termination(connection: IdleConnection) -> None:
    """One line per terminated backend: an idle transaction it held was rolled back."""
    detail: dict[str, object] = {"pid": connection.pid, "idle_s": connection.idle_s,
                                 "state": connection.state, "user": connection.user}
    if connection.server is not None:
        detail["server"] = connection.server
    audit_trail.record("tenant.close_idle", connection.tenant_id, f"pid {connection.pid}",
                       audit_trail.OK, detail)


def _postgres_servers(manager: TenantDatabaseManager) -> dict[str | None, PostgresBackend]:
    """Each server's backend by name (one server: the name None, as connections show it)."""
    if not server_names(manager.settings):
        raise LookupError("close-idle acts on server connections, and SQLite has no "
                          "server: in the application call "
                          "TenantDatabaseManager().close_idle(seconds)")
    if manager.settings.pooler.per_transaction:
        from docex_ops.pools.pgbouncer import CLOSE_IDLE_NOTE

        raise LookupError(CLOSE_IDLE_NOTE)
    servers = manager.servers
    return {name if len(servers) > 1 else None: cast(PostgresBackend, backend)
            for name, backend in servers.items()}
