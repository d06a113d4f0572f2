"""Fleet operations: where tenants live, placing them, grouping work by server.

Works on one server too (everything is then on ``default`` and nothing is a
problem), so commands call these unconditionally. No printing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import TypeVar

from docex_ops.backends import Backend, TenantInfo
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import validate_tenant_id
from docex_ops.topology.directory import DROPPING
from docex_ops.topology.fleet import FleetBackend, PlacementError
from docex_ops.topology.fleet_view import PlacementProblem

T = TypeVar("T")


@dataclass
class FleetListing:
    tenants: list[TenantInfo]
    problems: list[PlacementProblem] = field(default_factory=list)


def fleet_of(backend: Backend) -> FleetBackend | None:
    return backend if isinstance(backend, FleetBackend) else None


def server_names(settings: Settings) -> list[str]:
    return list(settings.server_settings) if settings.db_type == "postgresql" else []


def list_placed(manager: TenantDatabaseManager, with_size: bool = True) -> FleetListing:
    """Every tenant with its server, and every disagreement between directory and servers."""
    fleet = fleet_of(manager.backend)
    if fleet is None:
        return FleetListing(manager.backend.discover(with_size=with_size))
    view = fleet.reconcile(with_size)
    return FleetListing(view.tenants, view.problems)


def server_of(info: TenantInfo, settings: Settings) -> str | None:
    """The tenant's server name (``default`` on a single PostgreSQL server; None on SQLite)."""
    if info.server is not None:
        return info.server
    return settings.directory_server if settings.db_type == "postgresql" else None


def reserve_server(manager: TenantDatabaseManager, tenant_ids: Sequence[str],
                   server: str) -> None:
    """Record ``server`` as the place of new tenants before they are provisioned."""
    fleet = fleet_of(manager.backend)
    if fleet is None:
        known = server_names(manager.settings)
        if server not in known:
            raise LookupError(f"no server {server!r} is configured"
                              + (f"; configured: {', '.join(known)}" if known else
                                 " (SQLite has no servers)"))
        return
    for tenant_id in tenant_ids:
        fleet.reserve(validate_tenant_id(tenant_id), server)


def place_existing(manager: TenantDatabaseManager, tenant_id: str, server: str) -> None:
    fleet = fleet_of(manager.backend)
    if fleet is None:
        raise LookupError("tenants place needs database.postgres.servers with more than one "
                          "server; a single server has no tenant directory")
    fleet.place(validate_tenant_id(tenant_id), server)


def interrupted_drop(manager: TenantDatabaseManager, tenant_id: str) -> bool:
    """Whether the directory shows a drop of this tenant that did not finish."""
    fleet = fleet_of(manager.backend)
    placed = fleet.placement(tenant_id) if fleet is not None else None
    return placed is not None and placed.state == DROPPING


def interleave_by_server(items: Sequence[T], server: dict[int, str]) -> list[T]:
    """Round-robin over servers (``server``: item index -> server), keeping each server's
    order, so N workers with a per-server limit keep every server busy."""
    queues: dict[str, list[T]] = {}
    for index, item in enumerate(items):
        queues.setdefault(server[index], []).append(item)
    return [item for row in zip_longest(*queues.values()) for item in row if item is not None]


__all__ = ["FleetListing", "PlacementError", "PlacementProblem", "fleet_of", "interleave_by_server",
           "interrupted_drop", "list_placed", "place_existing", "reserve_server", "server_of"]
