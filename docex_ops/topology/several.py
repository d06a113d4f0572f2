"""Several independent PostgreSQL servers, with the tenant directory saying which
server holds each tenant (kept on the directory server)."""

from __future__ import annotations

from docex_ops.topology.base import Discovery, Topology
from docex_ops.topology.fleet import FleetBackend


class SeveralServers(Topology):
    def __init__(self, fleet: FleetBackend) -> None:
        self.fleet = fleet
        self.servers = dict(fleet.servers)

    def server_of(self, tenant_id: str) -> str:
        return self.fleet.server_of(tenant_id)

    def discover(self, with_size: bool = False) -> Discovery:
        view = self.fleet.reconcile(with_size)
        return Discovery(view.tenants, view.problems)
