"""Placement operations: where tenants live, placing them, grouping work by server.

Work on one server too (everything is then on ``default`` and nothing is a
problem), so commands call these unconditionally. No printing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import TypeVar

from docex_ops.backends import TenantInfo, server_names
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import validate_tenant_id
from docex_ops.topology.directory import DROPPING
from docex_ops.topology.fleet_view import PlacementProblem
from docex_ops.topology.several import PlacementError

T = TypeVar("T")


@dataclass
class FleetListing:
    tenants: list[TenantInfo]
    problems: list[PlacementProblem] = field(default_factory=list)


def list_placed(manager: TenantDatabaseManager, with_size: bool = True) -> FleetListing:
    """Every tenant with its server, and every disagreement between directory and servers."""
    found = manager.discover(with_size)
    return FleetListing(found.tenants, found.problems)


def server_of(info: TenantInfo, settings: Settings) -> str | None:
    """The tenant's server name (``default`` on a single PostgreSQL server; None on SQLite)."""
    if info.server is not None:
        return info.server
    return settings.directory_server if server_names(settings) else None


def reserve_server(manager: TenantDatabaseManager, tenant_ids: Sequence[str],
                   server: str) -> None:
    """Record ``server`` as the place of new tenants before they are provisioned."""
    manager.topology.check_server(server)
    for tenant_id in tenant_ids:
        manager.topology.reserve(validate_tenant_id(tenant_id), server)


def place_existing(manager: TenantDatabaseManager, tenant_id: str, server: str) -> None:
    several = manager.topology.several_servers(
        "tenants place needs database.postgres.servers with more than one server; a single "
        "server has no tenant directory")
    several.place(validate_tenant_id(tenant_id), server)


def interrupted_drop(manager: TenantDatabaseManager, tenant_id: str) -> bool:
    """Whether the directory shows a drop of this tenant that did not finish."""
    placed = manager.topology.placement(tenant_id)
    return placed is not None and placed.state == DROPPING


def interleave_by_server(items: Sequence[T], server: dict[int, str]) -> list[T]:
    """Round-robin over servers (``server``: item index -> server), keeping each server's
    order, so N workers with a per-server limit keep every server busy."""
    queues: dict[str, list[T]] = {}
    for index, item in enumerate(items):
        queues.setdefault(server[index], []).append(item)
    return [item for row in zip_longest(*queues.values()) for item in row if item is not None]


__all__ = ["FleetListing", "PlacementError", "PlacementProblem", "interleave_by_server",
           "interrupted_drop", "list_placed", "place_existing", "reserve_server", "server_of"]
