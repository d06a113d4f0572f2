"""TenantDatabaseManager: the one process-wide owner of tenant engines and pools.

The contract of DocEX's multi-tenancy guide (singleton, lazy and race-free
engine creation, provisioning on first access, close one or all), plus a
bound on open engines with least-recently-used eviction, idle disposal and
``pool_stats()``. Every tenant gets its own QueuePool; routing is done by the
connection (search_path or file), never by mutating shared metadata.

The tenant pools of one server share one connection budget
(``database.max_total_connections``, see docex_ops.manager.budget): the open connections
of every pool on that server together never exceed it; least-recently-used idle
engines of the same server make room, and a caller that finds every connection
busy waits up to ``pool_timeout``, then gets a RuntimeError. With several servers
each has a budget of its own (the configured value applies per server, the
default is derived from each server's ``max_connections``), so a busy server
never blocks tenants of another.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


from docex_ops import audit_trail
from docex_ops.backends import Backend
from docex_ops.backends.base import MisroutedError
from docex_ops.config.settings import Settings, load_settings
from docex_ops.manager.budget import ConnectionBudget, EngineTracker, derive_budget
from docex_ops.manager.placement import TopologyAnswers
from docex_ops.manager.stats import engine_stats, summed
from docex_ops.tenancy import TenantIdError, UserContext, validate_tenant_id
from docex_ops.topology import make_topology

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

TenantRef = str | UserContext | None
# How often (seconds) get_tenant_engine looks for idle engines to dispose.
_IDLE_SWEEP_INTERVAL = 5.0
# undefined_table, invalid_schema_name: what a pooled connection sees once its tenant moved.
_MOVED_AWAY = ("42P01", "3F000")


@dataclass
class _TenantEngine:
    engine: Engine
    tracker: EngineTracker
    server: str  # whose connection budget its connections count against
    created_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)

    def checked_out(self) -> int:
        from sqlalchemy.pool import QueuePool

        pool = self.engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0


class TenantDatabaseManager(TopologyAnswers):
    """Process-wide singleton: ``TenantDatabaseManager()`` always returns the same one.

    The first call configures it (from ``settings`` or the usual config lookup);
    a later call with different settings is refused rather than silently
    re-routing live connections. ``reset()`` closes everything and forgets it.
    """

    _instance: TenantDatabaseManager | None = None
    _instance_lock = threading.Lock()

    settings: Settings
    # The control server's plain backend: docex-ops' control data (run records, the runner
    # lock, the tenant directory), the tenant naming rules and the kind. On one server it is
    # the backend of every tenant; per-tenant work always goes through backend_of(tenant).
    backend: Backend

    def __new__(cls, settings: Settings | None = None) -> TenantDatabaseManager:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._setup(settings or load_settings())
                cls._instance = instance
            elif settings is not None and settings != cls._instance.settings:
                raise RuntimeError(
                    "TenantDatabaseManager is already configured with other settings "
                    f"({cls._instance.settings.source}); call TenantDatabaseManager.reset() first")
            return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Close every connection and drop the singleton (tests, reconfiguration)."""
        with cls._instance_lock:
            if cls._instance is not None:
                cls._instance.close_all_connections()
                cls._instance = None

    def _setup(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = make_topology(settings)
        self.backend = self.topology.control
        audit_trail.configure(settings.audit_file)
        self._engines: OrderedDict[str, _TenantEngine] = OrderedDict()
        self._lock = threading.Lock()
        self._tenant_locks: dict[str, threading.Lock] = {}
        self._last_sweep = time.monotonic()
        pool = settings.pool
        # One budget per server; a configured limit applies to each, a derived one is
        # read from each server before its first engine (_resolve_budget).
        servers = list(self.topology.servers)
        self._budgets = {name: ConnectionBudget(pool.max_total_connections, pool.pool_timeout,
                                                self._reclaimer(name),
                                                server=name if len(servers) > 1 else None)
                         for name in servers}
        self._budget_resolved = (set(self._budgets) if pool.max_total_connections is not None
                                 else set())
        self._budget_lock = threading.Lock()

    # -- routing -----------------------------------------------------------------------

    def resolve_tenant(self, tenant: TenantRef) -> str:
        """The validated tenant id of ``tenant`` (an id or a UserContext)."""
        tenant_id = tenant.tenant_id if isinstance(tenant, UserContext) else tenant
        if tenant_id is None or tenant_id == "":
            raise ValueError(
                "tenant_id is required when security.multi_tenancy_model is database_level: "
                "pass UserContext(user_id=..., tenant_id=...)")
        return validate_tenant_id(tenant_id)

    def get_tenant_engine(self, tenant: TenantRef) -> Engine:
        """The tenant's pooled engine, created (and the tenant provisioned) on first use."""
        tenant_id = self.resolve_tenant(tenant)
        with self._lock:
            entry = self._touch(tenant_id)
        if entry is None:
            entry = self._create_engine(tenant_id)
        self._maybe_sweep_idle()
        return entry.engine

    def _create_engine(self, tenant_id: str) -> _TenantEngine:
        with self._lock:
            tenant_lock = self._tenant_locks.setdefault(tenant_id, threading.Lock())
        with tenant_lock:  # one creator per tenant; other tenants are not blocked
            with self._lock:
                entry = self._touch(tenant_id)
            if entry is not None:
                return entry
            self._ensure_tenant(tenant_id)
            server, engine = self.topology.create_routed_engine(tenant_id, self.settings.pool)
            try:
                self._resolve_budget(tenant_id, server)
            except RuntimeError:
                engine.dispose()  # never connected: nothing counted yet
                raise
            tracker = self._budgets[server].attach(engine, tenant_id)
            entry = _TenantEngine(engine, tracker, server)
            with self._lock:
                self._engines[tenant_id] = entry
                evicted = self._pop_over_bound()
        for old in evicted:
            self._retire(old)
        return entry

    def get_tenant_session(self, tenant: TenantRef) -> Session:
        """A new ORM session bound to the tenant; the caller closes it."""
        from sqlalchemy.orm import Session  # the ORM only for callers that use sessions

        return Session(bind=self.get_tenant_engine(tenant))

    @contextmanager
    def tenant_transaction(self, tenant: TenantRef) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        from sqlalchemy.exc import DBAPIError

        tenant_id = self.resolve_tenant(tenant)
        session = self.get_tenant_session(tenant_id)
        try:
            with session.begin():
                yield session
        except MisroutedError:
            # The route did not hold (schema gone, renamed, a pooler dropping it): nothing
            # ran; forget the pool so the next call routes again.
            self.close_tenant_connection(tenant_id)
            raise
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) in _MOVED_AWAY:
                # The tenant's schema is gone from this server (moved, dropped): forget the
                # pool so the next call routes again instead of failing forever.
                self.close_tenant_connection(tenant_id)
            raise RuntimeError(f"tenant {tenant_id!r}: database error: {_cause(exc)}") from exc
        finally:
            session.close()

    # -- provisioning ------------------------------------------------------------------

    def provision(self, tenant: TenantRef, trigger: str = "explicit") -> bool:
        """Create the tenant (schema or file, all tables, stamped at head) if missing.

        Returns True when it was created, False when it already existed. A
        creation or a failure is written to the audit trail (``trigger`` says why).
        """
        from sqlalchemy.exc import SQLAlchemyError

        tenant_id = self.resolve_tenant(tenant)
        location = self.topology.location(tenant_id)
        from docex_ops.migrate.scripts import head_revision  # loads Alembic: only when provisioning
        from docex_ops.schema.ddl import head_ddl, version_table_ddl

        ddl = head_ddl(self.backend.kind) + version_table_ddl(head_revision())
        try:
            created = self.topology.create(tenant_id, ddl)
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            message = (exc.args[0] if isinstance(exc, RuntimeError) and exc.args else
                       f"tenant {tenant_id!r}: provisioning on {self.settings.describe()} "
                       f"failed: {_cause(exc)}")
            audit_trail.record("tenant.provision", tenant_id, location, audit_trail.FAILED,
                         {"trigger": trigger, "error": str(message)})
            raise RuntimeError(message) from exc
        if created:
            audit_trail.record("tenant.provision", tenant_id, location, audit_trail.OK,
                         {"trigger": trigger, "revision": head_revision()})
        return created

    def _resolve_budget(self, tenant_id: str, server: str) -> None:
        """Derive the server's default budget from it once, before its first engine."""
        from sqlalchemy.exc import SQLAlchemyError

        if server in self._budget_resolved:
            return
        with self._budget_lock:
            if server in self._budget_resolved:
                return
            backend = self.servers[server]
            try:
                limits = backend.server_limits()
            except SQLAlchemyError as exc:
                raise RuntimeError(
                    f"tenant {tenant_id!r}: cannot read max_connections from "
                    f"{backend.settings.describe()} to size the connection budget: "
                    f"{_cause(exc)}; set database.max_total_connections") from exc
            if limits is not None:
                self._budgets[server].set_limit(derive_budget(limits))
            self._budget_resolved.add(server)

    def _ensure_tenant(self, tenant_id: str) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        if self.settings.tenant_database_routing:
            self.provision(tenant_id, trigger="first access")
            return
        try:
            exists = self.topology.exists(tenant_id)
        except SQLAlchemyError as exc:
            raise RuntimeError(f"tenant {tenant_id!r}: cannot reach "
                               f"{self.settings.describe()}: {_cause(exc)}") from exc
        if not exists:
            raise RuntimeError(
                f"tenant {tenant_id!r} does not exist and security.tenant_database_routing is "
                f"off: create it with `docex-ops tenants provision {tenant_id}`")

    # -- lifecycle ---------------------------------------------------------------------

    def list_tenant_databases(self) -> list[str]:
        """Tenants with an open engine in this process (DocEX: "active tenant connections")."""
        with self._lock:
            return list(self._engines)

    def close_tenant_connection(self, tenant_id: str) -> bool:
        """Dispose the tenant's pool; returns whether it had one."""
        tenant_id = validate_tenant_id(tenant_id)
        with self._lock:
            entry = self._engines.pop(tenant_id, None)
        if entry is None:
            return False
        self._retire(entry)
        return True

    def close_all_connections(self) -> None:
        with self._lock:
            entries = list(self._engines.values())
            self._engines.clear()
        for entry in entries:
            self._retire(entry)
        self.topology.dispose()

    def close_idle(self, older_than: float) -> list[str]:
        """Dispose engines unused for ``older_than`` seconds with nothing checked out."""
        cutoff = time.monotonic() - older_than
        with self._lock:
            idle = [t for t, e in self._engines.items()
                    if e.last_used <= cutoff and e.checked_out() == 0]
            closed = [(t, self._engines.pop(t)) for t in idle]
        for _, entry in closed:
            self._retire(entry)
        return [t for t, _ in closed]

    def pool_stats(self) -> dict[str, dict[str, Any]]:
        """Per tenant: pool size, checked out, overflow, open and idle connections,
        last used (epoch seconds), engine age (seconds), and the server it connects to."""
        with self._lock:
            entries = list(self._engines.items())
        return {tenant_id: engine_stats(entry.engine, entry.tracker, entry.server,
                                        entry.created_at, entry.last_used)
                for tenant_id, entry in entries}

    def budget_stats(self, server: str | None = None) -> dict[str, Any]:
        """The connection budget: limit (None: unbounded), open, peak, waiting, timeouts.

        One server: its budget. Several: ``server``'s budget, or without one the sums
        over the servers (``manager.stats.summed``) and ``servers``, each server's own.
        """
        if server is not None:
            budget = self._budgets.get(server)
            if budget is None:
                raise LookupError(f"no server {server!r} is configured; configured: "
                                  + ", ".join(self._budgets))
            return budget.stats()
        return summed({name: budget.stats() for name, budget in self._budgets.items()})

    # -- internals (call with self._lock held) -------------------------------------------

    def _touch(self, tenant_id: str) -> _TenantEngine | None:
        entry = self._engines.get(tenant_id)
        if entry is not None:
            entry.last_used = time.monotonic()
            self._engines.move_to_end(tenant_id)
        return entry

    def _pop_over_bound(self) -> list[_TenantEngine]:
        excess = len(self._engines) - self.settings.pool.max_tenant_engines
        if excess <= 0:
            return []
        # Oldest first; an engine with connections in use is skipped, not broken.
        victims = [t for t, e in self._engines.items() if e.checked_out() == 0][:excess]
        return [self._engines.pop(t) for t in victims]

    def _reclaimer(self, server: str) -> Callable[[str], int]:
        return lambda requester: self._reclaim_idle(requester, server)

    def _reclaim_idle(self, requester: str, server: str) -> int:
        """Budget callback: retire the least recently used engine of ``server`` that holds
        open connections, all of them idle. Returns how many connections it held."""
        with self._lock:
            victim = next((t for t, e in self._engines.items()
                           if t != requester and e.server == server and e.tracker.open > 0
                           and e.checked_out() == 0), None)
            if victim is None:
                return 0
            entry = self._engines.pop(victim)
        freed = entry.tracker.open
        self._retire(entry)
        return freed

    def _retire(self, entry: _TenantEngine) -> None:
        """Close the engine's idle connections now, its checked-out ones on check-in.

        Marked before disposing: a thread that still holds the engine and checks
        a connection out meanwhile gets it closed on check-in, never parked.
        """
        ConnectionBudget.retire(entry.tracker)
        entry.engine.dispose()

    def _maybe_sweep_idle(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < _IDLE_SWEEP_INTERVAL:
            return
        self._last_sweep = now
        self.close_idle(self.settings.pool.idle_timeout)


def _cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


__all__ = ["TenantDatabaseManager", "TenantIdError", "UserContext"]
