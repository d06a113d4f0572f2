"""Filling one target tenant from the source snapshot, in one transaction.

Three ways, chosen by ``open_fill``:
- PostgreSQL source and target in the same database: server-side
  ``INSERT ... SELECT``, in a transaction that imports the source snapshot;
- SQLite to SQLite: the snapshot copy ATTACHed read-only to the tenant file,
  then ``INSERT ... SELECT``;
- anything else: rows streamed in batches from a worker view of the snapshot.
The transaction commits when the block ends normally and rolls back on any
exception (the operation raises when verification fails).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from docex_ops.backends.archive import TableDigest
from docex_ops.backends.base import Backend
from docex_ops.backends.contents import TenantContents
from docex_ops.backends.pg_guard import lock_beside, set_lock_timeout
from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.backends.sqlite import SqliteBackend, readonly_uri
from docex_ops.backends.sqlite_digest import digest_table
from docex_ops.backends.sqlite_guard import file_contents
from docex_ops.backup.pg import digest_aggregates, digest_sql
from docex_ops.migrate.servers import control_backend
from docex_ops.schema.head import TABLE_NAMES
from docex_ops.split.source import (
    PgView,
    SourceView,
    SplitSource,
    SqliteView,
    pg_begin_snapshot,
)

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

STREAM_BATCH = 5000


class TenantFill(ABC):
    """One tenant's open transaction, with the source snapshot readable beside it."""

    source: SourceView

    @abstractmethod
    def target_rows(self) -> dict[str, int]:
        """Rows per table already in the tenant."""

    @abstractmethod
    def lock_contents(self) -> TenantContents:
        """Hold the tenant's tables against writers until the fill ends, and read what
        every table (DocEX's or not) holds now, committed rows included."""

    @abstractmethod
    def target_columns(self, table: str) -> list[str]: ...

    @abstractmethod
    def copy(self, table: str, columns: list[str], where: str | None,
             baskets: list[str]) -> int:
        """Copy the selected source rows into the tenant's table; rows copied."""

    @abstractmethod
    def target_digest(self, table: str) -> TableDigest: ...

    def target_digests(self) -> dict[str, TableDigest]:
        """Every DocEX table's digest in the tenant."""
        return {table: self.target_digest(table) for table in TABLE_NAMES}

    def source_digest(self, table: str, where: str | None, baskets: list[str]) -> TableDigest:
        return self.source.digest(table, where, baskets)

    def copy_with_digest(self, table: str, columns: list[str], where: str | None,
                         baskets: list[str]) -> tuple[int, TableDigest]:
        """``copy``, and the digest of the source rows it copied (the subset's digest)."""
        rows = self.copy(table, columns, where, baskets)
        return rows, self.source_digest(table, where, baskets)


def target_store(manager: TenantDatabaseManager) -> Backend:
    """The targets' kind and rules (scratch folder, copy mode, the revision references):
    every server of the manager is of one kind, the control server answers for all."""
    return control_backend(manager)


def target_of(manager: TenantDatabaseManager, tenant_id: str) -> Backend:
    """The backend of the server that holds (or will hold) the target tenant."""
    return manager.backend_of(tenant_id)


def same_database(source: SplitSource, backend: Backend) -> bool:
    pg = source.spec.postgres
    if pg is None or not isinstance(backend, PostgresBackend):
        return False
    mine = backend.settings.postgres
    return (pg.host, pg.port, pg.database) == (mine.host, mine.port, mine.database)


def scratch_dir(backend: Backend | None) -> Path | None:
    """Where a SQLite source's snapshot copy goes: beside SQLite targets (the storage
    root, same disk), else the temp folder (None)."""
    return backend.paths.root if isinstance(backend, SqliteBackend) else None


def copy_mode(source: SplitSource, backend: Backend) -> str:
    if same_database(source, backend):
        return "server-side"
    if source.spec.kind == "sqlite" and isinstance(backend, SqliteBackend):
        return "attach"
    return "stream"


