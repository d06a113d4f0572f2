"""Transitional: one Backend over a topology, for code still written against one backend.

``migrate/`` and ``split/`` take a Backend today; on several servers they are given
this view, which sends each per-tenant call to the tenant's server (taking the
per-server job slot around a migration) and control work (run records, the runner
lock) to the control server. New code uses ``manager.backend_of(tenant)`` and
``manager.by_server``; delete this module once migrate/ and split/ take the manager.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from docex_ops.backends.base import Backend, ServerLimits, TenantInfo
from docex_ops.backends.catalog import Catalog
from docex_ops.backends.contents import Guard, TenantContents
from docex_ops.config.settings import PoolSettings, Settings
from docex_ops.topology.base import Topology


def routed_backend(settings: Settings) -> Backend:
    """``make_backend``'s twin for split/ (which builds its own): the plain backend on one
    server; on several, a view that owns its topology (and disposes it)."""
    if not settings.fleet:
        from docex_ops.backends import make_backend

        return make_backend(settings)
    from docex_ops.topology import make_topology

    return RoutedBackend(make_topology(settings), owns=True)


class RoutedBackend(Backend):
    def __init__(self, topology: Topology, owns: bool = False) -> None:
        self.topology = topology
        self._owns = owns
        self.control = topology.control
        super().__init__(self.control.settings)
        self.kind = self.control.kind

    def for_tenant(self, tenant_id: str) -> Backend:
        return self.topology.holder_of(tenant_id)

    def location(self, tenant_id: str) -> str:
        return self.topology.location(tenant_id)

    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        return self.topology.discover(with_size).tenants

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        return self.topology.read_revisions(tenant_ids)

    def exists(self, tenant_id: str) -> bool:
        return self.topology.exists(tenant_id)

    def create(self, tenant_id: str, ddl: str) -> bool:
        return self.topology.create(tenant_id, ddl)

    def drop(self, tenant_id: str, guard: Guard | None = None) -> None:
        self.topology.drop(tenant_id, guard)

    def lock_contents(self, conn: Connection, tenant_id: str) -> TenantContents:
        return self.topology.backend_of(tenant_id).lock_contents(conn, tenant_id)

    def read_contents(self, tenant_id: str) -> TenantContents | None:
        return self.topology.read_contents(tenant_id)

    def create_tenant_engine(self, tenant_id: str, pool: PoolSettings) -> Engine:
        return self.topology.create_routed_engine(tenant_id, pool)[1]

    def tenant_connection(self, tenant_id: str) -> AbstractContextManager[Connection]:
        return self.topology.backend_of(tenant_id).tenant_connection(tenant_id)

    @contextmanager
    def migration_connection(self, tenant_id: str, lock_timeout: float | None = None,
                             statement_timeout: float | None = None) -> Iterator[Connection]:
        with (self.topology.server_slot(tenant_id) as server,
              self.topology.servers[server].migration_connection(
                  tenant_id, lock_timeout, statement_timeout) as conn):
            yield conn

    def execute_script(self, conn: Connection, sql: str) -> None:
        self.control.execute_script(conn, sql)  # runs on the connection's own server

    def current_revision(self, conn: Connection) -> str | None:
        return self.control.current_revision(conn)

    def check_migrated(self, conn: Connection, tenant_id: str, expected: str | None,
                       deep: bool = False) -> None:
        self.topology.backend_of(tenant_id).check_migrated(conn, tenant_id, expected, deep)

    def runner_lock(self, wait: bool) -> AbstractContextManager[None]:
        return self.control.runner_lock(wait)

    def control_engine(self) -> Engine:
        return self.control.control_engine()

    def catalog(self, tenant_id: str) -> Catalog:
        return self.topology.backend_of(tenant_id).catalog(tenant_id)

    def files_dir(self, tenant_id: str) -> Path:
        return self.control.files_dir(tenant_id)  # files do not move with the schema

    def server_limits(self) -> ServerLimits | None:
        return self.control.server_limits()

    def dispose(self) -> None:
        # A manager's topology is the manager's to dispose.
        if self._owns:
            self.topology.dispose()
