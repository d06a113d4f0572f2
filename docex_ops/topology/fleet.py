"""Tenants spread over several PostgreSQL servers, behind the one Backend interface.

One PostgresBackend per configured server; every per-tenant call is routed to
the server the tenant directory (pg_directory) names, so the migration
runner, backups and the CLI work on a fleet unchanged. Run records and the
runner lock live on the directory server: one migration run at a time for
the whole fleet, with each server limited to its own number of concurrent
tenant migrations (``set_server_jobs``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from docex_ops.backends.base import Backend, TenantInfo, TenantLockedError
from docex_ops.backends.catalog import Catalog
from docex_ops.backends.contents import (
    Guard,
    GuardRefusal,
    TenantChangedError,
    TenantContents,
)
from docex_ops.backends.pg_sql import execute_script
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import PoolSettings, Settings
from docex_ops.move.journal import SWITCHED, MoveJournal
from docex_ops.tenancy import schema_name_for
from docex_ops.topology.directory import (
    ACTIVE,
    DROPPING,
    FROZEN,
    MOVING,
    PROVISIONING,
    ROUTABLE,
    Placement,
    TenantDirectory,
)
from docex_ops.topology.fleet_view import FleetView, PlacementProblem, reconcile


class PlacementError(RuntimeError):
    """The directory and the servers disagree about a tenant, or it has no usable place."""


class FleetBackend(Backend):
    kind = "postgresql"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.servers: dict[str, PostgresBackend] = {
            name: PostgresBackend(replace(settings, postgres=pg))
            for name, pg in settings.server_settings.items()}
        self.directory_server = settings.directory_server
        self.directory = TenantDirectory(self.servers[self.directory_server])
        self.moves = MoveJournal(self.directory)
        self._server_jobs: dict[str, threading.BoundedSemaphore] = {}
        self.last_problems: list[PlacementProblem] = []

    # -- placement -------------------------------------------------------------------------

    def placement(self, tenant_id: str) -> Placement | None:
        return self.directory.get(tenant_id)

    def server_of(self, tenant_id: str) -> str:
        """The server that serves the tenant now; PlacementError if it has none."""
        placed = self.directory.get(tenant_id)
        if placed is None:
            raise PlacementError(
                f"tenant {tenant_id!r} is not in the tenant directory on server "
                f"{self.directory_server!r}: provision it (`docex-ops tenants provision "
                f"{tenant_id}`) or, if its schema exists, record it with `docex-ops tenants "
                f"place {tenant_id} --server NAME`")
        if placed.state == FROZEN:
            raise PlacementError(
                f"tenant {tenant_id!r} on server {placed.server!r} is frozen: an offline move "
                "is copying it and writes are refused until it ends; retry in a moment (if "
                f"the move crashed, rerun `docex-ops tenants move {tenant_id} --offline --to "
                "SERVER` to complete or roll it back)")
        if placed.state not in ROUTABLE:
            raise PlacementError(
                f"tenant {tenant_id!r} on server {placed.server!r} is {placed.state}: rerun "
                f"`docex-ops tenants {'provision' if placed.state == PROVISIONING else 'drop'} "
                f"{tenant_id}` to finish")
        return placed.server

    def server_backend(self, tenant_id: str) -> PostgresBackend:
        return self.servers[self.server_of(tenant_id)]

    def reserve(self, tenant_id: str, server: str | None = None) -> str:
        """Choose (or confirm) the tenant's server and record it; returns the server.

        A new tenant goes to ``server`` or to the server with the fewest tenants.
        """
        if server is not None and server not in self.servers:
            raise LookupError(f"no server {server!r} is configured; configured: "
                              + ", ".join(self.servers))
        with self.directory.transaction() as conn:
            return self._reserve_in(conn, tenant_id, server)

    def _reserve_in(self, conn: Connection, tenant_id: str, server: str | None) -> str:
        self.directory.lock(conn, tenant_id)
        placed = self.directory.get(tenant_id, conn)
        if placed is not None:
            return self._confirm(placed, server)
        self._refuse_unrecorded(tenant_id)
        chosen = server or self._least_loaded(self.directory.counts(conn))
        self.directory.put(conn, tenant_id, chosen, self.location(tenant_id), PROVISIONING)
        return chosen

    def place(self, tenant_id: str, server: str) -> None:
        """Record an existing, unrecorded schema on ``server`` as the tenant."""
        if server not in self.servers:
            raise LookupError(f"no server {server!r} is configured; configured: "
                              + ", ".join(self.servers))
        with self.directory.transaction() as conn:
            self.directory.lock(conn, tenant_id)
            placed = self.directory.get(tenant_id, conn)
            if placed is not None:
                raise PlacementError(f"tenant {tenant_id!r} is already recorded on server "
                                     f"{placed.server!r} ({placed.state})")
            holders = self._holders(tenant_id)
            if holders != [server]:
                raise PlacementError(f"tenant {tenant_id!r} exists on "
                                     f"{', '.join(holders) or 'no server'}, not only on "
                                     f"{server!r}: resolve that first")
            self.directory.put(conn, tenant_id, server, self.location(tenant_id), ACTIVE)

    def _confirm(self, placed: Placement, wanted: str | None) -> str:
        if wanted is not None and wanted != placed.server:
            raise PlacementError(f"tenant {placed.tenant_id!r} is already on server "
                                 f"{placed.server!r}; move it with `docex-ops tenants move "
                                 f"{placed.tenant_id} --to {wanted}`")
        if placed.state == FROZEN:
            self.server_of(placed.tenant_id)  # raises, saying why and what to do
        if placed.state == MOVING:  # never provision a second copy while one moves
            raise PlacementError(f"tenant {placed.tenant_id!r} is being moved from server "
                                 f"{placed.server!r}; retry in a moment")
        if placed.state == DROPPING:
            raise PlacementError(f"tenant {placed.tenant_id!r} is being dropped on "
                                 f"{placed.server!r}: rerun `docex-ops tenants drop` first")
        return placed.server

    def _holders(self, tenant_id: str) -> list[str]:
        return [name for name, srv in self.servers.items() if srv.exists(tenant_id)]

    def _refuse_unrecorded(self, tenant_id: str) -> None:
        holders = self._holders(tenant_id)
        if holders:
            raise PlacementError(
                f"tenant {tenant_id!r} exists on server(s) {', '.join(holders)} but the tenant "
                f"directory does not name it; record it with `docex-ops tenants place "
                f"{tenant_id} --server {holders[0]}` (after checking which copy is right)")

    def _least_loaded(self, counts: dict[str, int]) -> str:
        # Ties go to the server listed first in the configuration.
        return min(self.servers, key=lambda name: counts.get(name, 0))

    # -- discovery -------------------------------------------------------------------------

    def reconcile(self, with_size: bool = False) -> FleetView:
        """What every server holds, checked against the directory (problems reported)."""
        with ThreadPoolExecutor(max_workers=len(self.servers)) as pool:
            found = dict(zip(self.servers, pool.map(
                lambda srv: srv.discover(with_size), self.servers.values()), strict=True))
        return reconcile(found, self.directory.all(), self.directory_server,
                         self._move_copies())

    def _move_copies(self) -> set[tuple[str, str]]:
        """Schemas a move made on purpose: the target copy while it is being filled, and
        the renamed source kept until ``tenants move --finish``."""
        copies = set()
        for move in self.moves.all():
            copies.add((move.source, move.old_schema))
            if move.step != SWITCHED:
                copies.add((move.target, move.schema))
        return copies

    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        """Tenants whose place is certain; the others are left out and kept in
        ``last_problems`` for the command to report."""
        view = self.reconcile(with_size)
        self.last_problems = view.problems
        return view.tenants

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        by_server: dict[str, list[str]] = {}
        for tenant_id in tenant_ids:
            by_server.setdefault(self.server_of(tenant_id), []).append(tenant_id)
        result: dict[str, str | None] = {}
        for server, ids in by_server.items():
            result.update(self.servers[server].read_revisions(ids))
        return result

    # -- lifecycle -------------------------------------------------------------------------

    def location(self, tenant_id: str) -> str:
        # The same schema name on every server, so a move never renames a tenant.
        return schema_name_for(tenant_id, self.settings.postgres.schema_template)

    def exists(self, tenant_id: str) -> bool:
        placed = self.directory.get(tenant_id)
        if placed is not None and placed.state == FROZEN:
            self.server_of(tenant_id)  # raises: it exists, but must not be used now
        return (placed is not None and placed.state in ROUTABLE
                and self.servers[placed.server].exists(tenant_id))

    def create(self, tenant_id: str, ddl: str) -> bool:
        """Provision where the directory says (reserving a place first if needed).

        On the directory server the schema and the ``active`` row commit together.
        Elsewhere: the ``provisioning`` row commits first, then the schema on its
        server, then ``active``; a crash in between leaves ``provisioning``, and
        rerunning provision (or first access) finishes it on the recorded server.
        """
        with self.directory.transaction() as conn:
            server = self._reserve_in(conn, tenant_id, None)
            if server == self.directory_server:
                created = self.servers[server].create_in(conn, tenant_id, ddl)
                self.directory.set_state(conn, tenant_id, ACTIVE)
                return created
        created = self.servers[server].create(tenant_id, ddl)
        with self.directory.transaction() as conn:
            self.directory.set_state(conn, tenant_id, ACTIVE)
        return created

    def drop(self, tenant_id: str, guard: Guard | None = None) -> None:
        """Drop the schema and the directory row (same two-step rule as ``create``)."""
        placed = self.directory.get(tenant_id)
        if placed is None:
            return
        target = self.servers[placed.server]
        if placed.server == self.directory_server:
            with self.directory.transaction() as conn:
                self.directory.lock(conn, tenant_id)
                target.drop_in(conn, tenant_id, guard)
                self.directory.delete(conn, tenant_id)
            return
        with self.directory.transaction() as conn:
            self.directory.set_state(conn, tenant_id, DROPPING)
        try:
            target.drop(tenant_id, guard)
        except (GuardRefusal, TenantLockedError, TenantChangedError):
            # Refused or rolled back on its server: the tenant is as it was, so it is
            # routable again rather than left "dropping".
            with self.directory.transaction() as conn:
                self.directory.set_state(conn, tenant_id, placed.state)
            raise
        with self.directory.transaction() as conn:
            self.directory.delete(conn, tenant_id)

    # -- per-tenant work, routed -------------------------------------------------------------

    def create_tenant_engine(self, tenant_id: str, pool: PoolSettings) -> Engine:
        return self.create_routed_engine(tenant_id, pool)[1]

    def create_routed_engine(self, tenant_id: str, pool: PoolSettings) -> tuple[str, Engine]:
        server = self.server_of(tenant_id)
        return server, self.servers[server].create_tenant_engine(tenant_id, pool)

    def server_backends(self) -> Mapping[str, PostgresBackend]:
        return self.servers

    def tenant_connection(self, tenant_id: str) -> AbstractContextManager[Connection]:
        return self.server_backend(tenant_id).tenant_connection(tenant_id)

    def lock_contents(self, conn: Connection, tenant_id: str) -> TenantContents:
        return self.server_backend(tenant_id).lock_contents(conn, tenant_id)

    def read_contents(self, tenant_id: str) -> TenantContents | None:
        placed = self.directory.get(tenant_id)
        return None if placed is None else self.servers[placed.server].read_contents(tenant_id)

    @contextmanager
    def migration_connection(self, tenant_id: str, lock_timeout: float | None = None,
                             statement_timeout: float | None = None) -> Iterator[Connection]:
        server = self.server_of(tenant_id)
        slot = self._server_jobs.get(server)
        with (slot if slot is not None else nullcontext(),
              self.servers[server].migration_connection(
                  tenant_id, lock_timeout, statement_timeout) as conn):
            yield conn

    def set_server_jobs(self, jobs: int | None) -> None:
        """At most ``jobs`` tenant migrations at once on each server (None: no limit)."""
        self._server_jobs = ({} if jobs is None else
                             {name: threading.BoundedSemaphore(jobs) for name in self.servers})

    def execute_script(self, conn: Connection, sql: str) -> None:
        execute_script(conn, sql)

    def current_revision(self, conn: Connection) -> str | None:
        return self.servers[self.directory_server].current_revision(conn)

    def check_migrated(self, conn: Connection, tenant_id: str, expected: str | None,
                       deep: bool = False) -> None:
        # The checks read the connection's own server: any member's code will do.
        self.server_backend(tenant_id).check_migrated(conn, tenant_id, expected, deep)

    def catalog(self, tenant_id: str) -> Catalog:
        return self.server_backend(tenant_id).catalog(tenant_id)

    def files_dir(self, tenant_id: str) -> Path:
        # Files do not move with the schema: one documents_root for the whole fleet.
        return self.servers[self.directory_server].files_dir(tenant_id)

    # -- fleet-wide --------------------------------------------------------------------------

    def runner_lock(self, wait: bool) -> AbstractContextManager[None]:
        return self.servers[self.directory_server].runner_lock(wait)

    def control_engine(self) -> Engine:
        return self.servers[self.directory_server].control_engine()

    def dispose(self) -> None:
        for server in self.servers.values():
            server.dispose()
