"""Everything that differs per database kind, behind one Backend interface."""

from __future__ import annotations

from docex_ops.backends.base import Backend, ServerLimits, TenantInfo
from docex_ops.config.settings import Settings


def make_backend(settings: Settings) -> Backend:
    """The backend for the configured database type (a fleet: several PostgreSQL servers)."""
    if settings.fleet:
        from docex_ops.topology.fleet import FleetBackend

        return FleetBackend(settings)
    if settings.db_type == "postgresql":
        from docex_ops.backends.postgres import PostgresBackend

        return PostgresBackend(settings)
    from docex_ops.backends.sqlite import SqliteBackend

    return SqliteBackend(settings)


__all__ = ["Backend", "ServerLimits", "TenantInfo", "make_backend"]
