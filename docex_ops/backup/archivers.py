"""What backups need of each database kind, found through one kind registry.

Each kind's module (``backup/pg.py``, ``backup/sqlite.py``) declares its ``KIND``: the
archiver of one server's (or the storage root's) tenants, the check of a manifest's
location, and the byte copy of a tenant no archive can be made of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docex_ops.backends.base import Backend
from docex_ops.backends.registry import KindRegistry
from docex_ops.backup.archive import TenantArchiver


def _any_location(location: str) -> None:
    """No location of this kind is refused here (the tenant rules placed it)."""


def _no_bytes(backend: Any, tenant_id: str, dest: Path) -> Path | None:
    return None


@dataclass(frozen=True)
class BackupKind:
    # archiver(backend of one server, pg_bin: the PostgreSQL client tools' folder)
    archiver: Callable[[Any, str | None], TenantArchiver]
    # Raises ValueError for a manifest location a restore must never read from.
    check_location: Callable[[str], None] = _any_location
    # keep_bytes(backend, tenant, dest): a byte copy of a tenant no archive can be made of
    # (a SQLite file that is not a database), into dest; None where there is no such thing.
    keep_bytes: Callable[[Any, str, Path], Path | None] = _no_bytes


KINDS = KindRegistry[BackupKind]("backup", {
    "postgresql": "docex_ops.backup.pg:KIND",
    "sqlite": "docex_ops.backup.sqlite:KIND",
})


def backup_kind(backend: Backend) -> BackupKind:
    return KINDS.for_kind(backend.kind)


def make_archiver(backend: Backend, pg_bin: str | None = None) -> TenantArchiver:
    """The archiver of one server's (or the storage root's) tenants."""
    return backup_kind(backend).archiver(backend, pg_bin)
