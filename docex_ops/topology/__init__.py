"""Where tenants live: one server, or several servers with a directory (base.py)."""

from __future__ import annotations

from docex_ops.config.settings import Settings
from docex_ops.topology.base import Discovery, SingleServer, Topology


def make_topology(settings: Settings) -> Topology:
    """The topology ``settings`` configure: several PostgreSQL servers, or one."""
    if settings.fleet:
        from docex_ops.topology.several import SeveralServers

        return SeveralServers(settings)
    from docex_ops.backends import make_backend

    return SingleServer(make_backend(settings))


__all__ = ["Discovery", "SingleServer", "Topology", "make_topology"]
