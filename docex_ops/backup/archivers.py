"""The archiver of each database kind: one per server, found through the kind registry."""

from __future__ import annotations

from collections.abc import Callable

from docex_ops.backends.archive import TenantArchiver
from docex_ops.backends.base import Backend
from docex_ops.backends.registry import KindRegistry

# archiver class(backend of one server, pg_bin: the PostgreSQL client tools' folder)
ARCHIVERS = KindRegistry[Callable[[Backend, str | None], TenantArchiver]]("backup", {
    "postgresql": "docex_ops.backup.pg:PostgresArchiver",
    "sqlite": "docex_ops.backup.sqlite:SqliteArchiver",
})


def make_archiver(backend: Backend, pg_bin: str | None = None) -> TenantArchiver:
    """The archiver of one server's (or the storage root's) tenants."""
    return ARCHIVERS.for_kind(backend.kind)(backend, pg_bin)
