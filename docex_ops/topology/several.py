"""Several independent PostgreSQL servers, with the tenant directory (kept on the
directory server) saying which server holds each tenant.

One plain PostgresBackend per configured server; this topology routes each
tenant to the server its directory row names, provisions and drops in the
two-step way the directory records (see topology/directory.py), and checks what
the servers hold against the directory (fleet_view.reconcile). Run records,
the runner lock and the directory live on the directory server (``control``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy.engine import Connection

from docex_ops.backends.base import Backend, TenantLockedError
from docex_ops.backends.contents import Guard, GuardRefusal, TenantChangedError, TenantContents
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import Settings
from docex_ops.move.journal import SWITCHED, MoveJournal
from docex_ops.topology.base import Discovery, Topology
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
from docex_ops.topology.fleet_view import FleetView, reconcile


class PlacementError(RuntimeError):
    """The directory and the servers disagree about a tenant, or it has no usable place."""


class SeveralServers(Topology):
    servers: dict[str, PostgresBackend]
    shape = "several"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.servers = {name: PostgresBackend(replace(settings, postgres=pg))
                        for name, pg in settings.server_settings.items()}
        self.control_server = self.directory_server = settings.directory_server
        self.directory = TenantDirectory(self.servers[self.directory_server])
        self.moves = MoveJournal(self.directory)

    def several_servers(self, needs: str) -> SeveralServers:
        return self

    # -- placement -------------------------------------------------------------------------

    def placement(self, tenant_id: str) -> Placement | None:
        return self.directory.get(tenant_id)

    def server_of(self, tenant_id: str) -> str:
        """The server that serves the tenant now; PlacementError if it has none."""
        return self._serving_server(tenant_id, self.directory.get(tenant_id))

    def by_server(self, tenant_ids: Iterable[str]) -> dict[str, list[str]]:
        """As on one server, from one read of the directory (not one query per tenant)."""
        ids = list(tenant_ids)
        placements = self.directory.all() if ids else {}
        grouped: dict[str, list[str]] = {name: [] for name in self.servers}
        for tenant_id in ids:
            grouped[self._serving_server(tenant_id, placements.get(tenant_id))].append(tenant_id)
        return {name: found for name, found in grouped.items() if found}

    def _serving_server(self, tenant_id: str, placed: Placement | None) -> str:
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

    def backend_of(self, tenant_id: str) -> PostgresBackend:
        return self.servers[self.server_of(tenant_id)]

    def holder_of(self, tenant_id: str) -> Backend:
        placed = self.directory.get(tenant_id)
        return self.servers[placed.server if placed is not None else self.directory_server]

    def reserve(self, tenant_id: str, server: str | None = None) -> str:
        """Choose (or confirm) the tenant's server and record it; returns the server.

        A new tenant goes to ``server`` or to the server with the fewest tenants.
        """
        if server is not None:
            self.check_server(server)
        with self.directory.transaction() as conn:
            return self._reserve_in(conn, tenant_id, server)

    def _reserve_in(self, conn: Connection, tenant_id: str, server: str | None) -> str:
        self.directory.lock(conn, tenant_id)
        placed = self.directory.get(tenant_id, conn)
        if placed is not None:
            return self._confirm(placed, server)
        self._refuse_unrecorded(tenant_id)
        chosen = server or self.least_loaded(self.directory.counts(conn))
        self.directory.put(conn, tenant_id, chosen, self.location(tenant_id), PROVISIONING)
        return chosen

    def place(self, tenant_id: str, server: str) -> None:
        """Record an existing, unrecorded schema on ``server`` as the tenant."""
        self.check_server(server)
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

    def activate(self, tenant_id: str) -> None:
        """Mark a reserved tenant whose data is now whole on its server as ``active``."""
        with self.directory.transaction() as conn:
            self.directory.set_state(conn, tenant_id, ACTIVE)

    def destination(self, tenant_id: str | None) -> str:
        if tenant_id is None:
            return self.directory_server
        placed = self.placement(tenant_id)
        if placed is None:
            return self.least_loaded()
        if placed.state not in ROUTABLE:
            self.server_of(tenant_id)  # raises, saying how to finish it
        return placed.server

    @contextmanager
    def placing(self, tenant_id: str, server: str) -> Iterator[None]:
        # The two steps of provisioning: a crash in between leaves ``provisioning``.
        self.reserve(tenant_id, server)
        yield
        self.activate(tenant_id)

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

    def least_loaded(self, counts: dict[str, int] | None = None) -> str:
        """The server with the fewest tenants; ties go to the one listed first."""
        if counts is None:
            with self.directory.reading() as conn:
                counts = self.directory.counts(conn)
        return min(self.servers, key=lambda name: counts.get(name, 0))

    # -- discovery -------------------------------------------------------------------------

    def reconcile(self, with_size: bool = False) -> FleetView:
        """What every server holds, checked against the directory (problems reported)."""
        found = self.for_each_server(lambda _, srv, __: srv.discover(with_size))
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

    def discover(self, with_size: bool = False) -> Discovery:
        """Tenants whose place is certain, and the problems that left the others out."""
        view = self.reconcile(with_size)
        return Discovery(view.tenants, view.problems)

    # -- lifecycle -------------------------------------------------------------------------

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
        self.activate(tenant_id)
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

    def read_contents(self, tenant_id: str) -> TenantContents | None:
        placed = self.directory.get(tenant_id)
        return None if placed is None else self.servers[placed.server].read_contents(tenant_id)
