"""The SQLite control file, opened read-only (never created here), checked as the
backend checks it: no link on the way, the file SQLite opened is the one checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any, cast

from docex_ops.backends.sqlite_connect import readonly_uri
from docex_ops.migrate.servers import control_backend
from docex_ops.tenancy import CONTROL_SQLITE_FILE

if TYPE_CHECKING:
    from docex_ops.backends.sqlite import SqliteBackend
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


class SqliteControl:
    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self.conn = conn

    def has(self, table: str) -> bool:
        if self.conn is None:
            return False
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                 "name = ?", (table,)).fetchone() is not None

    def name(self, table: str) -> str:
        return '"' + table.replace('"', '""') + '"'

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        assert self.conn is not None
        return [tuple(r) for r in self.conn.execute(sql).fetchall()]


@contextmanager
def open_control(manager: TenantDatabaseManager) -> Iterator[SqliteControl]:
    backend = cast("SqliteBackend", control_backend(manager))
    checked = backend.paths.check_path(backend.paths.root / CONTROL_SQLITE_FILE,
                                       "the control file")
    if checked.identity is None:  # never written: no runs, no records
        yield SqliteControl(None)
        return
    with closing(sqlite3.connect(readonly_uri(checked.path), uri=True,
                                 timeout=backend.settings.lock_timeout)) as conn:
        backend.paths.verify_open(conn, checked)
        yield SqliteControl(conn)
