"""Where tenants live: one server, or several servers with a directory (base.py)."""

from __future__ import annotations

from docex_ops.backends.base import Backend
from docex_ops.topology.base import Discovery, SingleServer, Topology


def make_topology(backend: Backend) -> Topology:
    """The topology ``backend`` was configured for."""
    from docex_ops.topology.fleet import FleetBackend

    if isinstance(backend, FleetBackend):
        from docex_ops.topology.several import SeveralServers

        return SeveralServers(backend)
    return SingleServer(backend)


__all__ = ["Discovery", "SingleServer", "Topology", "make_topology"]
