"""Everything that differs per database kind, behind one Backend interface."""

from __future__ import annotations

from docex_ops.backends.base import Backend, ServerLimits, TenantInfo
from docex_ops.config.settings import Settings


def make_backend(settings: Settings) -> Backend:
    """The plain backend of the configured database kind, speaking to one server (the
    directory server when several are configured: ``topology`` spreads tenants)."""
    if settings.db_type == "postgresql":
        from dataclasses import replace

        from docex_ops.backends.postgres import PostgresBackend

        if settings.fleet:
            pg = settings.server_settings[settings.directory_server]
            return PostgresBackend(replace(settings, postgres=pg))
        return PostgresBackend(settings)
    from docex_ops.backends.sqlite import SqliteBackend

    return SqliteBackend(settings)


def server_names(settings: Settings) -> list[str]:
    """The configured database servers by name (SQLite has none)."""
    return list(settings.server_settings) if settings.db_type == "postgresql" else []


__all__ = ["Backend", "ServerLimits", "TenantInfo", "make_backend", "server_names"]
