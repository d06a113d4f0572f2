"""Build the pool report: what the server sees, joined with this process' pools and
the configuration. Returns data; ``render`` turns it into text.

With several servers (a fleet) each server is read on its own: its limits and
connections, the tenants the directory places on it, its capacity and this
process' budget for it (``PoolReport.servers``); every tenant row, connection of
no tenant and warning names its server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from docex_ops.backends import server_names
from docex_ops.backends.base import Backend
from docex_ops.backends.registry import KindRegistry
from docex_ops.manager.budget import derive_budget
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools import pg_activity
from docex_ops.pools.capacity import Capacity, assess_capacity
from docex_ops.pools.citus_workers import CitusPools, citus_pools
from docex_ops.pools.pg_activity import IDLE_STATES, ServerConnection
from docex_ops.pools.pgbouncer import BouncerView, pooled_capacity, read_bouncer
from docex_ops.pools.sqlite_usage import scan_open_files, wal_size
from docex_ops.tenancy import TenantIdError, validate_tenant_id
from docex_ops.topology import Discovery

if TYPE_CHECKING:
    from docex_ops.backends.postgres import PostgresBackend
    from docex_ops.backends.sqlite import SqliteBackend

# A transaction left open this long holds locks and a connection: worth a WARN.
IDLE_IN_TRANSACTION_WARN_S = 60.0
# Warn when the server's client connections reach this share of what it accepts.
SERVER_FULL_WARN_RATIO = 0.8


@dataclass(frozen=True)
class TenantUsage:
    """One tenant's connections: on the server (all processes) and in this process."""

    tenant_id: str
    known: bool                      # the tenant exists under the configured template
                                     # (in a fleet: the directory places it on this server)
    total: int = 0
    active: int = 0
    idle: int = 0
    idle_in_transaction: int = 0     # including aborted transactions
    other: int = 0
    oldest_s: float | None = None    # age of its oldest connection
    longest_idle_in_transaction_s: float | None = None
    process_open: int | None = None  # this process' pool, if it holds an engine
    process_checked_out: int | None = None
    server: str | None = None        # the fleet server these connections are on


@dataclass(frozen=True)
class ServerUsage:
    max_connections: int
    superuser_reserved_connections: int
    reserved_connections: int
    available: int                   # what ordinary roles may open
    client_connections: int          # every client backend, all databases, incl. this report's
    tenant_connections: int          # docex tenant connections of this database
    other_connections: int


@dataclass(frozen=True)
class OtherConnection:
    """A client backend that belongs to no tenant of this database."""

    pid: int
    database: str | None
    user: str | None
    application_name: str
    state: str | None
    age_s: float
    server: str | None = None        # the fleet server it is connected to


@dataclass(frozen=True)
class TenantFile:
    tenant_id: str
    path: str
    size_bytes: int
    wal_bytes: int
    holders: list[str]               # "pid (command)"


@dataclass(frozen=True)
class ServerSection:
    """One server of a fleet: what it accepts and sees, and what may be asked of it."""

    name: str
    target: str
    usage: ServerUsage
    capacity: Capacity               # its tenants' worst case against its limit and budget
    process: dict[str, Any]          # this process' budget on this server


@dataclass(frozen=True)
class PoolReport:
    backend: str
    target: str
    generated_at: datetime
    capacity: Capacity | None        # None for a fleet: each server has its own (servers)
    process: dict[str, Any]          # the budget of this process (a fleet: summed, per server)
    tenants: list[TenantUsage]
    server: ServerUsage | None = None
    other_connections: list[OtherConnection] = field(default_factory=list)
    files: list[TenantFile] = field(default_factory=list)
    holders_visible: bool = True     # False: /proc is missing or partly unreadable
    warnings: list[str] = field(default_factory=list)
    servers: list[ServerSection] = field(default_factory=list)  # a fleet's servers, in order
    # PgBouncer's admin console, when database.postgres.pooler_admin is configured.
    pooler: BouncerView | None = None
    # Citus: the coordinator's connections to each worker node.
    citus: CitusPools | None = None


@dataclass
class _ServerPart:
    """What one server contributes to a report."""

    usage: ServerUsage
    capacity: Capacity
    tenants: list[TenantUsage]
    others: list[OtherConnection]
    warnings: list[str]


