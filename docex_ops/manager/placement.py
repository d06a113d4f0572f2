"""The manager's answers about where tenants live: the topology's, passed through.

A mixin of TenantDatabaseManager, so the manager module stays about engines and
pools; ``topology`` and ``backend`` are set by the manager's set-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TypeVar

from docex_ops.backends import Backend
from docex_ops.topology import Discovery, Topology

R = TypeVar("R")


class TopologyAnswers:
    topology: Topology
    backend: Backend

    @property
    def servers(self) -> Mapping[str, Backend]:
        """Each server by name, with the plain backend that speaks to it alone."""
        return self.topology.servers

    def server_of(self, tenant_id: str) -> str:
        return self.topology.server_of(tenant_id)

    def backend_of(self, tenant_id: str) -> Backend:
        """The backend of the server that holds ``tenant_id``."""
        return self.topology.backend_of(tenant_id)

    def by_server(self, tenant_ids: Iterable[str]) -> dict[str, list[str]]:
        return self.topology.by_server(tenant_ids)

    def discover(self, with_size: bool = False) -> Discovery:
        """Every tenant of every server, and the placement problems found on the way."""
        return self.topology.discover(with_size)

    def for_each_server(self, fn: Callable[[str, Backend, list[str]], R],
                        tenant_ids: Iterable[str] | None = None) -> dict[str, R]:
        """``fn(server, backend, its tenants)`` on each server at once (Topology)."""
        return self.topology.for_each_server(fn, tenant_ids)

    def set_server_jobs(self, jobs: int | None) -> None:
        """At most ``jobs`` tenants migrated, restored or split at once per server."""
        self.topology.set_server_jobs(jobs)

    def server_slot(self, tenant_id: str) -> AbstractContextManager[str]:
        """Held around one tenant's migration, restore or split copy (the job limit)."""
        return self.topology.server_slot(tenant_id)
