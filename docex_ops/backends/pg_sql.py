"""Small PostgreSQL helpers shared by the backend modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


# First key of every docex-ops advisory lock, so ours never collide with an application's.
ADVISORY_NAMESPACE = 0x0D0C_E0
RUNNER_NAMESPACE = ADVISORY_NAMESPACE + 1


def execute_script(conn: Connection, sql: str) -> None:
    """Run static SQL (possibly several statements) exactly as written.

    Through ``exec_driver_sql`` psycopg2 would treat every ``%`` as a
    parameter marker; a raw cursor sends the text untouched.
    """
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def execute_each_statement(conn: Connection, sql: str) -> None:
    """``execute_script`` one statement at a time, as PostgreSQL's parser splits them.

    For a Citus coordinator: it forwards the DDL of a distributed schema to the worker
    as one command, and a worker refuses several commands in one (a prepared statement).
    """
    for statement in _statements(sql):
        execute_script(conn, statement)


@lru_cache(maxsize=16)
def _statements(sql: str) -> tuple[str, ...]:
    # The same script is sent to every tenant of a run: parsed once, not per tenant.
    import pglast  # the parser only where a script must be split

    return tuple(pglast.split(sql, with_parser=True))


def quote_ident(name: str) -> str:
    """Quote a name that the tenant rules already validated."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """An explicit transaction on an AUTOCOMMIT connection (the archivers' engines)."""
    conn.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT")


class DbapiRows(list[tuple[Any, ...]]):
    def all(self) -> list[tuple[Any, ...]]:
        return list(self)

    def scalar(self) -> Any:
        return self[0][0] if self else None


class DbapiConnection:
    """The slice of SQLAlchemy's ``Connection`` that discovery uses (``exec_driver_sql``,
    ``commit``, ``rollback``, ``connection.dbapi_connection``) over a plain psycopg2
    connection, so that ``migrate status`` reads every tenant without loading
    SQLAlchemy (about half of the command's start-up)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.connection = SimpleNamespace(dbapi_connection=raw)

    def exec_driver_sql(self, sql: str, params: dict[str, Any] | None = None,
                        execution_options: dict[str, Any] | None = None
                        ) -> DbapiRows | Iterator[tuple[Any, ...]]:
        """As SQLAlchemy's: ``execution_options={"stream_results": True, "max_row_buffer":
        N}`` streams the rows through a server-side cursor, N at a time (iterate them
        before the next statement)."""
        options = execution_options or {}
        if options.get("stream_results"):
            return self._streamed(sql, params, int(options.get("max_row_buffer", 1000)))
        cursor = self._raw.cursor()
        try:
            cursor.execute(sql, params)
            return DbapiRows(cursor.fetchall() if cursor.description else [])
        finally:
            cursor.close()

    def _streamed(self, sql: str, params: dict[str, Any] | None, rows: int
                  ) -> Iterator[tuple[Any, ...]]:
        cursor = self._raw.cursor(name="docex_ops_stream")
        cursor.itersize = rows
        try:
            cursor.execute(sql, params)
            yield from cursor
        finally:
            cursor.close()

    def commit(self) -> None:
        self._raw.commit()

    def rollback(self) -> None:
        self._raw.rollback()


# The server's connection limits: the manager's budget and the pools report read them.
LIMITS_SQL = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int
"""