ReportFn = Callable[[TenantDatabaseManager, Discovery, dict[str, dict[str, Any]]], "PoolReport"]
# The report of each kind: servers' connections (PostgreSQL), or open files (SQLite).
REPORTS = KindRegistry[ReportFn]("pools report", {
    "postgresql": "docex_ops.pools.report:postgres_report",
    "sqlite": "docex_ops.pools.report:sqlite_report",
})


def build_report(manager: TenantDatabaseManager) -> PoolReport:
    """The report for the manager's database, from one look at each server or the files."""
    found = manager.discover()
    return REPORTS.for_kind(manager.backend.kind)(manager, found, manager.pool_stats())


def postgres_report(manager: TenantDatabaseManager, found: Discovery,
                    process: dict[str, dict[str, Any]]) -> PoolReport:
    """Each server read on its own (at once), its tenants those placed there."""
    named = len(manager.servers) > 1  # several servers: every row and warning names its own

    def read(name: str, backend: Backend, _: list[str]) -> _ServerPart:
        placed = [t.tenant_id for t in found.tenants if (t.server or name) == name]
        pools = {t: p for t, p in process.items() if p["server"] == name}
        return _server_part(manager, cast("PostgresBackend", backend), name if named else None,
                            placed, pools)

    parts = manager.for_each_server(read)
    if named:
        return _fleet_report(manager, parts, found)
    part = next(iter(parts.values()))
    view, capacity, warnings = _behind_pooler(manager, part)
    workers = citus_pools(manager, found)
    return PoolReport(
        backend="postgresql", target=manager.settings.describe(),
        generated_at=datetime.now(UTC), capacity=capacity, process=manager.budget_stats(),
        tenants=part.tenants, server=part.usage, other_connections=part.others,
        warnings=warnings + (workers.warnings if workers else []), pooler=view,
        citus=workers)


def _behind_pooler(manager: TenantDatabaseManager, part: _ServerPart
                   ) -> tuple[BouncerView | None, Capacity, list[str]]:
    """With pooler_admin configured: PgBouncer's view, and the capacity it bounds."""
    admin = manager.settings.pooler.admin
    if admin is None:
        return None, part.capacity, part.warnings
    view = read_bouncer(admin)
    capacity = pooled_capacity(part.capacity, view, manager.settings.postgres.database)
    others = [w for w in part.warnings if w not in part.capacity.warnings]
    return view, capacity, capacity.warnings + others


def _fleet_report(manager: TenantDatabaseManager, parts: dict[str, _ServerPart],
                  found: Discovery) -> PoolReport:
    warnings = [w for part in parts.values() for w in part.warnings]
    warnings += [f"placement: {p.message}" for p in found.problems]
    return PoolReport(
        backend="postgresql", generated_at=datetime.now(UTC),
        target=f"fleet of {len(parts)} servers ({', '.join(parts)})", capacity=None,
        process=manager.budget_stats(),
        tenants=[t for part in parts.values() for t in part.tenants],
        other_connections=[o for part in parts.values() for o in part.others],
        warnings=warnings,
        servers=[ServerSection(name, manager.servers[name].settings.describe(), part.usage,
                               part.capacity, manager.budget_stats(name))
                 for name, part in parts.items()])


