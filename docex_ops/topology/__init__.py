"""Where tenants live: one server, several servers with a directory, or a Citus cluster
(base.py)."""

from __future__ import annotations

from docex_ops.config.settings import Settings
from docex_ops.topology.base import Discovery, SingleServer, Topology


def make_topology(settings: Settings) -> Topology:
    """The topology ``settings`` configure: several PostgreSQL servers, a Citus cluster,
    or one server."""
    if settings.fleet:
        from docex_ops.topology.several import SeveralServers

        return SeveralServers(settings)
    if settings.citus is not None:
        from docex_ops.topology.citus import CitusCluster

        return CitusCluster(settings, settings.citus)
    from docex_ops.backends import make_backend

    return SingleServer(make_backend(settings))


__all__ = ["Discovery", "SingleServer", "Topology", "make_topology"]
