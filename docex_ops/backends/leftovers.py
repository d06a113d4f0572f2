"""Where each kind of database keeps scratch objects, and how one is removed.

PostgreSQL: ``docex$`` schemas and roles on every configured server (pg_scratch).
SQLite: marked files and folders in the storage root and in the folders down to
the tenant files' (a restore's copy sits beside the tenant's file), never
deeper (a tenant's documents are not scanned).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from docex_ops.backends import pg_scratch, scratch
from docex_ops.backends.base import Backend
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.backends.scratch import Leftover
from docex_ops.backends.sqlite import SqliteBackend


def find(servers: Mapping[str, Backend]) -> list[Leftover]:
    """Every scratch object of the deployment (each server, or the storage root)."""
    found = []
    for name, server in servers.items():
        if isinstance(server, SqliteBackend):
            root = server.paths.root
            depth = len(Path(server.paths.template).relative_to(root).parts) - 1  # tenant dirs
            found += scratch.find_files(root, max(depth, 0))
            continue
        assert isinstance(server, PostgresBackend)
        with server.admin_engine.connect() as conn:
            rows = pg_scratch.find(conn)
            conn.rollback()
        found += [Leftover(kind, object_name, name, held) for kind, object_name, held in rows]
    return found


def remove(servers: Mapping[str, Backend], leftover: Leftover) -> bool:
    """Remove one leftover unless it is held (False). A PostgreSQL object is removed on
    the server it was found on."""
    if leftover.kind in ("schema", "role"):
        server = servers[leftover.where]
        assert isinstance(server, PostgresBackend)
        return pg_scratch.remove(server, leftover.kind, leftover.name)
    return scratch.remove_file(leftover)