def _server_part(manager: TenantDatabaseManager, backend: PostgresBackend, server: str | None,
                 discovered: list[str], process: dict[str, dict[str, Any]]) -> _ServerPart:
    """One server's connections, capacity and warnings; ``server`` names it in a fleet."""
    limits = backend.server_limits()
    connections = pg_activity.server_connections(backend)
    by_tenant: dict[str, list[ServerConnection]] = {}
    others: list[ServerConnection] = []
    for conn in connections:
        tenant_id = tenant_of_connection(conn)
        if tenant_id is None:
            others.append(conn)
        else:
            by_tenant.setdefault(tenant_id, []).append(conn)
    known = set(discovered)
    tenants = [_tenant_usage(t, t in known, by_tenant.get(t, []), process.get(t), server)
               for t in sorted(set(by_tenant) | set(process))]
    tenant_total = sum(len(c) for c in by_tenant.values())
    seen = ServerUsage(limits.max_connections, limits.superuser_reserved_connections,
                       limits.reserved_connections, limits.available,
                       len(connections) + 1, tenant_total, len(others) + 1)
    budget = manager.budget_stats(server)["limit"] or derive_budget(limits)
    capacity = assess_capacity(manager.settings.pool, len(discovered), budget,
                               _budget_source(manager), limits)
    warnings = list(capacity.warnings)
    if seen.client_connections >= SERVER_FULL_WARN_RATIO * seen.available:
        warnings.append(f"the server has {seen.client_connections} of {seen.available} "
                        "connections in use")
    for usage in tenants:
        if (usage.longest_idle_in_transaction_s or 0) >= IDLE_IN_TRANSACTION_WARN_S:
            warnings.append(
                f"tenant {usage.tenant_id!r}: a connection is idle in transaction for "
                f"{usage.longest_idle_in_transaction_s:.0f}s (holds locks; find it in "
                f"pg_stat_activity by application_name 'docex:{usage.tenant_id}')")
    if server is not None:
        warnings = [f"server {server!r}: {w}" for w in warnings]
    return _ServerPart(seen, capacity, tenants,
                       [OtherConnection(c.pid, c.database, c.user, c.application_name, c.state,
                                        round(c.age_s, 1), server) for c in others], warnings)


def sqlite_report(manager: TenantDatabaseManager, found: Discovery,
                  process: dict[str, dict[str, Any]]) -> PoolReport:
    backend = cast("SqliteBackend", manager.backend)
    discovered = [t.tenant_id for t in found.tenants]
    paths = {t: Path(backend.location(t)) for t in discovered}  # stat only, never opened
    scan = scan_open_files(paths.values())
    files = []
    for tenant_id, path in paths.items():
        main = str(path.resolve())
        files.append(TenantFile(
            tenant_id, str(path), path.stat().st_size, wal_size(path),
            [f"{h.pid} ({h.command})" for h in scan.holders.get(main, [])]))
    known = set(discovered)
    tenants = [_tenant_usage(t, t in known, [], process[t]) for t in sorted(process)]
    capacity = assess_capacity(manager.settings.pool, len(discovered),
                               manager.budget_stats()["limit"], _budget_source(manager), None)
    warnings = list(capacity.warnings)
    visible = scan.supported and scan.unreadable_processes == 0
    if not scan.supported:
        warnings.append("this OS has no /proc: which processes hold tenant files is unknown")
    elif scan.unreadable_processes:
        warnings.append(f"{scan.unreadable_processes} processes could not be inspected "
                        "(run as root to see every holder of the tenant files)")
    return PoolReport(
        backend="sqlite", target=manager.settings.describe(), generated_at=datetime.now(UTC),
        capacity=capacity, process=manager.budget_stats(), tenants=tenants, files=files,
        holders_visible=visible, warnings=warnings)


def tenant_of_connection(conn: ServerConnection) -> str | None:
    """The tenant a connection serves: ``docex:<valid id>`` in this database."""
    raw = conn.tenant_app_id
    if raw is None or not conn.in_current_database:
        return None
    try:
        return validate_tenant_id(raw)
    except TenantIdError:
        return None


def _tenant_usage(tenant_id: str, known: bool, conns: list[ServerConnection],
                  pool: dict[str, Any] | None, server: str | None = None) -> TenantUsage:
    states = [c.state for c in conns]
    in_tx = [c.state_age_s or 0.0 for c in conns
             if c.state in IDLE_STATES and c.state != "idle"]
    active = states.count("active")
    idle = states.count("idle")
    return TenantUsage(
        tenant_id, known, total=len(conns), active=active, idle=idle,
        idle_in_transaction=len(in_tx), other=len(conns) - active - idle - len(in_tx),
        oldest_s=round(max(c.age_s for c in conns), 1) if conns else None,
        longest_idle_in_transaction_s=round(max(in_tx), 1) if in_tx else None,
        process_open=pool["open"] if pool else None,
        process_checked_out=pool["checked_out"] if pool else None, server=server)


def _budget_source(manager: TenantDatabaseManager) -> str:
    if manager.settings.pool.max_total_connections is not None:
        return "configured"
    return "derived" if server_names(manager.settings) else "unbounded"


def pool_report(manager: TenantDatabaseManager | None = None) -> PoolReport:
    """The report for ``manager`` (default: the process' singleton), as data."""
    return build_report(manager or TenantDatabaseManager())
