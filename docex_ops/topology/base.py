"""Where each tenant lives: the seam between operations and servers.

A topology holds one plain backend per server and answers ``server_of`` and
``by_server``. One server is a topology of one (``SingleServer``); several
independent PostgreSQL servers with a tenant directory are another
(``topology/directory.py``); a Citus cluster would be a third. Operations that
fan out ask for ``by_server(tenants)`` and loop over plain per-server
backends; none of them tests which topology it runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from docex_ops.backends.base import Backend, TenantInfo
from docex_ops.topology.fleet_view import PlacementProblem


@dataclass(frozen=True)
class Discovery:
    """The tenants whose place is certain, and the placement problems that kept the
    others out (always empty on one server)."""

    tenants: list[TenantInfo] = field(default_factory=list)
    problems: list[PlacementProblem] = field(default_factory=list)


class Topology(ABC):
    """Servers by name, each with the backend that speaks to it alone."""

    servers: Mapping[str, Backend]

    @property
    def kind(self) -> str:
        return next(iter(self.servers.values())).kind

    @property
    def several(self) -> bool:
        return len(self.servers) > 1

    @abstractmethod
    def server_of(self, tenant_id: str) -> str:
        """The name of the server that holds (or will hold) ``tenant_id``."""

    def backend_of(self, tenant_id: str) -> Backend:
        return self.servers[self.server_of(tenant_id)]

    def by_server(self, tenant_ids: Iterable[str]) -> dict[str, list[str]]:
        """``tenant_ids`` grouped by server, servers in configuration order."""
        grouped: dict[str, list[str]] = {name: [] for name in self.servers}
        for tenant_id in tenant_ids:
            grouped[self.server_of(tenant_id)].append(tenant_id)
        return {name: ids for name, ids in grouped.items() if ids}

    @abstractmethod
    def discover(self, with_size: bool = False) -> Discovery:
        """Every tenant of every server, checked against the directory if there is one."""


class SingleServer(Topology):
    """Everything on one server (PostgreSQL) or one storage root (SQLite)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.settings.directory_server
        self.servers = {self.name: backend}

    def server_of(self, tenant_id: str) -> str:
        return self.name

    def discover(self, with_size: bool = False) -> Discovery:
        return Discovery(self.backend.discover(with_size))
