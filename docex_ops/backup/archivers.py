"""The archiver for the configured database kind."""

from __future__ import annotations

from docex_ops.backends.archive import TenantArchiver
from docex_ops.backends.base import Backend


def make_archiver(backend: Backend, pg_bin: str | None = None) -> TenantArchiver:
    from docex_ops.backends.postgres import PostgresBackend
    from docex_ops.topology.fleet import FleetBackend

    if isinstance(backend, FleetBackend):
        from docex_ops.backup.fleet import FleetArchiver

        return FleetArchiver(backend, pg_bin)
    if isinstance(backend, PostgresBackend):
        from docex_ops.backup.pg import PostgresArchiver

        return PostgresArchiver(backend, pg_bin)
    from docex_ops.backends.sqlite import SqliteBackend
    from docex_ops.backup.sqlite import SqliteArchiver

    assert isinstance(backend, SqliteBackend)
    return SqliteArchiver(backend)