@contextmanager
def open_fill(source: SplitSource, backend: Backend, tenant_id: str, token: str
              ) -> Iterator[TenantFill]:
    mode = copy_mode(source, backend)
    if mode == "server-side":
        assert isinstance(backend, PostgresBackend)
        with _pg_server_side(source, backend, tenant_id, token) as fill:
            yield fill
    elif mode == "attach":
        assert isinstance(backend, SqliteBackend)
        with _sqlite_attach(backend, tenant_id, token) as fill:
            yield fill
    else:
        with source.view(token) as view, _stream_target(backend, tenant_id, view) as fill:
            yield fill


# -- PostgreSQL, same database -------------------------------------------------------------

class _PgFill(TenantFill):
    def __init__(self, conn: Connection, schema: str, source: SourceView,
                 backend: PostgresBackend, tenant_id: str) -> None:
        self.conn, self.schema, self.source = conn, schema, source
        self.backend, self.tenant_id = backend, tenant_id
        self._columns: dict[str, list[str]] = {}  # the tenant is locked: they stay

    def target_rows(self) -> dict[str, int]:
        return _pg_counts(self.conn, self.schema)

    def lock_contents(self) -> TenantContents:
        # The fill may run on the source's snapshot, older than the tenant and its rows:
        # the locks are taken here, the catalog and the rows read beside (pg_guard).
        with self.backend.locked_act(self.tenant_id):
            found = lock_beside(self.conn, self.backend.admin_engine, self.schema,
                                self.backend.settings.lock_timeout)
        return found or TenantContents(self.schema, {})

    def target_columns(self, table: str) -> list[str]:
        # From the result description, not pg_attribute: this transaction runs on the
        # source's snapshot, in which a tenant created after it has no catalog rows.
        if table not in self._columns:
            result = self.conn.exec_driver_sql(
                f"SELECT * FROM {quote_ident(self.schema)}.{quote_ident(table)} LIMIT 0")
            self._columns[table] = list(result.keys())
            result.close()
        return self._columns[table]

    def copy(self, table: str, columns: list[str], where: str | None,
             baskets: list[str]) -> int:
        cols = ", ".join(quote_ident(c) for c in columns)
        xcols = ", ".join("x." + quote_ident(c) for c in columns)
        sql = (f"INSERT INTO {quote_ident(self.schema)}.{quote_ident(table)} ({cols}) "
               f"SELECT {xcols} FROM {self.source.prefix}{quote_ident(table)} x"
               + (f" WHERE {self.source.render(where)}" if where else ""))
        return int(self.conn.exec_driver_sql(sql, self.source.params(baskets)).rowcount)

    def copy_with_digest(self, table: str, columns: list[str], where: str | None,
                         baskets: list[str]) -> tuple[int, TableDigest]:
        # One read of the source subset, materialised once, feeds both the INSERT and the
        # digest: the same rows a second query on the same snapshot would select.
        cols = ", ".join(quote_ident(c) for c in columns)
        xcols = ", ".join("x." + quote_ident(c) for c in columns)
        ordered = sorted(columns, key=lambda c: c.encode())
        sql = (f"WITH src AS MATERIALIZED (SELECT {xcols} FROM {self.source.prefix}"
               f"{quote_ident(table)} x" + (f" WHERE {self.source.render(where)}" if where
                                            else "")
               + f"), ins AS (INSERT INTO {quote_ident(self.schema)}.{quote_ident(table)} "
               f"({cols}) SELECT {cols} FROM src RETURNING 1) "
               f"SELECT (SELECT count(*) FROM ins), {digest_aggregates(ordered)} FROM src x")
        copied, count, checksum = self.conn.exec_driver_sql(
            sql, self.source.params(baskets)).one()
        return int(copied), TableDigest(int(count), str(checksum))

    def target_digest(self, table: str) -> TableDigest:
        return self.target_digests_of([table])[table]

    def target_digests(self) -> dict[str, TableDigest]:
        return self.target_digests_of(list(TABLE_NAMES))

    def target_digests_of(self, tables: list[str]) -> dict[str, TableDigest]:
        """The tables' digests in one statement (one round trip per tenant)."""
        sql = " UNION ALL ".join(
            digest_sql(self.schema, t, sorted(self.target_columns(t), key=lambda c: c.encode()))
            for t in tables)
        return {str(t): TableDigest(int(n), str(c)) for t, n, c in self.conn.exec_driver_sql(sql)}


