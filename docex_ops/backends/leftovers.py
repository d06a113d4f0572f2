"""Where each kind of database keeps scratch objects, and how one is removed.

PostgreSQL: ``docex$`` schemas and roles on every configured server (pg_scratch).
SQLite: marked files and folders in the storage root and in the folders down to
the tenant files' (a restore's copy sits beside the tenant's file), never
deeper (a tenant's documents are not scanned).
"""

from __future__ import annotations

from pathlib import Path

from docex_ops.backends import pg_scratch, scratch
from docex_ops.backends.base import Backend
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.backends.scratch import Leftover
from docex_ops.backends.sqlite import SqliteBackend


def find(backend: Backend) -> list[Leftover]:
    """Every scratch object of the deployment (each server, or the storage root)."""
    if isinstance(backend, SqliteBackend):
        root = backend.paths.root
        depth = len(Path(backend.paths.template).relative_to(root).parts) - 1  # tenant dirs
        return scratch.find_files(root, max(depth, 0))
    found = []
    for name, server in backend.server_backends().items():
        assert isinstance(server, PostgresBackend)
        with server.admin_engine.connect() as conn:
            rows = pg_scratch.find(conn)
            conn.rollback()
        found += [Leftover(kind, object_name, name, held) for kind, object_name, held in rows]
    return found


def remove(backend: Backend, leftover: Leftover) -> bool:
    """Remove one leftover unless it is held (False). A PostgreSQL object is removed on
    the server it was found on."""
    if leftover.kind in ("schema", "role"):
        server = backend.server_backends()[leftover.where]
        assert isinstance(server, PostgresBackend)
        return pg_scratch.remove(server, leftover.kind, leftover.name)
    return scratch.remove_file(leftover)
