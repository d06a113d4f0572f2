"""Filling a SQLite target tenant: the snapshot copy of a SQLite source ATTACHed,
else rows streamed from the snapshot (see split/target.py)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any, cast

from docex_ops.backends.base import Backend
from docex_ops.backends.contents import TenantContents
from docex_ops.backends.digest import TableDigest
from docex_ops.backends.sqlite import SqliteBackend, readonly_uri
from docex_ops.backends.sqlite_digest import digest_table
from docex_ops.backends.sqlite_guard import file_contents
from docex_ops.split.source import SourceView, SplitSource, SqliteView
from docex_ops.split.target import STREAM_BATCH, TargetKind, TenantFill, same

ATTACH = "attach"


class SqliteTarget(TargetKind):
    # The registry hands this class SQLite backends only (FILLS, keyed by kind).

    def scratch_dir(self, backend: Backend) -> Path:
        return cast(SqliteBackend, backend).paths.root

    def local_mode(self, source: SplitSource, backend: Backend) -> str | None:
        return ATTACH if source.spec.kind == backend.kind else None  # a SQLite file too

    def open_local(self, source: SplitSource, backend: Backend, tenant_id: str, token: str
                   ) -> AbstractContextManager[TenantFill]:
        return _sqlite_attach(cast(SqliteBackend, backend), tenant_id, token)

    def open_stream(self, backend: Backend, tenant_id: str, view: SourceView
                    ) -> AbstractContextManager[TenantFill]:
        return _stream_target(cast(SqliteBackend, backend), tenant_id, view)


SQLITE_TARGET = SqliteTarget()


class _SqliteFill(TenantFill):
    def __init__(self, conn: sqlite3.Connection, source: SourceView, location: str) -> None:
        self.conn, self.source, self.location = conn, source, location

    def lock_contents(self) -> TenantContents:
        return file_contents(self.conn, self.location)  # held since BEGIN IMMEDIATE

    def target_rows(self) -> dict[str, int]:
        return _sqlite_counts(self.conn)

    def target_columns(self, table: str) -> list[str]:
        return [c for c, _ in SqliteView(self.conn).columns(table)]

    def copy(self, table: str, columns: list[str], where: str | None,
             baskets: list[str]) -> int:
        cols = ", ".join(f'"{c}"' for c in columns)
        xcols = ", ".join(f'x."{c}"' for c in columns)
        sql = (f'INSERT INTO main."{table}" ({cols}) SELECT {xcols} '
               f'FROM {self.source.prefix}"{table}" x'
               + (f" WHERE {self.source.render(where)}" if where else ""))
        return self.conn.execute(sql, self.source.params(baskets)).rowcount

    def target_digest(self, table: str) -> TableDigest:
        return digest_table(self.conn, table)


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name <> 'alembic_version'")]
    return {t: int(conn.execute(f'SELECT count(*) FROM main."{t}"').fetchone()[0])
            for t in tables}


@contextmanager
def _sqlite_tenant(backend: SqliteBackend, tenant_id: str,
                   before_begin: Callable[[sqlite3.Connection], None] | None = None
                   ) -> Iterator[sqlite3.Connection]:
    checked = backend.paths.check(tenant_id)  # refuses a linked tenant before any open
    if checked.identity is None:
        raise RuntimeError(f"tenant {tenant_id!r}: no database file at {checked.path}")
    # Opened through a URI: ATTACH then honours "file:...?mode=ro" (the snapshot is
    # attached read-only).
    with closing(backend.open_tenant(tenant_id, checked=checked)) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        if before_begin is not None:
            before_begin(conn)  # ATTACH is refused inside a transaction
        conn.execute("BEGIN IMMEDIATE")  # the tenant's write lock: one filler at a time
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def _sqlite_attach(backend: SqliteBackend, tenant_id: str, snapshot: str
                   ) -> Iterator[TenantFill]:
    def attach(conn: sqlite3.Connection) -> None:
        conn.execute("ATTACH DATABASE ? AS src", (readonly_uri(snapshot),))

    with _sqlite_tenant(backend, tenant_id, attach) as conn:
        yield _SqliteFill(conn, SqliteView(conn, "src"), str(backend.path(tenant_id)))


class _StreamSqlite(_SqliteFill):
    def copy(self, table: str, columns: list[str], where: str | None,
             baskets: list[str]) -> int:
        types = dict(SqliteView(self.conn).columns(table))
        convert = [_to_sqlite(types[c]) for c in columns]
        sql = (f'INSERT INTO main."{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)})'
               f" VALUES ({', '.join('?' * len(columns))})")
        total = 0
        for rows in self.source.stream(table, columns, where, baskets, STREAM_BATCH):
            self.conn.executemany(sql, [tuple(f(v) for f, v in zip(convert, r, strict=True))
                                        for r in rows])
            total += len(rows)
        return total


@contextmanager
def _stream_target(backend: SqliteBackend, tenant_id: str, view: SourceView
                   ) -> Iterator[TenantFill]:
    with _sqlite_tenant(backend, tenant_id) as conn:
        yield _StreamSqlite(conn, view, str(backend.path(tenant_id)))


def _to_sqlite(declared: str) -> Callable[[Any], Any]:
    """As SQLAlchemy stores the value in SQLite (what DocEX reads back)."""
    t = declared.upper()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, dt.datetime) else v
    if "BOOL" in t:
        return lambda v: int(v) if isinstance(v, bool) else v
    if t in ("CHAR(32)", "UUID"):
        return lambda v: uuid.UUID(str(v)).hex if v is not None else None
    return same