def _pg_counts(conn: Connection, schema: str) -> dict[str, int]:
    # The DocEX tables by name (not from pg_class: see target_columns).
    tables = TABLE_NAMES
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {quote_ident(schema)}.{quote_ident(t)}"
                             for t in tables)
    return {t: int(n) for t, n in conn.exec_driver_sql(sql)}


@contextmanager
def _pg_server_side(source: SplitSource, backend: PostgresBackend, tenant_id: str,
                    token: str) -> Iterator[TenantFill]:
    schema = backend.location(tenant_id)
    with source.engine.connect() as conn:
        pg_begin_snapshot(conn, token, read_only=False)
        try:
            set_lock_timeout(conn, backend.settings.lock_timeout)
            backend.lock_tenant(conn, schema)
            yield _PgFill(conn, schema, PgView(conn, source.spec.schema), backend, tenant_id)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


# -- SQLite, snapshot attached --------------------------------------------------------------

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


# -- streaming, any kind to any kind ---------------------------------------------------------

class _StreamPg(_PgFill):
    # The source is elsewhere: rows come through Python, the subset is digested on its own.
    copy_with_digest = TenantFill.copy_with_digest

    def copy(self, table: str, columns: list[str], where: str | None,
             baskets: list[str]) -> int:
        types = dict(PgView(self.conn, self.schema).columns(table))
        convert = [_to_pg(types.get(c, "")) for c in columns]
        marks = ", ".join(["%s"] * len(columns))
        sql = (f"INSERT INTO {quote_ident(self.schema)}.{quote_ident(table)} "
               f"({', '.join(quote_ident(c) for c in columns)}) VALUES ({marks})")
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        total = 0
        for rows in self.source.stream(table, columns, where, baskets, STREAM_BATCH):
            cursor.executemany(sql, [tuple(f(v) for f, v in zip(convert, r, strict=True))
                                     for r in rows])
            total += len(rows)
        cursor.close()
        return total


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
def _stream_target(backend: Backend, tenant_id: str, view: SourceView
                   ) -> Iterator[TenantFill]:
    if isinstance(backend, SqliteBackend):
        with _sqlite_tenant(backend, tenant_id) as conn:
            yield _StreamSqlite(conn, view, str(backend.path(tenant_id)))
        return
    assert isinstance(backend, PostgresBackend)
    schema = backend.location(tenant_id)
    with backend.admin_engine.begin() as pg:
        set_lock_timeout(pg, backend.settings.lock_timeout)
        backend.lock_tenant(pg, schema)
        pg.exec_driver_sql("SET LOCAL DateStyle TO 'ISO, YMD'")
        pg.exec_driver_sql("SET LOCAL TimeZone TO 'UTC'")
        yield _StreamPg(pg, schema, view, backend, tenant_id)


def _same(value: Any) -> Any:
    return value


def _to_sqlite(declared: str) -> Callable[[Any], Any]:
    """As SQLAlchemy stores the value in SQLite (what DocEX reads back)."""
    t = declared.upper()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, dt.datetime) else v
    if "BOOL" in t:
        return lambda v: int(v) if isinstance(v, bool) else v
    if t in ("CHAR(32)", "UUID"):
        return lambda v: uuid.UUID(str(v)).hex if v is not None else None
    return _same


def _to_pg(declared: str) -> Callable[[Any], Any]:
    if declared == "boolean":
        return lambda v: None if v is None else bool(v)
    return _same
