"""Filling a PostgreSQL target tenant: server-side from a source in the same database,
else rows streamed from the snapshot (see split/target.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from sqlalchemy.engine import Connection

from docex_ops.backends.base import Backend
from docex_ops.backends.contents import TenantContents
from docex_ops.backends.digest import TableDigest, digest_aggregates, digest_sql
from docex_ops.backends.pg_guard import lock_beside, set_lock_timeout
from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.source import PgView, SourceView, SplitSource, pg_begin_snapshot
from docex_ops.split.target import STREAM_BATCH, TargetKind, TenantFill, same

SERVER_SIDE = "server-side"


class PgTarget(TargetKind):
    # The registry hands this class PostgreSQL backends only (FILLS, keyed by kind).

    def scratch_dir(self, backend: Backend) -> None:
        return None

    def local_mode(self, source: SplitSource, backend: Backend) -> str | None:
        pg = source.spec.postgres
        if pg is None:
            return None
        mine = backend.settings.postgres
        same_database = (pg.host, pg.port, pg.database) == (mine.host, mine.port, mine.database)
        return SERVER_SIDE if same_database else None

    def open_local(self, source: SplitSource, backend: Backend, tenant_id: str, token: str
                   ) -> AbstractContextManager[TenantFill]:
        return _pg_server_side(source, cast(PostgresBackend, backend), tenant_id, token)

    def open_stream(self, backend: Backend, tenant_id: str, view: SourceView
                    ) -> AbstractContextManager[TenantFill]:
        return _stream_target(cast(PostgresBackend, backend), tenant_id, view)


PG_TARGET = PgTarget()


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


@contextmanager
def _stream_target(backend: PostgresBackend, tenant_id: str, view: SourceView
                   ) -> Iterator[TenantFill]:
    schema = backend.location(tenant_id)
    with backend.admin_engine.begin() as pg:
        set_lock_timeout(pg, backend.settings.lock_timeout)
        backend.lock_tenant(pg, schema)
        pg.exec_driver_sql("SET LOCAL DateStyle TO 'ISO, YMD'")
        pg.exec_driver_sql("SET LOCAL TimeZone TO 'UTC'")
        yield _StreamPg(pg, schema, view, backend, tenant_id)


def _to_pg(declared: str) -> Callable[[Any], Any]:
    if declared == "boolean":
        return lambda v: None if v is None else bool(v)
    return same
